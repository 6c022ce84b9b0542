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
//   - fail: the evidence shows a rule violated, and more data would not
//     change that: a zero-tolerance class was seen, or a rate's 95% Wilson
//     interval lies wholly on the wrong side of its limit.
//   - inconclusive: nothing is violated yet, but there is not enough
//     evidence to pass: fewer than minComparisons comparisons, fewer than
//     minPerEventType comparisons of an event type the partner sent in the
//     stage, not baked for minBakeSeconds, no data for a rate, or a rate
//     whose interval still straddles its limit.
//
// A fail wins over inconclusive, for a partner and for a report: one
// zero-tolerance mismatch is a fail after three comparisons, however short
// the rest of the evidence is, since no amount of later data takes it back.
//
// A rate is a fail only once the data proves it: maxMismatchRate passes
// when the upper end of the interval of mismatched / compared is at most
// the limit, and fails when its lower end is above the limit. With few
// comparisons the interval is wide (0 mismatches in 200 comparisons give an
// upper bound near 1.9%), so an upper bound above the limit alone is a lack
// of data, not evidence of a bad pipeline: calling it a fail would teach
// operators to force past a gate that only wants more traffic. The raw
// ratios maxErrorRate and minCoverage pass on the ratio itself, as before,
// and fail when the interval of the ratio lies beyond the limit.
//
// Every verdict but pass refuses a move; the words differ so that an
// operator waits for data instead of hunting for a bug. Explain says which.
package gate
