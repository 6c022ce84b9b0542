package natstier_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstest"
	"github.com/switchbackhq/switchback/internal/natstier"
)

func open(t *testing.T, urls, name string) *natstier.Tier {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := natstier.Open(ctx, natstier.Options{URLs: urls, Name: name, Replicas: 1, Shards: 4,
		AckWait: 500 * time.Millisecond, PinnedTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

func event(partner string, entity, n int) journal.Event {
	return journal.Event{Partner: partner, PSA: "generic", Type: "ticket", Action: "updated",
		EntityID: fmt.Sprint(entity), DeliveryID: fmt.Sprintf("d-%d-%d", entity, n),
		ReceivedAt: time.Now().UTC(), Payload: []byte(fmt.Sprintf(`{"n":%d}`, n))}
}

func TestPublishDeduplicatesAcrossRouters(t *testing.T) {
	nc := natstest.Start(t, 1)
	a, b := open(t, nc.URLs(), "a"), open(t, nc.URLs(), "b")
	ctx := context.Background()
	first, err := a.Publish(ctx, []journal.Event{event("acme", 1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.Publish(ctx, []journal.Event{event("acme", 1, 1)})
	if err != nil {
		t.Fatal(err)
	}
	if first[0].Duplicate || !again[0].Duplicate || again[0].Seq != first[0].Seq || again[0].ID != first[0].ID {
		t.Fatalf("first %+v, resent to another router %+v: want one message, the resend a duplicate", first[0], again[0])
	}
	if first[0].ID != journal.EventID("acme", "d-1-1") {
		t.Fatalf("id %s, want journal.EventID's", first[0].ID)
	}
	other, err := b.Publish(ctx, []journal.Event{event("globex", 1, 1)})
	if err != nil || other[0].Duplicate {
		t.Fatalf("the same delivery id of another partner: %+v, %v", other, err)
	}
}

// taker records what a router was handed, and applies (Done) only while
// apply says so. Like a router's journal, it knows an event handed to it
// again: it records it once, and gives its outcome again if it has one.
type taker struct {
	tier    *natstier.Tier
	mu      sync.Mutex
	got     []journal.Event
	applied map[string]bool
	apply   func(journal.Event) bool
}

func (k *taker) take(_ context.Context, events []journal.Event) error {
	k.mu.Lock()
	defer k.mu.Unlock()
	if k.applied == nil {
		k.applied = map[string]bool{}
	}
	for _, ev := range events {
		applied, seen := k.applied[ev.ID]
		if !seen {
			k.got = append(k.got, ev)
			applied = k.apply(ev)
			k.applied[ev.ID] = applied
		}
		if applied {
			k.tier.Done(ev, journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", Attempts: 1, At: time.Now()})
		}
	}
	return nil
}

func (k *taker) events() []journal.Event {
	k.mu.Lock()
	defer k.mu.Unlock()
	return append([]journal.Event(nil), k.got...)
}

// A router that dies holding messages: the other router is handed each of
// them, each entity's in order, and none that was applied and recorded.
func TestDeadRoutersWorkGoesToAnotherInOrder(t *testing.T) {
	nc := natstest.Start(t, 1)
	a, b := open(t, nc.URLs(), "a"), open(t, nc.URLs(), "b")
	const entities, per = 8, 25
	var want []journal.Event
	for n := range per {
		for e := range entities {
			want = append(want, event("acme", e, n))
		}
	}
	if _, err := a.Publish(context.Background(), want); err != nil {
		t.Fatal(err)
	}
	// Router a applies every event whose number is below 10, and dies
	// holding the rest.
	ka := &taker{tier: a}
	ka.apply = func(ev journal.Event) bool { var n int; fmt.Sscanf(string(ev.Payload), `{"n":%d}`, &n); return n < 10 }
	actx, akill := context.WithCancel(context.Background())
	go a.Run(actx, ka.take)
	waitFor(t, func() bool { return len(ka.events()) == len(want) })
	time.Sleep(200 * time.Millisecond) // the outcomes reach the bucket
	akill()
	a.Close() // no Release: it died

	kb := &taker{tier: b, apply: func(journal.Event) bool { return true }}
	bctx, bstop := context.WithCancel(context.Background())
	defer bstop()
	go b.Run(bctx, kb.take)
	waitFor(t, func() bool { return len(kb.events()) >= entities*(per-10) })
	time.Sleep(time.Second) // anything more would be a duplicate
	got := kb.events()
	if len(got) != entities*(per-10) {
		t.Fatalf("router b was handed %d events, want the %d router a held", len(got), entities*(per-10))
	}
	last := map[string]int{}
	for _, ev := range got {
		var n int
		fmt.Sscanf(string(ev.Payload), `{"n":%d}`, &n)
		if n < 10 {
			t.Fatalf("router b was handed %s #%d, which router a applied", ev.EntityID, n)
		}
		if p, ok := last[ev.EntityID]; ok && n != p+1 {
			t.Fatalf("entity %s: #%d after #%d", ev.EntityID, n, p)
		}
		last[ev.EntityID] = n
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("timed out")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A NATS node stopped during a burst, the stream's leader: publishing
// goes on (or is refused with a Retry-After, never acknowledged and then
// lost), and every event acknowledged is handed to a router.
func TestNodeStoppedDuringBurstLosesNothingAcknowledged(t *testing.T) {
	if testing.Short() {
		t.Skip("a three-node cluster")
	}
	cluster := natstest.Start(t, 3)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := natstier.Open(ctx, natstier.Options{URLs: cluster.URLs(), Name: "a", Replicas: 3, Shards: 4,
		AckWait: 500 * time.Millisecond, PinnedTTL: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()

	var mu sync.Mutex
	acked := map[string]bool{}
	refused := 0
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				ev := event("acme", w, n)
				res, err := tr.Publish(context.Background(), []journal.Event{ev})
				mu.Lock()
				if err != nil {
					var de *domain.Error
					if !errors.As(err, &de) || de.RetryAfter <= 0 {
						t.Errorf("a refusal without a Retry-After: %v", err)
					}
					refused++
				} else {
					acked[res[0].ID] = true
				}
				mu.Unlock()
			}
		})
	}
	time.Sleep(time.Second)
	leader := cluster.StreamLeader(t, natstier.DefaultStream)
	cluster.Stop(leader)
	t.Logf("stopped node %d, the stream's leader", leader+1)
	time.Sleep(2 * time.Second)
	close(stop)
	wg.Wait()
	mu.Lock()
	t.Logf("%d acknowledged, %d refused with a Retry-After", len(acked), refused)
	mu.Unlock()

	k := &taker{tier: tr, apply: func(journal.Event) bool { return true }}
	rctx, rstop := context.WithCancel(context.Background())
	defer rstop()
	go tr.Run(rctx, k.take)
	waitFor(t, func() bool {
		seen := map[string]bool{}
		for _, ev := range k.events() {
			seen[ev.ID] = true
		}
		mu.Lock()
		defer mu.Unlock()
		for id := range acked {
			if !seen[id] {
				return false
			}
		}
		return true
	})
}

// A replay asked of every router runs on one: the first to claim it, as
// every router is told.
func TestClaimHasOneWinner(t *testing.T) {
	nc := natstest.Start(t, 1)
	a, b := open(t, nc.URLs(), "a"), open(t, nc.URLs(), "b")
	ctx := context.Background()
	var wg sync.WaitGroup
	got := make([]string, 2)
	for i, tr := range []*natstier.Tier{a, b} {
		wg.Go(func() {
			w, err := tr.Claim(ctx, "rpl_1")
			if err != nil {
				t.Error(err)
			}
			got[i] = w.Router
		})
	}
	wg.Wait()
	if got[0] != got[1] || (got[0] != "a" && got[0] != "b") {
		t.Fatalf("claims answered %q and %q, want the same winner", got[0], got[1])
	}
	if w, _ := b.Claim(ctx, "rpl_2"); w.Router != "b" {
		t.Fatalf("a job nobody claimed went to %q", w.Router)
	}
}

// The tier's history answers as a router's entity index would, from what
// any router recorded: the latest event applied, a dead letter after it
// (applied once a replay applies it), and what has no outcome yet.
func TestHistoryReadsWhatAnyRouterRecorded(t *testing.T) {
	nc := natstest.Start(t, 1)
	a, b := open(t, nc.URLs(), "a"), open(t, nc.URLs(), "b")
	ctx := context.Background()
	since := time.Now().Add(-time.Minute)
	evs := []journal.Event{event("acme", 1, 0), event("acme", 1, 1), event("acme", 2, 0), event("acme", 3, 0), event("acme", 3, 1)}
	if _, err := a.Publish(ctx, evs); err != nil {
		t.Fatal(err)
	}
	outcome := map[string]journal.State{ // by "entity-n"; 3-1 gets none
		"1-0": journal.StateApplied, "1-1": journal.StateApplied, "2-0": journal.StateDeadLettered, "3-0": journal.StateApplied,
	}
	k := &taker{tier: b}
	k.apply = func(journal.Event) bool { return false }
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go b.Run(rctx, k.take)
	waitFor(t, func() bool { return len(k.events()) == len(evs) })
	for _, ev := range k.events() {
		var n int
		fmt.Sscanf(string(ev.Payload), `{"n":%d}`, &n)
		if st, ok := outcome[fmt.Sprintf("%s-%d", ev.EntityID, n)]; ok {
			b.Done(ev, journal.Outcome{State: st, Pipeline: "new", Attempts: 1, At: time.Now()})
		}
	}
	b.Replayed(journal.EventID("acme", "d-2-0"), "legacy")
	entities := []journal.Entity{{Type: "ticket", ID: "1"}, {Type: "ticket", ID: "2"}, {Type: "ticket", ID: "3"}, {Type: "ticket", ID: "4"}}
	var recs []journal.EntityRecord
	waitFor(t, func() bool {
		var err error // a new History: one reads a window once for a run of lookups
		recs, err = (&natstier.History{Tier: a}).EntitiesSince(ctx, "acme", since, entities)
		return err == nil && recs[0].Applied != nil && recs[1].Applied != nil && recs[2].Applied != nil && recs[0].Applied.ID == journal.EventID("acme", "d-1-1")
	})
	if r := recs[1]; r.Applied.Pipeline != "legacy" || r.Failed != nil {
		t.Errorf("entity 2 (dead-lettered, then applied by a replay): %+v", r)
	}
	if r := recs[2]; r.Applied.ID != journal.EventID("acme", "d-3-0") || len(r.Pending) != 1 || r.Pending[0].ID != journal.EventID("acme", "d-3-1") {
		t.Errorf("entity 3: %+v, want #0 applied and #1 pending", r)
	}
	if r := recs[3]; r.Applied != nil || r.Failed != nil || len(r.Pending) != 0 {
		t.Errorf("entity 4, never sent: %+v", r)
	}
	ev, err := (&natstier.History{Tier: a}).Get(ctx, recs[0].Applied.Seq)
	if err != nil || ev.ID != journal.EventID("acme", "d-1-1") || ev.State != journal.StateApplied {
		t.Fatalf("Get(%d) = %+v, %v", recs[0].Applied.Seq, ev, err)
	}
}

// A router whose shard cannot be pulled when it starts (its consumer
// unreadable, as while a three-node cluster elects a stream leader after
// a node stopped) keeps trying, and delivers the shard once it can: it
// does not go on acknowledging webhooks that it never delivers.
func TestRunRetriesAShardItCannotPullYet(t *testing.T) {
	nc := natstest.Start(t, 1)
	a := open(t, nc.URLs(), "a")
	conn, err := nats.Connect(nc.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := js.DeleteConsumer(ctx, natstier.DefaultStream, "shard-00"); err != nil {
		t.Fatal(err)
	}
	var want []journal.Event
	onShard0 := 0
	for e := range 16 {
		ev := event("acme", e, 0)
		if strings.HasSuffix(natstier.Subject(ev, a.Shards()), ".00") {
			onShard0++
		}
		want = append(want, ev)
	}
	if onShard0 == 0 || onShard0 == len(want) {
		t.Fatalf("%d of %d events on shard 00: the test needs some on it and some on others", onShard0, len(want))
	}
	if _, err := a.Publish(ctx, want); err != nil {
		t.Fatal(err)
	}
	k := &taker{tier: a, apply: func(journal.Event) bool { return true }}
	rctx, rstop := context.WithCancel(ctx)
	defer rstop()
	ran := make(chan error, 1)
	go func() { ran <- a.Run(rctx, k.take) }()
	// The shards that can be pulled are delivered meanwhile.
	waitFor(t, func() bool { return len(k.events()) > 0 })
	select {
	case err := <-ran:
		t.Fatalf("Run gave up on a shard it could not pull yet: %v", err)
	case <-time.After(time.Second):
	}
	// The consumer is back (another router provisions it): its events
	// are delivered too.
	open(t, nc.URLs(), "b")
	waitFor(t, func() bool { return len(k.events()) == len(want) })
}
