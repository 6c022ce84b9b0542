package natstier

import (
	"context"
	"encoding/json"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/journal"
)

// History is the tier's journal as a reconciliation reads it
// (reconcile.JobJournal and reconcile.WindowJournal): what every router
// of the tier journaled, from the stream, with the outcomes the routers
// recorded in the bucket. The stream keeps no index by entity: a
// partner's window is read whole and indexed in memory, once for a run of
// lookups (reuseFor), which a reconciliation makes a chunk of changes at
// a time.
type History struct {
	Tier *Tier
	// UpdatedAt reads an entity's last-updated stamp from a PSA's payload
	// when the router did not (psa.UpdatedAt).
	UpdatedAt func(psa string, payload []byte) (time.Time, bool)

	mu   sync.Mutex
	last *window
}

// reuseFor is how long a partner's window, read, answers lookups: a
// reconciliation's chunks follow each other within it, while a check made
// later (before a backfill) reads again.
const reuseFor = 5 * time.Second

// historyLookback is how far back Entities reads without a window.
const historyLookback = 24 * time.Hour

type window struct {
	partner string
	since   time.Time
	read    time.Time
	records map[journal.Entity]journal.EntityRecord
}

// Entities answers from the last historyLookback of partner's events.
func (h *History) Entities(ctx context.Context, partner string, entities []journal.Entity) ([]journal.EntityRecord, error) {
	return h.EntitiesSince(ctx, partner, time.Now().Add(-historyLookback), entities)
}

// EntitiesSince answers, for each entity, from partner's events received
// since then in the tier, as journal.Entities answers from a router's
// index: the latest event a router applied, a dead letter after it, and
// the events without an outcome yet, oldest first.
func (h *History) EntitiesSince(ctx context.Context, partner string, since time.Time, entities []journal.Entity) ([]journal.EntityRecord, error) {
	w, err := h.window(ctx, partner, since)
	if err != nil {
		return nil, err
	}
	out := make([]journal.EntityRecord, len(entities))
	for i, e := range entities {
		out[i] = w.records[e]
	}
	return out, nil
}

func (h *History) window(ctx context.Context, partner string, since time.Time) (*window, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if w := h.last; w != nil && w.partner == partner && w.since.Equal(since) && time.Since(w.read) < reuseFor {
		return w, nil
	}
	w := &window{partner: partner, since: since, read: time.Now(), records: map[journal.Entity]journal.EntityRecord{}}
	err := h.Tier.Window(ctx, partner, since, time.Now().Add(time.Hour), func(events []journal.Event) error {
		for _, e := range events {
			if e.Type == "" || e.Type == "unknown" || e.EntityID == "" {
				continue
			}
			k := journal.Entity{Type: e.Type, ID: e.EntityID}
			w.records[k] = h.add(w.records[k], e)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	h.last = w
	return w, nil
}

// add takes e, the entity's next event in stream order, into its record.
func (h *History) add(rec journal.EntityRecord, e journal.Event) journal.EntityRecord {
	s := journal.Seen{Seq: e.Seq, ID: e.ID, Action: e.Action, State: e.State, Pipeline: e.Pipeline, Shadow: e.Shadow,
		ReceivedAt: e.ReceivedAt, DoneAt: e.DoneAt, UpdatedAt: e.EntityUpdatedAt}
	if s.UpdatedAt.IsZero() && h.UpdatedAt != nil {
		if u, ok := h.UpdatedAt(e.PSA, e.Payload); ok {
			s.UpdatedAt = u
		}
	}
	switch e.State {
	case journal.StateApplied:
		rec.Applied, rec.Failed = &s, nil
	case journal.StateDeadLettered:
		rec.Failed = &s
	default:
		rec.Pending = append(rec.Pending, s)
	}
	return rec
}

// Get returns the event with stream sequence seq, with its outcome if the
// bucket holds one: what a backfill follows, Tier.Publish having answered
// the stream's sequences.
func (h *History) Get(ctx context.Context, seq uint64) (journal.Event, error) {
	m, err := h.Tier.stream.GetMsg(ctx, seq)
	if err != nil {
		return journal.Event{}, err
	}
	var ev journal.Event
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		return journal.Event{}, err
	}
	ev.Seq, ev.State = seq, journal.StateJournaled
	return ev, h.Tier.outcomeInto(ctx, &ev)
}
