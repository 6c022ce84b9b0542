package console

import (
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// A gate report says which verdict it carries in words an operator acts
// on: an inconclusive one is waiting for data and lists what is missing,
// with no FAIL anywhere; a failing one is refused and marks its failing
// check.
func TestGateReportWords(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	counts := gate.Counts{Eligible: 5000, ByClass: map[domain.Class]uint64{domain.ClassEqual: 5000},
		ByType: map[string]uint64{"ticket": 4951, "contact": 49}, CandidateCalls: 5000}
	judge := func(baked time.Duration, c gate.Counts) gate.Report {
		return gate.NewReport([]gate.PartnerReport{gate.Judge(domain.DefaultGates(), "acme", domain.StageShadow, t0.Add(-baked), t0, c)})
	}
	bad := counts
	bad.ByClass = map[domain.Class]uint64{domain.ClassEqual: 4999, domain.ClassMissing: 1}
	tests := []struct {
		name      string
		rep       gate.Report
		want      []string
		wantNever []string
	}{
		{
			name: "waiting for data", rep: judge(10*time.Minute, counts),
			want: []string{
				"WAITING FOR DATA: the cohort may not advance yet: acme: baked 10m0s of 1h0m0s, too few comparisons of event type contact (49 of 50)\n",
				"WAIT acme (at shadow)",
				"  WAIT  minBakeSeconds",
				"  WAIT  minPerEventType",
				"  ok    zeroTolerance",
			},
			wantNever: []string{"FAIL", "REFUSED"},
		},
		{
			name: "refused", rep: judge(2*time.Hour, bad),
			want:      []string{"REFUSED: the cohort may not advance\n", "FAIL acme (at shadow)", "  FAIL  zeroTolerance", "  WAIT  minPerEventType"},
			wantNever: []string{"WAITING FOR DATA"},
		},
		{
			name: "a report without verdicts, from an older control service",
			rep:  gate.Report{Pass: false, Partners: []gate.PartnerReport{{Partner: "acme", Stage: domain.StageShadow, Checks: []gate.Check{{Name: "zeroTolerance", Value: 1}}}}},
			want: []string{"REFUSED: the cohort may not advance\n", "FAIL acme (at shadow)", "  FAIL  zeroTolerance"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var b strings.Builder
			GateReport(&b, tt.rep)
			got := b.String()
			for _, w := range tt.want {
				if !strings.Contains(got, w) {
					t.Errorf("report lacks %q:\n%s", w, got)
				}
			}
			for _, w := range tt.wantNever {
				if strings.Contains(got, w) {
					t.Errorf("report says %q:\n%s", w, got)
				}
			}
		})
	}
}
