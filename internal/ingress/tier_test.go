package ingress_test

import (
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/ingress"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstest"
	"github.com/switchbackhq/switchback/internal/natstier"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

func withTier(urls, name string) envOption {
	return func(e *env) { e.tierURLs, e.routerName = urls, name }
}

func openTier(t testing.TB, urls, name string, reg prometheus.Registerer, claimLease time.Duration) *natstier.Tier {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tier, err := natstier.Open(ctx, natstier.Options{URLs: urls, Name: name, Replicas: 1, Shards: 4, Registry: reg,
		AckWait: 500 * time.Millisecond, PinnedTTL: 2 * time.Second, ClaimLease: claimLease, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return tier
}

// another runs a second router beside e's, on a journal of its own, with
// e's control service and pipelines, and opts.
func (e *env) another(t *testing.T, name string, opts ...envOption) *env {
	t.Helper()
	o := &env{svc: e.svc, control: e.control, legacy: e.legacy, newer: e.newer, maxAttempts: e.maxAttempts, workers: e.workers, partnerBacklog: e.partnerBacklog,
		tierURLs: e.tierURLs, routerName: name, claimLease: e.claimLease, journalPath: filepath.Join(t.TempDir(), "journal.db")}
	for _, opt := range opts {
		opt(o)
	}
	o.start(t)
	return o
}

// tierOnNew runs two routers, a and b, on one NATS node, with acme on the
// new pipeline, opts applied to both.
func tierOnNew(t *testing.T, opts ...envOption) (a, b *env) {
	t.Helper()
	nats := natstest.Start(t, 1)
	a = newEnv(t, append([]envOption{withTier(nats.URLs(), "a")}, opts...)...)
	a.acmeOnNew(t)
	b = a.another(t, "b", opts...)
	waitFor(t, "router b's snapshot", func() bool { return b.router.RoutingVersion() == a.svc.State().Version })
	return a, b
}

// acmeOnNew moves acme to the new pipeline (shadow first, where legacy is
// compared in dry-run) and waits for e's router to route by it.
func (e *env) acmeOnNew(t *testing.T) {
	t.Helper()
	for _, st := range []domain.Stage{domain.StageShadow, domain.StageNew} {
		if _, err := e.svc.SetStage(context.Background(), control.Change{Actor: "t", Reason: "test"}, "psa-webhooks-v2", "acme", st, true); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the router to see acme on new", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })
}

// The same delivery sent to two routers of a tier: journaled once in the
// tier, applied once, the second answered as a duplicate.
func TestTierSameDeliveryToTwoRoutersAppliedOnce(t *testing.T) {
	nats := natstest.Start(t, 1)
	a := newEnv(t, withTier(nats.URLs(), "a"))
	b := a.another(t, "b")
	for i := range 20 {
		id := fmt.Sprintf("msg_%d", i)
		fields := map[string]any{"summary": fmt.Sprint("update ", i)}
		if st, _ := a.post(t, "acme", id, "ticket.updated", fmt.Sprint(100+i%3), fields, ""); st != 202 {
			t.Fatalf("router a answered %d", st)
		}
		st, out := b.post(t, "acme", id, "ticket.updated", fmt.Sprint(100+i%3), fields, "")
		if st != 202 || out["events"].([]any)[0].(map[string]any)["duplicate"] != true {
			t.Fatalf("router b answered %d %v, want 202 and the event a duplicate", st, out)
		}
	}
	start := time.Now()
	waitFor(t, "20 applications", func() bool { return a.legacy.Applications() >= 20 })
	t.Logf("applied in %v", time.Since(start))
	time.Sleep(time.Second) // anything more would be a second application
	if n, ids := a.legacy.Calls(pipelineclient.Apply), a.legacy.AppliedIDs(); n != 20 || len(ids) != 20 {
		t.Fatalf("legacy was called %d times to apply %d events, want 20 and 20: each delivery once", n, len(ids))
	}
}

// A partner whose events fill its share of the backlog of the router that
// delivers them is refused (429) by every router of the tier, while the
// other partners' webhooks are taken; nothing it was told 202 is lost.
func TestTierThrottlesAFloodingPartnerOnEveryRouter(t *testing.T) {
	nats := natstest.Start(t, 1)
	a := newEnv(t, withTier(nats.URLs(), "a"), withPartnerBacklog(5), withWorkers(2))
	// Router a delivers: it holds the shards of the entities below.
	for i := range 4 {
		if st, _ := a.post(t, "acme", fmt.Sprint("warm-", i), "ticket.updated", fmt.Sprint(i), nil, ""); st != 202 {
			t.Fatalf("warm-up answered %d", st)
		}
	}
	waitFor(t, "the warm-up applied", func() bool { return a.legacy.Applications() == 4 })
	release := make(chan struct{})
	var releaseOnce sync.Once
	unblock := func() { releaseOnce.Do(func() { close(release) }) }
	t.Cleanup(unblock) // a failed test must not leave the pipeline holding its calls
	a.legacyAt.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
			return
		}
		a.legacy.ServeHTTP(w, r)
	}))
	b := a.another(t, "b")

	accepted := 4
	var refused map[string]any
	for i := 0; refused == nil; i++ {
		if i == 200 {
			t.Fatal("200 webhooks of acme to router b, none refused while router a's share for acme is full")
		}
		st, out := b.post(t, "acme", fmt.Sprint("flood-", i), "ticket.updated", fmt.Sprint(i%4), nil, "")
		switch st {
		case 202:
			accepted++
		case 429:
			refused = out
		default:
			t.Fatalf("router b answered %d %v", st, out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if code := refused["error"].(map[string]any)["code"]; code != "router_backlogged" {
		t.Fatalf("refusal %v, want router_backlogged", refused)
	}
	if st, out := b.post(t, "globex", "g-1", "ticket.updated", "1", nil, ""); st != 202 {
		t.Fatalf("globex's webhook to router b answered %d %v while acme is throttled, want 202", st, out)
	}
	unblock()
	waitFor(t, "every acknowledged webhook applied", func() bool { return a.legacy.Applications() == accepted+1 })
	time.Sleep(500 * time.Millisecond)
	if n := a.legacy.Calls(pipelineclient.Apply); n != accepted+1 {
		t.Fatalf("legacy was called %d times to apply, want %d: each acknowledged webhook once", n, accepted+1)
	}
}

// A replay run on one router of a tier takes the events of its window
// that another router delivered: it reads them, with their outcomes, from
// the tier into its own journal first.
func TestTierReplayTakesWhatOtherRoutersDelivered(t *testing.T) {
	a, b := tierOnNew(t)
	ctx := context.Background()
	from := time.Now().Add(-time.Minute)
	for i := range 10 {
		if st, _ := a.post(t, "acme", fmt.Sprint("a-", i), "ticket.updated", fmt.Sprint(i), nil, ""); st != 202 {
			t.Fatalf("router a answered %d", st)
		}
	}
	waitFor(t, "router a's deliveries", func() bool { return a.newer.Applications() == 10 })
	a.stop() // gracefully: its shards go to router b at once
	for i := range 10 {
		if st, _ := b.post(t, "acme", fmt.Sprint("b-", i), "ticket.updated", fmt.Sprint(i), nil, ""); st != 202 {
			t.Fatalf("router b answered %d", st)
		}
	}
	waitFor(t, "router b's deliveries", func() bool { return a.newer.Applications() == 20 })

	job, err := b.router.StartReplay(ctx, domain.ReplayRequest{Migration: "psa-webhooks-v2", Partners: []string{"acme"},
		From: from, To: time.Now().Add(time.Minute), Pipeline: "legacy", Filter: domain.ReplayAll})
	if err != nil {
		t.Fatal(err)
	}
	if job.Total != 20 {
		t.Fatalf("the replay counts %d events, want the tier's 20: 10 delivered by router a, 10 by b", job.Total)
	}
	waitFor(t, "the replay done", func() bool { j, _ := b.router.Replay(job.ID); return j.Status == domain.ReplayDone })
	if j, _ := b.router.Replay(job.ID); j.Done != 20 || j.Failed != 0 {
		t.Fatalf("replay %+v, want 20 done", j)
	}
	if ids := a.legacy.AppliedIDs(); len(ids) != 20 {
		t.Fatalf("legacy applied %d events on the replay, want 20", len(ids))
	}
}

// A replay the control service asks of every router runs on one router of
// the tier, the one that claims it; the others count it done with
// nothing to send. Each event is replayed once.
func TestTierAskedReplayRunsOnOneRouter(t *testing.T) {
	a, b := tierOnNew(t)
	ctx := context.Background()
	from := time.Now().Add(-time.Minute)
	for i := range 10 {
		e := []*env{a, b}[i%2]
		if st, _ := e.post(t, "acme", fmt.Sprint("m-", i), "ticket.updated", fmt.Sprint(i), nil, ""); st != 202 {
			t.Fatalf("answered %d", st)
		}
	}
	waitFor(t, "the deliveries", func() bool { return a.newer.Applications() == 10 })
	job, err := a.svc.AskReplay(ctx, control.Change{Actor: "t", Reason: "test"}, domain.ReplayRequest{Migration: "psa-webhooks-v2",
		Partners: []string{"acme"}, From: from, To: time.Now().Add(time.Minute), Pipeline: "legacy", Filter: domain.ReplayAll})
	if err != nil {
		t.Fatal(err)
	}
	controls, err := ingress.NewControls([]string{a.control.URL})
	if err != nil {
		t.Fatal(err)
	}
	token := a.svc.AddEphemeralToken("routers", domain.RoleRouter)
	fctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for _, e := range []*env{a, b} {
		wg.Go(func() { e.router.FollowAsked(fctx, http.DefaultClient, controls, token, 20*time.Millisecond) })
	}
	finished := func(e *env) (domain.ReplayJob, bool) {
		j, err := e.router.Replay(job.ID)
		return j, err == nil && j.Status == domain.ReplayDone
	}
	waitFor(t, "both routers to finish the replay", func() bool {
		_, okA := finished(a)
		_, okB := finished(b)
		return okA && okB
	})
	ja, _ := finished(a)
	jb, _ := finished(b)
	if ja.Total+jb.Total != 10 || ja.Done+jb.Done != 10 || (ja.Total != 0 && jb.Total != 0) {
		t.Fatalf("router a's job %+v, b's %+v: want one of them to replay all 10", ja, jb)
	}
	if n := a.legacy.Calls(pipelineclient.Apply); n != 10 {
		t.Fatalf("legacy was called %d times to apply, want 10: each event replayed once", n)
	}
}

// A router restarted on its journal does not deliver again what it held
// before it stopped: the tier handed those events to another router,
// which applied them. The restarted router records their outcomes from
// the tier instead of sending them to the pipeline a second time.
func TestTierRestartedRouterLeavesWhatAnotherApplied(t *testing.T) {
	nats := natstest.Start(t, 1)
	var failing atomic.Bool
	a := newEnv(t, withTier(nats.URLs(), "a"), withAttempts(1<<20), withNewPipeline(func(h http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if failing.Load() {
				http.Error(w, "down", http.StatusServiceUnavailable)
				return
			}
			h.ServeHTTP(w, r)
		})
	}))
	a.acmeOnNew(t)
	b := a.another(t, "b")
	waitFor(t, "router b's snapshot", func() bool { return b.router.RoutingVersion() == a.svc.State().Version })
	ctx := context.Background()

	failing.Store(true)
	for i := range 5 {
		if st, _ := a.post(t, "acme", fmt.Sprint("r-", i), "ticket.updated", fmt.Sprint(i), nil, ""); st != 202 {
			t.Fatalf("answered %d", st)
		}
	}
	held := func(e *env) int {
		p, err := e.journal.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return len(p)
	}
	waitFor(t, "the events pending with the routers", func() bool { return held(a)+held(b) == 5 })
	if held(a) == 0 {
		t.Fatal("router a holds none of the events: the test would mean nothing")
	}
	a.stop() // its events go back to the tier, and on to router b
	failing.Store(false)
	waitFor(t, "router b's applications", func() bool { return a.newer.Applications() == 5 })
	calls := a.newer.Calls(pipelineclient.Apply)

	a.start(t)
	waitFor(t, "router a's journal to hold the tier's outcomes", func() bool { return held(a) == 0 })
	time.Sleep(300 * time.Millisecond) // anything router a sent would be on its way
	if got := a.newer.Calls(pipelineclient.Apply); got != calls {
		t.Fatalf("the new pipeline was called %d times to apply after router a restarted, want none: b applied them", got-calls)
	}
}

// lateOutcomes records a router's outcomes in the tier only once open is
// closed: the pipeline has answered, the tier does not know it yet.
type lateOutcomes struct {
	ingress.Tier
	open chan struct{}
}

func (l lateOutcomes) Done(ev journal.Event, out journal.Outcome) {
	go func() { <-l.open; l.Tier.Done(ev, out) }()
}

// A replay started on router b while router a's outcomes are still on
// their way to the tier waits for them and takes every event of the
// window; one whose outcome does not come in time is counted in flight,
// never dropped from the count unsaid.
func TestTierReplayWaitsForOutcomesOnTheirWay(t *testing.T) {
	for _, tc := range []struct {
		name     string
		openIn   time.Duration // when router a's outcomes reach the tier
		inFlight bool
	}{
		{name: "outcomes come", openIn: 300 * time.Millisecond},
		{name: "outcomes late", openIn: time.Minute, inFlight: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			nats := natstest.Start(t, 1)
			late := make(chan struct{})
			a := newEnv(t, withTier(nats.URLs(), "a"), func(e *env) {
				e.wrapTier = func(tier ingress.Tier) ingress.Tier { return lateOutcomes{Tier: tier, open: late} }
			})
			var once sync.Once
			open := func() { once.Do(func() { close(late) }) }
			// Router a stops first: the outcomes it held back then meet a
			// closed tier, never one being released.
			t.Cleanup(func() { a.stop(); open() })
			a.acmeOnNew(t)
			b := a.another(t, "b")
			waitFor(t, "router b's snapshot", func() bool { return b.router.RoutingVersion() == a.svc.State().Version })

			from := time.Now().Add(-time.Minute)
			for i := range 10 {
				if st, _ := a.post(t, "acme", fmt.Sprint("l-", i), "ticket.updated", fmt.Sprint(i), nil, ""); st != 202 {
					t.Fatalf("answered %d", st)
				}
			}
			waitFor(t, "the deliveries", func() bool { return a.newer.Applications() == 10 })
			held, err := a.journal.Count(context.Background(), "acme", journal.Position{At: from}, time.Now().Add(time.Minute))
			if err != nil || held == 0 {
				t.Fatalf("router a delivered %d events (%v), want some for the test to mean anything", held, err)
			}
			timer := time.AfterFunc(tc.openIn, open)
			defer timer.Stop()

			job, err := b.router.StartReplay(context.Background(), domain.ReplayRequest{Migration: "psa-webhooks-v2", Partners: []string{"acme"},
				From: from, To: time.Now().Add(time.Minute), Pipeline: "legacy", Filter: domain.ReplayAll})
			if err != nil {
				t.Fatal(err)
			}
			want := domain.ReplayJob{Total: 10}
			if tc.inFlight {
				want = domain.ReplayJob{Total: 10 - held, InFlight: held}
			}
			if job.Total != want.Total || job.InFlight != want.InFlight {
				t.Fatalf("the replay counts %d events with %d in flight, want %d and %d", job.Total, job.InFlight, want.Total, want.InFlight)
			}
		})
	}
}

// postCompared posts n tickets and schedule entries of acme to e's router,
// alternately, and waits until the router has compared each: it returns
// a moment before the first and the ids of those found mismatched, at
// least one.
func (e *env) postCompared(t *testing.T, n int) (time.Time, []string) {
	t.Helper()
	from := time.Now().Add(-time.Minute)
	for i := range n {
		typ := []string{"ticket.updated", "schedule_entry.updated"}[i%2]
		if st, _ := e.post(t, "acme", fmt.Sprint("m-", i), typ, fmt.Sprint(i), nil, ""); st != 202 {
			t.Fatalf("answered %d", st)
		}
	}
	var mismatched []string
	waitFor(t, "every event applied and compared", func() bool {
		mismatched = nil
		compared := 0
		e.journal.Scan(context.Background(), "acme", journal.Position{At: from}, time.Now().Add(time.Minute), func(ev journal.Event) bool {
			if ev.Comparison != "" {
				compared++
			}
			if ev.Comparison != "" && domain.Class(ev.Comparison).Mismatched() {
				mismatched = append(mismatched, ev.ID)
			}
			return true
		})
		return compared == n
	})
	if len(mismatched) == 0 {
		t.Fatalf("the cached handler caused no mismatch in %d events", n)
	}
	return from, mismatched
}

// The seed incident on a tier: the new pipeline sometimes handles a ticket
// with its cached schedule handler, on router a; a revert's replay run on
// router b replays exactly the events a's comparisons found mismatched,
// read with their comparisons from the tier.
func TestTierRevertReplayTakesMismatchesComparedOnAnotherRouter(t *testing.T) {
	nats := natstest.Start(t, 1)
	a := newEnv(t, withTier(nats.URLs(), "a"), withFaults(refpipe.Faults{}, refpipe.Faults{CachedHandler: 0.3}))
	ctx := context.Background()
	a.acmeOnNew(t)
	from, mismatched := a.postCompared(t, 40)
	b := a.another(t, "b")
	waitFor(t, "router b's snapshot", func() bool { return b.router.RoutingVersion() == a.svc.State().Version })
	job, err := b.router.StartReplay(ctx, domain.ReplayRequest{Migration: "psa-webhooks-v2", Partners: []string{"acme"},
		From: from, To: time.Now().Add(time.Minute), Pipeline: "legacy", Filter: domain.ReplayMismatched, AwaitComparisons: true})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay done", func() bool { j, _ := b.router.Replay(job.ID); return j.Status == domain.ReplayDone })
	j, _ := b.router.Replay(job.ID)
	got := a.legacy.AppliedIDs()
	slices.Sort(mismatched)
	if !slices.Equal(got, mismatched) || j.Unknown != 0 {
		t.Fatalf("router b replayed %v (unknown %d), want the %d events router a found mismatched: %v", got, j.Unknown, len(mismatched), mismatched)
	}
}

// A revert's replay run on router b waits for the events router a holds
// without an outcome in the tier yet, past the 5 s a replay waits as it
// starts: those the new pipeline got wrong are replayed once their
// outcomes and comparisons reach the tier, none left out.
func TestTierRevertReplayWaitsForEventsOtherRoutersHold(t *testing.T) {
	nats := natstest.Start(t, 1)
	late := make(chan struct{})
	a := newEnv(t, withTier(nats.URLs(), "a"), withFaults(refpipe.Faults{}, refpipe.Faults{CachedHandler: 0.3}), func(e *env) {
		e.wrapTier = func(tier ingress.Tier) ingress.Tier { return lateOutcomes{Tier: tier, open: late} }
	})
	var once sync.Once
	open := func() { once.Do(func() { close(late) }) }
	t.Cleanup(func() { a.stop(); open() })
	ctx := context.Background()
	a.acmeOnNew(t)
	from, mismatched := a.postCompared(t, 20)
	b := a.another(t, "b")
	waitFor(t, "router b's snapshot", func() bool { return b.router.RoutingVersion() == a.svc.State().Version })
	timer := time.AfterFunc(7*time.Second, open)
	defer timer.Stop()
	job, err := b.router.StartReplay(ctx, domain.ReplayRequest{Migration: "psa-webhooks-v2", Partners: []string{"acme"},
		From: from, To: time.Now().Add(time.Minute), Pipeline: "legacy", Filter: domain.ReplayMismatched, AwaitComparisons: true})
	if err != nil {
		t.Fatal(err)
	}
	if job.InFlight == 0 {
		t.Fatal("router b's replay found every event's outcome in the tier at once: the test would mean nothing")
	}
	waitFor(t, "the replay done", func() bool { j, _ := b.router.Replay(job.ID); return j.Status == domain.ReplayDone })
	got := a.legacy.AppliedIDs()
	slices.Sort(mismatched)
	if !slices.Equal(got, mismatched) {
		t.Fatalf("router b replayed %v, want the %d events router a found mismatched: %v", got, len(mismatched), mismatched)
	}
}
