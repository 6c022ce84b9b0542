package webui_test

import (
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// The cohort page tells an inconclusive gate from a failing one: waiting
// for data, with what is missing, and no "fail" anywhere in its report;
// an advance refused for want of data says the same. A zero-tolerance
// mismatch turns the same page to a refusal.
func TestCohortPageSaysWaitingForData(t *testing.T) {
	var missing atomic.Uint64
	counts := func(_, _ string, _ domain.Stage) gate.Counts {
		mismatch := missing.Load()
		return gate.Counts{Eligible: 5000, ByClass: map[domain.Class]uint64{domain.ClassEqual: 5000 - mismatch, domain.ClassMissing: mismatch},
			ByType: map[string]uint64{"ticket": 4951, "contact": 49}, CandidateCalls: 5000}
	}
	f := newFixture(t, fixtureOptions{stats: fakeStats{counts: counts}})
	if _, err := f.svc.SetStage(ctx, setup, mig, "acme", domain.StageShadow, false); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(2 * time.Hour)
	c := f.client(t)
	c.login("operator")

	page := c.get("/migrations/" + mig)
	cohort := section(t, page.body, `id="cohort-canary"`, `</li>`)
	for _, want := range []string{
		"Gate report: <span aria-hidden=\"true\">…</span> waiting for data</caption>",
		"Waiting for data: acme: too few comparisons of event type contact (49 of 50).",
		"… waiting",
		"The gates are waiting for data",
	} {
		if !strings.Contains(cohort+page.body, want) {
			t.Errorf("the cohort page lacks %q", want)
		}
	}
	for _, never := range []string{"✗ fail", "refuses", "The gates refuse this advance"} {
		if strings.Contains(cohort, never) {
			t.Errorf("the waiting cohort says %q:\n%s", never, cohort)
		}
	}

	c.post("/migrations/"+mig+"/cohorts/canary/advance", url.Values{"csrf": {c.csrf("/")}}, nil)
	if f.stage(t, "acme") != domain.StageShadow {
		t.Fatalf("an inconclusive gate let acme advance")
	}
	if page := c.get("/migrations/" + mig); !strings.Contains(page.body, "waiting for data: acme: too few comparisons of event type contact (49 of 50)") {
		t.Errorf("the refused advance does not say what data it waits for")
	}

	missing.Store(1)
	cohort = section(t, c.get("/migrations/"+mig).body, `id="cohort-canary"`, `</li>`)
	for _, want := range []string{"refuses</caption>", "✗ fail", "The gates refuse this advance"} {
		if !strings.Contains(cohort, want) {
			t.Errorf("the failing cohort lacks %q", want)
		}
	}
	if strings.Contains(cohort, "Waiting for data") {
		t.Errorf("a cohort with a zero-tolerance mismatch says it waits for data")
	}
}

// section is the part of body from the first from to the next to after it.
func section(t *testing.T, body, from, to string) string {
	t.Helper()
	i := strings.Index(body, from)
	if i < 0 {
		t.Fatalf("the page has no %q", from)
	}
	j := strings.Index(body[i:], to)
	if j < 0 {
		return body[i:]
	}
	return body[i : i+j]
}
