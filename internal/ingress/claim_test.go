package ingress_test

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/ingress"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

func withClaimLease(d time.Duration) envOption { return func(e *env) { e.claimLease = d } }

// askSlowReplay delivers n events of acme through routers a and b of a
// tier, then asks the control service for a replay of them through legacy
// at rate events a second. It returns the job and the events' ids.
func askSlowReplay(t *testing.T, a, b *env, n, rate int) (domain.ReplayJob, []string) {
	t.Helper()
	from := time.Now().Add(-time.Minute)
	for i := range n {
		e := []*env{a, b}[i%2]
		if st, _ := e.post(t, "acme", fmt.Sprint("s-", i), "ticket.updated", fmt.Sprint(i), nil, ""); st != 202 {
			t.Fatalf("answered %d", st)
		}
	}
	waitFor(t, "the deliveries", func() bool { return a.newer.Applications() == n })
	job, err := a.svc.AskReplay(context.Background(), control.Change{Actor: "t", Reason: "test"}, domain.ReplayRequest{Migration: "psa-webhooks-v2",
		Partners: []string{"acme"}, From: from, To: time.Now().Add(time.Minute), Pipeline: "legacy", Filter: domain.ReplayAll, Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	return job, a.newer.AppliedIDs()
}

// follow has e's router follow the replays the control service asks and
// report their progress, as a router process does, until the returned
// stop is called (at the latest when the test ends).
func follow(t *testing.T, e *env) (stop func()) {
	t.Helper()
	controls := mustControls(t, e.control.URL)
	token := e.svc.AddEphemeralToken("router-"+e.routerName, domain.RoleRouter)
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { e.router.FollowAsked(ctx, http.DefaultClient, controls, token, 20*time.Millisecond) })
	wg.Go(func() { e.router.ReportTo(ctx, http.DefaultClient, controls, token, e.routerName, 20*time.Millisecond) })
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); wg.Wait() }) }
	t.Cleanup(stop)
	return stop
}

// The router that claimed a replay asked of the tier dies mid-job and
// never comes back: once its claim has gone unrenewed for a lease, the
// other router takes the replay over and runs it from the start. Every
// event of the window is applied by legacy, none twice though the taker
// sends again what the dead router had sent (with the same
// Idempotency-Key), and the control service shows the replay done with
// the taker's full count, not the dead router's last progress.
func TestTierReplayOfADeadClaimantIsTakenOver(t *testing.T) {
	a, b := tierOnNew(t, withClaimLease(time.Second))
	const n = 10
	job, ids := askSlowReplay(t, a, b, n, 5)
	stops := map[string]func(){"a": follow(t, a), "b": follow(t, b)}
	envs := map[string]*env{"a": a, "b": b}
	var claimant, taker *env
	sent := 0
	waitFor(t, "the claimant's progress at the control service", func() bool {
		j, err := a.svc.AskedReplay(job.ID)
		if err != nil || j.Status != domain.ReplayRunning || j.Done < 2 || envs[j.RunBy] == nil {
			return false
		}
		claimant, sent = envs[j.RunBy], j.Done
		return true
	})
	taker = map[*env]*env{a: b, b: a}[claimant]
	stops[claimant.routerName]()
	claimant.stop()

	waitFor(t, "the other router to take the replay over and finish it", func() bool {
		j, err := taker.router.Replay(job.ID)
		return err == nil && j.Status == domain.ReplayDone && j.TakenFrom == claimant.routerName
	})
	if j, _ := taker.router.Replay(job.ID); j.Total != n || j.Done != n || j.Failed != 0 || j.RunBy != taker.routerName || j.Takeover != 1 {
		t.Fatalf("the taker's job %+v, want all %d events replayed, run by %s after one takeover", j, n, taker.routerName)
	}
	if got := a.legacy.AppliedIDs(); !slices.Equal(got, ids) {
		t.Fatalf("legacy applied %v, want every event of the window: %v", got, ids)
	}
	if calls := a.legacy.Calls(pipelineclient.Apply); calls < n+sent {
		t.Fatalf("legacy was called %d times to apply, want at least %d: the taker sends again what the dead router sent", calls, n+sent)
	}
	waitFor(t, "the control service to show the replay done", func() bool {
		j, err := a.svc.AskedReplay(job.ID)
		return err == nil && j.Status == domain.ReplayDone
	})
	if j, _ := a.svc.AskedReplay(job.ID); j.Total != n || j.Done != n || j.RunBy != taker.routerName || j.TakenFrom != claimant.routerName {
		t.Fatalf("the control service shows %+v, want %d of %d done by %s, taken from %s", j, n, n, taker.routerName, claimant.routerName)
	}
}

// A claimant that renews its claim is never taken over, though its replay
// lasts several leases; nor is one that finished, once it is gone: the
// other router never sends an event of the replay.
func TestTierReplayOfALiveOrFinishedClaimantIsNotTakenOver(t *testing.T) {
	const lease = time.Second
	a, b := tierOnNew(t, withClaimLease(lease))
	const n = 12
	job, _ := askSlowReplay(t, a, b, n, 3) // four leases
	stops := map[string]func(){"a": follow(t, a), "b": follow(t, b)}
	var claimant, other *env
	waitFor(t, "a router to run the replay", func() bool {
		for _, e := range []*env{a, b} {
			if j, err := e.router.Replay(job.ID); err == nil && j.RunBy == e.routerName {
				claimant, other = e, map[*env]*env{a: b, b: a}[e]
				return true
			}
		}
		return false
	})
	waitFor(t, "the claimant to finish the replay", func() bool {
		j, err := claimant.router.Replay(job.ID)
		return err == nil && j.Status == domain.ReplayDone
	})
	check := func(when string) {
		t.Helper()
		if j, err := other.router.Replay(job.ID); err != nil || j.RunBy != claimant.routerName || j.Total != 0 || j.TakenFrom != "" {
			t.Fatalf("%s, the other router holds the job as %+v (%v), want it run by %s, nothing sent here", when, j, err, claimant.routerName)
		}
		if calls := a.legacy.Calls(pipelineclient.Apply); calls != n {
			t.Fatalf("%s, legacy was called %d times to apply, want %d: each event once, by the claimant", when, calls, n)
		}
	}
	check("once the claimant finished")
	if j, _ := claimant.router.Replay(job.ID); j.Total != n || j.Done != n || j.TakenFrom != "" {
		t.Fatalf("the claimant's job %+v, want all %d events replayed there", j, n)
	}

	stops[claimant.routerName]()
	claimant.stop()
	time.Sleep(3 * lease) // the other router goes on watching the finished claim
	check("three leases after the claimant stopped")
}

// slowWindow reads a replay's window slowly, as a long window of a busy
// stream is read.
type slowWindow struct {
	ingress.Tier
	d time.Duration
}

func (s slowWindow) Window(ctx context.Context, partner string, from, to time.Time, fn func([]journal.Event) error) error {
	if !sleepCtx(ctx, s.d) {
		return ctx.Err()
	}
	return s.Tier.Window(ctx, partner, from, to, fn)
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	select {
	case <-time.After(d):
		return true
	case <-ctx.Done():
		return false
	}
}

// The router that claims a replay holds its claim while it reads the
// window, though the reading outlasts the claim's lease: none of the three
// routers following the control service takes it over, and the replay
// runs once, on the claimant.
func TestTierReplayClaimHeldWhileItsWindowIsRead(t *testing.T) {
	slow := func(e *env) {
		e.wrapTier = func(tier ingress.Tier) ingress.Tier { return slowWindow{Tier: tier, d: 3 * time.Second} }
	}
	a, b := tierOnNew(t, withClaimLease(time.Second), slow)
	c := a.another(t, "c", slow)
	waitFor(t, "router c's snapshot", func() bool { return c.router.RoutingVersion() == a.svc.State().Version })
	const n = 6
	job, ids := askSlowReplay(t, a, b, n, 0)
	for _, e := range []*env{a, b, c} {
		follow(t, e)
	}
	waitFor(t, "the control service to show the replay done", func() bool {
		j, err := a.svc.AskedReplay(job.ID)
		return err == nil && j.Status == domain.ReplayDone
	})
	if j, _ := a.svc.AskedReplay(job.ID); j.Takeover != 0 || j.TakenFrom != "" || j.Total != n || j.Done != n {
		t.Fatalf("the control service shows %+v, want %d of %d done by the claimant, never taken over", j, n, n)
	}
	if got := a.legacy.AppliedIDs(); !slices.Equal(got, ids) {
		t.Fatalf("legacy applied %v, want every event of the window: %v", got, ids)
	}
}
