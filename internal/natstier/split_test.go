package natstier_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstest"
	"github.com/switchbackhq/switchback/internal/natstier"
)

// deliveries records which router delivered each event first.
type deliveries struct {
	mu  sync.Mutex
	got map[string]string
}

// run has tr deliver (applying at once) until ctx ends, as router name.
func (d *deliveries) run(ctx context.Context, tr *natstier.Tier, name string) {
	go tr.Run(ctx, func(_ context.Context, evs []journal.Event) error {
		d.mu.Lock()
		for _, ev := range evs {
			if _, ok := d.got[ev.ID]; !ok {
				d.got[ev.ID] = name
			}
		}
		d.mu.Unlock()
		for _, ev := range evs {
			tr.Done(ev, journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", At: time.Now()})
		}
		return nil
	})
}

// wait waits 20 s at most for n events delivered.
func (d *deliveries) wait(t *testing.T, n int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		d.mu.Lock()
		got := len(d.got)
		by := map[string]int{}
		for _, r := range d.got {
			by[r]++
		}
		d.mu.Unlock()
		if got == n {
			t.Logf("delivered by %v", by)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered in 20 s (by %v)", got, n, by)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// burst is 20 updates of each of 30 entities, an entity's in order.
func burst() []journal.Event {
	var evs []journal.Event
	for n := range 20 {
		for e := range 30 {
			evs = append(evs, event("acme", e, n))
		}
	}
	return evs
}

// Routers started together split the shards between them: every event is
// delivered, once.
func TestRoutersStartedTogetherDeliverEverything(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := &deliveries{got: map[string]string{}}
	var tiers []*natstier.Tier
	for _, name := range []string{"a", "b", "c"} {
		tr := open(t, nc.URLs(), name)
		tiers = append(tiers, tr)
		d.run(ctx, tr, name)
	}
	want := burst()
	for i, ev := range want {
		if _, err := tiers[i%3].Publish(ctx, []journal.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	d.wait(t, len(want))
}

// Shards split between two routers: each delivers its own, and everything
// is delivered.
func TestSplitShardsDeliverEverything(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d := &deliveries{got: map[string]string{}}
	a, b := open(t, nc.URLs(), "a"), open(t, nc.URLs(), "b")
	d.run(ctx, b, "b")
	// Two entities, before router a pulls: router b is pinned to their shards.
	for e := range 2 {
		if _, err := b.Publish(ctx, []journal.Event{event("acme", e, 100)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	d.run(ctx, a, "a")
	want := burst()
	for i, ev := range want {
		if _, err := []*natstier.Tier{a, b}[i%2].Publish(ctx, []journal.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	d.wait(t, len(want)+2)
}
