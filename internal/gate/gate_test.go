package gate

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchbackhq/switchback/internal/domain"
)

// wilsonClosedForm is the upper Wilson bound written with both numerator and
// denominator multiplied by 2n, so it shares no expression with the code
// under test:
//
//	(2k + z² + z·√(z² + 4k(n−k)/n)) / (2(n + z²))
func wilsonClosedForm(k, n float64) float64 {
	const z = 1.96
	return (2*k + z*z + z*math.Sqrt(z*z+4*k*(n-k)/n)) / (2 * (n + z*z))
}

func TestWilsonUpper(t *testing.T) {
	// want values were computed with python3 (float64) from the textbook
	// formula and checked against wilsonClosedForm; the (0, n) cases reduce to
	// z²/(n+z²) by hand: 3.8416/4.8416, 3.8416/13.8416, 3.8416/203.8416.
	tests := []struct {
		name string
		k, n uint64
		want float64
	}{
		{"no data", 0, 0, 1},
		{"0 of 1", 0, 1, 0.793456708526},
		{"1 of 1", 1, 1, 1},
		{"0 of 10", 0, 10, 0.277540168767},
		{"1 of 10", 1, 10, 0.404156385498},
		{"0 of 200", 0, 200, 0.018846005918},
		{"1 of 1000", 1, 1000, 0.005642702960},
		{"5 of 100", 5, 100, 0.111751965272},
		{"50 of 100", 50, 100, 0.596170171410},
	}
	const tol = 1e-6
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := WilsonUpper(tt.k, tt.n)
			if math.Abs(got-tt.want) > tol {
				t.Errorf("WilsonUpper(%d, %d) = %.9f, want %.9f", tt.k, tt.n, got, tt.want)
			}
			if tt.n > 0 {
				if alt := wilsonClosedForm(float64(tt.k), float64(tt.n)); math.Abs(alt-tt.want) > tol {
					t.Errorf("closed form (%d, %d) = %.9f, want %.9f: the expected constant is wrong", tt.k, tt.n, alt, tt.want)
				}
			}
			if got > 1 || got < float64(tt.k)/math.Max(1, float64(tt.n)) {
				t.Errorf("WilsonUpper(%d, %d) = %v lies outside [k/n, 1]", tt.k, tt.n, got)
			}
		})
	}
}

func TestWilsonUpperMonotone(t *testing.T) {
	// More clean comparisons tighten the bound; more mismatches widen it.
	prev := WilsonUpper(0, 1)
	for n := uint64(2); n <= 5000; n *= 2 {
		got := WilsonUpper(0, n)
		if got >= prev {
			t.Errorf("WilsonUpper(0, %d) = %v, not below WilsonUpper(0, %d) = %v", n, got, n/2, prev)
		}
		prev = got
	}
	prev = WilsonUpper(0, 100)
	for k := uint64(1); k <= 100; k++ {
		got := WilsonUpper(k, 100)
		if got < prev {
			t.Errorf("WilsonUpper(%d, 100) = %v, below WilsonUpper(%d, 100) = %v", k, got, k-1, prev)
		}
		prev = got
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

// lenient gates pass anything with data: only the check under test is set.
func lenient() domain.Gates {
	return domain.Gates{MinComparisons: 0, MaxMismatchRate: 1, MinBakeSeconds: 0, MaxErrorRate: 1, MinCoverage: 0}
}

// good counts pass the default gates: 5000 clean comparisons of 5000
// eligible events, 1 error in 5000 calls.
func good() Counts {
	return Counts{
		Eligible:        5000,
		ByClass:         map[domain.Class]uint64{domain.ClassEqual: 5000},
		ByType:          map[string]uint64{"ticket": 3000, "contact": 2000},
		CandidateCalls:  5000,
		CandidateErrors: 1,
	}
}

func check(t *testing.T, r PartnerReport, name string) Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("report has no check %q: %+v", name, r.Checks)
	return Check{}
}

func TestJudgeNoData(t *testing.T) {
	// Even with limits that anything would meet, no data never passes a rate.
	g := domain.Gates{MinComparisons: 0, MaxMismatchRate: 1, MaxErrorRate: 1, MinCoverage: 0, MinPerEventType: 1}
	r := Judge(g, "acme", domain.StageShadow, t0, t0.Add(time.Hour), Counts{})
	if r.Pass {
		t.Errorf("Judge(no data).Pass = true, want false: %+v", r)
	}
	for _, name := range []string{"minComparisons", "maxMismatchRate", "maxErrorRate", "minCoverage", "minPerEventType"} {
		if c := check(t, r, name); c.Pass {
			t.Errorf("check %s passes with no data: %+v", name, c)
		}
	}
	if c := check(t, r, "maxMismatchRate"); c.Value != 1 {
		t.Errorf("maxMismatchRate value with no data = %v, want 1 (nothing is known)", c.Value)
	}
	// Coverage gaps only are still no data.
	gaps := Counts{Eligible: 100, ByClass: map[domain.Class]uint64{domain.ClassSkipped: 60, domain.ClassShadowError: 40}, CandidateCalls: 100}
	r = Judge(g, "acme", domain.StageShadow, t0, t0.Add(time.Hour), gaps)
	for _, name := range []string{"minComparisons", "maxMismatchRate"} {
		if c := check(t, r, name); c.Pass {
			t.Errorf("check %s passes with only skipped and shadow_error: %+v", name, c)
		}
	}
	if c := check(t, r, "minCoverage"); c.Value != 0 {
		t.Errorf("minCoverage value with only skipped and shadow_error = %v, want 0", c.Value)
	}
	if r.Pass {
		t.Errorf("Judge(only coverage gaps).Pass = true, want false")
	}
}

func TestJudge(t *testing.T) {
	gates := domain.DefaultGates()
	tests := []struct {
		name    string
		gates   domain.Gates
		since   time.Time // now is t0
		counts  Counts
		verdict Verdict
		checks  map[string]Check // the checks to compare, by name
	}{
		{
			name: "good data passes", gates: gates, since: t0.Add(-2 * time.Hour), counts: good(), verdict: Pass,
			checks: map[string]Check{
				"minComparisons":  {Name: "minComparisons", Verdict: Pass, Pass: true, Value: 5000, Limit: 200},
				"maxMismatchRate": {Name: "maxMismatchRate", Verdict: Pass, Pass: true, Value: 3.8416 / 5003.8416, Limit: 0.001},
				"zeroTolerance":   {Name: "zeroTolerance", Verdict: Pass, Pass: true, Value: 0, Limit: 0},
				"minBakeSeconds":  {Name: "minBakeSeconds", Verdict: Pass, Pass: true, Value: 7200, Limit: 3600},
				"maxErrorRate":    {Name: "maxErrorRate", Verdict: Pass, Pass: true, Value: 0.0002, Limit: 0.01},
				"minCoverage":     {Name: "minCoverage", Verdict: Pass, Pass: true, Value: 1, Limit: 0.99},
			},
		},
		{
			name: "bake time not reached", gates: gates, since: t0.Add(-3599 * time.Second), counts: good(), verdict: Inconclusive,
			checks: map[string]Check{"minBakeSeconds": {Name: "minBakeSeconds", Verdict: Inconclusive, Pass: false, Value: 3599, Limit: 3600}},
		},
		{
			name: "bake time exactly reached", gates: gates, since: t0.Add(-3600 * time.Second), counts: good(), verdict: Pass,
			checks: map[string]Check{"minBakeSeconds": {Name: "minBakeSeconds", Verdict: Pass, Pass: true, Value: 3600, Limit: 3600}},
		},
		{
			name: "since in the future counts as no bake", gates: gates, since: t0.Add(time.Minute), counts: good(), verdict: Inconclusive,
			checks: map[string]Check{"minBakeSeconds": {Name: "minBakeSeconds", Verdict: Inconclusive, Pass: false, Value: 0, Limit: 3600}},
		},
		{
			name: "one type_mismatch fails zero tolerance", gates: withRate(gates, 0.01), since: t0.Add(-2 * time.Hour),
			counts: withClass(good(), domain.ClassTypeMismatch, 1), verdict: Fail,
			checks: map[string]Check{"zeroTolerance": {Name: "zeroTolerance", Verdict: Fail, Pass: false, Value: 1, Limit: 0}},
		},
		{
			name: "each zero-tolerance class is summed", gates: withRate(gates, 0.01), since: t0.Add(-2 * time.Hour),
			counts: withClass(withClass(withClass(good(), domain.ClassMissing, 2), domain.ClassEmpty, 1), domain.ClassErrorAsymmetry, 1), verdict: Fail,
			checks: map[string]Check{"zeroTolerance": {Name: "zeroTolerance", Verdict: Fail, Pass: false, Value: 4, Limit: 0}},
		},
		{
			// Counts stored before reports were bounded may be near the
			// maximum: their sum must not wrap to 0 and pass.
			name: "zero-tolerance counts that would wrap still fail", gates: withRate(gates, 0.01), since: t0.Add(-2 * time.Hour),
			counts: withClass(withClass(good(), domain.ClassTypeMismatch, math.MaxUint64-2), domain.ClassMissing, 3), verdict: Fail,
			checks: map[string]Check{"zeroTolerance": {Name: "zeroTolerance", Verdict: Fail, Pass: false, Value: math.MaxUint64, Limit: 0}},
		},
		{
			// A legacy outage while the partner is in shadow: the primary
			// failed, the new pipeline did not; the new pipeline is not blamed.
			name: "primary_error is a coverage gap, not a mismatch", gates: gates, since: t0.Add(-2 * time.Hour),
			counts: withClass(good(), domain.ClassPrimaryError, 10), verdict: Pass,
			checks: map[string]Check{
				"maxMismatchRate": {Name: "maxMismatchRate", Verdict: Pass, Pass: true, Value: 3.8416 / 5003.8416, Limit: 0.001},
				"zeroTolerance":   {Name: "zeroTolerance", Verdict: Pass, Pass: true, Value: 0, Limit: 0},
				"minCoverage":     {Name: "minCoverage", Verdict: Pass, Pass: true, Value: 5000.0 / 5010, Limit: 0.99},
			},
		},
		{
			name: "value_diff is not zero tolerance by default", gates: withRate(gates, 0.01), since: t0.Add(-2 * time.Hour),
			counts: withClass(good(), domain.ClassValueDiff, 1), verdict: Pass,
			checks: map[string]Check{"zeroTolerance": {Name: "zeroTolerance", Verdict: Pass, Pass: true, Value: 0, Limit: 0}},
		},
		{
			name: "value_diff when listed as zero tolerance", since: t0.Add(-2 * time.Hour),
			gates: func() domain.Gates {
				g := withRate(gates, 0.01)
				g.ZeroTolerance = []domain.Class{domain.ClassValueDiff}
				return g
			}(),
			counts: withClass(good(), domain.ClassValueDiff, 1), verdict: Fail,
			checks: map[string]Check{"zeroTolerance": {Name: "zeroTolerance", Verdict: Fail, Pass: false, Value: 1, Limit: 0}},
		},
		{
			name: "mismatch rate judged on the upper bound, not the raw ratio: inconclusive", gates: withRate(gates, 0.001), since: t0.Add(-2 * time.Hour),
			// raw ratio 0.0005 is under 0.001; the upper bound is not.
			counts:  withClass(Counts{Eligible: 2000, ByClass: map[domain.Class]uint64{domain.ClassEqual: 1999}, CandidateCalls: 2000}, domain.ClassValueDiff, 1),
			verdict: Inconclusive,
			checks:  map[string]Check{"maxMismatchRate": {Name: "maxMismatchRate", Verdict: Inconclusive, Pass: false, Value: wilsonClosedForm(1, 2000), Limit: 0.001}},
		},
		{
			name: "error rate just above the limit, within chance, with the minimum evidence in", gates: gates, since: t0.Add(-2 * time.Hour),
			counts: func() Counts { c := good(); c.CandidateErrors = 51; return c }(), verdict: Fail,
			checks: map[string]Check{"maxErrorRate": {Name: "maxErrorRate", Verdict: Fail, Pass: false, Value: 51.0 / 5000, Limit: 0.01}},
		},
		{
			name: "error rate exactly at the limit", gates: gates, since: t0.Add(-2 * time.Hour),
			counts: func() Counts { c := good(); c.CandidateErrors = 50; return c }(), verdict: Pass,
			checks: map[string]Check{"maxErrorRate": {Name: "maxErrorRate", Verdict: Pass, Pass: true, Value: 0.01, Limit: 0.01}},
		},
		{
			name: "no candidate calls leaves the error rate inconclusive", gates: gates, since: t0.Add(-2 * time.Hour),
			counts: func() Counts { c := good(); c.CandidateCalls, c.CandidateErrors = 0, 0; return c }(), verdict: Inconclusive,
			checks: map[string]Check{"maxErrorRate": {Name: "maxErrorRate", Verdict: Inconclusive, Pass: false, Value: 0, Limit: 0.01}},
		},
		{
			name: "skipped lowers coverage and is not a comparison", gates: gates, since: t0.Add(-2 * time.Hour),
			counts: func() Counts { c := good(); c.Eligible = 5100; c.ByClass[domain.ClassSkipped] = 100; return c }(), verdict: Fail,
			checks: map[string]Check{
				"minCoverage":    {Name: "minCoverage", Verdict: Fail, Pass: false, Value: 5000.0 / 5100, Limit: 0.99},
				"minComparisons": {Name: "minComparisons", Verdict: Pass, Pass: true, Value: 5000, Limit: 200},
			},
		},
		{
			name: "shadow_error lowers coverage and is not a mismatch", gates: gates, since: t0.Add(-2 * time.Hour),
			counts: func() Counts { c := good(); c.Eligible = 5100; c.ByClass[domain.ClassShadowError] = 100; return c }(), verdict: Fail,
			checks: map[string]Check{
				"minCoverage":     {Name: "minCoverage", Verdict: Fail, Pass: false, Value: 5000.0 / 5100, Limit: 0.99},
				"maxMismatchRate": {Name: "maxMismatchRate", Verdict: Pass, Pass: true, Value: 3.8416 / 5003.8416, Limit: 0.001},
			},
		},
		{
			name: "coverage just at the limit", gates: gates, since: t0.Add(-2 * time.Hour),
			counts: func() Counts {
				c := good()
				c.ByClass[domain.ClassEqual] = 4950
				c.ByClass[domain.ClassSkipped] = 50
				return c
			}(), verdict: Pass,
			checks: map[string]Check{"minCoverage": {Name: "minCoverage", Verdict: Pass, Pass: true, Value: 0.99, Limit: 0.99}},
		},
		{
			name: "too few comparisons", since: t0.Add(-2 * time.Hour),
			gates:  func() domain.Gates { g := lenient(); g.MinComparisons = 200; return g }(),
			counts: Counts{Eligible: 199, ByClass: map[domain.Class]uint64{domain.ClassEqual: 199}, CandidateCalls: 199}, verdict: Inconclusive,
			checks: map[string]Check{"minComparisons": {Name: "minComparisons", Verdict: Inconclusive, Pass: false, Value: 199, Limit: 200}},
		},
		{
			name: "per-type minimum met", since: t0.Add(-2 * time.Hour),
			gates:  func() domain.Gates { g := gates; g.MinPerEventType = 2000; return g }(),
			counts: good(), verdict: Pass,
			checks: map[string]Check{"minPerEventType": {Name: "minPerEventType", Verdict: Pass, Pass: true, Value: 2000, Limit: 2000}},
		},
		{
			name: "per-type minimum not met by the rarest type", since: t0.Add(-2 * time.Hour),
			gates: func() domain.Gates { g := gates; g.MinPerEventType = 100; return g }(),
			counts: func() Counts {
				c := good()
				c.ByType = map[string]uint64{"ticket": 4950, "company": 49, "contact": 1}
				return c
			}(), verdict: Inconclusive,
			checks: map[string]Check{"minPerEventType": {Name: "minPerEventType", Verdict: Inconclusive, Pass: false, Value: 1, Limit: 100}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := Judge(tt.gates, "acme", domain.StageShadow, tt.since, t0, tt.counts)
			if r.Verdict != tt.verdict || r.Pass != (tt.verdict == Pass) {
				t.Errorf("Verdict, Pass = %s, %v, want %s; checks: %+v", r.Verdict, r.Pass, tt.verdict, r.Checks)
			}
			if r.Partner != "acme" || r.Stage != domain.StageShadow {
				t.Errorf("report names %q at %q, want acme at shadow", r.Partner, r.Stage)
			}
			pass := true
			for _, c := range r.Checks {
				pass = pass && c.Pass
			}
			if pass != r.Pass {
				t.Errorf("Pass = %v, but the checks' conjunction is %v", r.Pass, pass)
			}
			for name, want := range tt.checks {
				got := check(t, r, name)
				if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(Check{}, "Detail"), cmpopts.EquateApprox(0, 1e-9)); diff != "" {
					t.Errorf("check %s (-want +got):\n%s", name, diff)
				}
				if !got.Pass && got.Detail == "" && name == "minPerEventType" {
					t.Errorf("failing check %s has no detail", name)
				}
			}
		})
	}
}

func TestJudgeCheckNames(t *testing.T) {
	// API.md: a gate report names each check after its setting.
	want := []string{"minComparisons", "maxMismatchRate", "zeroTolerance", "minBakeSeconds", "maxErrorRate", "minCoverage", "minPerEventType"}
	r := Judge(domain.DefaultGates(), "acme", domain.StageNew, t0, t0, good())
	var got []string
	for _, c := range r.Checks {
		got = append(got, c.Name)
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("check names (-want +got):\n%s", diff)
	}
	g := domain.DefaultGates()
	g.MinPerEventType = 0
	r = Judge(g, "acme", domain.StageNew, t0, t0, good())
	if got, want := r.Checks[len(r.Checks)-1].Name, "minCoverage"; got != want {
		t.Errorf("last check = %q, want %q when minPerEventType is 0 (off)", got, want)
	}
}

func TestCounts(t *testing.T) {
	c := Counts{ByClass: map[domain.Class]uint64{
		domain.ClassEqual: 10, domain.ClassValueDiff: 2, domain.ClassTypeMismatch: 1,
		domain.ClassSkipped: 5, domain.ClassShadowError: 3,
	}}
	if got, want := c.Compared(), uint64(13); got != want {
		t.Errorf("Compared() = %d, want %d", got, want)
	}
	if got, want := c.Mismatched(), uint64(3); got != want {
		t.Errorf("Mismatched() = %d, want %d", got, want)
	}
	var zero Counts
	if zero.Compared() != 0 || zero.Mismatched() != 0 {
		t.Errorf("zero Counts: Compared() = %d, Mismatched() = %d, want 0, 0", zero.Compared(), zero.Mismatched())
	}
}

func withRate(g domain.Gates, rate float64) domain.Gates {
	g.MaxMismatchRate = rate
	return g
}

func withClass(c Counts, class domain.Class, n uint64) Counts {
	byClass := make(map[domain.Class]uint64, len(c.ByClass)+1)
	for k, v := range c.ByClass {
		byClass[k] = v
	}
	byClass[class] += n
	c.ByClass = byClass
	c.Eligible += n
	return c
}
