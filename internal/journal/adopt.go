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
// and answered Duplicate.
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

func adoptEvents(tx *bbolt.Tx, events []Event) ([]Appended, error) {
	evb, dedup, byPartner := tx.Bucket(bucketEvents), tx.Bucket(bucketDedup), tx.Bucket(bucketPartner)
	out := make([]Appended, len(events))
	for i, e := range events {
		dk := dedupKey(e.Partner, e.DeliveryID)
		if v := dedup.Get(dk); v != nil {
			seq := binary.BigEndian.Uint64(v)
			if orig, err := load(evb, seq); err == nil {
				out[i] = Appended{Seq: seq, ID: orig.ID, Duplicate: true}
				continue
			}
		}
		seq, err := evb.NextSequence()
		if err != nil {
			return nil, err
		}
		e.Seq, e.Replays = seq, nil
		if err := put(evb, e); err != nil {
			return nil, err
		}
		if err := dedup.Put(dk, seqKey(seq)); err != nil {
			return nil, err
		}
		if err := byPartner.Put(partnerKey(e.Partner, e.ReceivedAt, seq), nil); err != nil {
			return nil, err
		}
		out[i] = Appended{Seq: seq, ID: e.ID}
	}
	return out, nil
}
