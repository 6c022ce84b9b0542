package natstier_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstest"
)

// A live router keeps its shard while it holds an event it has not
// applied: through a quiet spell longer than the pin's TTL, and while its
// journal takes nothing more (a full backlog). The router beside it is
// handed nothing, so no entity is delivered by two routers at once.
func TestLiveRouterKeepsItsShard(t *testing.T) {
	nc := natstest.Start(t, 1)
	a, b := open(t, nc.URLs(), "a"), open(t, nc.URLs(), "b")
	ctx := context.Background()
	const pinnedTTL = 2 * time.Second // open's
	ka := &taker{tier: a, apply: func(journal.Event) bool { return false }}
	unblock, blocked := make(chan struct{}), make(chan struct{}, 1)
	actx, astop := context.WithCancel(ctx)
	defer astop()
	go a.Run(actx, func(ctx context.Context, evs []journal.Event) error {
		if len(ka.events()) > 0 { // from the second event on, as a full backlog does
			select {
			case blocked <- struct{}{}:
			default:
			}
			select {
			case <-unblock:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		return ka.take(ctx, evs)
	})
	publish := func(n int) {
		t.Helper()
		if _, err := a.Publish(ctx, []journal.Event{event("acme", 1, n)}); err != nil {
			t.Fatal(err)
		}
	}
	publish(0)
	waitFor(t, func() bool { return len(ka.events()) == 1 })
	kb := &taker{tier: b, apply: func(journal.Event) bool { return true }}
	bctx, bstop := context.WithCancel(ctx)
	defer bstop()
	go b.Run(bctx, kb.take)

	time.Sleep(2*pinnedTTL + time.Second) // quiet
	publish(1)
	select {
	case <-blocked:
	case <-time.After(30 * time.Second):
		t.Fatalf("router a was never handed the entity's next event; router b was handed %d: b has a's shard", len(kb.events()))
	}
	time.Sleep(2*pinnedTTL + time.Second) // router a's journal takes nothing
	publish(2)
	time.Sleep(500 * time.Millisecond)
	close(unblock)
	waitFor(t, func() bool { return len(ka.events()) == 3 })
	if got := kb.events(); len(got) != 0 {
		t.Fatalf("router b was handed %d events of router a's shard while a held them", len(got))
	}
}

// A batch the router's journal fails to take is handed out again, and
// the shard's next events do not overtake it: each entity's events reach
// the journal in order.
func TestEventsAJournalRefusedAreNotOvertaken(t *testing.T) {
	nc := natstest.Start(t, 1)
	a := open(t, nc.URLs(), "a")
	ctx := context.Background()
	k := &taker{tier: a, apply: func(journal.Event) bool { return true }}
	refused := make(chan struct{})
	first := true
	actx, astop := context.WithCancel(ctx)
	defer astop()
	go a.Run(actx, func(ctx context.Context, evs []journal.Event) error {
		if first {
			first = false
			close(refused)
			return errors.New("the journal is busy")
		}
		return k.take(ctx, evs)
	})
	for n := range 2 {
		if _, err := a.Publish(ctx, []journal.Event{event("acme", 1, n)}); err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			<-refused
		}
	}
	waitFor(t, func() bool { return len(k.events()) >= 2 })
	if got := k.events(); string(got[0].Payload) != `{"n":0}` || string(got[1].Payload) != `{"n":1}` {
		t.Fatalf("the journal took %s then %s: want the refused event first", got[0].Payload, got[1].Payload)
	}
}
