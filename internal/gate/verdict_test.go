package gate

import (
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// withTypes is c with its comparisons spread over event types as given.
func withTypes(c Counts, byType map[string]uint64, sentOnly ...string) Counts {
	c.ByType = byType
	c.Types = sentOnly
	return c
}

// Each verdict and each reason for it, with the default gates, judged two
// hours into the stage unless the case says otherwise. want lists what the
// report's one-line explanation must hold.
func TestVerdicts(t *testing.T) {
	gates := domain.DefaultGates()
	few := func(n uint64) Counts {
		return Counts{Eligible: n, ByClass: map[domain.Class]uint64{domain.ClassEqual: n},
			ByType: map[string]uint64{"ticket": n}, CandidateCalls: n}
	}
	tests := []struct {
		name    string
		gates   domain.Gates
		baked   time.Duration
		counts  Counts
		verdict Verdict
		checks  map[string]Verdict // the verdicts of these checks
		want    []string           // in Explain, in this order
	}{
		{
			name: "plenty of clean data passes", counts: good(), verdict: Pass,
			want: []string{"the gates pass"},
		},
		{
			name: "no data at all is inconclusive, never a fail", counts: Counts{}, verdict: Inconclusive,
			checks: map[string]Verdict{"minComparisons": Inconclusive, "maxMismatchRate": Inconclusive, "maxErrorRate": Inconclusive,
				"minCoverage": Inconclusive, "minPerEventType": Inconclusive, "zeroTolerance": Pass},
			// Said once, though four checks lack comparisons.
			want: []string{"waiting for data: acme: no comparisons in this stage yet, no calls to the new pipeline yet, no eligible events yet"},
		},
		{
			name: "fewer than minComparisons is inconclusive", counts: few(150), verdict: Inconclusive,
			checks: map[string]Verdict{"minComparisons": Inconclusive, "maxMismatchRate": Inconclusive, "minPerEventType": Pass},
			want:   []string{"waiting for data: acme: 150 of 200 comparisons", "95% upper bound 2.5%"},
		},
		{
			name: "not baked long enough is inconclusive", counts: good(), baked: 10 * time.Minute, verdict: Inconclusive,
			checks: map[string]Verdict{"minBakeSeconds": Inconclusive},
			want:   []string{"waiting for data: acme: baked 10m0s of 1h0m0s"},
		},
		{
			name:    "one event type with 49 comparisons and the others plenty is inconclusive",
			counts:  withTypes(good(), map[string]uint64{"ticket": 3000, "contact": 1951, "company": 49}),
			verdict: Inconclusive, checks: map[string]Verdict{"minPerEventType": Inconclusive},
			want: []string{"waiting for data: acme: too few comparisons of event type company (49 of 50)"},
		},
		{
			name:    "50 comparisons of each event type is enough",
			counts:  withTypes(good(), map[string]uint64{"ticket": 3000, "contact": 1950, "company": 50}),
			verdict: Pass, checks: map[string]Verdict{"minPerEventType": Pass},
		},
		{
			name:    "an event type sent but never compared needs its comparisons too",
			counts:  withTypes(withClass(good(), domain.ClassSkipped, 3), map[string]uint64{"ticket": 3000, "contact": 2000}, "company"),
			verdict: Inconclusive, checks: map[string]Verdict{"minPerEventType": Inconclusive, "minCoverage": Pass},
			want: []string{"too few comparisons of event type company (0 of 50)"},
		},
		{
			name:    "several short event types are all named",
			counts:  withTypes(good(), map[string]uint64{"ticket": 4950, "contact": 49, "company": 1}),
			verdict: Inconclusive,
			want:    []string{"too few comparisons of event types company (1 of 50), contact (49 of 50)"},
		},
		{
			name:   "minPerEventType 0 turns the per-type rule off",
			gates:  func() domain.Gates { g := domain.DefaultGates(); g.MinPerEventType = 0; return g }(),
			counts: withTypes(good(), map[string]uint64{"ticket": 4999, "company": 1}), verdict: Pass,
		},
		{
			// 1 of 2000 is a raw 0.05%, under the limit, but the upper
			// bound is 0.28%: more comparisons will tell.
			// The minimums are what the migration calls enough data: past
			// them, a rate not shown within its limit is a violated rule.
			name:   "an observed mismatch rate above the limit with the minimum evidence in fails",
			counts: withClass(few(1997), domain.ClassValueDiff, 3), verdict: Fail,
			checks: map[string]Verdict{"maxMismatchRate": Fail, "minComparisons": Pass},
			want:   []string{"the gates refuse: acme (maxMismatchRate)"},
		},
		{
			// Observed 0%: the bound only needs more traffic to close.
			name:   "no mismatches with the bound still above the limit waits, even with the minimum evidence in",
			counts: few(500), verdict: Inconclusive,
			checks: map[string]Verdict{"maxMismatchRate": Inconclusive, "minComparisons": Pass},
			want:   []string{"waiting for data: acme: mismatch rate not shown to be within 0.1%: 0 mismatched of 500 compared"},
		},
		{
			name:   "a mismatch bound above the limit before the bake time is inconclusive",
			counts: withClass(few(1999), domain.ClassValueDiff, 1), baked: time.Minute, verdict: Inconclusive,
			checks: map[string]Verdict{"maxMismatchRate": Inconclusive, "minComparisons": Pass, "minBakeSeconds": Inconclusive},
			want:   []string{"waiting for data: acme: mismatch rate not shown to be within 0.1%: 1 mismatched of 2000 compared, 95% upper bound 0.283%"},
		},
		{
			name:   "a mismatch rate whose whole interval is above the limit fails",
			counts: withClass(good(), domain.ClassValueDiff, 50), verdict: Fail,
			checks: map[string]Verdict{"maxMismatchRate": Fail},
			want:   []string{"the gates refuse: acme (maxMismatchRate)"},
		},
		{
			name:   "a zero-tolerance class fails",
			counts: withClass(good(), domain.ClassTypeMismatch, 1), verdict: Fail,
			checks: map[string]Verdict{"zeroTolerance": Fail},
			want:   []string{"the gates refuse: acme (", "zeroTolerance)"},
		},
		{
			// fail wins: no later data takes a zero-tolerance mismatch back.
			name:   "a zero-tolerance class fails even while evidence is short",
			counts: withClass(few(2), domain.ClassMissing, 1), baked: time.Minute, verdict: Fail,
			checks: map[string]Verdict{"zeroTolerance": Fail, "minComparisons": Inconclusive, "minBakeSeconds": Inconclusive},
			want:   []string{"the gates refuse: acme (maxMismatchRate, zeroTolerance)"},
		},
		{
			// 5 of 20 is at least 11% at 95%: far above 0.1% however few.
			name:   "a mismatch rate proven above the limit fails even while evidence is short",
			counts: withClass(few(15), domain.ClassValueDiff, 5), baked: time.Minute, verdict: Fail,
			checks: map[string]Verdict{"maxMismatchRate": Fail, "minComparisons": Inconclusive, "zeroTolerance": Pass},
			want:   []string{"the gates refuse: acme (maxMismatchRate)"},
		},
		{
			name:   "an error rate proven above the limit fails",
			counts: func() Counts { c := good(); c.CandidateErrors = 100; return c }(), verdict: Fail,
			checks: map[string]Verdict{"maxErrorRate": Fail},
			want:   []string{"the gates refuse: acme (maxErrorRate)"},
		},
		{
			name:   "an error rate above the limit within what chance allows fails with the minimum evidence in",
			counts: func() Counts { c := good(); c.CandidateErrors = 51; return c }(), verdict: Fail,
			checks: map[string]Verdict{"maxErrorRate": Fail},
			want:   []string{"the gates refuse: acme (maxErrorRate)"},
		},
		{
			name:   "an error rate above the limit within what chance allows is inconclusive before the bake time",
			counts: func() Counts { c := good(); c.CandidateErrors = 51; return c }(), baked: time.Minute, verdict: Inconclusive,
			checks: map[string]Verdict{"maxErrorRate": Inconclusive},
			want:   []string{"waiting for data: acme: ", "error rate 1.02% above 1% (51 of 5000), within what chance allows"},
		},
		{
			name:   "no calls to the new pipeline is inconclusive",
			counts: func() Counts { c := good(); c.CandidateCalls, c.CandidateErrors = 0, 0; return c }(), verdict: Inconclusive,
			checks: map[string]Verdict{"maxErrorRate": Inconclusive},
			want:   []string{"waiting for data: acme: no calls to the new pipeline yet"},
		},
		{
			name:   "coverage proven below the limit fails",
			counts: withClass(good(), domain.ClassShadowError, 100), verdict: Fail,
			checks: map[string]Verdict{"minCoverage": Fail},
			want:   []string{"the gates refuse: acme (minCoverage)"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			g, baked := tt.gates, tt.baked
			if g.MinCoverage == 0 && g.MaxMismatchRate == 0 {
				g = gates
			}
			if baked == 0 {
				baked = 2 * time.Hour
			}
			pr := Judge(g, "acme", domain.StageShadow, t0.Add(-baked), t0, tt.counts)
			if pr.Verdict != tt.verdict || pr.Pass != (tt.verdict == Pass) {
				t.Errorf("Verdict, Pass = %s, %v, want %s; checks: %+v", pr.Verdict, pr.Pass, tt.verdict, pr.Checks)
			}
			for _, c := range pr.Checks {
				if c.Pass != (c.Verdict == Pass) {
					t.Errorf("check %s: Pass = %v with verdict %s", c.Name, c.Pass, c.Verdict)
				}
				if c.Verdict == Inconclusive && c.Detail == "" {
					t.Errorf("inconclusive check %s says nothing of what is missing", c.Name)
				}
			}
			for name, want := range tt.checks {
				if got := check(t, pr, name).Verdict; got != want {
					t.Errorf("check %s: verdict %s, want %s (%+v)", name, got, want, check(t, pr, name))
				}
			}
			r := NewReport([]PartnerReport{pr})
			if r.Verdict != pr.Verdict {
				t.Errorf("report verdict %s, want its only partner's %s", r.Verdict, pr.Verdict)
			}
			got, at := r.Explain(), 0
			for _, w := range tt.want {
				i := strings.Index(got[at:], w)
				if i < 0 {
					t.Errorf("Explain() = %q, want %q in it (after %q)", got, w, got[:at])
					break
				}
				at += i + len(w)
			}
		})
	}
}

// A report is the worst of its partners' verdicts, and a report of no
// partners is not a pass.
func TestNewReport(t *testing.T) {
	pass := PartnerReport{Partner: "acme", Verdict: Pass, Pass: true}
	wait := PartnerReport{Partner: "globex", Verdict: Inconclusive, Checks: []Check{
		{Name: "minComparisons", Verdict: Inconclusive, Detail: "3 of 200 comparisons"},
		{Name: "minBakeSeconds", Verdict: Inconclusive, Detail: "baked 1m0s of 1h0m0s"},
	}}
	fail := PartnerReport{Partner: "initech", Verdict: Fail, Checks: []Check{
		{Name: "minComparisons", Verdict: Inconclusive, Detail: "3 of 200 comparisons"},
		{Name: "zeroTolerance", Verdict: Fail, Detail: "1 zero-tolerance mismatches"},
	}}
	tests := []struct {
		name     string
		partners []PartnerReport
		verdict  Verdict
		explain  string
	}{
		{"no partners", nil, Inconclusive, "waiting for data: no partners to judge"},
		{"all pass", []PartnerReport{pass, pass}, Pass, "the gates pass"},
		{"one waits", []PartnerReport{pass, wait}, Inconclusive, "waiting for data: globex: 3 of 200 comparisons, baked 1m0s of 1h0m0s"},
		{"fail wins over waiting", []PartnerReport{wait, fail, pass}, Fail, "the gates refuse: initech (zeroTolerance)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := NewReport(tt.partners)
			if r.Verdict != tt.verdict || r.Pass != (tt.verdict == Pass) {
				t.Errorf("Verdict, Pass = %s, %v, want %s", r.Verdict, r.Pass, tt.verdict)
			}
			if r.Partners == nil {
				t.Errorf("Partners is nil: the JSON would say null, not []")
			}
			if got := r.Explain(); got != tt.explain {
				t.Errorf("Explain() = %q, want %q", got, tt.explain)
			}
		})
	}
}

func TestWilsonLower(t *testing.T) {
	// The lower end mirrors the upper: the bounds of k of n and of n−k of n
	// add up to 1, and the interval holds k/n.
	for _, tt := range []struct{ k, n uint64 }{{0, 1}, {1, 10}, {5, 20}, {50, 5000}, {1, 2000}, {10, 10}} {
		lo, hi := WilsonLower(tt.k, tt.n), WilsonUpper(tt.n-tt.k, tt.n)
		if d := lo + hi - 1; d > 1e-12 || d < -1e-12 {
			t.Errorf("WilsonLower(%d, %d) + WilsonUpper(%d, %d) = %v, want 1", tt.k, tt.n, tt.n-tt.k, tt.n, lo+hi)
		}
		if p := float64(tt.k) / float64(tt.n); lo > p || WilsonUpper(tt.k, tt.n) < p {
			t.Errorf("interval of %d of %d = [%v, %v] does not hold %v", tt.k, tt.n, lo, WilsonUpper(tt.k, tt.n), p)
		}
	}
	if got := WilsonLower(0, 0); got != 0 {
		t.Errorf("WilsonLower(0, 0) = %v, want 0", got)
	}
}
