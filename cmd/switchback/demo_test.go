package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/demo"
)

// The demo, both scenarios, short: the mismatches are caught, the gate
// refuses, the guard reverts and its replay completes, and every update the
// simulator got acknowledged is held correctly by a pipeline: 0 lost.
func TestDemo(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the whole demo")
	}
	for _, scenario := range []string{"shadow", "exposed"} {
		t.Run(scenario, func(t *testing.T) {
			// One buffer for the narration and the service's logs, written
			// from several goroutines.
			out := &syncBuffer{}
			cfg := demo.Config{Addr: "127.0.0.1:0", Scenario: scenario, Partners: 8, Rate: 60, Duration: 6 * time.Second, Fault: 0.4, Seed: 7}
			res, err := demo.Run(context.Background(), cfg, serveDemo, out, out)
			t.Log("\n" + out.String())
			if err != nil {
				t.Fatal(err)
			}
			caught := 0
			for _, n := range res.Caught {
				caught += n
			}
			if caught == 0 {
				t.Errorf("no type mismatch caught for the canary cohort: %v", res.Caught)
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
			if !strings.Contains(out.String(), "CAUGHT") {
				t.Errorf("the narration never says CAUGHT")
			}
		})
	}
}
