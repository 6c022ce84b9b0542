package gate

import (
	"slices"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Tally sums a stage's rows into the counts the gates judge. Every
// comparison row counts as eligible, whatever its class: a skipped or
// failed shadow is an event that should have been compared, so it lowers
// the coverage instead of vanishing. Only compared classes count by event
// type, so that minPerEventType sees real comparisons, but every row's type
// is one the partner sent (Types). Sums saturate:
// a wrapped sum would pass a zero-tolerance gate it must fail.
func Tally(rows domain.StageRows) Counts {
	c := Counts{
		ByClass:         map[domain.Class]uint64{},
		ByType:          map[string]uint64{},
		CandidateCalls:  rows.CandidateCalls,
		CandidateErrors: rows.CandidateErrors,
	}
	sent := map[string]bool{}
	for _, r := range rows.Comparisons {
		if !sent[r.EventType] {
			sent[r.EventType] = true
			c.Types = append(c.Types, r.EventType)
		}
		c.ByClass[r.Class] = domain.AddCounts(c.ByClass[r.Class], r.Count)
		c.Eligible = domain.AddCounts(c.Eligible, r.Count)
		if r.Class.Compared() {
			c.ByType[r.EventType] = domain.AddCounts(c.ByType[r.EventType], r.Count)
		}
	}
	slices.Sort(c.Types)
	return c
}
