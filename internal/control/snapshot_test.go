package control_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

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

func lastHead(log []domain.AuditEntry) wire.AuditHead {
	if len(log) == 0 {
		return wire.AuditHead{}
	}
	return wire.AuditHead{Seq: log[len(log)-1].Seq, Hash: log[len(log)-1].Hash}
}
