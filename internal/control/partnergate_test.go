package control_test

import (
	"errors"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// TestPartnerGate pins the one answer to "which gates judge this partner,
// and what do they say": the answer SetStage acts on and the UI renders.
func TestPartnerGate(t *testing.T) {
	stats := fakeStats{counts: func(string, string, domain.Stage, time.Time) (gate.Counts, error) { return goodCounts(), nil }}
	e := newEnv(t, stats)
	e.migration(t, "m")
	for _, id := range []string{"loose", "canary", "fresh", "finished"} {
		e.partner(t, id)
	}
	relaxed := domain.DefaultGates()
	relaxed.MinBakeSeconds = 60
	if _, _, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "canary", Partners: []string{"canary"}, Gates: &relaxed}); err != nil {
		t.Fatal(err)
	}
	e.cohort(t, "m", "rest", 1, "loose")
	for _, id := range []string{"loose", "canary"} {
		e.moveTo(t, "m", id, domain.StageShadow)
	}
	e.moveTo(t, "m", "finished", domain.StageDone)
	e.clock.Advance(time.Minute)

	tests := []struct {
		name     string
		partner  string
		wantPass bool
		wantBake float64 // the minBakeSeconds limit judged; 0 when no checks
		wantCode string
	}{
		{name: "a cohort with its own gates judges its partners", partner: "canary", wantPass: true, wantBake: 60},
		{name: "a cohort without gates falls back to the migration's", partner: "loose", wantPass: false, wantBake: float64(domain.DefaultGates().MinBakeSeconds)},
		{name: "legacy to shadow needs no gate", partner: "fresh", wantPass: true},
		{name: "a done partner has no further stage", partner: "finished", wantCode: domain.CodeConflict},
		{name: "an unknown partner", partner: "ghost", wantCode: domain.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rep, err := e.svc.PartnerGate(ctx, "m", tt.partner)
			if tt.wantCode != "" {
				wantCode(t, err, tt.wantCode)
				return
			}
			if err != nil {
				t.Fatalf("PartnerGate(%s) = %v", tt.partner, err)
			}
			if rep.Pass != tt.wantPass {
				t.Errorf("pass = %v, want %v: %+v", rep.Pass, tt.wantPass, rep)
			}
			if len(rep.Partners) != 1 || rep.Partners[0].Partner != tt.partner {
				t.Fatalf("partners = %+v, want one report for %s", rep.Partners, tt.partner)
			}
			var bake float64
			for _, c := range rep.Partners[0].Checks {
				if c.Name == "minBakeSeconds" {
					bake = c.Limit
				}
			}
			if bake != tt.wantBake {
				t.Errorf("minBakeSeconds limit = %v, want %v", bake, tt.wantBake)
			}
		})
	}

	// SetStage acts on the same answer.
	if _, err := e.svc.SetStage(ctx, ops, "m", "canary", domain.StageNew, false); err != nil {
		t.Errorf("SetStage(canary → new) after PartnerGate passed = %v", err)
	}
	if _, err := e.svc.SetStage(ctx, ops, "m", "loose", domain.StageNew, false); domain.ErrorCode(err) != domain.CodeGateRefused {
		t.Errorf("SetStage(loose → new) after PartnerGate refused = %v, want gate_refused", err)
	}
}

// gateRefusal is what a test reads from a gate_refused error.
type gateRefusal struct{ Report gate.Report }

// asRefusal sets *out to the report that err carries when err is a
// gate_refused *domain.Error, as the API reads it to answer "gate".
func asRefusal(err error, out **gateRefusal) bool {
	var e *domain.Error
	if !errors.As(err, &e) || e.Code != domain.CodeGateRefused {
		return false
	}
	r, ok := e.Detail.(gate.Report)
	if !ok {
		return false
	}
	*out = &gateRefusal{Report: r}
	return true
}
