package journal

import (
	"context"
	"encoding/binary"
	"fmt"
	"slices"

	bbolt "go.etcd.io/bbolt"
)

// Adopt journals events that another router of a tier delivered, each
// with its terminal outcome (State applied or dead_lettered, Pipeline,
// Attempts, DoneAt, LastError, Shadow, Comparison), so that a replay run
// here takes them as it takes this router's own: they are never pending,
// never due for a comparison, and never delivered from here. The entity
// index is left alone: its order is this journal's, and an adopted event
// may be older than the entity's latest applied here. An event this
// journal holds already (its partner and delivery id) is left as it is
// and answered Duplicate, except that it takes the adopted event's
// comparison if it has none and none is due here: adopting a window again
// brings in the comparisons the other routers made since.
func (j *Journal) Adopt(ctx context.Context, events []Event) ([]Appended, error) {
	if len(events) == 0 {
		return []Appended{}, nil
	}
	events = slices.Clone(events)
	for i, e := range events {
		if !e.State.Terminal() || e.ID == "" {
			return nil, fmt.Errorf("journal: adopting event %q: it needs its id and a terminal outcome, not %q", e.ID, e.State)
		}
		p, err := compactRaw(e.Payload)
		if err != nil {
			return nil, fmt.Errorf("journal: adopting event %q: payload: %w", e.ID, err)
		}
		events[i].Payload = p
	}
	o := &op{events: events, adopt: true, done: make(chan struct{})}
	if err := j.enqueue(o); err != nil {
		return nil, err
	}
	select {
	case <-o.done:
		return o.result, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// carryEvents writes events that come with their outcome: copied from
// another journal (Import: terminal ones indexed, the others pending, in
// the order given, which is theirs) or adopted from a tier (Adopt: all
// terminal, not indexed, and a duplicate takes its comparison).
func (j *Journal) carryEvents(tx *bbolt.Tx, events []Event, adopt bool) ([]Appended, error) {
	evb, dedup := tx.Bucket(bucketEvents), tx.Bucket(bucketDedup)
	out := make([]Appended, len(events))
	for i, e := range events {
		if v := dedup.Get(dedupKey(e.Partner, e.DeliveryID)); v != nil {
			seq := binary.BigEndian.Uint64(v)
			if orig, err := load(evb, seq); err == nil {
				if adopt {
					if err := takeComparison(tx, orig, e); err != nil {
						return nil, err
					}
				}
				out[i] = Appended{Seq: seq, ID: orig.ID, Duplicate: true}
				continue
			}
			// The original was swept by retention: write this one anew.
		}
		e.ID = IDOf(e)
		if !e.State.Terminal() {
			e.State = StateJournaled
		}
		e.Replays = nil
		seq, err := putNew(tx, e)
		if err != nil {
			return nil, err
		}
		e.Seq = seq
		switch {
		case !e.State.Terminal():
			err = tx.Bucket(bucketPending).Put(seqKey(seq), nil)
		case !adopt:
			err = j.index(tx, e, e.State, e.Pipeline, e.DoneAt)
		}
		if err != nil {
			return nil, err
		}
		out[i] = Appended{Seq: seq, ID: e.ID}
	}
	return out, nil
}

// takeComparison records on orig, an event this journal holds, the class
// of the comparison another router made of it, if orig has none and is
// not due for one here (a comparison this router owes is its own to make
// and count).
func takeComparison(tx *bbolt.Tx, orig, adopted Event) error {
	if orig.Comparison != "" || adopted.Comparison == "" || !orig.State.Terminal() || orig.Shadow != adopted.Shadow {
		return nil
	}
	if tx.Bucket(bucketCompare).Get(seqKey(orig.Seq)) != nil {
		return nil
	}
	e, err := load(tx.Bucket(bucketEvents), orig.Seq)
	if err != nil {
		return err
	}
	e.Comparison = adopted.Comparison
	return put(tx.Bucket(bucketEvents), e)
}
