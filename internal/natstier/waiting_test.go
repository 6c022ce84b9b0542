package natstier

import (
	"context"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstest"
)

// Events no router has taken show their age on every router.
func TestOldestWaitingIsTheFirstUndeliveredMessagesAge(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx := context.Background()
	tr, err := Open(ctx, Options{URLs: nc.URLs(), Name: "a", Replicas: 1, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	c, err := tr.stream.Consumer(ctx, consumerName(0))
	if err != nil {
		t.Fatal(err)
	}
	if got := tr.oldestWaiting(ctx, 0, c.CachedInfo()); got != 0 {
		t.Fatalf("an empty shard waits %v, want 0", got)
	}
	ev := journal.Event{Partner: "acme", Type: "ticket", EntityID: "1", DeliveryID: "d-1", ReceivedAt: time.Now(), Payload: []byte(`{}`)}
	if _, err := tr.Publish(ctx, []journal.Event{ev}); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond)
	if c, err = tr.stream.Consumer(ctx, consumerName(0)); err != nil {
		t.Fatal(err)
	}
	if got := tr.oldestWaiting(ctx, 0, c.CachedInfo()); got < 100*time.Millisecond || got > time.Minute {
		t.Fatalf("a message published 100 ms ago, taken by no router, waits %v", got)
	}
}
