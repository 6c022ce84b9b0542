package control_test

import (
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

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
	if gre.Report.Pass || gre.Report.Verdict != gate.Fail {
		t.Errorf("report verdict %s (pass %v) with a failing partner, want fail", gre.Report.Verdict, gre.Report.Pass)
	}
	if want := "the gates refuse: c (zeroTolerance)"; err.Error() != want {
		t.Errorf("refusal = %q, want %q", err, want)
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
	// Not baked yet is a lack of evidence, refused like a fail but said
	// as what it waits for.
	if gre.Report.Verdict != gate.Inconclusive {
		t.Errorf("report verdict before the bake time = %s, want inconclusive", gre.Report.Verdict)
	}
	if want := "waiting for data: a: baked 30m0s of 1h0m0s; b: baked 30m0s of 1h0m0s; c: baked 30m0s of 1h0m0s"; err.Error() != want {
		t.Errorf("refusal = %q, want %q", err, want)
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
