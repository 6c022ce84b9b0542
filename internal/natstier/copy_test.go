package natstier_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstest"
	"github.com/switchbackhq/switchback/internal/natstier"
)

// boltJournal journals events in a new bbolt file, completes those
// outcome gives one for, and returns what the file holds, in seq order,
// as journal copy reads it.
func boltJournal(t *testing.T, events []journal.Event, outcome func(journal.Event) *journal.Outcome) []journal.Event {
	t.Helper()
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	res, err := j.Append(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	for i, ev := range events {
		if out := outcome(ev); out != nil {
			if err := j.Complete(ctx, res[i].Seq, *out); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := journal.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []journal.Event
	if err := r.Each(ctx, func(e journal.Event) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

func number(ev journal.Event) int {
	var n int
	fmt.Sscanf(string(ev.Payload), `{"n":%d}`, &n)
	return n
}

// drained waits until every shard's consumer has handed out and had
// acknowledged every message of the stream.
func drained(t *testing.T, urls string, shards int) {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		for i := range shards {
			c, err := js.Consumer(context.Background(), natstier.DefaultStream, fmt.Sprintf("shard-%02d", i))
			if err != nil {
				return false
			}
			info := c.CachedInfo()
			if info.NumPending > 0 || info.NumAckPending > 0 {
				return false
			}
		}
		return true
	})
}

// A router's journal copied into the tier: the events it applied or
// dead-lettered are never handed to a router of the tier, those still
// pending are, each entity's in order; an event a router of the tier took
// already (a resend) is not published again.
func TestCopiedOutcomesAreNotDeliveredPendingAreInOrder(t *testing.T) {
	nc := natstest.Start(t, 1)
	tr := open(t, nc.URLs(), "copy")
	ctx := context.Background()
	const entities, per = 6, 8
	var events []journal.Event
	for n := range per {
		for e := range entities {
			events = append(events, event("acme", e, n))
		}
	}
	// Numbers 0 to 3 applied, 4 dead-lettered, the rest pending.
	copied := boltJournal(t, events, func(ev journal.Event) *journal.Outcome {
		switch n := number(ev); {
		case n < 4:
			return &journal.Outcome{State: journal.StateApplied, Pipeline: "new", Attempts: 1, At: ev.ReceivedAt.Add(time.Second)}
		case n == 4:
			return &journal.Outcome{State: journal.StateDeadLettered, Pipeline: "new", Attempts: 5, Error: "503", At: ev.ReceivedAt.Add(time.Minute)}
		}
		return nil
	})
	// A resend of entity 0's first pending delivery reached a router of
	// the tier before the copy.
	if _, err := tr.Publish(ctx, []journal.Event{event("acme", 0, 5)}); err != nil {
		t.Fatal(err)
	}

	c := tr.Copier()
	for b := range slices.Chunk(copied, 10) {
		if err := c.Copy(ctx, b); err != nil {
			t.Fatal(err)
		}
	}
	want := natstier.CopyStats{Published: entities*per - 1, Duplicates: 1, WithOutcome: entities * 5, Pending: entities*3 - 1}
	if got := c.Stats(); got != want {
		t.Fatalf("Copy: %+v, want %+v", got, want)
	}
	for _, ev := range copied {
		o, ok, err := tr.OutcomeOf(ctx, ev.ID)
		if err != nil {
			t.Fatal(err)
		}
		if ev.State.Terminal() != ok || ok && (o.State != ev.State || o.Pipeline != ev.Pipeline || o.Attempts != ev.Attempts || !o.At.Equal(ev.DoneAt)) {
			t.Fatalf("event %s (%s): the bucket holds %+v (%v)", ev.ID, ev.State, o, ok)
		}
	}

	k := &taker{tier: tr, apply: func(journal.Event) bool { return true }}
	rctx, stop := context.WithCancel(ctx)
	defer stop()
	go tr.Run(rctx, k.take)
	drained(t, nc.URLs(), tr.Shards())
	stop()

	got := k.events()
	if len(got) != entities*3 {
		t.Fatalf("the tier delivered %d events, want the %d pending", len(got), entities*3)
	}
	last := map[string]int{}
	for _, ev := range got {
		n := number(ev)
		if n < 5 {
			t.Fatalf("the tier delivered %s #%d, which the journal copied with its outcome", ev.EntityID, n)
		}
		if p, ok := last[ev.EntityID]; ok && n != p+1 || !ok && n != 5 {
			t.Fatalf("entity %s: #%d after #%d", ev.EntityID, n, p)
		}
		last[ev.EntityID] = n
	}
}

// Copying again publishes nothing, within the stream's duplicate window
// and past it.
func TestCopyTwicePublishesNothingNew(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx := context.Background()
	tr, err := natstier.Open(ctx, natstier.Options{URLs: nc.URLs(), Name: "copy", Replicas: 1, Shards: 4, DuplicateWindow: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.Close()
	var events []journal.Event
	for n := range 20 {
		events = append(events, event("acme", n%3, n))
	}
	copied := boltJournal(t, events, func(ev journal.Event) *journal.Outcome {
		if number(ev)%2 == 0 {
			return &journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", Attempts: 1, At: time.Now()}
		}
		return nil
	})
	first := tr.Copier()
	if err := first.Copy(ctx, copied); err != nil {
		t.Fatal(err)
	}
	if s := first.Stats(); s.Published != 20 || s.Duplicates != 0 {
		t.Fatalf("the first copy: %+v", s)
	}

	// Wait until the stream has forgotten the copy's message ids.
	js, err := jetstream.New(mustConnect(t, nc.URLs()))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		msg := &nats.Msg{Subject: natstier.SubjectPrefix + "probe.00", Header: nats.Header{}, Data: []byte(`{}`)}
		msg.Header.Set(jetstream.MsgIDHeader, copied[0].ID)
		ack, err := js.PublishMsg(ctx, msg)
		return err == nil && !ack.Duplicate
	})

	again := tr.Copier()
	if err := again.Copy(ctx, copied); err != nil {
		t.Fatal(err)
	}
	if s := again.Stats(); s != (natstier.CopyStats{Duplicates: 20}) {
		t.Fatalf("the same journal copied again past the duplicate window: %+v, want 20 duplicates", s)
	}
}

func mustConnect(t *testing.T, urls string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(urls)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// ReadAll reads every event of the stream in order, each with the outcome
// the bucket holds of it, and passes over what is not an event.
func TestReadAllGivesEventsWithTheirOutcomes(t *testing.T) {
	nc := natstest.Start(t, 1)
	tr := open(t, nc.URLs(), "a")
	ctx := context.Background()
	var events []journal.Event
	for n := range 600 {
		events = append(events, event("acme", n%7, n))
	}
	if _, err := tr.Publish(ctx, events); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(mustConnect(t, nc.URLs()))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.Publish(ctx, natstier.SubjectPrefix+"acme.00", []byte("not an event")); err != nil {
		t.Fatal(err)
	}
	k := &taker{tier: tr, apply: func(ev journal.Event) bool { return number(ev) < 100 }}
	rctx, stop := context.WithCancel(ctx)
	go tr.Run(rctx, k.take)
	waitFor(t, func() bool {
		o, ok, _ := tr.OutcomeOf(ctx, journal.EventID("acme", "d-1-99"))
		return ok && o.State == journal.StateApplied
	})
	stop()

	var got []natstier.Recorded
	foreign, err := tr.ReadAll(ctx, func(b []natstier.Recorded) error { got = append(got, b...); return nil })
	if err != nil {
		t.Fatal(err)
	}
	if foreign != 1 || len(got) != len(events) {
		t.Fatalf("ReadAll: %d events, %d foreign; want %d and 1", len(got), foreign, len(events))
	}
	for i, r := range got {
		if r.Event.ID != journal.EventID("acme", events[i].DeliveryID) || string(r.Event.Payload) != string(events[i].Payload) {
			t.Fatalf("event %d: %s %s, want %s in the stream's order", i, r.Event.ID, r.Event.Payload, events[i].DeliveryID)
		}
		if n := number(r.Event); n == 99 && (r.Outcome == nil || r.Outcome.State != journal.StateApplied) || n >= 100 && r.Outcome != nil {
			t.Fatalf("event #%d: outcome %+v", n, r.Outcome)
		}
	}
}

// A window of the past reads the events a copy brought into the stream
// after newer ones: the stream stores a copied event when the copy runs,
// long after it was received.
func TestWindowReadsEventsCopiedLater(t *testing.T) {
	nc := natstest.Start(t, 1)
	ctx := context.Background()
	tr := open(t, nc.URLs(), "copy")
	if _, err := tr.Publish(ctx, []journal.Event{event("acme", 1, 1)}); err != nil {
		t.Fatal(err)
	}
	old := event("acme", 2, 1)
	old.ReceivedAt = time.Now().Add(-2 * time.Hour).UTC()
	copied := boltJournal(t, []journal.Event{old}, func(journal.Event) *journal.Outcome {
		return &journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", Attempts: 1, At: old.ReceivedAt}
	})
	if err := tr.Copier().Copy(ctx, copied); err != nil {
		t.Fatal(err)
	}
	var got []journal.Event
	err := tr.Window(ctx, "acme", time.Now().Add(-3*time.Hour), time.Now().Add(-time.Hour), func(evs []journal.Event) error {
		got = append(got, evs...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0].ID != copied[0].ID || got[0].State != journal.StateApplied {
		t.Fatalf("the window of two hours ago read %+v, want the copied event, applied", got)
	}
}
