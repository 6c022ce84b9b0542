package ingress_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/ingress"
	"github.com/switchbackhq/switchback/internal/journal"
)

// controlProxy stands between a router's reports and the control service,
// which it can take down or whose answers it can lose.
type controlProxy struct {
	target string
	mode   atomic.Int32 // proxyUp, proxyDown or proxyLoseNext
	// lost counts reports that reached the control service and whose
	// answer was lost; refused, requests answered 503 while down.
	lost, refused atomic.Int32
}

const (
	proxyUp = iota
	proxyDown
	proxyLoseNext // forward the next report with counts, answer 502, then up
)

func (p *controlProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if p.mode.Load() == proxyDown {
		p.refused.Add(1)
		http.Error(w, "control service down", http.StatusServiceUnavailable)
		return
	}
	body, _ := io.ReadAll(r.Body)
	req, _ := http.NewRequestWithContext(r.Context(), r.Method, p.target+r.URL.Path, bytes.NewReader(body))
	req.Header = r.Header.Clone()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	answer, _ := io.ReadAll(resp.Body)
	if bytes.Contains(body, []byte(`"reportId"`)) && p.mode.CompareAndSwap(proxyLoseNext, proxyUp) {
		p.lost.Add(1)
		http.Error(w, "the answer was lost", http.StatusBadGateway)
		return
	}
	w.WriteHeader(resp.StatusCode)
	w.Write(answer)
}

// report runs the router's reporter towards the replicas at urls until the
// returned stop.
func (e *env) report(t *testing.T, urls ...string) (stop func()) {
	t.Helper()
	token := e.svc.AddEphemeralToken("reporter-"+t.Name(), domain.RoleRouter)
	controls := mustControls(t, urls...)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	rt := e.router
	wg.Go(func() { rt.ReportTo(ctx, http.DefaultClient, controls, token, "edge-1", 20*time.Millisecond) })
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

func mustControls(t *testing.T, urls ...string) *ingress.Controls {
	t.Helper()
	c, err := ingress.NewControls(urls)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func (e *env) comparisons(t *testing.T) (compared uint64, byClass map[domain.Class]uint64) {
	t.Helper()
	c, err := e.svc.Comparisons(context.Background(), "psa-webhooks-v2", "acme")
	if err != nil {
		t.Fatal(err)
	}
	byClass = map[domain.Class]uint64{}
	for _, classes := range c.Counts {
		for class, n := range classes {
			byClass[class] += n
			compared += n
		}
	}
	return compared, byClass
}

// A router keeps what it compared while the control service is down in its
// journal, across a restart, and reports every comparison exactly once:
// the report whose answer is lost is sent again and not counted twice.
func TestComparisonsSurviveRestartAndAreCountedOnce(t *testing.T) {
	const events = 35
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.SetStage(ctx, control.Change{Actor: "t", Reason: "test"}, "psa-webhooks-v2", "acme", domain.StageShadow, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router to see acme in shadow", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })
	proxy := &controlProxy{target: e.control.URL}
	proxy.mode.Store(proxyDown)
	srv := httptest.NewServer(proxy)
	t.Cleanup(srv.Close)

	stopReports := e.report(t, srv.URL)
	for i := range events {
		if status, _ := e.post(t, "acme", fmt.Sprintf("c%d", i), "ticket.updated", fmt.Sprintf("T-%d", i), nil, ""); status != http.StatusAccepted {
			t.Fatalf("status = %d, want 202", status)
		}
	}
	waitFor(t, "every event compared", func() bool {
		for seq := uint64(1); seq <= events; seq++ {
			if ev, err := e.journal.Get(t.Context(), seq); err != nil || ev.Comparison == "" {
				return false
			}
		}
		return true
	})
	// The router stops (SIGTERM) and starts again on its journal while the
	// control service is still down; then it comes back, and loses the
	// answer to the first report.
	stopReports()
	e.stop()
	e.start(t)
	refused := proxy.refused.Load()
	e.report(t, srv.URL)
	waitFor(t, "a report to fail against the outage", func() bool { return proxy.refused.Load() > refused })
	proxy.mode.Store(proxyLoseNext)

	waitFor(t, "every comparison reported", func() bool {
		owed, err := e.journal.Owed(t.Context())
		return err == nil && len(owed) == 0 && proxy.lost.Load() == 1
	})
	compared, byClass := e.comparisons(t)
	if compared != events || byClass[domain.ClassEqual] != events {
		t.Errorf("the control service counted %d comparisons (%v), want %d equal", compared, byClass, events)
	}
	ms, _ := e.svc.State().Migration("psa-webhooks-v2")
	p, _ := e.svc.State().Partner("acme")
	counts, err := e.svc.StageCounts(ctx, "psa-webhooks-v2", ms.StageOf(p))
	if err != nil {
		t.Fatal(err)
	}
	if counts.CandidateCalls != events || counts.CandidateErrors != 0 {
		t.Errorf("candidate calls = %d, errors = %d; want %d, 0", counts.CandidateCalls, counts.CandidateErrors, events)
	}
}

// A router stopped while its shadow pipeline was still answering (SIGTERM,
// or a crash) has journaled the primary's outcome but not the comparison:
// it compares those events at its next start, against the effects the
// journal recorded, so the gates and the guard still see every one.
func TestComparisonsDueAtShutdownAreMadeAtNextStart(t *testing.T) {
	const events = 5
	e := newEnv(t)
	ctx := context.Background()
	for _, st := range []domain.Stage{domain.StageShadow, domain.StageNew} {
		if _, err := e.svc.SetStage(ctx, control.Change{Actor: "t", Reason: "test"}, "psa-webhooks-v2", "acme", st, true); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the router to see acme on new", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })
	// On new, legacy is the shadow: hold its dry-runs until the router stops.
	held, release := make(chan struct{}, events), make(chan struct{})
	e.legacyAt.set(holdDryRuns(e.legacy, held, release))
	for i := range events {
		if status, _ := e.post(t, "acme", fmt.Sprintf("d%d", i), "ticket.updated", fmt.Sprintf("T-%d", i), nil, ""); status != http.StatusAccepted {
			t.Fatalf("status = %d, want 202", status)
		}
	}
	waitFor(t, "every event applied, its comparison due", func() bool {
		due, err := e.journal.ComparisonsDue(t.Context())
		return err == nil && len(due) == events
	})
	e.stop()
	close(release)
	e.legacyAt.set(e.legacy)

	e.start(t)
	waitFor(t, "every comparison made after the restart", func() bool {
		due, err := e.journal.ComparisonsDue(t.Context())
		return err == nil && len(due) == 0
	})
	for seq := uint64(1); seq <= events; seq++ {
		ev, err := e.journal.Get(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		if ev.Comparison != string(domain.ClassEqual) {
			t.Errorf("event %d compared as %q, want equal", seq, ev.Comparison)
		}
	}
	e.report(t, e.control.URL)
	waitFor(t, "every comparison counted", func() bool {
		compared, _ := e.comparisons(t)
		return compared == events
	})
	if _, byClass := e.comparisons(t); byClass[domain.ClassEqual] != events {
		t.Errorf("the control service counted %v, want %d equal", byClass, events)
	}
}

// A router given several replicas of the control service reports to the
// one that last answered. A report whose answer a replica lost goes at
// once to the next, which counts it once: the reportId is the store's, not
// the replica's. When that replica dies, the reports go back to the first.
// No count is lost or counted twice.
func TestReportsMoveToTheNextControlReplica(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.SetStage(ctx, control.Change{Actor: "t", Reason: "test"}, "psa-webhooks-v2", "acme", domain.StageShadow, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router to see acme in shadow", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })
	// Replica a stands behind a proxy that loses the answer to the first
	// report; replica b is another server of the same service.
	proxy := &controlProxy{target: e.control.URL}
	proxy.mode.Store(proxyLoseNext)
	a := httptest.NewServer(proxy)
	t.Cleanup(a.Close)
	var bReports atomic.Int32
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/reports" {
			bReports.Add(1)
		}
		e.control.Config.Handler.ServeHTTP(w, r)
	}))
	t.Cleanup(b.Close)

	post := func(from, n int) {
		t.Helper()
		for i := from; i < from+n; i++ {
			if status, _ := e.post(t, "acme", fmt.Sprintf("r%d", i), "ticket.updated", fmt.Sprintf("T-%d", i), nil, ""); status != http.StatusAccepted {
				t.Fatalf("status = %d, want 202", status)
			}
		}
	}
	reported := func(what string, want uint64) {
		t.Helper()
		waitFor(t, what, func() bool {
			owed, err := e.journal.Owed(t.Context())
			compared, _ := e.comparisons(t)
			return err == nil && len(owed) == 0 && compared >= want
		})
		if compared, byClass := e.comparisons(t); compared != want || byClass[domain.ClassEqual] != want {
			t.Errorf("%s: the control service counted %d comparisons (%v), want %d equal", what, compared, byClass, want)
		}
	}

	e.report(t, a.URL, b.URL)
	post(0, 10)
	reported("the first events reported through the second replica", 10)
	if proxy.lost.Load() != 1 || bReports.Load() == 0 {
		t.Errorf("answers lost by the first replica: %d, reports to the second: %d; want 1 and some", proxy.lost.Load(), bReports.Load())
	}

	b.CloseClientConnections()
	b.Close()
	before := proxy.lost.Load()
	post(10, 10)
	reported("the next events reported through the first replica again", 20)
	if proxy.lost.Load() != before {
		t.Errorf("the first replica lost %d more answers, want none", proxy.lost.Load()-before)
	}
}

// Counts owed beyond what one report carries (a long outage's) go in full
// reports one after another, without waiting for the next interval.
func TestOwedCountsBeyondOneReportGoBackToBack(t *testing.T) {
	const keys = 2500 // two full reports and a part
	e := newEnv(t)
	ctx := context.Background()
	if _, err := e.svc.SetStage(ctx, control.Change{Actor: "t", Reason: "test"}, "psa-webhooks-v2", "acme", domain.StageShadow, true); err != nil {
		t.Fatal(err)
	}
	minute := time.Now().UTC().Truncate(time.Minute).Unix()
	var tallies []journal.Tally
	for i := range keys {
		tallies = append(tallies, journal.Tally{N: 1,
			Key: fmt.Sprintf(`{"k":"c","m":"psa-webhooks-v2","p":"acme","s":"shadow","t":"type-%d","c":"equal","u":%d}`, i, minute)})
	}
	if err := e.journal.Tally(ctx, tallies); err != nil {
		t.Fatal(err)
	}
	token := e.svc.AddEphemeralToken("reporter-"+t.Name(), domain.RoleRouter)
	rctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		e.router.ReportTo(rctx, http.DefaultClient, mustControls(t, e.control.URL), token, "edge-1", time.Hour)
	})
	t.Cleanup(func() { cancel(); wg.Wait() })
	waitFor(t, "every count reported before the next interval", func() bool {
		owed, err := e.journal.Owed(t.Context())
		return err == nil && len(owed) == 0
	})
	if compared, _ := e.comparisons(t); compared != keys {
		t.Errorf("the control service counted %d comparisons, want %d", compared, keys)
	}
}
