package natstier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchbackhq/switchback/internal/journal"
)

// Moving a router's bbolt journal into the tier, and the tier's journal
// back into a bbolt file (switchback journal copy).
//
// An event copied with a terminal outcome must not be delivered again:
// its outcome goes to the bucket before its message to the stream, and
// the message carries CopiedHeader, so that the routers look the outcome
// up (and acknowledge the message without a delivery) for such messages
// only, not for every live event.

// CopiedHeader marks a message that journal copy published with the
// outcome it wrote to the outcome bucket first; its value is "outcome".
const CopiedHeader = "Switchback-Copied"

const copiedOutcome = "outcome"

// copyClockMargin is how much earlier than an event's receipt the copy
// looks for it in the stream: the routers' clocks and the NATS servers'
// may differ by that much.
const copyClockMargin = time.Hour

// CopyStats count what a Copier did.
type CopyStats struct {
	// Published are the events the stream took from the copy.
	Published int
	// Duplicates are those the stream held already: copied before, or
	// published by a router that took a resend of the delivery.
	Duplicates int
	// WithOutcome of those published carry their terminal outcome: the
	// tier never delivers them. Pending are the rest, which it delivers.
	WithOutcome, Pending int
}

// Copier publishes the events of a router's journal into the tier, in
// the journal's order, so that each entity's events keep theirs. Copying
// is idempotent: an event whose id the stream holds is not published
// again, whether it is within the duplicate window (Nats-Msg-Id) or past
// it (the copy reads the ids of the stream's messages stored since its
// first event was received, less copyClockMargin). A Copier is not safe
// for concurrent use.
type Copier struct {
	t       *Tier
	present map[string]struct{} // event ids the stream holds
	scanned bool
	stats   CopyStats
}

// Copier returns a Copier into the tier.
func (t *Tier) Copier() *Copier { return &Copier{t: t, present: map[string]struct{}{}} }

// Stats are what the copy did so far.
func (c *Copier) Stats() CopyStats { return c.stats }

// Copy publishes events, in their order, each with its id as its
// Nats-Msg-Id, with the delivery's fields only: its replays, effects and
// comparison stay behind. An event with a terminal outcome has it written
// to the outcome bucket first (an outcome the bucket holds already is
// kept). It returns at the first error; copying again resumes.
func (c *Copier) Copy(ctx context.Context, events []journal.Event) error {
	if len(events) == 0 {
		return nil
	}
	if !c.scanned {
		since := events[0].ReceivedAt
		for _, e := range events {
			if e.ReceivedAt.Before(since) {
				since = e.ReceivedAt
			}
		}
		if err := c.scan(ctx, since.Add(-copyClockMargin)); err != nil {
			return fmt.Errorf("reading the ids the stream %s holds: %w", c.t.opts.Stream, err)
		}
		c.scanned = true
	}
	todo := make([]journal.Event, 0, len(events))
	for _, e := range events {
		if _, ok := c.present[e.ID]; ok || e.ID == "" {
			c.stats.Duplicates++
			continue
		}
		todo = append(todo, e)
	}
	if err := c.putOutcomes(ctx, todo); err != nil {
		return err
	}
	for _, e := range todo {
		dup, err := c.publish(ctx, e)
		if err != nil {
			return fmt.Errorf("publishing event %s: %w", e.ID, err)
		}
		c.present[e.ID] = struct{}{}
		switch {
		case dup:
			c.stats.Duplicates++
		case e.State.Terminal():
			c.stats.Published++
			c.stats.WithOutcome++
		default:
			c.stats.Published++
			c.stats.Pending++
		}
	}
	return nil
}

// scan reads the ids of the stream's messages stored since since, their
// headers only.
func (c *Copier) scan(ctx context.Context, since time.Time) error {
	info, err := c.t.stream.Info(ctx)
	if err != nil {
		return err
	}
	if info.State.Msgs == 0 {
		return nil
	}
	last := info.State.LastSeq
	oc, err := c.t.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: &since, HeadersOnly: true,
	})
	if err != nil {
		return err
	}
	for {
		batch, err := oc.Fetch(1024, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if id := m.Headers().Get(jetstream.MsgIDHeader); id != "" {
				c.present[id] = struct{}{}
			}
			if md.Sequence.Stream >= last || md.NumPending == 0 {
				return nil
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return err
		}
		if n > 0 {
			continue
		}
		if end, err := drained(ctx, oc); end || err != nil {
			return err
		}
	}
}

// putOutcomes writes the terminal outcomes of events to the bucket, up to
// 32 at a time, and returns once every one is there.
func (c *Copier) putOutcomes(ctx context.Context, events []journal.Event) error {
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var first error
	for _, e := range events {
		if !e.State.Terminal() {
			continue
		}
		body, err := json.Marshal(Outcome{Partner: e.Partner, Type: e.Type, EntityID: e.EntityID, State: e.State,
			Pipeline: e.Pipeline, Attempts: e.Attempts, Error: e.LastError, At: e.DoneAt, Router: c.t.opts.Name})
		if err != nil {
			return err
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := retry(ctx, func(ctx context.Context) error {
				_, err := c.t.outcomes.Create(ctx, e.ID, body)
				if errors.Is(err, jetstream.ErrKeyExists) {
					return nil // recorded by a router, or by this copy before
				}
				return err
			})
			if err != nil {
				mu.Lock()
				if first == nil {
					first = fmt.Errorf("recording the outcome of event %s: %w", e.ID, err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	return first
}

// publish stores e's delivery in the stream, and reports whether the
// stream held it already.
func (c *Copier) publish(ctx context.Context, e journal.Event) (bool, error) {
	body, err := json.Marshal(journal.Event{ID: e.ID, Partner: e.Partner, PSA: e.PSA, Type: e.Type, SourceType: e.SourceType,
		Action: e.Action, EntityID: e.EntityID, DeliveryID: e.DeliveryID, ReceivedAt: e.ReceivedAt,
		EntityUpdatedAt: e.EntityUpdatedAt, Headers: e.Headers, Payload: e.Payload, Backfill: e.Backfill})
	if err != nil {
		return false, err
	}
	msg := &nats.Msg{Subject: Subject(e, c.t.shards), Data: body, Header: nats.Header{}}
	msg.Header.Set(jetstream.MsgIDHeader, e.ID)
	if e.State.Terminal() {
		msg.Header.Set(CopiedHeader, copiedOutcome)
	}
	var dup bool
	err = retry(ctx, func(ctx context.Context) error {
		ack, err := c.t.js.PublishMsg(ctx, msg, jetstream.WithExpectStream(c.t.opts.Stream))
		if err == nil {
			dup = ack.Duplicate
		}
		return err
	})
	return dup, err
}

// retry runs fn, with 5 s each time, until it succeeds, fails otherwise
// than by a timeout or the want of a leader, or a minute has passed: a
// stream leader elected meanwhile. Sent again with the same Nats-Msg-Id,
// a message the stream took the first time is a duplicate, and the next
// is sent only once this one is stored: the journal's order is kept.
func retry(ctx context.Context, fn func(context.Context) error) error {
	deadline := time.Now().Add(time.Minute)
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		err := fn(actx)
		cancel()
		if err == nil || ctx.Err() != nil || time.Now().After(deadline) {
			return err
		}
		if k := publishErrorKind(err); k != "timeout" && k != "unavailable" {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(wait):
		}
	}
}

// skipCopied reports whether hand is to leave m, a message of event id,
// undelivered: one that journal copy published with its outcome, which
// the bucket holds (m is acknowledged), or could not be asked about (m is
// handed out again in a second). Other messages cost no lookup here.
func (t *Tier) skipCopied(ctx context.Context, m jetstream.Msg, id string) bool {
	if m.Headers().Get(CopiedHeader) != copiedOutcome {
		return false
	}
	_, err := t.outcomes.Get(ctx, id)
	switch {
	case err == nil:
		t.metrics.alreadyDone.Inc()
		m.Ack()
		return true
	case errors.Is(err, jetstream.ErrKeyNotFound):
		return false // expired from the bucket, or deleted: delivered
	default:
		t.log.Warn("reading a copied event's outcome; it is handed out again", "event", id, "err", err)
		m.NakWithDelay(time.Second)
		return true
	}
}

// Recorded is an event of the stream and the outcome the bucket holds of
// it, nil for none.
type Recorded struct {
	Event   journal.Event
	Outcome *Outcome
}

// ReadAll calls fn with the stream's events in stream order, a batch at a
// time, each with its outcome, up to the last message the stream held
// when it began; it stops at fn's first error and returns it. Messages
// that are not switchback events are passed over, and counted in
// foreign. It writes nothing to the stream or the bucket.
func (t *Tier) ReadAll(ctx context.Context, fn func([]Recorded) error) (foreign int, err error) {
	info, err := t.stream.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.Msgs == 0 {
		return 0, nil
	}
	last := info.State.LastSeq
	oc, err := t.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{DeliverPolicy: jetstream.DeliverAllPolicy})
	if err != nil {
		return 0, err
	}
	for done := false; !done; {
		msgs, err := oc.Fetch(256, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return foreign, err
		}
		var batch []Recorded
		n := 0
		for m := range msgs.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream >= last || md.NumPending == 0 {
				done = true
			}
			if md.Sequence.Stream > last {
				continue
			}
			var ev journal.Event
			if json.Unmarshal(m.Data(), &ev) != nil || ev.ID == "" || ev.Partner == "" {
				foreign++
				continue
			}
			ev.Seq, ev.State = 0, ""
			batch = append(batch, Recorded{Event: ev})
		}
		if err := msgs.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return foreign, err
		}
		if n == 0 {
			if done, err = drained(ctx, oc); err != nil {
				return foreign, err
			}
			continue
		}
		if len(batch) == 0 {
			continue
		}
		if err := t.outcomesOf(ctx, batch); err != nil {
			return foreign, err
		}
		if err := fn(batch); err != nil {
			return foreign, err
		}
	}
	return foreign, nil
}

// drained tells, after a fetch that brought nothing, whether oc has no
// message left to hand out (none stored since its start, or the rest
// expired meanwhile).
func drained(ctx context.Context, oc jetstream.Consumer) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	info, err := oc.Info(ctx)
	if err != nil {
		return false, err
	}
	return info.NumPending == 0, nil
}

// outcomesOf sets each event's outcome from the bucket, asking for up to
// 32 at a time. An outcome that cannot be read is an error: the event
// must not be taken for one without.
func (t *Tier) outcomesOf(ctx context.Context, batch []Recorded) error {
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	errs := make([]error, len(batch))
	for i := range batch {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			o, ok, err := t.OutcomeOf(ctx, batch[i].Event.ID)
			if err != nil {
				errs[i] = fmt.Errorf("the outcome of event %s: %w", batch[i].Event.ID, err)
			} else if ok {
				batch[i].Outcome = &o
			}
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}
