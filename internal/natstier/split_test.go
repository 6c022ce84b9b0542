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

// Routers started together split the shards between them: every event is
// delivered, once.
func TestRoutersStartedTogetherDeliverEverything(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	got := map[string]string{}
	var tiers []*natstier.Tier
	for _, name := range []string{"a", "b", "c"} {
		tr := open(t, nc.URLs(), name)
		tiers = append(tiers, tr)
		go tr.Run(ctx, func(_ context.Context, evs []journal.Event) error {
			mu.Lock()
			for _, ev := range evs {
				if _, ok := got[ev.ID]; !ok {
					got[ev.ID] = name
				}
			}
			mu.Unlock()
			for _, ev := range evs {
				tr.Done(ev, journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", At: time.Now()})
			}
			return nil
		})
	}
	var want []journal.Event
	for n := range 20 {
		for e := range 30 {
			want = append(want, event("acme", e, n))
		}
	}
	for i, ev := range want {
		if _, err := tiers[i%3].Publish(ctx, []journal.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		by := map[string]int{}
		for _, r := range got {
			by[r]++
		}
		mu.Unlock()
		if n == len(want) {
			t.Logf("delivered by %v", by)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered in 20 s (by %v)", n, len(want), by)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Shards split between two routers: each delivers its own, and everything
// is delivered.
func TestSplitShardsDeliverEverything(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	got := map[string]string{}
	run := func(tr *natstier.Tier, name string) {
		go tr.Run(ctx, func(_ context.Context, evs []journal.Event) error {
			mu.Lock()
			for _, ev := range evs {
				if _, ok := got[ev.ID]; !ok {
					got[ev.ID] = name
				}
			}
			mu.Unlock()
			for _, ev := range evs {
				tr.Done(ev, journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", At: time.Now()})
			}
			return nil
		})
	}
	a, b := open(t, nc.URLs(), "a"), open(t, nc.URLs(), "b")
	run(b, "b")
	// Two entities, before router a pulls: router b is pinned to their shards.
	for e := range 2 {
		if _, err := b.Publish(ctx, []journal.Event{event("acme", e, 100)}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(300 * time.Millisecond)
	run(a, "a")
	var want []journal.Event
	for n := range 20 {
		for e := range 30 {
			want = append(want, event("acme", e, n))
		}
	}
	for i, ev := range want {
		if _, err := []*natstier.Tier{a, b}[i%2].Publish(ctx, []journal.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		by := map[string]int{}
		for _, r := range got {
			by[r]++
		}
		mu.Unlock()
		if n == len(want)+2 {
			t.Logf("delivered by %v", by)
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d events delivered in 20 s (by %v)", n, len(want)+2, by)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
