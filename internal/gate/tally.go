package gate

import "github.com/switchbackhq/switchback/internal/domain"

// Tally sums a stage's rows into the counts the gates judge. Every
// comparison row counts as eligible, whatever its class: a skipped or
// failed shadow is an event that should have been compared, so it lowers
// the coverage instead of vanishing. Only compared classes count by event
// type, so that minComparisonsPerType sees real comparisons. Sums saturate:
// a wrapped sum would pass a zero-tolerance gate it must fail.
func Tally(rows domain.StageRows) Counts {
	c := Counts{
		ByClass:         map[domain.Class]uint64{},
		ByType:          map[string]uint64{},
		CandidateCalls:  rows.CandidateCalls,
		CandidateErrors: rows.CandidateErrors,
	}
	for _, r := range rows.Comparisons {
		c.ByClass[r.Class] = domain.AddCounts(c.ByClass[r.Class], r.Count)
		c.Eligible = domain.AddCounts(c.Eligible, r.Count)
		if r.Class.Compared() {
			c.ByType[r.EventType] = domain.AddCounts(c.ByType[r.EventType], r.Count)
		}
	}
	return c
}
