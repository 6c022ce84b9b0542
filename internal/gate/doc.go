// Package gate judges whether a partner may move forward from shadow or new,
// from the comparisons made in its current stage.
//
// No data is never a pass: a rate over zero events is inconclusive.
//
// # Three verdicts
//
// Each check, each partner and each report carries a Verdict:
//
//   - pass: every check holds.
//   - fail: a rule is violated: a zero-tolerance class was seen, a rate's
//     95% Wilson interval lies wholly on the wrong side of its limit, or,
//     once the minimum evidence is in, a rate observed beyond its limit
//     whose interval has not shown it within (3 mismatches in 2,000 against
//     0.1%, say).
//   - inconclusive: nothing is violated yet, but there is not enough
//     evidence to pass: fewer than minComparisons comparisons, fewer than
//     minPerEventType comparisons of an event type the partner sent in the
//     stage, not baked for minBakeSeconds, no data for a rate, or a rate
//     whose interval still straddles its limit while one of those minimums
//     is not met.
//
// A fail wins over inconclusive, for a partner and for a report: one
// zero-tolerance mismatch is a fail after three comparisons, however short
// the rest of the evidence is, since no amount of later data takes it back.
//
// The minimums (minComparisons, minBakeSeconds, minPerEventType) are what
// the migration says is enough data to judge. Before they are met, a rate
// whose interval straddles its limit is a lack of data (0 mismatches in 50
// comparisons give an upper bound near 7%), and calling it a fail would
// teach operators to force past a gate that only wants more traffic; once
// they are met, a rate observed beyond its limit is a fail, while one
// observed within it (0 of 500 against 0.1%, whose bound is still 0.8%)
// waits for the bound to close. maxMismatchRate passes when the upper end of the
// interval of mismatched / compared is at most the limit; the raw ratios
// maxErrorRate and minCoverage pass on the ratio itself.
//
// Every verdict but pass refuses a move; the words differ so that an
// operator waits for data instead of hunting for a bug. Explain says which.
package gate
