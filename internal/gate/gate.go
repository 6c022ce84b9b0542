// Package gate judges whether a partner may move forward from shadow or new,
// from the comparisons made in its current stage.
//
// No data is never a pass: every rate over zero events fails its check.
package gate

import (
	"math"
	"slices"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Counts are what happened to one partner's events in its current stage.
type Counts struct {
	// Eligible events should have been compared: every event the router
	// dispatched while the partner had a shadow.
	Eligible uint64 `json:"eligible"`
	// ByClass counts comparisons and coverage gaps by class.
	ByClass map[domain.Class]uint64 `json:"byClass"`
	// ByType counts compared events by event type.
	ByType map[string]uint64 `json:"byType,omitempty"`
	// CandidateCalls and CandidateErrors count the new pipeline's calls.
	CandidateCalls  uint64 `json:"candidateCalls"`
	CandidateErrors uint64 `json:"candidateErrors"`
}

// Compared is the number of events both sides answered.
func (c Counts) Compared() uint64 {
	var n uint64
	for class, k := range c.ByClass {
		if class.Compared() {
			n = domain.AddCounts(n, k)
		}
	}
	return n
}

// Mismatched is the number of compared events that were not equal.
func (c Counts) Mismatched() uint64 {
	var n uint64
	for class, k := range c.ByClass {
		if class.Mismatched() {
			n = domain.AddCounts(n, k)
		}
	}
	return n
}

// Check is one criterion of a gate report.
type Check struct {
	Name   string  `json:"name"`
	Pass   bool    `json:"pass"`
	Value  float64 `json:"value"`
	Limit  float64 `json:"limit"`
	Detail string  `json:"detail,omitempty"`
}

// PartnerReport is the verdict for one partner.
type PartnerReport struct {
	Partner string       `json:"partner"`
	Stage   domain.Stage `json:"stage"`
	Pass    bool         `json:"pass"`
	Checks  []Check      `json:"checks"`
}

// Report is the verdict for a set of partners: it passes only if each does,
// and never when it holds none.
type Report struct {
	Pass     bool            `json:"pass"`
	Partners []PartnerReport `json:"partners"`
}

// Judge evaluates the gates for one partner at stage, in it since since.
func Judge(g domain.Gates, partner string, stage domain.Stage, since, now time.Time, c Counts) PartnerReport {
	compared, mismatched := c.Compared(), c.Mismatched()
	var zero uint64
	for _, class := range g.ZeroTolerance {
		zero = domain.AddCounts(zero, c.ByClass[class])
	}
	upper := WilsonUpper(mismatched, compared)
	bake := math.Max(0, now.Sub(since).Seconds())
	checks := []Check{
		{Name: "minComparisons", Value: float64(compared), Limit: float64(g.MinComparisons),
			Pass: compared >= uint64(g.MinComparisons) && compared > 0},
		{Name: "maxMismatchRate", Value: upper, Limit: g.MaxMismatchRate, Pass: compared > 0 && upper <= g.MaxMismatchRate,
			Detail: "upper bound of the 95% Wilson interval of mismatched / compared"},
		{Name: "zeroTolerance", Value: float64(zero), Limit: 0, Pass: zero == 0},
		{Name: "minBakeSeconds", Value: math.Floor(bake), Limit: float64(g.MinBakeSeconds), Pass: bake >= float64(g.MinBakeSeconds)},
		ratio("maxErrorRate", c.CandidateErrors, c.CandidateCalls, g.MaxErrorRate, false, "no calls to the new pipeline yet"),
		ratio("minCoverage", compared, c.Eligible, g.MinCoverage, true, "no eligible events yet"),
	}
	if compared == 0 {
		checks[0].Detail = "no comparisons in this stage yet"
		checks[1].Detail = "no comparisons in this stage yet: the bound is 1"
	}
	if g.MinComparisonsPerType > 0 {
		checks = append(checks, perType(g.MinComparisonsPerType, c.ByType))
	}
	pass := true
	for _, ch := range checks {
		pass = pass && ch.Pass
	}
	return PartnerReport{Partner: partner, Stage: stage, Pass: pass, Checks: checks}
}

// ratio checks num/den against limit, as a floor when min is set and as a
// ceiling otherwise; den == 0 fails.
func ratio(name string, num, den uint64, limit float64, min bool, none string) Check {
	if den == 0 {
		return Check{Name: name, Value: 0, Limit: limit, Detail: none}
	}
	v := float64(num) / float64(den)
	pass := v <= limit
	if min {
		pass = v >= limit
	}
	return Check{Name: name, Value: v, Limit: limit, Pass: pass}
}

// perType checks that every event type the partner sends has enough
// comparisons; the value is the smallest count.
func perType(limit int, byType map[string]uint64) Check {
	c := Check{Name: "minComparisonsPerType", Limit: float64(limit)}
	if len(byType) == 0 {
		c.Detail = "no comparisons in this stage yet"
		return c
	}
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	slices.Sort(types)
	lowest := types[0]
	for _, t := range types {
		if byType[t] < byType[lowest] {
			lowest = t
		}
	}
	c.Value = float64(byType[lowest])
	c.Pass = byType[lowest] >= uint64(limit)
	if !c.Pass {
		c.Detail = "too few comparisons of event type " + lowest
	}
	return c
}

// z is the normal quantile of the two-sided 95% interval.
const z = 1.96

// WilsonUpper is the upper end of the two-sided 95% Wilson score interval of
// k successes in n trials, without continuity correction; 1 when n is 0,
// since nothing is known.
func WilsonUpper(k, n uint64) float64 {
	if n == 0 {
		return 1
	}
	nf := float64(n)
	p := float64(k) / nf
	z2 := z * z
	centre := p + z2/(2*nf)
	spread := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return math.Min(1, (centre+spread)/(1+z2/nf))
}
