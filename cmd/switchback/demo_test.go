package main

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/demo"
	"github.com/switchbackhq/switchback/internal/gate"
)

// The demo, every scenario, short: the mismatches are caught, the gate
// refuses, the guard reverts and its replay completes; with a noisy legacy,
// the stamps are learned as noise and the clean canary passes its gate and
// advances while the buggy wave-2 still fails; with PSAs dropping
// webhooks, the reconciliation finds exactly what they dropped and the
// backfill closes it; and every update the simulator got acknowledged is held
// correctly by a pipeline: 0 lost.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo")
	}
	for _, tc := range []struct {
		scenario string
		partners int
		duration time.Duration
	}{
		{"shadow", 8, 6 * time.Second},
		{"exposed", 8, 6 * time.Second},
		// One canary partner, sending a third of the 60/s, passes the noisy
		// scenario's gates (minBakeSeconds 20) well within the run.
		{"noisy", 3, 30 * time.Second},
		{"dropped", 8, 8 * time.Second},
	} {
		scenario := tc.scenario
		t.Run(scenario, func(t *testing.T) {
			// One buffer for the narration and the service's logs, written
			// from several goroutines.
			out := &syncBuffer{}
			cfg := demo.Config{Addr: "127.0.0.1:0", Scenario: scenario, Partners: tc.partners, Rate: 60, Duration: tc.duration, Fault: 0.4, Seed: 7}
			res, err := demo.Run(context.Background(), cfg, serveDemo, out, out)
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatal(err)
			}
			caught := 0
			for _, n := range res.Caught {
				caught += n
			}
			shadowed := scenario == "shadow" || scenario == "exposed"
			if shadowed && caught == 0 {
				t.Errorf("no type mismatch caught for the canary cohort: %v", res.Caught)
			}
			if scenario == "noisy" {
				checkNoisy(t, res, out.String())
			}
			if scenario == "dropped" {
				checkDropped(t, res, out.String())
			}
			if scenario == "shadow" && !res.GateRefused {
				t.Errorf("the canary gate did not refuse")
			}
			if scenario == "exposed" {
				if len(res.GuardStages) == 0 {
					t.Errorf("the guard reverted nobody")
				}
				if res.ReplaysDone == 0 {
					t.Errorf("no guard replay completed")
				}
			}
			if res.Acknowledged == 0 || len(res.Ledger) == 0 {
				t.Fatalf("the simulator got nothing acknowledged")
			}
			// Per entity, the distinct deliveries acknowledged must all have
			// been applied to it, as its own kind, by one pipeline or the
			// other (a replay through legacy repairs what new got wrong).
			want := map[string]map[string]bool{}
			for _, e := range res.Ledger {
				key := e.EntityType + "/" + e.EntityID
				if want[key] == nil {
					want[key] = map[string]bool{}
				}
				want[key][e.Partner+"/"+e.DeliveryID] = true
			}
			lost := 0
			for key, deliveries := range want {
				applied := res.Legacy.EventsApplied(key)
				for id := range res.New.EventsApplied(key) {
					applied[id] = true
				}
				if len(applied) < len(deliveries) {
					lost += len(deliveries) - len(applied)
					if lost < 5 {
						t.Errorf("%s: %d deliveries acknowledged, %d events applied to it", key, len(deliveries), len(applied))
					}
				}
			}
			if lost > 0 {
				t.Errorf("%d of %d acknowledged updates lost", lost, len(res.Ledger))
			}
			if shadowed && !strings.Contains(out.String(), "CAUGHT") {
				t.Errorf("the narration never says CAUGHT")
			}
		})
	}
}

// checkDropped: the reconciliation's gaps are exactly the changes the PSAs
// dropped that their change APIs still list as the entities' latest, the
// backfill applied every one, and a second reconciliation found none.
func checkDropped(t *testing.T, res *demo.Result, narration string) {
	t.Helper()
	var want, got []string
	for _, d := range res.Sim.DroppedChanges {
		if d.Detectable {
			want = append(want, d.Partner+"/"+d.EntityType+"/"+d.EntityID)
		}
	}
	for _, g := range res.Gaps {
		got = append(got, g.Partner+"/"+g.Type+"/"+g.ID)
	}
	slices.Sort(want)
	slices.Sort(got)
	if len(want) == 0 || !slices.Equal(got, want) {
		t.Errorf("gaps %v, want the dropped changes %v", got, want)
	}
	if res.Backfilled != len(res.Gaps) || res.GapsAfterBackfill != 0 {
		t.Errorf("backfill applied %d of %d gaps, %d gaps after it; want all, and none", res.Backfilled, len(res.Gaps), res.GapsAfterBackfill)
	}
	for _, said := range []string{"the gaps are exactly the changes the PSAs dropped", "reconciled again: 0 entities differ"} {
		if !strings.Contains(narration, said) {
			t.Errorf("the narration never says %q", said)
		}
	}
}

// checkNoisy: the canary (acme alone) learned the stamps of both event
// types as noise, nothing but noise and the warm-up's value_diffs was
// compared, and its gate passed, so it advanced to new; wave-2 (globex
// alone), whose new pipeline has the cached-handler bug, failed its gate
// on type mismatches all the same.
func checkNoisy(t *testing.T, res *demo.Result, narration string) {
	t.Helper()
	learned := res.NoiseLearned["acme"]
	slices.Sort(learned)
	if want := []string{"schedule_entry", "ticket"}; !slices.Equal(learned, want) {
		t.Errorf("noise learned for acme's event types %v, want %v (all: %v)", learned, want, res.NoiseLearned)
	}
	for class, n := range res.Classes {
		if class != "noise" && class != "value_diff" && n > 0 {
			t.Errorf("%d comparisons of class %s: a correct new pipeline against a noisy legacy makes only noise (and value_diffs until it is learned)", n, class)
		}
	}
	if res.Classes["noise"] == 0 {
		t.Errorf("no comparison counted as noise: %v", res.Classes)
	}
	if n := len(res.Verdicts); n == 0 || res.Verdicts[n-1] != gate.Pass {
		t.Errorf("the canary gate's verdicts %v, want them to end on pass", res.Verdicts)
	}
	if !res.Advanced {
		t.Errorf("the canary did not advance to new")
	}
	if !res.BuggyRefused || res.BuggyTypeMismatches == 0 {
		t.Errorf("wave-2's gate refused %v, with %d type mismatches; want a refusal on type_mismatch", res.BuggyRefused, res.BuggyTypeMismatches)
	}
	for _, said := range []string{"NOISE LEARNED acme ticket: ticket:fields.processedAt, ticket:fields.requestId", "GATE canary: pass", "canary ADVANCED to new", "GATE wave-2: fail"} {
		if !strings.Contains(narration, said) {
			t.Errorf("the narration never says %q", said)
		}
	}
}
