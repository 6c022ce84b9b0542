package control_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/bolt"
	"github.com/switchbackhq/switchback/internal/bolt/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
	"github.com/switchbackhq/switchback/internal/wire"
)

// clock is an injected clock that only moves when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
	return c.t
}

// fakeStats is a hand-written ComparisonStats: counts answers every call.
type fakeStats struct {
	counts func(migration, partner string, stage domain.Stage, since time.Time) (gate.Counts, error)
}

func (f fakeStats) StageCounts(_ context.Context, migration, partner string, stage domain.Stage, since time.Time) (gate.Counts, error) {
	return f.counts(migration, partner, stage, since)
}

// goodCounts pass the default gates (except the bake time, which is the
// clock's).
func goodCounts() gate.Counts {
	return gate.Counts{
		Eligible:       5000,
		ByClass:        map[domain.Class]uint64{domain.ClassEqual: 5000},
		CandidateCalls: 5000,
	}
}

// badCounts hold one type_mismatch: a zero-tolerance class.
func badCounts() gate.Counts {
	c := goodCounts()
	c.ByClass = map[domain.Class]uint64{domain.ClassEqual: 4999, domain.ClassTypeMismatch: 1}
	return c
}

var (
	ctx   = context.Background()
	admin = control.Change{Actor: "admin", Reason: "test setup"}
	ops   = control.Change{Actor: "ops", Reason: "rollout"}
)

type env struct {
	svc   *control.Service
	store *bolt.Store
	clock *clock
}

func quietLogger() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func newEnv(t testing.TB, stats control.ComparisonStats) *env {
	t.Helper()
	store := bolttest.Open(t)
	c := newClock()
	svc, err := control.New(ctx, store, control.Options{Now: c.Now, Stats: stats, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("control.New: %v", err)
	}
	return &env{svc: svc, store: store, clock: c}
}

func migration(key string) domain.Migration {
	return domain.Migration{
		Key:         key,
		Description: "move " + key,
		Pipelines: domain.Pipelines{
			Legacy: domain.Pipeline{URL: "http://legacy.internal/apply"},
			New:    domain.Pipeline{URL: "http://new.internal/apply"},
		},
		Compare: domain.CompareRules{Ignore: []string{"fields.updatedAt"}},
		Gates:   domain.DefaultGates(),
		Guard:   domain.DefaultGuard(),
	}
}

func (e *env) partner(t testing.TB, id string) domain.Partner {
	t.Helper()
	secret := "whsec_" + id
	p, _, err := e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: id, Name: "Partner " + id, PSA: domain.PSAConnectWise, Secret: &secret})
	if err != nil {
		t.Fatalf("PutPartner(%s): %v", id, err)
	}
	return p
}

func (e *env) migration(t testing.TB, key string) domain.Migration {
	t.Helper()
	m, _, err := e.svc.PutMigration(ctx, admin, migration(key))
	if err != nil {
		t.Fatalf("PutMigration(%s): %v", key, err)
	}
	return m
}

func (e *env) cohort(t testing.TB, key, name string, order int, partners ...string) {
	t.Helper()
	if _, _, err := e.svc.PutCohort(ctx, admin, key, domain.Cohort{Name: name, Order: order, Partners: partners}); err != nil {
		t.Fatalf("PutCohort(%s/%s): %v", key, name, err)
	}
}

// stage returns the partner's stage record in the migration.
func (e *env) stage(t testing.TB, key, partner string) domain.PartnerStage {
	t.Helper()
	st := e.svc.State()
	ms, err := st.Migration(key)
	if err != nil {
		t.Fatal(err)
	}
	p, err := st.Partner(partner)
	if err != nil {
		t.Fatal(err)
	}
	return ms.StageOf(p)
}

// moveTo puts the partner at stage to, forcing forward moves one step at a
// time and moving back in one step.
func (e *env) moveTo(t testing.TB, key, partner string, to domain.Stage) {
	t.Helper()
	force := control.Change{Actor: "setup", Reason: "test setup"}
	for {
		from := e.stage(t, key, partner).Stage
		if from == to {
			return
		}
		next := to
		if to.Index() > from.Index() {
			next, _ = from.Next()
		}
		if _, err := e.svc.SetStage(ctx, force, key, partner, next, true); err != nil {
			t.Fatalf("SetStage(%s, %s → %s): %v", partner, from, next, err)
		}
	}
}

// auditLog reads the whole log, in pages, and verifies its chain.
func (e *env) auditLog(t testing.TB) []domain.AuditEntry {
	t.Helper()
	return verifiedLog(t, e.svc)
}

func verifiedLog(t testing.TB, svc *control.Service) []domain.AuditEntry {
	t.Helper()
	var all []domain.AuditEntry
	v := audit.NewVerifier(domain.AuditEntry{})
	var after uint64
	for {
		page, err := svc.AuditLog(ctx, after, 7)
		if err != nil {
			t.Fatalf("AuditLog: %v", err)
		}
		if len(page) == 0 {
			break
		}
		if err := v.Check(page); err != nil {
			t.Fatalf("audit chain: %v", err)
		}
		all = append(all, page...)
		after = page[len(page)-1].Seq
	}
	return all
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	if got := domain.ErrorCode(err); err == nil || got != code {
		t.Errorf("err = %v (code %q), want code %q", err, got, code)
	}
}

// unchanged checks that a refused or no-op change made no version and no
// audit entry.
func (e *env) unchanged(t testing.TB, version uint64, entries int) {
	t.Helper()
	if got := e.svc.State().Version; got != version {
		t.Errorf("version = %d, want %d (unchanged)", got, version)
	}
	if got := len(e.auditLog(t)); got != entries {
		t.Errorf("audit entries = %d, want %d (unchanged)", got, entries)
	}
}

func TestPutPartner(t *testing.T) {
	e := newEnv(t, nil)
	secret := "s1"
	p, created, err := e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise, Secret: &secret})
	if err != nil || !created {
		t.Fatalf("create: created %v, err %v; want true, nil", created, err)
	}
	want := domain.Partner{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise, Secret: "s1", CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("created partner (-want +got):\n%s", diff)
	}
	if got := e.svc.State().Version; got != 1 {
		t.Errorf("version after create = %d, want 1", got)
	}

	later := e.clock.Advance(time.Minute)
	p, created, err = e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "acme", Name: "Acme Corp", PSA: domain.PSAAutotask})
	if err != nil || created {
		t.Fatalf("update: created %v, err %v; want false, nil", created, err)
	}
	want = domain.Partner{ID: "acme", Name: "Acme Corp", PSA: domain.PSAAutotask, Secret: "s1", CreatedAt: want.CreatedAt, UpdatedAt: later}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("updated partner, nil secret keeps it (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&want, e.svc.State().Partners["acme"]); diff != "" {
		t.Errorf("state's partner (-want +got):\n%s", diff)
	}
	if got := e.svc.State().Version; got != 2 {
		t.Errorf("version after update = %d, want 2", got)
	}

	tests := []struct {
		name string
		in   control.PartnerInput
	}{
		{"same fields, secret kept", control.PartnerInput{ID: "acme", Name: "Acme Corp", PSA: domain.PSAAutotask}},
		{"same fields, same secret", control.PartnerInput{ID: "acme", Name: "Acme Corp", PSA: domain.PSAAutotask, Secret: &secret}},
	}
	for _, tt := range tests {
		t.Run("no-op: "+tt.name, func(t *testing.T) {
			e.clock.Advance(time.Minute)
			got, created, err := e.svc.PutPartner(ctx, admin, tt.in)
			if err != nil || created {
				t.Fatalf("created %v, err %v; want false, nil", created, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("no-op returns the stored partner (-want +got):\n%s", diff)
			}
			e.unchanged(t, 2, 2)
		})
	}

	log := e.auditLog(t)
	if got, want := []string{log[0].Action, log[1].Action}, []string{"partner.create", "partner.update"}; !slices.Equal(got, want) {
		t.Errorf("audit actions = %v, want %v", got, want)
	}
	for _, entry := range log {
		if strings.Contains(string(entry.Before)+string(entry.After), "s1") {
			t.Errorf("audit entry %d shows the secret: before %s after %s", entry.Seq, entry.Before, entry.After)
		}
		if entry.Actor != "admin" || entry.Reason != "test setup" || entry.Target != "partner/acme" {
			t.Errorf("audit entry %d: actor %q reason %q target %q", entry.Seq, entry.Actor, entry.Reason, entry.Target)
		}
	}

	t.Run("invalid", func(t *testing.T) {
		_, _, err := e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "Bad", Name: "x", PSA: domain.PSAGeneric})
		wantCode(t, err, domain.CodeInvalid)
		_, _, err = e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "ok", Name: "x", PSA: "servicenow"})
		wantCode(t, err, domain.CodeInvalid)
		e.unchanged(t, 2, 2)
	})
}

func TestPutMigration(t *testing.T) {
	e := newEnv(t, nil)
	m, created, err := e.svc.PutMigration(ctx, admin, migration("m1"))
	if err != nil || !created {
		t.Fatalf("create: created %v, err %v; want true, nil", created, err)
	}
	if m.Seq != 1 || !m.CreatedAt.Equal(e.clock.Now()) || m.Reverted {
		t.Errorf("created migration: seq %d createdAt %v reverted %v; want 1, now, false", m.Seq, m.CreatedAt, m.Reverted)
	}
	e.clock.Advance(time.Second)
	m2, created, err := e.svc.PutMigration(ctx, admin, migration("m0"))
	if err != nil || !created || m2.Seq != 2 {
		t.Fatalf("create second: seq %d created %v err %v; want 2, true, nil", m2.Seq, created, err)
	}
	if got, want := e.svc.State().MigrationKeys(), []string{"m1", "m0"}; !slices.Equal(got, want) {
		t.Errorf("MigrationKeys() = %v, want %v (oldest first)", got, want)
	}

	e.clock.Advance(time.Second)
	upd := migration("m1")
	upd.Description = "changed"
	got, created, err := e.svc.PutMigration(ctx, admin, upd)
	if err != nil || created {
		t.Fatalf("update: created %v err %v; want false, nil", created, err)
	}
	if got.Description != "changed" || got.Seq != 1 || !got.CreatedAt.Equal(m.CreatedAt) || !got.UpdatedAt.Equal(e.clock.Now()) {
		t.Errorf("updated migration = %+v; want description changed, seq 1, createdAt kept, updatedAt now", got)
	}
	if got := e.svc.State().Version; got != 3 {
		t.Errorf("version = %d, want 3", got)
	}

	t.Run("no-op", func(t *testing.T) {
		e.clock.Advance(time.Second)
		again, created, err := e.svc.PutMigration(ctx, admin, upd)
		if err != nil || created {
			t.Fatalf("created %v err %v; want false, nil", created, err)
		}
		if diff := cmp.Diff(got, again); diff != "" {
			t.Errorf("no-op returns the stored migration (-want +got):\n%s", diff)
		}
		e.unchanged(t, 3, 3)
	})

	t.Run("update keeps the kill switch and stages", func(t *testing.T) {
		e.partner(t, "acme")
		e.moveTo(t, "m1", "acme", domain.StageNew)
		if _, err := e.svc.Revert(ctx, ops, "m1"); err != nil {
			t.Fatal(err)
		}
		upd.Description = "changed again"
		got, _, err := e.svc.PutMigration(ctx, admin, upd)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Reverted || !e.svc.State().Migrations["m1"].Reverted {
			t.Errorf("update turned the kill switch off")
		}
		if st := e.stage(t, "m1", "acme").Stage; st != domain.StageNew {
			t.Errorf("stage after update = %s, want new", st)
		}
		if r := e.svc.State().Flags().Evaluate("m1", "acme"); r.Reason != flags.ReasonDisabled {
			t.Errorf("evaluation after update: reason %s, want DISABLED", r.Reason)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		v, n := e.svc.State().Version, len(e.auditLog(t))
		bad := migration("m1")
		bad.Pipelines.New.URL = "ftp://x"
		_, _, err := e.svc.PutMigration(ctx, admin, bad)
		wantCode(t, err, domain.CodeInvalid)
		_, _, err = e.svc.PutMigration(ctx, admin, migration("M!"))
		wantCode(t, err, domain.CodeInvalid)
		e.unchanged(t, v, n)
	})
}

func TestPutCohort(t *testing.T) {
	e := newEnv(t, nil)
	e.migration(t, "m")
	for _, id := range []string{"a", "b", "c"} {
		e.partner(t, id)
	}
	co, created, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-1", Order: 1, Partners: []string{"a", "b"}})
	if err != nil || !created {
		t.Fatalf("create: created %v err %v; want true, nil", created, err)
	}
	if !co.UpdatedAt.Equal(e.clock.Now()) {
		t.Errorf("UpdatedAt = %v, want now", co.UpdatedAt)
	}
	v, n := e.svc.State().Version, len(e.auditLog(t))

	t.Run("a partner in two cohorts is a conflict", func(t *testing.T) {
		_, _, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-2", Order: 2, Partners: []string{"c", "b"}})
		wantCode(t, err, domain.CodeConflict)
		e.unchanged(t, v, n)
	})
	t.Run("unknown partner", func(t *testing.T) {
		_, _, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-2", Partners: []string{"nobody"}})
		wantCode(t, err, domain.CodeNotFound)
	})
	t.Run("unknown migration", func(t *testing.T) {
		_, _, err := e.svc.PutCohort(ctx, admin, "nope", domain.Cohort{Name: "wave-2", Partners: []string{"c"}})
		wantCode(t, err, domain.CodeNotFound)
	})
	t.Run("invalid", func(t *testing.T) {
		_, _, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-2", Partners: []string{"c", "c"}})
		wantCode(t, err, domain.CodeInvalid)
		e.unchanged(t, v, n)
	})

	t.Run("update", func(t *testing.T) {
		e.clock.Advance(time.Minute)
		_, created, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-1", Order: 1, Partners: []string{"a"}})
		if err != nil || created {
			t.Fatalf("update: created %v err %v; want false, nil", created, err)
		}
		v, n = v+1, n+1
		e.unchanged(t, v, n) // exactly one version and one entry more
		// b left wave-1, so it may join another cohort.
		_, created, err = e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-2", Order: 2, Partners: []string{"b", "c"}})
		if err != nil || !created {
			t.Fatalf("create wave-2: created %v err %v; want true, nil", created, err)
		}
		v, n = v+1, n+1
		ms := e.svc.State().Migrations["m"]
		for p, want := range map[string]string{"a": "wave-1", "b": "wave-2", "c": "wave-2"} {
			if got := ms.CohortOf(p); got != want {
				t.Errorf("CohortOf(%s) = %q, want %q", p, got, want)
			}
		}
		var names []string
		for _, c := range ms.Cohorts {
			names = append(names, c.Name)
		}
		if want := []string{"wave-1", "wave-2"}; !slices.Equal(names, want) {
			t.Errorf("cohorts = %v, want %v in order", names, want)
		}
		log := e.auditLog(t)
		if got := log[len(log)-2].Action; got != "cohort.update" {
			t.Errorf("audit action = %q, want cohort.update", got)
		}
	})

	t.Run("no-op update", func(t *testing.T) {
		e.clock.Advance(time.Minute)
		_, created, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-2", Order: 2, Partners: []string{"b", "c"}})
		if err != nil || created {
			t.Fatalf("created %v err %v; want false, nil", created, err)
		}
		e.unchanged(t, v, n)
	})
}

func TestSetStage(t *testing.T) {
	noReason := control.Change{Actor: "ops"}
	tests := []struct {
		name     string
		from     domain.Stage
		reverted bool
		change   control.Change
		to       domain.Stage
		force    bool
		wantCode string // "" for success
		gate     bool   // want a gate_refused error with its report
	}{
		{name: "legacy to shadow needs no gate", from: domain.StageLegacy, change: ops, to: domain.StageShadow},
		{name: "legacy to new is a jump", from: domain.StageLegacy, change: ops, to: domain.StageNew, wantCode: domain.CodeInvalidTransition},
		{name: "legacy to done is a jump", from: domain.StageLegacy, change: ops, to: domain.StageDone, wantCode: domain.CodeInvalidTransition},
		{name: "forced jump is still a jump", from: domain.StageShadow, change: ops, to: domain.StageDone, force: true, wantCode: domain.CodeInvalidTransition},
		{name: "shadow to new without data is refused by the gates", from: domain.StageShadow, change: ops, to: domain.StageNew, wantCode: domain.CodeGateRefused, gate: true},
		{name: "new to done without data is refused by the gates", from: domain.StageNew, change: ops, to: domain.StageDone, wantCode: domain.CodeGateRefused, gate: true},
		{name: "forced without a reason", from: domain.StageShadow, change: noReason, to: domain.StageNew, force: true, wantCode: domain.CodeInvalid},
		{name: "forced with a blank reason", from: domain.StageShadow, change: control.Change{Actor: "ops", Reason: "  "}, to: domain.StageNew, force: true, wantCode: domain.CodeInvalid},
		{name: "forced with a reason", from: domain.StageShadow, change: ops, to: domain.StageNew, force: true},
		{name: "done to legacy", from: domain.StageDone, change: noReason, to: domain.StageLegacy},
		{name: "new to shadow", from: domain.StageNew, change: noReason, to: domain.StageShadow},
		{name: "done to new", from: domain.StageDone, change: noReason, to: domain.StageNew},
		{name: "unknown stage", from: domain.StageLegacy, change: ops, to: "canary", wantCode: domain.CodeInvalid},
		{name: "forward while reverted", from: domain.StageLegacy, reverted: true, change: ops, to: domain.StageShadow, wantCode: domain.CodeMigrationReverted},
		{name: "forced forward while reverted", from: domain.StageShadow, reverted: true, change: ops, to: domain.StageNew, force: true, wantCode: domain.CodeMigrationReverted},
		{name: "backward while reverted", from: domain.StageNew, reverted: true, change: noReason, to: domain.StageShadow},
		{name: "done to legacy while reverted", from: domain.StageDone, reverted: true, change: noReason, to: domain.StageLegacy},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.migration(t, "m")
			e.partner(t, "acme")
			e.moveTo(t, "m", "acme", tt.from)
			if tt.reverted {
				if _, err := e.svc.Revert(ctx, ops, "m"); err != nil {
					t.Fatal(err)
				}
			}
			before := e.stage(t, "m", "acme")
			v, n := e.svc.State().Version, len(e.auditLog(t))
			now := e.clock.Advance(time.Minute)

			got, err := e.svc.SetStage(ctx, tt.change, "m", "acme", tt.to, tt.force)
			if tt.wantCode != "" {
				wantCode(t, err, tt.wantCode)
				var gre *gateRefusal
				if isGate := asRefusal(err, &gre); isGate != tt.gate {
					t.Errorf("err is a gate_refused error with its report: %v, want %v", isGate, tt.gate)
				} else if isGate {
					if gre.Report.Pass || len(gre.Report.Partners) != 1 || gre.Report.Partners[0].Partner != "acme" || gre.Report.Partners[0].Stage != tt.from {
						t.Errorf("gate report = %+v, want acme at %s, refused", gre.Report, tt.from)
					}
					if len(gre.Report.Partners) == 1 && len(gre.Report.Partners[0].Checks) < 6 {
						t.Errorf("gate report has %d checks, want every criterion", len(gre.Report.Partners[0].Checks))
					}
				}
				if diff := cmp.Diff(before, e.stage(t, "m", "acme")); diff != "" {
					t.Errorf("a refused move changed the stage (-before +after):\n%s", diff)
				}
				e.unchanged(t, v, n)
				return
			}
			if err != nil {
				t.Fatalf("SetStage(%s → %s) = %v, want success", tt.from, tt.to, err)
			}
			want := domain.PartnerStage{Partner: "acme", Stage: tt.to, Since: now}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("SetStage result (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(want, e.stage(t, "m", "acme")); diff != "" {
				t.Errorf("stored stage (-want +got):\n%s", diff)
			}
			if got := e.svc.State().Version; got != v+1 {
				t.Errorf("version = %d, want %d", got, v+1)
			}
			log := e.auditLog(t)
			if len(log) != n+1 {
				t.Fatalf("audit entries = %d, want %d", len(log), n+1)
			}
			last := log[n]
			if last.Action != "stage.set" || last.Target != "migration/m/partner/acme" || last.Actor != tt.change.Actor || last.Reason != tt.change.Reason {
				t.Errorf("audit entry = %+v", last)
			}
			var after struct {
				Stage  domain.Stage `json:"stage"`
				Forced bool         `json:"forced"`
			}
			if err := json.Unmarshal(last.After, &after); err != nil {
				t.Fatal(err)
			}
			if after.Stage != tt.to || after.Forced != tt.force {
				t.Errorf("audit after = %s, want stage %s forced %v", last.After, tt.to, tt.force)
			}
			var beforeRec domain.PartnerStage
			if err := json.Unmarshal(last.Before, &beforeRec); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(before, beforeRec); diff != "" {
				t.Errorf("audit before (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("same stage is a no-op", func(t *testing.T) {
		e := newEnv(t, nil)
		e.migration(t, "m")
		e.partner(t, "acme")
		e.moveTo(t, "m", "acme", domain.StageShadow)
		before := e.stage(t, "m", "acme")
		v, n := e.svc.State().Version, len(e.auditLog(t))
		e.clock.Advance(time.Hour)
		got, err := e.svc.SetStage(ctx, ops, "m", "acme", domain.StageShadow, false)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(before, got); diff != "" {
			t.Errorf("no-op result (-want +got):\n%s", diff)
		}
		e.unchanged(t, v, n)
	})

	t.Run("unknown migration or partner", func(t *testing.T) {
		e := newEnv(t, nil)
		e.migration(t, "m")
		e.partner(t, "acme")
		_, err := e.svc.SetStage(ctx, ops, "nope", "acme", domain.StageShadow, false)
		wantCode(t, err, domain.CodeNotFound)
		_, err = e.svc.SetStage(ctx, ops, "m", "nobody", domain.StageShadow, false)
		wantCode(t, err, domain.CodeNotFound)
	})
}

func TestSetStageGateAndBakeTime(t *testing.T) {
	var mu sync.Mutex
	type call struct {
		migration, partner string
		stage              domain.Stage
		since              time.Time
	}
	var calls []call
	stats := fakeStats{counts: func(m, p string, st domain.Stage, since time.Time) (gate.Counts, error) {
		mu.Lock()
		defer mu.Unlock()
		calls = append(calls, call{m, p, st, since})
		if p == "bad" {
			return badCounts(), nil
		}
		return goodCounts(), nil
	}}
	e := newEnv(t, stats)
	e.migration(t, "m")
	e.partner(t, "acme")
	e.partner(t, "bad")
	e.moveTo(t, "m", "acme", domain.StageShadow)
	e.moveTo(t, "m", "bad", domain.StageShadow)
	since := e.stage(t, "m", "acme").Since

	e.clock.Advance(59*time.Minute + 59*time.Second)
	_, err := e.svc.SetStage(ctx, ops, "m", "acme", domain.StageNew, false)
	var gre *gateRefusal
	if !asRefusal(err, &gre) {
		t.Fatalf("SetStage before the bake time = %v, want a gate_refused error with its report", err)
	}
	var failed []string
	for _, c := range gre.Report.Partners[0].Checks {
		if !c.Pass {
			failed = append(failed, c.Name)
		}
	}
	if want := []string{"minBakeSeconds"}; !slices.Equal(failed, want) {
		t.Errorf("failed checks = %v, want %v", failed, want)
	}
	mu.Lock()
	if want := (call{"m", "acme", domain.StageShadow, since}); len(calls) != 1 || calls[0] != want {
		t.Errorf("stats calls = %+v, want one %+v", calls, want)
	}
	mu.Unlock()

	now := e.clock.Advance(time.Second)
	got, err := e.svc.SetStage(ctx, ops, "m", "acme", domain.StageNew, false)
	if err != nil {
		t.Fatalf("SetStage once the bake time has passed = %v", err)
	}
	if want := (domain.PartnerStage{Partner: "acme", Stage: domain.StageNew, Since: now}); got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}

	// A zero-tolerance mismatch refuses whatever the bake time.
	e.clock.Advance(24 * time.Hour)
	_, err = e.svc.SetStage(ctx, ops, "m", "bad", domain.StageNew, false)
	if !asRefusal(err, &gre) {
		t.Fatalf("SetStage with a type_mismatch = %v, want a gate_refused error with its report", err)
	}
	if !strings.Contains(err.Error(), "zeroTolerance") {
		t.Errorf("message %q does not name the failed check", err.Error())
	}
	// new → done is gated on the comparisons made in new: bake time again.
	_, err = e.svc.SetStage(ctx, ops, "m", "acme", domain.StageDone, false)
	if err != nil {
		t.Errorf("new → done after a day with good counts = %v", err)
	}
}

func TestAdvance(t *testing.T) {
	e := newEnv(t, nil)
	e.migration(t, "m")
	for _, id := range []string{"a", "b", "c", "d"} {
		e.partner(t, id)
	}
	e.cohort(t, "m", "wave-1", 1, "a", "b", "c")
	e.moveTo(t, "m", "a", domain.StageShadow)
	aBefore := e.stage(t, "m", "a")

	r, err := e.svc.Gate(ctx, "m", "wave-1")
	if err != nil || !r.Pass {
		t.Fatalf("Gate(legacy cohort) = %+v, %v; want a pass: legacy → shadow needs no gate", r, err)
	}

	v := e.svc.State().Version
	now := e.clock.Advance(time.Minute)
	res, err := e.svc.Advance(ctx, ops, "m", "wave-1", false)
	if err != nil {
		t.Fatalf("Advance(legacy → shadow) = %v, want success without comparisons", err)
	}
	want := control.AdvanceResult{Cohort: "wave-1", From: domain.StageLegacy, To: domain.StageShadow, Partners: []string{"b", "c"}}
	if diff := cmp.Diff(want, res); diff != "" {
		t.Errorf("Advance result (-want +got):\n%s", diff)
	}
	if got := e.svc.State().Version; got != v+1 {
		t.Errorf("version = %d, want %d: one version for the whole cohort", got, v+1)
	}
	if diff := cmp.Diff(aBefore, e.stage(t, "m", "a")); diff != "" {
		t.Errorf("partner ahead of the cohort moved (-before +after):\n%s", diff)
	}
	for _, p := range []string{"b", "c"} {
		if want, got := (domain.PartnerStage{Partner: p, Stage: domain.StageShadow, Since: now}), e.stage(t, "m", p); got != want {
			t.Errorf("stage of %s = %+v, want %+v", p, got, want)
		}
	}
	if got := e.stage(t, "m", "d").Stage; got != domain.StageLegacy {
		t.Errorf("partner outside the cohort at %s, want legacy", got)
	}
	st := e.svc.State()
	if got := st.CohortStage(st.Migrations["m"], st.Migrations["m"].Cohorts[0]); got != domain.StageShadow {
		t.Errorf("CohortStage = %s, want shadow", got)
	}

	// shadow → new: no comparisons, so the gates refuse, for each partner.
	v, n := e.svc.State().Version, len(e.auditLog(t))
	e.clock.Advance(48 * time.Hour)
	_, err = e.svc.Advance(ctx, ops, "m", "wave-1", false)
	var gre *gateRefusal
	if !asRefusal(err, &gre) {
		t.Fatalf("Advance(shadow → new, no data) = %v, want a gate_refused error with its report", err)
	}
	wantCode(t, err, domain.CodeGateRefused)
	var judged []string
	for _, p := range gre.Report.Partners {
		judged = append(judged, p.Partner)
		if p.Pass {
			t.Errorf("partner %s passes with no data", p.Partner)
		}
	}
	if want := []string{"a", "b", "c"}; !slices.Equal(judged, want) {
		t.Errorf("report judges %v, want %v", judged, want)
	}
	e.unchanged(t, v, n)

	gr, err := e.svc.Gate(ctx, "m", "wave-1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(gre.Report, gr); diff != "" {
		t.Errorf("Gate() differs from the refused Advance's report (-advance +gate):\n%s", diff)
	}

	t.Run("forced needs a reason", func(t *testing.T) {
		_, err := e.svc.Advance(ctx, control.Change{Actor: "ops"}, "m", "wave-1", true)
		wantCode(t, err, domain.CodeInvalid)
		e.unchanged(t, v, n)
	})
	t.Run("unknown cohort", func(t *testing.T) {
		_, err := e.svc.Advance(ctx, ops, "m", "nope", false)
		wantCode(t, err, domain.CodeNotFound)
	})
	t.Run("while reverted", func(t *testing.T) {
		if _, err := e.svc.Revert(ctx, ops, "m"); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.Advance(ctx, ops, "m", "wave-1", true)
		wantCode(t, err, domain.CodeMigrationReverted)
		if _, err := e.svc.Resume(ctx, ops, "m"); err != nil {
			t.Fatal(err)
		}
	})
	t.Run("forced with a reason", func(t *testing.T) {
		now := e.clock.Advance(time.Minute)
		res, err := e.svc.Advance(ctx, ops, "m", "wave-1", true)
		if err != nil {
			t.Fatal(err)
		}
		if res.From != domain.StageShadow || res.To != domain.StageNew || !slices.Equal(res.Partners, []string{"a", "b", "c"}) {
			t.Errorf("result %+v, want shadow → new for a, b, c", res)
		}
		for _, p := range []string{"a", "b", "c"} {
			if got := e.stage(t, "m", p); got.Stage != domain.StageNew || !got.Since.Equal(now) {
				t.Errorf("stage of %s = %+v, want new since now", p, got)
			}
		}
		log := e.auditLog(t)
		last := log[len(log)-1]
		if last.Action != "cohort.advance" || last.Target != "migration/m/cohort/wave-1" || !strings.Contains(string(last.After), `"forced":true`) {
			t.Errorf("audit entry = %+v", last)
		}
	})
	t.Run("a done cohort is a conflict", func(t *testing.T) {
		if _, err := e.svc.Advance(ctx, ops, "m", "wave-1", true); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.Advance(ctx, ops, "m", "wave-1", true)
		wantCode(t, err, domain.CodeConflict)
	})
	t.Run("an empty cohort is a conflict", func(t *testing.T) {
		e.cohort(t, "m", "empty", 9)
		_, err := e.svc.Advance(ctx, ops, "m", "empty", false)
		wantCode(t, err, domain.CodeConflict)
	})
}

func TestAdvanceAtomicAndBakeTime(t *testing.T) {
	var mu sync.Mutex
	bad := map[string]bool{"c": true}
	stats := fakeStats{counts: func(_, p string, _ domain.Stage, _ time.Time) (gate.Counts, error) {
		mu.Lock()
		defer mu.Unlock()
		if bad[p] {
			return badCounts(), nil
		}
		return goodCounts(), nil
	}}
	e := newEnv(t, stats)
	e.migration(t, "m")
	for _, id := range []string{"a", "b", "c"} {
		e.partner(t, id)
	}
	e.cohort(t, "m", "wave-1", 1, "a", "b", "c")
	if _, err := e.svc.Advance(ctx, ops, "m", "wave-1", false); err != nil {
		t.Fatal(err)
	}
	stagesBefore := e.svc.State().Migrations["m"].Stages
	v, n := e.svc.State().Version, len(e.auditLog(t))

	// One partner fails: nobody moves.
	e.clock.Advance(2 * time.Hour)
	_, err := e.svc.Advance(ctx, ops, "m", "wave-1", false)
	var gre *gateRefusal
	if !asRefusal(err, &gre) {
		t.Fatalf("Advance with one bad partner = %v, want a gate_refused error with its report", err)
	}
	pass := map[string]bool{}
	for _, p := range gre.Report.Partners {
		pass[p.Partner] = p.Pass
	}
	if want := map[string]bool{"a": true, "b": true, "c": false}; !cmp.Equal(want, pass) {
		t.Errorf("per-partner verdicts = %v, want %v", pass, want)
	}
	if gre.Report.Pass {
		t.Errorf("report passes with a failing partner")
	}
	if diff := cmp.Diff(stagesBefore, e.svc.State().Migrations["m"].Stages); diff != "" {
		t.Errorf("a refused advance moved partners (-before +after):\n%s", diff)
	}
	e.unchanged(t, v, n)

	// All good, but the bake time is not reached yet.
	mu.Lock()
	bad = map[string]bool{}
	mu.Unlock()
	e2 := newEnv(t, stats)
	e2.migration(t, "m")
	for _, id := range []string{"a", "b", "c"} {
		e2.partner(t, id)
	}
	e2.cohort(t, "m", "wave-1", 1, "a", "b", "c")
	if _, err := e2.svc.Advance(ctx, ops, "m", "wave-1", false); err != nil {
		t.Fatal(err)
	}
	since := e2.clock.Now()
	e2.clock.Advance(30 * time.Minute)
	_, err = e2.svc.Advance(ctx, ops, "m", "wave-1", false)
	if !asRefusal(err, &gre) {
		t.Fatalf("Advance before the bake time = %v, want a gate_refused error with its report", err)
	}
	for _, p := range gre.Report.Partners {
		for _, c := range p.Checks {
			if wantPass := c.Name != "minBakeSeconds"; c.Pass != wantPass {
				t.Errorf("%s: check %s pass = %v, want %v (value %v, limit %v)", p.Partner, c.Name, c.Pass, wantPass, c.Value, c.Limit)
			}
			if c.Name == "minBakeSeconds" && (c.Value != 1800 || c.Limit != 3600) {
				t.Errorf("%s: minBakeSeconds value %v limit %v, want 1800 and 3600", p.Partner, c.Value, c.Limit)
			}
		}
	}
	now := e2.clock.Advance(30 * time.Minute)
	if got := now.Sub(since); got != time.Hour {
		t.Fatalf("clock moved %v, want 1h", got)
	}
	res, err := e2.svc.Advance(ctx, ops, "m", "wave-1", false)
	if err != nil {
		t.Fatalf("Advance once the bake time has passed = %v", err)
	}
	if res.From != domain.StageShadow || res.To != domain.StageNew || len(res.Partners) != 3 {
		t.Errorf("result = %+v, want shadow → new for 3 partners", res)
	}
	for _, p := range []string{"a", "b", "c"} {
		if got := e2.stage(t, "m", p); got.Stage != domain.StageNew || !got.Since.Equal(now) {
			t.Errorf("stage of %s = %+v, want new since %v", p, got, now)
		}
	}
}

func TestAdvanceCohortGates(t *testing.T) {
	stats := fakeStats{counts: func(string, string, domain.Stage, time.Time) (gate.Counts, error) { return goodCounts(), nil }}
	e := newEnv(t, stats)
	e.migration(t, "m")
	e.partner(t, "a")
	relaxed := domain.DefaultGates()
	relaxed.MinBakeSeconds = 60
	if _, _, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "canary", Partners: []string{"a"}, Gates: &relaxed}); err != nil {
		t.Fatal(err)
	}
	e.moveTo(t, "m", "a", domain.StageShadow)
	e.clock.Advance(time.Minute)
	if _, err := e.svc.Advance(ctx, ops, "m", "canary", false); err != nil {
		t.Errorf("Advance with the cohort's 60s bake time after a minute = %v", err)
	}
}

func TestRevertWinsOverAdvanceInFlight(t *testing.T) {
	// docs/api.md, "Advance a cohort": a revert that lands while an advance is
	// in flight wins. An advance judging the gates (stats may be slow) must
	// neither hold the revert back nor land after it.
	entered := make(chan struct{}, 100)
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock)
	stats := fakeStats{counts: func(string, string, domain.Stage, time.Time) (gate.Counts, error) {
		entered <- struct{}{}
		<-release
		return goodCounts(), nil
	}}
	e := newEnv(t, stats)
	e.migration(t, "m")
	e.partner(t, "a")
	e.partner(t, "b")
	e.cohort(t, "m", "w", 1, "a", "b")
	if _, err := e.svc.Advance(ctx, ops, "m", "w", false); err != nil {
		t.Fatal(err)
	}
	e.clock.Advance(2 * time.Hour)

	advanced := make(chan error, 1)
	go func() {
		_, err := e.svc.Advance(ctx, ops, "m", "w", false)
		advanced <- err
	}()
	<-entered // the advance is judging the gates

	reverted := make(chan error, 1)
	go func() {
		_, err := e.svc.Revert(ctx, control.Change{Actor: "oncall", Reason: "incident"}, "m")
		reverted <- err
	}()
	select {
	case err := <-reverted:
		if err != nil {
			t.Fatalf("Revert = %v", err)
		}
		reverted <- nil
	case <-time.After(2 * time.Second):
		t.Errorf("Revert is still waiting after 2s for an advance whose gate evaluation is in flight: the revert must win")
	}
	unblock()
	advErr := <-advanced
	if err := <-reverted; err != nil {
		t.Fatalf("Revert = %v", err)
	}
	if !e.svc.State().Migrations["m"].Reverted {
		t.Fatal("migration not reverted")
	}
	if advErr == nil {
		t.Errorf("the advance in flight landed although a revert came in while it was judged; want it refused with %s", domain.CodeMigrationReverted)
	} else {
		wantCode(t, advErr, domain.CodeMigrationReverted)
	}
	for _, p := range []string{"a", "b"} {
		if st := e.stage(t, "m", p).Stage; st != domain.StageShadow {
			t.Errorf("%s at %s after the revert, want shadow: the advance must not land", p, st)
		}
	}
}

// flakyStore fails its next write transaction after fn has made its writes,
// the way a full disk would at commit.
type flakyStore struct {
	*bolt.Store
	mu   sync.Mutex
	fail bool
}

func (f *flakyStore) failNext() { f.mu.Lock(); f.fail = true; f.mu.Unlock() }

func (f *flakyStore) Update(ctx context.Context, fn func(control.Tx) error) error {
	f.mu.Lock()
	fail := f.fail
	f.fail = false
	f.mu.Unlock()
	return f.Store.Update(ctx, func(tx control.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if fail {
			return errors.New("injected: disk full")
		}
		return nil
	})
}

func TestFailedWriteChangesNothing(t *testing.T) {
	store := &flakyStore{Store: bolttest.Open(t)}
	c := newClock()
	svc, err := control.New(ctx, store, control.Options{Now: c.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{svc: svc, store: store.Store, clock: c}
	e.migration(t, "m")
	for _, id := range []string{"a", "b"} {
		e.partner(t, id)
	}
	e.cohort(t, "m", "w", 1, "a", "b")
	if _, _, err := svc.Bootstrap(ctx, "sbk_admin"); err != nil {
		t.Fatal(err)
	}

	changes := []struct {
		name string
		do   func() error
	}{
		{"advance", func() error { _, err := svc.Advance(ctx, ops, "m", "w", false); return err }},
		{"set stage", func() error { _, err := svc.SetStage(ctx, ops, "m", "a", domain.StageLegacy, false); return err }},
		{"revert", func() error { _, err := svc.Revert(ctx, ops, "m"); return err }},
		{"partner", func() error {
			_, _, err := svc.PutPartner(ctx, admin, control.PartnerInput{ID: "c", Name: "C", PSA: domain.PSAGeneric})
			return err
		}},
		{"migration", func() error { _, _, err := svc.PutMigration(ctx, admin, migration("n")); return err }},
		{"revert all", func() error { _, err := svc.RevertAll(ctx, ops); return err }},
		{"cohort", func() error {
			_, _, err := svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "w2", Partners: []string{"c"}})
			return err
		}},
		{"token", func() error { _, _, err := svc.CreateToken(ctx, admin, "ops", domain.RoleOperator); return err }},
		{"revoke", func() error { return svc.DeleteToken(ctx, admin, "ops") }},
	}
	for _, tt := range changes {
		t.Run(tt.name, func(t *testing.T) {
			before, ch := svc.Changed()
			stored, err := store.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tokens := svc.Tokens()
			n := len(e.auditLog(t))
			c.Advance(time.Minute)

			store.failNext()
			err = tt.do()
			wantCode(t, err, domain.CodeInternal)
			if svc.State() != before {
				t.Errorf("a failed write published a new state")
			}
			select {
			case <-ch:
				t.Errorf("a failed write closed the Changed channel")
			default:
			}
			after, err := store.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(stored, after); diff != "" {
				t.Errorf("a failed write left data behind (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(tokens, svc.Tokens()); diff != "" {
				t.Errorf("a failed write changed the tokens (-before +after):\n%s", diff)
			}
			if got := len(e.auditLog(t)); got != n {
				t.Errorf("audit entries = %d, want %d", got, n)
			}

			// The same change succeeds next time and chains to the log.
			if err := tt.do(); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if got := len(e.auditLog(t)); got != n+1 {
				t.Errorf("audit entries after the retry = %d, want %d", got, n+1)
			}
			if v := svc.State().Version; v > before.Version+1 {
				t.Errorf("version after the retry = %d, want at most %d", v, before.Version+1)
			}
		})
	}
}

func TestStatsErrorIsInternal(t *testing.T) {
	stats := fakeStats{counts: func(string, string, domain.Stage, time.Time) (gate.Counts, error) {
		return gate.Counts{}, errors.New("stats store down")
	}}
	e := newEnv(t, stats)
	e.migration(t, "m")
	e.partner(t, "a")
	e.moveTo(t, "m", "a", domain.StageShadow)
	v := e.svc.State().Version
	_, err := e.svc.SetStage(ctx, ops, "m", "a", domain.StageNew, false)
	wantCode(t, err, domain.CodeInternal)
	if got := e.svc.State().Version; got != v {
		t.Errorf("version = %d, want %d", got, v)
	}
}

// setupStages makes partners at every stage of two migrations.
func setupStages(t *testing.T, e *env) map[string]domain.Stage {
	t.Helper()
	e.migration(t, "m")
	e.migration(t, "n")
	want := map[string]domain.Stage{"p-legacy": domain.StageLegacy, "p-shadow": domain.StageShadow, "p-new": domain.StageNew, "p-done": domain.StageDone}
	for p, st := range want {
		e.partner(t, p)
		e.moveTo(t, "m", p, st)
		e.clock.Advance(time.Second)
	}
	e.moveTo(t, "n", "p-done", domain.StageNew)
	return want
}

func evaluateAll(st *control.State, key string) map[string]flags.Resolution {
	out := map[string]flags.Resolution{}
	for _, p := range append(st.PartnerIDs(), "stranger") {
		r := st.Flags().Evaluate(key, p)
		r.Version = 0
		out[p] = r
	}
	return out
}

func TestRevertResume(t *testing.T) {
	e := newEnv(t, nil)
	setupStages(t, e)
	stagesBefore := e.svc.State().Migrations["m"].Stages
	evalBefore := evaluateAll(e.svc.State(), "m")
	otherBefore := evaluateAll(e.svc.State(), "n")
	v, n := e.svc.State().Version, len(e.auditLog(t))

	e.clock.Advance(time.Minute)
	got, err := e.svc.Revert(ctx, control.Change{Actor: "oncall", Reason: "incident 42"}, "m")
	if err != nil {
		t.Fatal(err)
	}
	if got != v+1 || e.svc.State().Version != v+1 {
		t.Errorf("Revert returned version %d, state at %d; want both %d", got, e.svc.State().Version, v+1)
	}
	if len(e.auditLog(t)) != n+1 {
		t.Errorf("audit entries = %d, want %d", len(e.auditLog(t)), n+1)
	}
	if e.svc.Reverts() != 1 {
		t.Errorf("Reverts() = %d, want 1", e.svc.Reverts())
	}
	st := e.svc.State()
	if !st.Migrations["m"].Reverted || st.Migrations["n"].Reverted {
		t.Errorf("reverted: m %v, n %v; want true, false", st.Migrations["m"].Reverted, st.Migrations["n"].Reverted)
	}
	if diff := cmp.Diff(stagesBefore, st.Migrations["m"].Stages); diff != "" {
		t.Errorf("Revert changed the stages (-before +after):\n%s", diff)
	}
	for p, r := range evaluateAll(st, "m") {
		if p == "stranger" {
			if r.Reason != flags.ReasonDefault {
				t.Errorf("unknown partner while reverted: reason %s, want DEFAULT", r.Reason)
			}
			continue
		}
		want := flags.Resolution{Value: flags.Legacy, Variant: flags.StageLegacy, Reason: flags.ReasonDisabled, Stage: evalBefore[p].Stage}
		if diff := cmp.Diff(want, r); diff != "" {
			t.Errorf("Evaluate(m, %s) while reverted (-want +got):\n%s", p, diff)
		}
	}
	if diff := cmp.Diff(otherBefore, evaluateAll(st, "n")); diff != "" {
		t.Errorf("reverting m changed n (-before +after):\n%s", diff)
	}

	t.Run("revert again changes nothing", func(t *testing.T) {
		got, err := e.svc.Revert(ctx, ops, "m")
		if err != nil || got != v+1 {
			t.Errorf("Revert(reverted) = %d, %v; want %d, nil", got, err, v+1)
		}
		e.unchanged(t, v+1, n+1)
		if e.svc.Reverts() != 1 {
			t.Errorf("Reverts() = %d, want 1", e.svc.Reverts())
		}
	})
	t.Run("unknown migration", func(t *testing.T) {
		_, err := e.svc.Revert(ctx, ops, "nope")
		wantCode(t, err, domain.CodeNotFound)
		_, err = e.svc.Resume(ctx, ops, "nope")
		wantCode(t, err, domain.CodeNotFound)
	})

	e.clock.Advance(time.Minute)
	got, err = e.svc.Resume(ctx, ops, "m")
	if err != nil {
		t.Fatal(err)
	}
	if got != v+2 || e.svc.State().Version != v+2 {
		t.Errorf("Resume returned version %d, state at %d; want both %d", got, e.svc.State().Version, v+2)
	}
	st = e.svc.State()
	if st.Migrations["m"].Reverted {
		t.Errorf("still reverted after Resume")
	}
	if diff := cmp.Diff(stagesBefore, st.Migrations["m"].Stages); diff != "" {
		t.Errorf("stages after Resume (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(evalBefore, evaluateAll(st, "m")); diff != "" {
		t.Errorf("evaluations after Resume differ from before the revert (-before +after):\n%s", diff)
	}
	log := e.auditLog(t)
	if len(log) != n+2 {
		t.Fatalf("audit entries = %d, want %d", len(log), n+2)
	}
	if log[n].Action != "migration.revert" || log[n].Actor != "oncall" || log[n].Reason != "incident 42" || log[n].Target != "migration/m" {
		t.Errorf("revert entry = %+v", log[n])
	}
	if log[n+1].Action != "migration.resume" {
		t.Errorf("resume entry = %+v", log[n+1])
	}

	t.Run("resume again changes nothing", func(t *testing.T) {
		got, err := e.svc.Resume(ctx, ops, "m")
		if err != nil || got != v+2 {
			t.Errorf("Resume(not reverted) = %d, %v; want %d, nil", got, err, v+2)
		}
		e.unchanged(t, v+2, n+2)
	})
}

func TestRevertAll(t *testing.T) {
	e := newEnv(t, nil)
	setupStages(t, e)
	e.migration(t, "o")
	if _, err := e.svc.Revert(ctx, ops, "n"); err != nil {
		t.Fatal(err)
	}
	v, n := e.svc.State().Version, len(e.auditLog(t))
	_, changed := e.svc.Changed()

	got, err := e.svc.RevertAll(ctx, control.Change{Actor: "oncall", Reason: "global incident"})
	if err != nil {
		t.Fatal(err)
	}
	if got != v+1 || e.svc.State().Version != v+1 {
		t.Errorf("RevertAll returned %d, state at %d; want both %d: one version for every migration", got, e.svc.State().Version, v+1)
	}
	select {
	case <-changed:
	default:
		t.Errorf("Changed channel not closed by RevertAll")
	}
	st := e.svc.State()
	for _, k := range st.MigrationKeys() {
		if !st.Migrations[k].Reverted {
			t.Errorf("migration %s not reverted", k)
		}
		for _, p := range st.PartnerIDs() {
			if r := st.Flags().Evaluate(k, p); r.Value != flags.Legacy || r.Reason != flags.ReasonDisabled || r.Version != v+1 {
				t.Errorf("Evaluate(%s, %s) = %+v, want legacy, DISABLED at version %d", k, p, r, v+1)
			}
		}
	}
	log := e.auditLog(t)
	if len(log) != n+1 {
		t.Fatalf("audit entries = %d, want %d: one entry for the global revert", len(log), n+1)
	}
	last := log[n]
	if last.Action != "revert.all" || last.Target != "migrations" {
		t.Errorf("audit entry = %+v", last)
	}
	var after struct {
		Reverted   bool     `json:"reverted"`
		Migrations []string `json:"migrations"`
	}
	if err := json.Unmarshal(last.After, &after); err != nil {
		t.Fatal(err)
	}
	if want := []string{"m", "o"}; !after.Reverted || !slices.Equal(after.Migrations, want) {
		t.Errorf("audit after = %s, want reverted and the flipped migrations %v", last.After, want)
	}

	// Stored durably: a reload sees every kill switch on at that version.
	d, err := e.store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if d.Version != v+1 {
		t.Errorf("stored version = %d, want %d", d.Version, v+1)
	}
	for _, m := range d.Migrations {
		if !m.Reverted {
			t.Errorf("stored migration %s not reverted", m.Key)
		}
	}

	again, err := e.svc.RevertAll(ctx, ops)
	if err != nil || again != v+1 {
		t.Errorf("RevertAll again = %d, %v; want %d, nil", again, err, v+1)
	}
	e.unchanged(t, v+1, n+1)

	t.Run("no migrations", func(t *testing.T) {
		e := newEnv(t, nil)
		got, err := e.svc.RevertAll(ctx, ops)
		if err != nil || got != 0 {
			t.Errorf("RevertAll(no migrations) = %d, %v; want 0, nil", got, err)
		}
		e.unchanged(t, 0, 0)
	})
}

func TestVersionsIncrease(t *testing.T) {
	e := newEnv(t, nil)
	last := e.svc.State().Version
	step := func(name string, f func() error) {
		t.Helper()
		e.clock.Advance(time.Second)
		if err := f(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		st := e.svc.State()
		if st.Version != last+1 {
			t.Errorf("%s: version %d, want %d", name, st.Version, last+1)
		}
		if st.Flags().Version != st.Version {
			t.Errorf("%s: flags snapshot at %d, state at %d", name, st.Flags().Version, st.Version)
		}
		var snap wire.Snapshot
		if err := json.Unmarshal(st.SnapshotJSON(false), &snap); err != nil {
			t.Fatal(err)
		}
		if snap.Version != st.Version {
			t.Errorf("%s: wire snapshot at %d, state at %d", name, snap.Version, st.Version)
		}
		last = st.Version
	}
	step("migration", func() error { _, _, err := e.svc.PutMigration(ctx, admin, migration("m")); return err })
	step("partner", func() error {
		_, _, err := e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "a", Name: "A", PSA: domain.PSAGeneric})
		return err
	})
	step("cohort", func() error {
		_, _, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "w", Partners: []string{"a"}})
		return err
	})
	step("stage", func() error { _, err := e.svc.SetStage(ctx, ops, "m", "a", domain.StageShadow, false); return err })
	step("advance", func() error { _, err := e.svc.Advance(ctx, ops, "m", "w", true); return err })
	step("revert", func() error { _, err := e.svc.Revert(ctx, ops, "m"); return err })
	step("back", func() error { _, err := e.svc.SetStage(ctx, ops, "m", "a", domain.StageLegacy, false); return err })
	step("resume", func() error { _, err := e.svc.Resume(ctx, ops, "m"); return err })
	step("revert all", func() error { _, err := e.svc.RevertAll(ctx, ops); return err })
}

func TestEvaluateThroughState(t *testing.T) {
	e := newEnv(t, nil)
	e.partner(t, "early") // created before the migration
	e.clock.Advance(time.Minute)
	mig := e.migration(t, "m")
	e.clock.Advance(time.Minute)
	late := e.partner(t, "late") // created after it
	// A partner without a stage record is at legacy since it or the
	// migration was created, whichever was later.
	for p, since := range map[string]time.Time{"early": mig.CreatedAt, "late": late.CreatedAt} {
		want := domain.PartnerStage{Partner: p, Stage: domain.StageLegacy, Since: since}
		if diff := cmp.Diff(want, e.stage(t, "m", p)); diff != "" {
			t.Errorf("StageOf(%s) (-want +got):\n%s", p, diff)
		}
	}
	e.partner(t, "moved")
	e.moveTo(t, "m", "moved", domain.StageNew)
	e.partner(t, "back")
	e.moveTo(t, "m", "back", domain.StageShadow)
	e.moveTo(t, "m", "back", domain.StageLegacy) // an explicit legacy record
	v := e.svc.State().Version

	tests := []struct {
		name, flag, partner string
		want                flags.Resolution
	}{
		{"known partner at legacy", "m", "early", flags.Resolution{Value: flags.Legacy, Variant: flags.StageLegacy, Reason: flags.ReasonTargetingMatch, Stage: flags.StageLegacy, Version: v}},
		{"partner created after the migration", "m", "late", flags.Resolution{Value: flags.Legacy, Variant: flags.StageLegacy, Reason: flags.ReasonTargetingMatch, Stage: flags.StageLegacy, Version: v}},
		{"moved back to legacy", "m", "back", flags.Resolution{Value: flags.Legacy, Variant: flags.StageLegacy, Reason: flags.ReasonTargetingMatch, Stage: flags.StageLegacy, Version: v}},
		{"partner at new", "m", "moved", flags.Resolution{Value: flags.New, Variant: flags.StageNew, Reason: flags.ReasonTargetingMatch, Stage: flags.StageNew, Shadow: flags.Legacy, Version: v}},
		{"unknown partner", "m", "stranger", flags.Resolution{Value: flags.Legacy, Variant: flags.StageLegacy, Reason: flags.ReasonDefault, Version: v}},
		{"unknown flag", "nope", "moved", flags.Resolution{Value: flags.Legacy, Reason: flags.ReasonError, ErrorCode: flags.ErrFlagNotFound, Version: v}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, e.svc.State().Flags().Evaluate(tt.flag, tt.partner)); diff != "" {
				t.Errorf("Evaluate(%s, %s) (-want +got):\n%s", tt.flag, tt.partner, diff)
			}
		})
	}

	if _, err := e.svc.Revert(ctx, ops, "m"); err != nil {
		t.Fatal(err)
	}
	want := flags.Resolution{Value: flags.Legacy, Variant: flags.StageLegacy, Reason: flags.ReasonDisabled, Stage: flags.StageNew, Version: v + 1}
	if diff := cmp.Diff(want, e.svc.State().Flags().Evaluate("m", "moved")); diff != "" {
		t.Errorf("Evaluate while reverted (-want +got):\n%s", diff)
	}
	counts := e.svc.State().PartnersByStage(e.svc.State().Migrations["m"])
	if want := map[domain.Stage]int{domain.StageLegacy: 3, domain.StageShadow: 0, domain.StageNew: 1, domain.StageDone: 0}; !cmp.Equal(want, counts) {
		t.Errorf("StageCounts = %v, want %v", counts, want)
	}
}

func TestStateIsImmutable(t *testing.T) {
	e := newEnv(t, nil)
	e.migration(t, "m")
	e.partner(t, "a")
	e.moveTo(t, "m", "a", domain.StageNew)
	old := e.svc.State()
	oldJSON := string(old.SnapshotJSON(true))
	if _, err := e.svc.Revert(ctx, ops, "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetStage(ctx, ops, "m", "a", domain.StageShadow, false); err != nil {
		t.Fatal(err)
	}
	e.partner(t, "b")
	if r := old.Flags().Evaluate("m", "a"); r.Value != flags.New || r.Reason != flags.ReasonTargetingMatch {
		t.Errorf("old state's evaluation changed: %+v", r)
	}
	if old.Migrations["m"].Reverted || old.Migrations["m"].Stages["a"].Stage != domain.StageNew || old.Partners["b"] != nil {
		t.Errorf("old state was modified by later changes")
	}
	if got := string(old.SnapshotJSON(true)); got != oldJSON {
		t.Errorf("old state's snapshot JSON changed")
	}
}

func TestSnapshotJSON(t *testing.T) {
	e := newEnv(t, nil)
	e.migration(t, "m")
	e.partner(t, "a")
	e.moveTo(t, "m", "a", domain.StageShadow)
	st := e.svc.State()
	for _, withSecrets := range []bool{false, true} {
		var w wire.Snapshot
		if err := json.Unmarshal(st.SnapshotJSON(withSecrets), &w); err != nil {
			t.Fatal(err)
		}
		want := wire.Snapshot{
			Version: st.Version, BuiltAt: e.clock.Now(), StoreID: st.StoreID,
			Audit: lastHead(e.auditLog(t)),
			Migrations: map[string]wire.SnapshotMigration{"m": {
				Seq: 1, Stages: map[string]string{"a": "shadow"}, Pipelines: migration("m").Pipelines,
				Compare: migration("m").Compare, Guard: migration("m").Guard,
			}},
			Partners: map[string]wire.SnapshotPartner{"a": {Name: "Partner a", PSA: domain.PSAConnectWise}},
		}
		if withSecrets {
			want.Partners["a"] = wire.SnapshotPartner{Name: "Partner a", PSA: domain.PSAConnectWise, Secret: "whsec_a"}
		}
		if diff := cmp.Diff(want, w); diff != "" {
			t.Errorf("SnapshotJSON(%v) (-want +got):\n%s", withSecrets, diff)
		}
		// The same encoding decodes into the flags package's Snapshot.
		var fs flags.Snapshot
		if err := json.Unmarshal(st.SnapshotJSON(withSecrets), &fs); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(st.Flags().Evaluate("m", "a"), fs.Evaluate("m", "a")); diff != "" {
			t.Errorf("decoded snapshot evaluates differently (-state +decoded):\n%s", diff)
		}
	}
}

func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	store, err := bolt.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	svc, err := control.New(ctx, store, control.Options{Now: c.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{svc: svc, store: store, clock: c}
	adminSecret, created, err := svc.Bootstrap(ctx, "sbk_bootstrap-secret")
	if err != nil || !created || adminSecret != "sbk_bootstrap-secret" {
		t.Fatalf("Bootstrap = %q, %v, %v", adminSecret, created, err)
	}
	_, opsSecret, err := svc.CreateToken(ctx, admin, "ops", domain.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	setupStages(t, e)
	e.cohort(t, "m", "wave-1", 1, "p-shadow", "p-new")
	e.cohort(t, "m", "wave-0", 0, "p-done")
	c.Advance(time.Hour)
	if _, err := svc.Revert(ctx, ops, "n"); err != nil {
		t.Fatal(err)
	}

	before := svc.State()
	tokensBefore := svc.Tokens()
	logBefore := e.auditLog(t)
	evalBefore := map[string]map[string]flags.Resolution{"m": evaluateAll(before, "m"), "n": evaluateAll(before, "n")}

	bolttest.Check(t, store.DB())
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	c.Advance(time.Hour)
	store2 := bolttest.OpenAt(t, path)
	svc2, err := control.New(ctx, store2, control.Options{Now: c.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("control.New after restart: %v", err)
	}
	e2 := &env{svc: svc2, store: store2, clock: c}
	after := svc2.State()

	if after.Version != before.Version {
		t.Errorf("version after restart = %d, want %d", after.Version, before.Version)
	}
	if diff := cmp.Diff(before.Partners, after.Partners); diff != "" {
		t.Errorf("partners after restart (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(before.MigrationKeys(), after.MigrationKeys()); diff != "" {
		t.Errorf("migration order after restart (-before +after):\n%s", diff)
	}
	for _, k := range before.MigrationKeys() {
		b, a := before.Migrations[k], after.Migrations[k]
		if a == nil {
			t.Errorf("migration %s lost", k)
			continue
		}
		if diff := cmp.Diff(b.Migration, a.Migration); diff != "" {
			t.Errorf("migration %s after restart (-before +after):\n%s", k, diff)
		}
		if diff := cmp.Diff(b.Stages, a.Stages); diff != "" {
			t.Errorf("stages of %s, with since, after restart (-before +after):\n%s", k, diff)
		}
		if diff := cmp.Diff(b.Cohorts, a.Cohorts, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("cohorts of %s after restart (-before +after):\n%s", k, diff)
		}
		for _, p := range before.PartnerIDs() {
			if b.CohortOf(p) != a.CohortOf(p) {
				t.Errorf("CohortOf(%s) in %s = %q after restart, want %q", p, k, a.CohortOf(p), b.CohortOf(p))
			}
			if diff := cmp.Diff(b.StageOf(before.Partners[p]), a.StageOf(after.Partners[p])); diff != "" {
				t.Errorf("StageOf(%s) in %s after restart (-before +after):\n%s", p, k, diff)
			}
		}
		if diff := cmp.Diff(evalBefore[k], evaluateAll(after, k)); diff != "" {
			t.Errorf("evaluations of %s after restart (-before +after):\n%s", k, diff)
		}
	}
	if !after.Migrations["n"].Reverted || after.Migrations["m"].Reverted {
		t.Errorf("kill switches after restart: m %v n %v, want false, true", after.Migrations["m"].Reverted, after.Migrations["n"].Reverted)
	}
	if diff := cmp.Diff(tokensBefore, svc2.Tokens()); diff != "" {
		t.Errorf("tokens after restart (-before +after):\n%s", diff)
	}
	for secret, name := range map[string]string{adminSecret: "admin", opsSecret: "ops"} {
		tok, err := svc2.Authenticate(secret)
		if err != nil || tok.Name != name {
			t.Errorf("Authenticate(%s's secret) after restart = %+v, %v", name, tok, err)
		}
	}
	if _, err := svc2.Authenticate("sbk_wrong"); domain.ErrorCode(err) != domain.CodeUnauthenticated {
		t.Errorf("Authenticate(wrong) after restart = %v", err)
	}
	if _, created, err := svc2.Bootstrap(ctx, "other"); err != nil || created {
		t.Errorf("Bootstrap after restart created a token: %v, %v", created, err)
	}
	if diff := cmp.Diff(logBefore, e2.auditLog(t)); diff != "" {
		t.Errorf("audit log after restart (-before +after):\n%s", diff)
	}

	// More changes: versions and the audit chain continue.
	if _, err := svc2.Resume(ctx, ops, "n"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.SetStage(ctx, ops, "m", "p-done", domain.StageShadow, false); err != nil {
		t.Fatal(err)
	}
	e2.partner(t, "p-after")
	if err := svc2.DeleteToken(ctx, admin, "ops"); err != nil {
		t.Fatal(err)
	}
	if got, want := svc2.State().Version, before.Version+3; got != want {
		t.Errorf("version after three more changes = %d, want %d", got, want)
	}
	log := e2.auditLog(t) // verifies the whole chain from seq 1
	if got, want := len(log), len(logBefore)+4; got != want {
		t.Fatalf("audit entries = %d, want %d", got, want)
	}
	if log[len(logBefore)].PrevHash != logBefore[len(logBefore)-1].Hash {
		t.Errorf("first entry after restart does not chain to the last before it")
	}
	if _, err := svc2.Authenticate(opsSecret); domain.ErrorCode(err) != domain.CodeUnauthenticated {
		t.Errorf("Authenticate(revoked) = %v, want unauthenticated", err)
	}
}

func TestTokens(t *testing.T) {
	e := newEnv(t, nil)
	if got := e.svc.Tokens(); len(got) != 0 {
		t.Errorf("Tokens() on an empty store = %v", got)
	}
	secret, created, err := e.svc.Bootstrap(ctx, "")
	if err != nil || !created || !strings.HasPrefix(secret, "sbk_") || len(secret) < 40 {
		t.Fatalf("Bootstrap = %q, %v, %v; want a fresh sbk_ secret", secret, created, err)
	}
	if again, created, err := e.svc.Bootstrap(ctx, "x"); err != nil || created || again != "" {
		t.Errorf("second Bootstrap = %q, %v, %v; want nothing created", again, created, err)
	}
	v := e.svc.State().Version

	for range 3 { // the same answer each time
		tok, err := e.svc.Authenticate(secret)
		if err != nil {
			t.Fatalf("Authenticate(admin) = %v", err)
		}
		want := domain.Token{Name: "admin", Role: domain.RoleAdmin, CreatedAt: e.clock.Now()}
		if diff := cmp.Diff(want, tok, cmpopts.IgnoreFields(domain.Token{}, "Hash")); diff != "" {
			t.Errorf("Authenticate (-want +got):\n%s", diff)
		}
	}

	tok, opsSecret, err := e.svc.CreateToken(ctx, admin, "ops", domain.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Hash != nil || tok.Name != "ops" || tok.Role != domain.RoleOperator || opsSecret == secret {
		t.Errorf("CreateToken = %+v, %q", tok, opsSecret)
	}
	if got, err := e.svc.Authenticate(opsSecret); err != nil || got.Name != "ops" || got.Role != domain.RoleOperator {
		t.Errorf("Authenticate(ops) = %+v, %v", got, err)
	}

	wrong := []struct{ name, secret string }{
		{"empty", ""},
		{"one character changed", secret[:len(secret)-1] + string(rune(secret[len(secret)-1])^1)},
		{"prefix", secret[:len(secret)-1]},
		{"suffix added", secret + "x"},
		{"another token's hash", "sbk_nothing"},
	}
	for _, tt := range wrong {
		t.Run("unauthenticated: "+tt.name, func(t *testing.T) {
			_, err := e.svc.Authenticate(tt.secret)
			wantCode(t, err, domain.CodeUnauthenticated)
		})
	}

	t.Run("list has no hashes", func(t *testing.T) {
		want := []domain.Token{
			{Name: "admin", Role: domain.RoleAdmin, CreatedAt: e.clock.Now()},
			{Name: "ops", Role: domain.RoleOperator, CreatedAt: e.clock.Now()},
		}
		if diff := cmp.Diff(want, e.svc.Tokens()); diff != "" {
			t.Errorf("Tokens() (-want +got):\n%s", diff)
		}
	})
	t.Run("create errors", func(t *testing.T) {
		_, _, err := e.svc.CreateToken(ctx, admin, "ops", domain.RoleViewer)
		wantCode(t, err, domain.CodeConflict)
		_, _, err = e.svc.CreateToken(ctx, admin, "Bad Name", domain.RoleViewer)
		wantCode(t, err, domain.CodeInvalid)
		_, _, err = e.svc.CreateToken(ctx, admin, "x", domain.Role("root"))
		wantCode(t, err, domain.CodeInvalid)
	})
	t.Run("revoke", func(t *testing.T) {
		if err := e.svc.DeleteToken(ctx, admin, "ops"); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.Authenticate(opsSecret)
		wantCode(t, err, domain.CodeUnauthenticated)
		wantCode(t, e.svc.DeleteToken(ctx, admin, "ops"), domain.CodeNotFound)
	})
	t.Run("last admin", func(t *testing.T) {
		wantCode(t, e.svc.DeleteToken(ctx, admin, "admin"), domain.CodeConflict)
		if _, err := e.svc.Authenticate(secret); err != nil {
			t.Errorf("the last admin token stopped working after a refused revoke: %v", err)
		}
		_, admin2, err := e.svc.CreateToken(ctx, admin, "admin2", domain.RoleAdmin)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DeleteToken(ctx, admin, "admin"); err != nil {
			t.Errorf("revoke one of two admins = %v", err)
		}
		wantCode(t, e.svc.DeleteToken(ctx, admin, "admin2"), domain.CodeConflict)
		if _, err := e.svc.Authenticate(admin2); err != nil {
			t.Errorf("Authenticate(admin2) = %v", err)
		}
	})

	t.Run("audited without secrets, no snapshot version", func(t *testing.T) {
		log := e.auditLog(t)
		var actions []string
		for _, entry := range log {
			actions = append(actions, entry.Action)
			raw := string(entry.Before) + string(entry.After) + entry.Reason
			for _, s := range []string{secret, opsSecret} {
				if strings.Contains(raw, s) {
					t.Errorf("audit entry %d holds a token secret", entry.Seq)
				}
			}
		}
		want := []string{"token.create", "token.create", "token.revoke", "token.create", "token.revoke"}
		if !slices.Equal(actions, want) {
			t.Errorf("audit actions = %v, want %v", actions, want)
		}
		if got := e.svc.State().Version; got != v {
			t.Errorf("version = %d, want %d: tokens are not in the snapshot", got, v)
		}
	})
}

func TestChanged(t *testing.T) {
	e := newEnv(t, nil)
	st, ch := e.svc.Changed()
	if st.Version != 0 {
		t.Errorf("initial version = %d, want 0", st.Version)
	}
	select {
	case <-ch:
		t.Fatal("Changed channel closed before any change")
	default:
	}

	done := make(chan *control.State)
	go func() {
		<-ch
		done <- e.svc.State()
	}()
	e.migration(t, "m")
	select {
	case got := <-done:
		if got.Version != 1 {
			t.Errorf("state after the signal at version %d, want 1", got.Version)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Changed channel not closed after a change")
	}

	st, ch = e.svc.Changed()
	if st.Version != 1 {
		t.Errorf("Changed() state at %d, want 1", st.Version)
	}
	// A no-op and a refused change publish nothing.
	e.migration(t, "m")
	if _, err := e.svc.SetStage(ctx, ops, "m", "nobody", domain.StageShadow, false); err == nil {
		t.Fatal("SetStage(unknown partner) succeeded")
	}
	select {
	case <-ch:
		t.Error("Changed channel closed without a new version")
	default:
	}
	e.partner(t, "a")
	select {
	case <-ch:
	default:
		t.Error("Changed channel not closed by a new partner")
	}
}

func TestConcurrentChanges(t *testing.T) {
	// Writers and readers at once; run with -race. Versions seen by a reader
	// never go back, and every change is in the audit chain.
	e := newEnv(t, nil)
	e.migration(t, "m")
	partners := []string{"a", "b", "c", "d"}
	for _, id := range partners {
		e.partner(t, id)
	}
	v0 := e.svc.State().Version
	stop := make(chan struct{})
	readerDone := make(chan string)
	go func() {
		var last uint64
		var problem string
		for {
			select {
			case <-stop:
				readerDone <- problem
				return
			default:
			}
			st := e.svc.State()
			if st.Version < last && problem == "" {
				problem = "version went back"
			}
			last = st.Version
			for _, p := range partners {
				if r := st.Flags().Evaluate("m", p); r.Value != flags.Legacy && r.Value != flags.New && problem == "" {
					problem = "bad value " + r.Value
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for i, p := range partners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				to := domain.StageShadow
				if j%2 == 1 {
					to = domain.StageLegacy
				}
				if _, err := e.svc.SetStage(ctx, ops, "m", p, to, false); err != nil && domain.ErrorCode(err) != domain.CodeMigrationReverted {
					t.Errorf("SetStage(%s): %v", p, err)
				}
				if i == 0 && j == 4 {
					if _, err := e.svc.Revert(ctx, ops, "m"); err != nil {
						t.Errorf("Revert: %v", err)
					}
					if _, err := e.svc.Resume(ctx, ops, "m"); err != nil {
						t.Errorf("Resume: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if problem := <-readerDone; problem != "" {
		t.Error(problem)
	}
	log := e.auditLog(t)
	if got, want := e.svc.State().Version-v0, uint64(len(log))-v0; got != want {
		t.Errorf("%d new versions but %d new audit entries", got, want)
	}
	for _, p := range partners {
		if st := e.stage(t, "m", p).Stage; st != domain.StageLegacy {
			t.Errorf("%s at %s after its last move back, want legacy", p, st)
		}
	}
}

func TestAuditLogLimit(t *testing.T) {
	e := newEnv(t, nil)
	for _, limit := range []int{0, -1, 1001} {
		if _, err := e.svc.AuditLog(ctx, 0, limit); domain.ErrorCode(err) != domain.CodeInvalid {
			t.Errorf("AuditLog(limit %d) = %v, want invalid_argument", limit, err)
		}
	}
	if got, err := e.svc.AuditLog(ctx, 0, 1000); err != nil || len(got) != 0 {
		t.Errorf("AuditLog(empty) = %v, %v", got, err)
	}
}

func lastHead(log []domain.AuditEntry) wire.AuditHead {
	if len(log) == 0 {
		return wire.AuditHead{}
	}
	return wire.AuditHead{Seq: log[len(log)-1].Seq, Hash: log[len(log)-1].Hash}
}
