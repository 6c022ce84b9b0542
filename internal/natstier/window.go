package natstier

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchbackhq/switchback/internal/journal"
)

// Reading the tier's history: a replay asked of every router runs on one
// of them (Claim, claim.go), which first reads the window's events that any router
// delivered, with their outcomes (Window), into its own journal
// (journal.Adopt). A comparison made after its event's outcome was
// recorded is kept under its own key (Compared), so that recording it is
// one write and not a read of the outcome and a rewrite.

// comparedKey is the outcome bucket's key for an event's comparison class.
func comparedKey(id string) string { return "cmp." + id }

// replayedKey is the outcome bucket's key for a replay that applied a
// dead-lettered event: the pipeline that did.
func replayedKey(id string) string { return "rpl." + id }

// Compared records the class of ev's comparison in the tier, without
// waiting.
func (t *Tier) Compared(id, class string) {
	t.recording.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := t.outcomes.PutString(ctx, comparedKey(id), class); err != nil {
			t.metrics.outcomeErrors.Inc()
			t.log.Warn("the tier's outcome bucket did not take a comparison; a replay on another router will take the event as never compared", "event", id, "err", err)
		}
	})
}

// Replayed records in the tier that a replay through pipeline applied
// the dead-lettered event id, without waiting: the tier's history reads
// it applied, as a router's journal does.
func (t *Tier) Replayed(id, pipeline string) {
	t.recording.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := t.outcomes.PutString(ctx, replayedKey(id), pipeline); err != nil {
			t.metrics.outcomeErrors.Inc()
			t.log.Warn("the tier's outcome bucket did not take a replay's application; the tier's history reads the event dead-lettered", "event", id, "err", err)
		}
	})
}

// Window hands fn, a batch at a time in stream order, partner's events
// received in [from, to), each with its terminal outcome if a router of
// the tier recorded one, else journaled (still with a router, or not yet
// handed to one). Seq is the event's sequence in the stream. It reads the
// partner's messages to the stream's end, not to the window's: `journal
// copy` stores events received long before it ran.
func (t *Tier) Window(ctx context.Context, partner string, from, to time.Time, fn func([]journal.Event) error) error {
	oc, err := t.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{SubjectPrefix + strings.ReplaceAll(partner, ".", "~") + ".*"},
		// The stream stamps a message when it stores it, after the
		// router received it: a little earlier covers the window's start.
		DeliverPolicy: jetstream.DeliverByStartTimePolicy, OptStartTime: ptr(from.Add(-time.Minute)),
	})
	if err != nil {
		return err
	}
	for {
		batch, err := oc.FetchNoWait(256)
		if err != nil {
			return err
		}
		var events []journal.Event
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			var ev journal.Event
			if json.Unmarshal(m.Data(), &ev) != nil || ev.ID == "" || ev.ReceivedAt.Before(from) || !ev.ReceivedAt.Before(to) {
				continue
			}
			ev.Seq, ev.State = md.Sequence.Stream, journal.StateJournaled
			events = append(events, ev)
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return err
		}
		if err := t.Outcomes(ctx, events); err != nil {
			return err
		}
		if len(events) > 0 {
			if err := fn(events); err != nil {
				return err
			}
		}
		if n == 0 {
			return nil
		}
	}
}

// Outcomes gives each event its terminal outcome where the tier holds
// one, asking for up to 32 at a time.
func (t *Tier) Outcomes(ctx context.Context, events []journal.Event) error {
	errs := make([]error, len(events))
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i := range events {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			errs[i] = t.outcomeInto(ctx, &events[i])
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// outcomeInto sets ev's outcome fields from the bucket, if it holds a
// terminal outcome of ev, with the comparison recorded since.
func (t *Tier) outcomeInto(ctx context.Context, ev *journal.Event) error {
	o, ok, err := t.OutcomeOf(ctx, ev.ID)
	if err != nil || !ok || !o.State.Terminal() {
		return err
	}
	ev.State, ev.Pipeline, ev.Attempts, ev.LastError, ev.DoneAt = o.State, o.Pipeline, o.Attempts, o.Error, o.At
	ev.Shadow, ev.Comparison = o.Shadow, o.Comparison
	if ev.State == journal.StateDeadLettered {
		r, err := t.outcomes.Get(ctx, replayedKey(ev.ID))
		if err == nil {
			ev.State, ev.Pipeline = journal.StateApplied, string(r.Value())
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
	}
	if ev.Comparison == "" && ev.Shadow != "" {
		c, err := t.outcomes.Get(ctx, comparedKey(ev.ID))
		if err == nil {
			ev.Comparison = string(c.Value())
		} else if !errors.Is(err, jetstream.ErrKeyNotFound) {
			return err
		}
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// Holds reports whether this router holds event id's message: handed to
// it, without an outcome yet.
func (t *Tier) Holds(id string) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	_, ok := t.held[id]
	return ok
}
