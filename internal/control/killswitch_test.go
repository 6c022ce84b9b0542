package control_test

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

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
