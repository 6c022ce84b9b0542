package webui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// TestPartnerPageRendersTheServiceGate: the partner page shows the gate
// report the control service answers for that partner, cohort gates
// included, and never judges one of its own.
func TestPartnerPageRendersTheServiceGate(t *testing.T) {
	good := func(_, _ string, _ domain.Stage) gate.Counts {
		return gate.Counts{Eligible: 5000, ByClass: map[domain.Class]uint64{domain.ClassEqual: 5000},
			ByType: map[string]uint64{"ticket": 5000}, CandidateCalls: 5000}
	}
	f := newFixture(t, fixtureOptions{stats: fakeStats{counts: good}})
	relaxed := domain.DefaultGates()
	relaxed.MinBakeSeconds = 60
	if _, _, err := f.svc.PutCohort(ctx, setup, mig, domain.Cohort{Name: "canary", Order: 1, Partners: []string{"acme"}, Gates: &relaxed}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "globex"} {
		if _, err := f.svc.SetStage(ctx, setup, mig, id, domain.StageShadow, false); err != nil {
			t.Fatalf("SetStage(%s → shadow): %v", id, err)
		}
	}
	f.clock.Advance(time.Minute)
	c := f.client(t)
	c.login("viewer")

	tests := []struct {
		partner string
		want    string
	}{
		{"acme", "passes"},             // canary's own gates: a minute of bake is enough
		{"globex", "waiting for data"}, // wave-1 sets none: the migration's hour of bake
	}
	for _, tt := range tests {
		t.Run(tt.partner, func(t *testing.T) {
			rep, err := f.svc.PartnerGate(ctx, mig, tt.partner)
			if err != nil {
				t.Fatal(err)
			}
			words := map[gate.Verdict]string{gate.Pass: "passes", gate.Inconclusive: "waiting for data", gate.Fail: "refuses"}
			if got := words[rep.Verdict]; got != tt.want {
				t.Fatalf("the service's gate %s, want %s", got, tt.want)
			}
			page := c.get("/migrations/" + mig + "/partners/" + tt.partner)
			if !strings.Contains(page.body, "Gate report:") || !strings.Contains(page.body, tt.want+"</caption>") {
				t.Errorf("the partner page does not show a gate report that %s", tt.want)
			}
		})
	}
}
