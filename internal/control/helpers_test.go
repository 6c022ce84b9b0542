package control_test

import (
	"context"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
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
// clock's): plenty of clean comparisons of each event type.
func goodCounts() gate.Counts {
	return gate.Counts{
		Eligible:       5000,
		ByClass:        map[domain.Class]uint64{domain.ClassEqual: 5000},
		ByType:         map[string]uint64{"ticket": 3000, "contact": 2000},
		Types:          []string{"contact", "ticket"},
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
	store *boltstore.Store
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
