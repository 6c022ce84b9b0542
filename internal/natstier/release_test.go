package natstier

import (
	"context"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstest"
)

// A router that stops lets go of its own shards only: another router's
// stay pinned to it, so that it keeps delivering them in order.
func TestReleaseUnpinsOnlyItsOwnShards(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx := context.Background()
	openTier := func(name string) *Tier {
		tr, err := Open(ctx, Options{URLs: nc.URLs(), Name: name, Replicas: 1, Shards: 2,
			AckWait: 500 * time.Millisecond, PinnedTTL: 2 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { tr.Close() })
		return tr
	}
	a, b := openTier("a"), openTier("b")
	taken := make(chan struct{}, 100)
	actx, astop := context.WithCancel(ctx)
	defer astop()
	go a.Run(actx, func(_ context.Context, evs []journal.Event) error {
		for _, ev := range evs {
			a.Done(ev, journal.Outcome{State: journal.StateApplied, At: time.Now()})
			taken <- struct{}{}
		}
		return nil
	})
	for e := range 8 { // over both shards
		ev := journal.Event{Partner: "acme", Type: "ticket", EntityID: string(rune('a' + e)), DeliveryID: string(rune('a' + e)), ReceivedAt: time.Now(), Payload: []byte(`{}`)}
		if _, err := a.Publish(ctx, []journal.Event{ev}); err != nil {
			t.Fatal(err)
		}
		<-taken
	}
	pinned := func() []string {
		var out []string
		for i := range 2 {
			c, err := a.stream.Consumer(ctx, consumerName(i))
			if err != nil {
				t.Fatal(err)
			}
			pin := ""
			for _, g := range c.CachedInfo().PriorityGroups {
				pin = g.PinnedClientID
			}
			out = append(out, pin)
		}
		return out
	}
	before := pinned()
	if before[0] == "" || before[1] == "" {
		t.Fatalf("pins %v: router a holds no shard", before)
	}
	bctx, bstop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { b.Run(bctx, func(context.Context, []journal.Event) error { return nil }); close(done) }()
	time.Sleep(200 * time.Millisecond)
	bstop()
	<-done
	b.Release(ctx)
	if after := pinned(); after[0] != before[0] || after[1] != before[1] {
		t.Fatalf("router b's release moved router a's shards: pins %v, were %v", after, before)
	}
	astop()
	a.Release(ctx)
	if after := pinned(); after[0] != "" || after[1] != "" {
		t.Fatalf("router a's release left its shards pinned: %v", after)
	}
}
