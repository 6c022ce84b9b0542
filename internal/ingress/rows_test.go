package ingress

import (
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/wire"
)

// Counts owed over a long outage can exceed what one report row may carry:
// they are split into rows the control service accepts, none lost.
func TestRowsStayWithinTheBounds(t *testing.T) {
	now := time.Date(2026, 3, 2, 9, 0, 30, 0, time.UTC)
	ev := journal.Event{Partner: "acme", Type: "ticket", ReceivedAt: now}
	r := route{migration: "m", stage: domain.StageShadow}
	old := ev
	old.ReceivedAt = now.Add(-domain.ComparisonRetention)
	const big = 2*domain.MaxReportedCount + 7
	tests := []struct {
		name                                          string
		counts                                        map[journal.Tally]uint64
		wantEqual, wantCalls, wantErrors, wantDropped uint64
	}{
		{"small counts", map[journal.Tally]uint64{comparisonTally(ev, r, domain.ClassEqual): 3, callTally(ev, r, false): 2, callTally(ev, r, true): 1},
			3, 3, 1, 0},
		{"counts above the bound", map[journal.Tally]uint64{comparisonTally(ev, r, domain.ClassEqual): big, callTally(ev, r, false): big, callTally(ev, r, true): big},
			big, 2 * big, big, 0},
		{"errors only", map[journal.Tally]uint64{callTally(ev, r, true): domain.MaxReportedCount + 1}, 0, domain.MaxReportedCount + 1, domain.MaxReportedCount + 1, 0},
		{"a minute older than the retention", map[journal.Tally]uint64{comparisonTally(old, r, domain.ClassEqual): 4, comparisonTally(ev, r, domain.ClassEqual): 1}, 1, 0, 0, 4},
		{"an unreadable key", map[journal.Tally]uint64{{Key: "{"}: 2}, 0, 0, 0, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := journal.Sealed{Seq: 1, Counts: map[string]uint64{}}
			for k, n := range tt.counts {
				s.Counts[k.Key] += n
			}
			b, dropped := rows(s, now)
			if dropped != tt.wantDropped {
				t.Errorf("dropped = %d, want %d", dropped, tt.wantDropped)
			}
			report := wire.Report{Comparisons: b.Comparisons, Candidate: b.Candidate}
			if err := report.Validate(now); err != nil {
				t.Errorf("the control service would refuse the rows: %v", err)
			}
			var equal, calls, errs uint64
			for _, c := range b.Comparisons {
				equal += c.Count
			}
			for _, c := range b.Candidate {
				calls, errs = calls+c.Calls, errs+c.Errors
			}
			if equal != tt.wantEqual || calls != tt.wantCalls || errs != tt.wantErrors {
				t.Errorf("equal, calls, errors = %d, %d, %d; want %d, %d, %d", equal, calls, errs, tt.wantEqual, tt.wantCalls, tt.wantErrors)
			}
		})
	}
}
