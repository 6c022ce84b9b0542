package gate

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
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
	// Types are the event types the partner sent in the stage: those with
	// any row, coverage gaps included, so that a type whose every event was
	// skipped still needs its minPerEventType comparisons. It is left out
	// of the JSON form, which stays what earlier releases answered (the
	// boltstore upgrade test holds it to that).
	Types []string `json:"-"`
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

// Verdict is what a check, a partner or a report concludes; see the
// package documentation for when each applies.
type Verdict string

const (
	Pass         Verdict = "pass"
	Fail         Verdict = "fail"
	Inconclusive Verdict = "inconclusive"
)

// worse returns the verdict that wins of v and w: fail over inconclusive
// over pass.
func worse(v, w Verdict) Verdict {
	rank := map[Verdict]int{Pass: 0, Inconclusive: 1, Fail: 2}
	if rank[w] > rank[v] {
		return w
	}
	return v
}

// Check is one criterion of a gate report. Pass is Verdict == Pass, kept
// for the clients that read only it.
type Check struct {
	Name    string  `json:"name"`
	Verdict Verdict `json:"verdict"`
	Pass    bool    `json:"pass"`
	Value   float64 `json:"value"`
	Limit   float64 `json:"limit"`
	Detail  string  `json:"detail,omitempty"`
}

func (c Check) with(v Verdict, detail string) Check {
	c.Verdict, c.Pass, c.Detail = v, v == Pass, detail
	return c
}

// PartnerReport is the verdict for one partner: the worst of its checks'.
type PartnerReport struct {
	Partner string       `json:"partner"`
	Stage   domain.Stage `json:"stage"`
	Verdict Verdict      `json:"verdict"`
	Pass    bool         `json:"pass"`
	Checks  []Check      `json:"checks"`
}

// Report is the verdict for a set of partners: the worst of theirs, and
// never pass when it holds none.
type Report struct {
	Verdict  Verdict         `json:"verdict"`
	Pass     bool            `json:"pass"`
	Partners []PartnerReport `json:"partners"`
}

// NewReport combines partner reports into one. With no partner there is
// nothing to judge, which is inconclusive.
func NewReport(partners []PartnerReport) Report {
	r := Report{Verdict: Inconclusive, Partners: partners}
	if r.Partners == nil {
		r.Partners = []PartnerReport{}
	}
	if len(partners) > 0 {
		r.Verdict = Pass
	}
	for _, p := range partners {
		r.Verdict = worse(r.Verdict, p.Verdict)
	}
	r.Pass = r.Verdict == Pass
	return r
}

// Failed names the partners that fail and their failing checks:
// "acme (zeroTolerance); globex (maxMismatchRate)". It is empty unless the
// verdict is fail.
func (r Report) Failed() string {
	var out []string
	for _, p := range r.Partners {
		if p.Verdict != Fail {
			continue
		}
		var names []string
		for _, c := range p.Checks {
			if c.Verdict == Fail {
				names = append(names, c.Name)
			}
		}
		out = append(out, fmt.Sprintf("%s (%s)", p.Partner, strings.Join(names, ", ")))
	}
	return strings.Join(out, "; ")
}

// Missing says what evidence the report waits for, partner by partner:
// "acme: 120 of 200 comparisons, baked 10m0s of 1h0m0s". It is empty when
// nothing is missing. A detail that only adds to one already said (several
// checks lack data for one reason: no comparisons yet) is said once.
func (r Report) Missing() string {
	if len(r.Partners) == 0 {
		return "no partners to judge"
	}
	var out []string
	for _, p := range r.Partners {
		var details []string
		for _, c := range p.Checks {
			said := slices.ContainsFunc(details, func(d string) bool { return strings.HasPrefix(c.Detail, d) })
			if c.Verdict == Inconclusive && !said {
				details = append(details, c.Detail)
			}
		}
		if len(details) > 0 {
			out = append(out, p.Partner+": "+strings.Join(details, ", "))
		}
	}
	return strings.Join(out, "; ")
}

// Explain is the report's verdict in one line, the message of a refused
// move: "the gates pass", "the gates refuse: " and the failing checks, or
// "waiting for data: " and what is missing.
func (r Report) Explain() string {
	switch r.Verdict {
	case Pass:
		return "the gates pass"
	case Fail:
		return "the gates refuse: " + r.Failed()
	default:
		return "waiting for data: " + r.Missing()
	}
}

// Judge evaluates the gates for one partner at stage, in it since since.
func Judge(g domain.Gates, partner string, stage domain.Stage, since, now time.Time, c Counts) PartnerReport {
	compared, mismatched := c.Compared(), c.Mismatched()
	var zero uint64
	for _, class := range g.ZeroTolerance {
		zero = domain.AddCounts(zero, c.ByClass[class])
	}
	bake := math.Max(0, now.Sub(since).Seconds())
	enough, baked := minComparisons(compared, g.MinComparisons), minBake(bake, g.MinBakeSeconds)
	evidence := enough.Pass && baked.Pass
	var types Check
	if g.MinPerEventType > 0 {
		types = perType(g.MinPerEventType, c)
		evidence = evidence && types.Pass
	}
	checks := []Check{
		enough,
		mismatchRate(mismatched, compared, g.MaxMismatchRate, evidence),
		zeroTolerance(zero),
		baked,
		ratio("maxErrorRate", "error rate", c.CandidateErrors, c.CandidateCalls, g.MaxErrorRate, false, "no calls to the new pipeline yet", evidence),
		ratio("minCoverage", "coverage", compared, c.Eligible, g.MinCoverage, true, "no eligible events yet", evidence),
	}
	if g.MinPerEventType > 0 {
		checks = append(checks, types)
	}
	r := PartnerReport{Partner: partner, Stage: stage, Verdict: Pass, Checks: checks}
	for _, ch := range checks {
		r.Verdict = worse(r.Verdict, ch.Verdict)
	}
	r.Pass = r.Verdict == Pass
	return r
}

const noComparisons = "no comparisons in this stage yet"

// minComparisons is evidence: too few is never a fail.
func minComparisons(compared uint64, limit int) Check {
	c := Check{Name: "minComparisons", Value: float64(compared), Limit: float64(limit)}
	switch {
	case compared == 0:
		return c.with(Inconclusive, noComparisons)
	case compared < uint64(limit):
		return c.with(Inconclusive, fmt.Sprintf("%d of %d comparisons", compared, limit))
	}
	return c.with(Pass, "")
}

// undecided is the verdict of a rate whose interval straddles its limit:
// inconclusive while evidence is short, a fail once the minimum evidence
// (minComparisons, minBakeSeconds, minPerEventType) is in, since those are
// what the migration says is enough data to judge.
func undecided(c Check, evidence bool, detail string) Check {
	if evidence {
		return c.with(Fail, detail+", with the minimum evidence in")
	}
	return c.with(Inconclusive, detail)
}

// mismatchRate passes when the whole 95% interval of mismatched / compared
// is at most the limit, fails when the whole of it is above, and is
// undecided in between.
func mismatchRate(mismatched, compared uint64, limit float64, evidence bool) Check {
	upper := WilsonUpper(mismatched, compared)
	c := Check{Name: "maxMismatchRate", Value: upper, Limit: limit}
	switch lower := WilsonLower(mismatched, compared); {
	case compared == 0:
		return c.with(Inconclusive, noComparisons+": the bound is 1")
	case upper <= limit:
		return c.with(Pass, "upper bound of the 95% Wilson interval of mismatched / compared")
	case lower > limit:
		return c.with(Fail, fmt.Sprintf("%d mismatched of %d compared: even the lower bound of the 95%% interval, %s, is above %s",
			mismatched, compared, percent(lower), percent(limit)))
	default:
		// Past the minimums, an observed rate above the limit is a fail;
		// one within it (0 of 500, say) only waits for the bound to close.
		observed := float64(mismatched) / float64(compared)
		return undecided(c, evidence && observed > limit, fmt.Sprintf("mismatch rate not shown to be within %s: %d mismatched of %d compared, 95%% upper bound %s",
			percent(limit), mismatched, compared, percent(upper)))
	}
}

// zeroTolerance fails on the first one: no later data takes it back.
func zeroTolerance(seen uint64) Check {
	c := Check{Name: "zeroTolerance", Value: float64(seen), Limit: 0}
	if seen > 0 {
		return c.with(Fail, fmt.Sprintf("%d zero-tolerance mismatches", seen))
	}
	return c.with(Pass, "")
}

// minBake is evidence: time not yet spent is never a fail.
func minBake(seconds float64, limit int) Check {
	c := Check{Name: "minBakeSeconds", Value: math.Floor(seconds), Limit: float64(limit)}
	if seconds >= float64(limit) {
		return c.with(Pass, "")
	}
	return c.with(Inconclusive, fmt.Sprintf("baked %s of %s", time.Duration(c.Value)*time.Second, time.Duration(limit)*time.Second))
}

// ratio checks the raw ratio num/den against limit, as a floor when min is
// set and as a ceiling otherwise. It fails only when the ratio's 95% Wilson
// interval lies wholly beyond the limit; den == 0 is inconclusive.
func ratio(name, what string, num, den uint64, limit float64, min bool, none string, evidence bool) Check {
	c := Check{Name: name, Limit: limit}
	if den == 0 {
		return c.with(Inconclusive, none)
	}
	c.Value = float64(num) / float64(den)
	pass, proven, side := c.Value <= limit, WilsonLower(num, den) > limit, "above"
	if min {
		pass, proven, side = c.Value >= limit, WilsonUpper(num, den) < limit, "below"
	}
	switch {
	case pass:
		return c.with(Pass, "")
	case proven:
		return c.with(Fail, fmt.Sprintf("%s %s %s %s (%d of %d), beyond its 95%% interval", what, percent(c.Value), side, percent(limit), num, den))
	default:
		return undecided(c, evidence, fmt.Sprintf("%s %s %s %s (%d of %d), within what chance allows", what, percent(c.Value), side, percent(limit), num, den))
	}
}

// perType checks that every event type the partner sent has enough
// comparisons; the value is the smallest count. It is evidence: a type
// short of comparisons is never a fail.
func perType(limit int, c Counts) Check {
	ch := Check{Name: "minPerEventType", Limit: float64(limit)}
	types := slices.Clone(c.Types)
	for t := range c.ByType {
		types = append(types, t)
	}
	slices.Sort(types)
	types = slices.Compact(types)
	if len(types) == 0 {
		return ch.with(Inconclusive, noComparisons)
	}
	ch.Value = math.Inf(1)
	var short []string
	for _, t := range types {
		n := c.ByType[t]
		ch.Value = math.Min(ch.Value, float64(n))
		if n < uint64(limit) {
			short = append(short, fmt.Sprintf("%s (%d of %d)", t, n, limit))
		}
	}
	switch {
	case len(short) == 0:
		return ch.with(Pass, "")
	case len(short) == 1:
		return ch.with(Inconclusive, "too few comparisons of event type "+short[0])
	default:
		return ch.with(Inconclusive, "too few comparisons of event types "+strings.Join(short, ", "))
	}
}

// percent prints a rate as a percentage with at most three significant
// digits: 0.001 is 0.1%.
func percent(r float64) string {
	return strconv.FormatFloat(r*100, 'g', 3, 64) + "%"
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

// WilsonLower is the lower end of the same interval; 0 when k is 0 (also
// when n is 0), exactly, where rounding would leave a trace above it.
func WilsonLower(k, n uint64) float64 {
	if k == 0 {
		return 0
	}
	nf := float64(n)
	p := float64(k) / nf
	z2 := z * z
	centre := p + z2/(2*nf)
	spread := z * math.Sqrt(p*(1-p)/nf+z2/(4*nf*nf))
	return math.Max(0, (centre-spread)/(1+z2/nf))
}
