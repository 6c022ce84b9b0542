package natstier_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstest"
	"github.com/switchbackhq/switchback/internal/natstier"
)

const spreadShards = 16

// fleet records what the routers of a tier applied, in the order they
// applied it, across routers.
type fleet struct {
	t      *testing.T
	urls   string
	mu     sync.Mutex
	by     map[string][]string // event id → the routers that applied it, in order
	firsts map[string][]int    // entity → its updates, in the order first applied
}

// router is one router of the tier: like a router's journal, it takes
// each event once (an event handed again is given its outcome again if it
// has one, else left to the delivery that holds it), and like its
// delivery it applies each entity's events one at a time, in the order
// taken, each call to the pipeline taking applyLatency. Like
// takeFromTier, take waits while maxBacklog events wait to be applied.
type router struct {
	name    string
	tier    *natstier.Tier
	reg     *prometheus.Registry
	f       *fleet
	mu      sync.Mutex
	taken   map[string]bool  // id → applied
	lanes   map[string]*lane // entity → its events taken and not applied
	halt    atomic.Bool
	once    sync.Once
	cancel  context.CancelFunc
	ran     chan struct{}
	lanesWG sync.WaitGroup
	// latency is each pipeline call's, applyLatency unless a test slows
	// the router down.
	latency atomic.Int64
	backlog atomic.Int64
}

type lane struct {
	mu   sync.Mutex
	q    []journal.Event
	wake chan struct{}
}

const (
	applyLatency = 200 * time.Millisecond
	maxBacklog   = 300
)

func (f *fleet) start(name string) *router { return f.startLogging(name, slog.Default()) }

func (f *fleet) startLogging(name string, log *slog.Logger) *router {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	reg := prometheus.NewRegistry()
	tr, err := natstier.Open(ctx, natstier.Options{URLs: f.urls, Name: name, Replicas: 1, Shards: spreadShards, Registry: reg,
		AckWait: 2 * time.Second, PinnedTTL: 4 * time.Second, Logger: log})
	if err != nil {
		f.t.Fatal(err)
	}
	f.t.Cleanup(func() { tr.Close() })
	r := &router{name: name, tier: tr, reg: reg, f: f, taken: map[string]bool{}, lanes: map[string]*lane{}, ran: make(chan struct{})}
	rctx, rcancel := context.WithCancel(context.Background())
	r.cancel = rcancel
	r.latency.Store(int64(applyLatency))
	f.t.Cleanup(r.halted)
	go func() { defer close(r.ran); tr.Run(rctx, r.take) }()
	return r
}

func (r *router) take(ctx context.Context, events []journal.Event) error {
	for r.backlog.Load() >= maxBacklog {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, ev := range events {
		applied, seen := r.taken[ev.ID]
		switch {
		case !seen:
			r.taken[ev.ID] = false
			l := r.lanes[ev.EntityID]
			if l == nil {
				l = &lane{wake: make(chan struct{}, 1)}
				r.lanes[ev.EntityID] = l
				r.lanesWG.Go(func() { r.work(l) })
			}
			r.backlog.Add(1)
			l.mu.Lock()
			l.q = append(l.q, ev)
			l.mu.Unlock()
			select {
			case l.wake <- struct{}{}:
			default:
			}
		case applied:
			r.tier.Done(ev, journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", Attempts: 1, At: time.Now()})
		}
	}
	return nil
}

// work applies a lane's events in order until the router is halted.
func (r *router) work(l *lane) {
	for {
		l.mu.Lock()
		if len(l.q) == 0 {
			l.mu.Unlock()
			if r.halt.Load() {
				return
			}
			<-l.wake
			continue
		}
		ev := l.q[0]
		l.q = l.q[1:]
		l.mu.Unlock()
		time.Sleep(time.Duration(r.latency.Load()))
		if r.halt.Load() {
			return
		}
		r.f.applied(r.name, ev)
		r.backlog.Add(-1)
		r.mu.Lock()
		r.taken[ev.ID] = true
		r.mu.Unlock()
		r.tier.Done(ev, journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", Attempts: 1, At: time.Now()})
	}
}

// halted stops delivering: what the router holds and has not applied is
// applied by no one until another router is handed it.
func (r *router) halted() {
	r.once.Do(func() {
		r.halt.Store(true)
		r.cancel()
		<-r.ran // take is called no more
		r.mu.Lock()
		for _, l := range r.lanes {
			select {
			case l.wake <- struct{}{}:
			default:
			}
		}
		r.mu.Unlock()
		r.lanesWG.Wait()
	})
}

// stop stops the router as ingress does: delivery, then Run, then
// Release, which hands back what it holds unapplied and unpins its shards.
func (r *router) stop() {
	r.halted()
	r.tier.Release(context.Background())
}

// die stops the router without a word: no Release, its connection gone.
func (r *router) die() {
	r.halted()
	r.tier.Close()
}

// held is the router's switchback_tier_shards_held.
func (r *router) held() int {
	mfs, err := r.reg.Gather()
	if err != nil {
		r.f.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "switchback_tier_shards_held" {
			return int(mf.GetMetric()[0].GetGauge().GetValue())
		}
	}
	return -1
}

func (r *router) given() int {
	mfs, _ := r.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "switchback_tier_shards_given_total" {
			return int(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	return -1
}

func (f *fleet) applied(name string, ev journal.Event) {
	var n int
	fmt.Sscanf(string(ev.Payload), `{"n":%d}`, &n)
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.by[ev.ID]) == 0 {
		f.firsts[ev.EntityID] = append(f.firsts[ev.EntityID], n)
	}
	f.by[ev.ID] = append(f.by[ev.ID], name)
}

// settle waits until the routers hold every shard between them, each its
// share: spreadShards/len(rs), rounded down or up.
func settle(t *testing.T, rs ...*router) {
	t.Helper()
	lo, hi := spreadShards/len(rs), (spreadShards+len(rs)-1)/len(rs)
	var last string
	deadline := time.Now().Add(120 * time.Second)
	for {
		sum, ok := 0, true
		var says []string
		for _, r := range rs {
			h := r.held()
			sum += h
			ok = ok && h >= lo && h <= hi
			says = append(says, fmt.Sprintf("%s %d (gave %d)", r.name, h, r.given()))
		}
		last = strings.Join(says, ", ")
		if ok && sum == spreadShards {
			t.Logf("settled: %s", last)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the routers hold %s of %d shards 120 s on, want each %d to %d and every shard held", last, spreadShards, lo, hi)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// flow publishes, until stopped, updates of 96 entities in turn (every
// shard has some), each entity's numbered in order, through the router
// that pub returns, one every 5 ms: an entity's every half second or so,
// so that its lane is busy less than half the time, and a router holds
// some of most shards whenever it gives one away. It returns what it
// published.
type flow struct {
	stop chan struct{}
	done chan []journal.Event
}

func startFlow(t *testing.T, pub func() *natstier.Tier) *flow {
	const entities = 96
	shards := map[string]bool{}
	for e := range entities {
		s := natstier.Subject(event("acme", e, 0), spreadShards)
		shards[s[strings.LastIndex(s, ".")+1:]] = true
	}
	if len(shards) != spreadShards {
		t.Fatalf("%d entities cover %d of %d shards", entities, len(shards), spreadShards)
	}
	b := &flow{stop: make(chan struct{}), done: make(chan []journal.Event, 1)}
	go func() {
		var sent []journal.Event
		defer func() { b.done <- sent }()
		for n := 0; ; n++ {
			for e := range entities {
				select {
				case <-b.stop:
					return
				default:
				}
				ev := event("acme", e, n)
				for {
					if _, err := pub().Publish(context.Background(), []journal.Event{ev}); err == nil {
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
				sent = append(sent, ev)
				time.Sleep(5 * time.Millisecond)
			}
		}
	}()
	return b
}

func (b *flow) end() []journal.Event {
	close(b.stop)
	return <-b.done
}

// delivered waits until every event sent has been applied, then checks
// that each entity's were first applied in the order sent, and that none
// was applied twice unless twice is allowed (a router died holding it).
func (f *fleet) delivered(t *testing.T, sent []journal.Event, twice func(id string, by []string) bool) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for {
		f.mu.Lock()
		missing := 0
		for _, ev := range sent {
			if len(f.by[journal.IDOf(ev)]) == 0 {
				missing++
			}
		}
		f.mu.Unlock()
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events sent never applied 90 s on", missing, len(sent))
		}
		time.Sleep(50 * time.Millisecond)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	count := map[string]int{}
	per := map[string]int{} // entity → updates sent
	for _, ev := range sent {
		per[ev.EntityID]++
		id := journal.IDOf(ev)
		for _, r := range f.by[id] {
			count[r]++
		}
		if by := f.by[id]; len(by) > 1 && !twice(id, by) {
			t.Errorf("event %s (entity %s, %s) applied by %v", id, ev.EntityID, ev.Payload, by)
		}
	}
	for entity, n := range per {
		got := f.firsts[entity]
		for i := range n {
			if i >= len(got) || got[i] != i {
				t.Fatalf("entity %s applied in the order %v, want 0 to %d", entity, got, n-1)
			}
		}
	}
	t.Logf("%d events applied: %v", len(sent), count)
}

func newFleet(t *testing.T) *fleet {
	return &fleet{t: t, urls: natstest.Start(t, 1).URLs(), by: map[string][]string{}, firsts: map[string][]int{}}
}

// A router alone holds every shard; a second, then a third, joining take
// their share of them from it while events flow, and every event is
// applied once, each entity's in order.
func TestShardsSpreadOverTheRoutersThatJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the tier to settle")
	}
	f := newFleet(t)
	a := f.start("a")
	b := startFlow(t, func() *natstier.Tier { return a.tier })
	settle(t, a)
	rb := f.start("b")
	settle(t, a, rb)
	rc := f.start("c")
	settle(t, a, rb, rc)
	sent := b.end()
	f.delivered(t, sent, func(string, []string) bool { return false })
	if a.given() < spreadShards-(spreadShards+2)/3 {
		t.Errorf("router a gave away %d shards, want at least the %d it held beyond its share", a.given(), spreadShards-(spreadShards+2)/3)
	}
}

// Routers started together share the shards; one that stops hands its
// shards to the others, and so does one that dies, once its pins expire.
func TestShardsOfARouterStoppedOrDeadGoToTheOthers(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the tier to settle")
	}
	f := newFleet(t)
	a, rb, rc := f.start("a"), f.start("b"), f.start("c")
	b := startFlow(t, func() *natstier.Tier { return a.tier })
	settle(t, a, rb, rc)
	rc.stop()
	settle(t, a, rb)
	rb.die()
	settle(t, a)
	sent := b.end()
	// Router b may have applied an event whose outcome never reached the
	// tier before it died: it is applied again, with the same
	// Idempotency-Key.
	f.delivered(t, sent, func(_ string, by []string) bool { return len(by) == 2 && by[0] == "b" })
}

// counting passes records on, counting those whose message is the one
// watched.
type counting struct {
	slog.Handler
	msg string
	n   *atomic.Int64
}

func (c counting) Handle(ctx context.Context, r slog.Record) error {
	if r.Message == c.msg {
		c.n.Add(1)
	}
	return c.Handler.Handle(ctx, r)
}

func (c counting) WithAttrs(as []slog.Attr) slog.Handler {
	return counting{Handler: c.Handler.WithAttrs(as), msg: c.msg, n: c.n}
}

func (c counting) WithGroup(g string) slog.Handler {
	return counting{Handler: c.Handler.WithGroup(g), msg: c.msg, n: c.n}
}

// A router whose pipeline is too slow for what it holds of a shard to be
// delivered before the shard's pin would lapse keeps the shard, pulling it
// again, and gives shards away once its pipeline is quick again: nothing
// is applied twice or out of order meanwhile.
func TestAGiveNotDeliveredInTimeKeepsTheShard(t *testing.T) {
	if testing.Short() {
		t.Skip("waits for the tier to settle")
	}
	f := newFleet(t)
	var kept atomic.Int64
	a := f.startLogging("a", slog.New(counting{Handler: slog.Default().Handler(), msg: "kept a shard it meant to give away: what it holds of it was not delivered in time", n: &kept}))
	a.latency.Store(int64(1500 * time.Millisecond)) // the drain waits 1 s (PinnedTTL 4 s)
	b := startFlow(t, func() *natstier.Tier { return a.tier })
	settle(t, a)
	rb := f.start("b")
	waitFor(t, func() bool { return kept.Load() >= 2 })
	a.latency.Store(int64(applyLatency))
	settle(t, a, rb)
	sent := b.end()
	f.delivered(t, sent, func(string, []string) bool { return false })
	t.Logf("router a kept a shard it meant to give %d times", kept.Load())
}
