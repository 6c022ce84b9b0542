package journal

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// The entity index answers "what is the latest event about this PSA
// record that the partner's primary pipeline applied, and when" with one
// lookup, for the reconciliation against the PSA's own list of changes.
//
// It is kept in the transaction that journals the outcome: an applied
// outcome (delivery to the primary pipeline, or a replay that succeeded,
// which applies too) costs one read and one put of the entity's entry; a
// dead-lettered one likewise. The shadow pipeline only ever runs in
// dry-run, so nothing it does is "applied". Events whose entity type is
// "unknown" (a type the PSA parser does not know, which would merge
// different records under one id) or that have no entity id are not
// indexed.
//
// An entry keeps two events: the latest applied one (greatest seq: the
// latest received, since delivery keeps each entity's order) and the latest
// dead-lettered one received after it, until something later is applied.
// Each carries the entity's last-updated time as the PSA stamped it in the
// event's body (Options.UpdatedAt), read when the event is appended, in
// the appender's goroutine (Event.EntityUpdatedAt): the committer, which
// writes for everyone, only copies it.
//
// Retention: Sweep leaves the index alone. The reconciliation asks about
// entities the PSA changed in a window, and an entity changed now may have
// been applied last long before retention's cutoff: its entry still says
// when, so its lastAppliedAt stays right and a change its swept event did
// reflect is not reported as a gap. The index grows with the number of
// distinct entities, not of events (about 150 bytes each).

// Entity names one PSA record: its canonical type ("ticket"…) and its id.
type Entity struct {
	Type string
	ID   string
}

// Seen is what the journal knows of one event about an entity.
type Seen struct {
	Seq    uint64
	ID     string // the event's id
	Action string // created, updated, deleted, or the PSA's own word
	State  State
	// Pipeline applied it (the primary, or a replay's pipeline), or failed
	// it last.
	Pipeline string
	// Shadow is the pipeline asked to compare it in dry-run, if one was.
	Shadow     string
	ReceivedAt time.Time // by switchback's clock
	DoneAt     time.Time // when it was applied or dead-lettered; zero while pending
	// UpdatedAt is the entity's last update as the PSA stamped it in the
	// event, by the PSA's clock; zero when the body has none (or the
	// journal was opened without Options.UpdatedAt).
	UpdatedAt time.Time
}

// Deleted reports whether the event deleted its entity.
func (s Seen) Deleted() bool { return s.Action == "deleted" }

// EntityRecord is what the journal knows of one entity of a partner.
type EntityRecord struct {
	// Applied is the latest event about the entity that the primary
	// pipeline applied, nil if none ever was (or none since the journal
	// was created).
	Applied *Seen
	// Failed is the latest event about it dead-lettered after Applied:
	// every attempt of the primary failed, whatever the shadow did.
	Failed *Seen
	// Pending are its events journaled and not yet applied or
	// dead-lettered, oldest first.
	Pending []Seen
}

var bucketEntities = []byte("entities")

// entityLookupChunk bounds the lookups of one read transaction: a long
// read transaction keeps the committer from growing the file's mapping.
const entityLookupChunk = 2048

// Entities returns what the journal knows of each of partner's entities,
// in their order: a lookup each in the entity index, and one pass over the
// events still pending (a small set: the delivery backlog). It returns
// ctx's error if ctx ends first (checked between lookups), and an error
// for an index entry it cannot decode.
func (j *Journal) Entities(ctx context.Context, partner string, entities []Entity) ([]EntityRecord, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]EntityRecord, len(entities))
	for start := 0; start < len(entities); start += entityLookupChunk {
		end := min(start+entityLookupChunk, len(entities))
		err := j.db.View(func(tx *bbolt.Tx) error {
			b := tx.Bucket(bucketEntities)
			var key []byte
			for i := start; i < end; i++ {
				if i%256 == 0 {
					if err := ctx.Err(); err != nil {
						return err
					}
				}
				key = entityKey(key[:0], partner, entities[i].Type, entities[i].ID)
				v := b.Get(key)
				if v == nil {
					continue
				}
				var err error
				if out[i], err = decodeEntry(v); err != nil {
					return fmt.Errorf("entity %s %q of %s: %w", entities[i].Type, entities[i].ID, partner, err)
				}
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
	}
	pending, err := j.pendingOf(ctx, partner)
	if err != nil {
		return nil, err
	}
	if len(pending) > 0 {
		for i, e := range entities {
			out[i].Pending = pending[e]
		}
	}
	return out, nil
}

// Entity returns what the journal knows of one entity; see Entities, which
// to ask about many: each call reads the pending events once.
func (j *Journal) Entity(ctx context.Context, partner string, e Entity) (EntityRecord, error) {
	recs, err := j.Entities(ctx, partner, []Entity{e})
	if err != nil {
		return EntityRecord{}, err
	}
	return recs[0], nil
}

// pendingOf returns partner's pending events by entity, oldest first.
func (j *Journal) pendingOf(ctx context.Context, partner string) (map[Entity][]Seen, error) {
	events, err := j.Pending(ctx)
	if err != nil {
		return nil, err
	}
	out := map[Entity][]Seen{}
	for _, e := range events {
		if e.Partner != partner || !indexable(e) {
			continue
		}
		k := Entity{Type: e.Type, ID: e.EntityID}
		out[k] = append(out[k], j.seen(e, e.State, e.Pipeline, time.Time{}))
	}
	return out, nil
}

// seen is what the index keeps of e in state, applied or failed by
// pipeline at done.
func (j *Journal) seen(e Event, state State, pipeline string, done time.Time) Seen {
	s := Seen{Seq: e.Seq, ID: e.ID, Action: e.Action, State: state, Pipeline: pipeline, Shadow: e.Shadow,
		ReceivedAt: e.ReceivedAt, DoneAt: done, UpdatedAt: e.EntityUpdatedAt}
	if s.UpdatedAt.IsZero() {
		// Appended before the stamp was read at Append (a schema 1 file),
		// or without one: read it now. Only payloads without a stamp cost
		// a second reading.
		s.UpdatedAt = j.stamp(e)
	}
	return s
}

// stamp is the entity's last update that Options.UpdatedAt reads from e's
// payload, zero for none. A stamp beyond what Unix nanoseconds hold (years
// 1678 to 2262) is no time a PSA meant: none.
func (j *Journal) stamp(e Event) time.Time {
	if j.opts.UpdatedAt == nil {
		return time.Time{}
	}
	if t, ok := j.opts.UpdatedAt(e.PSA, e.Payload); ok && t.Year() > 1678 && t.Year() < 2262 {
		return t.UTC()
	}
	return time.Time{}
}

func indexable(e Event) bool { return e.Type != "" && e.Type != "unknown" && e.EntityID != "" }

// index records in the entity index that e reached state (applied or
// dead-lettered) through pipeline at done. An older event than the
// entry's changes nothing, but an applied one clears the failure it
// recovers (a dead letter replayed).
func (j *Journal) index(tx *bbolt.Tx, e Event, state State, pipeline string, done time.Time) error {
	if !indexable(e) || !state.Terminal() {
		return nil
	}
	b := tx.Bucket(bucketEntities)
	key := entityKey(nil, e.Partner, e.Type, e.EntityID)
	var rec EntityRecord
	if v := b.Get(key); v != nil {
		var err error
		if rec, err = decodeEntry(v); err != nil {
			return fmt.Errorf("entity %s %q of %s: %w", e.Type, e.EntityID, e.Partner, err)
		}
	}
	changed := false
	switch state {
	case StateApplied:
		if rec.Applied == nil || e.Seq >= rec.Applied.Seq {
			s := j.seen(e, state, pipeline, done)
			rec.Applied, changed = &s, true
		}
		if rec.Failed != nil && rec.Failed.Seq <= e.Seq {
			rec.Failed, changed = nil, true
		}
	case StateDeadLettered:
		if (rec.Applied == nil || e.Seq > rec.Applied.Seq) && (rec.Failed == nil || e.Seq >= rec.Failed.Seq) {
			s := j.seen(e, state, pipeline, done)
			rec.Failed, changed = &s, true
		}
	}
	if !changed {
		return nil
	}
	return b.Put(key, encodeEntry(rec))
}

// buildEntityIndex indexes every terminal event of a journal written
// before the index existed, in seq order, as recording their outcomes
// would have: the latest successful replay counts as the application.
func (j *Journal) buildEntityIndex(tx *bbolt.Tx) error {
	return tx.Bucket(bucketEvents).ForEach(func(k, _ []byte) error {
		e, err := get(tx, binary.BigEndian.Uint64(k))
		if err != nil {
			return err
		}
		pipeline, done := e.Pipeline, e.DoneAt
		for _, r := range slices.Backward(e.Replays) {
			if r.OK {
				pipeline, done = r.Pipeline, r.At
				break
			}
		}
		return j.index(tx, e, e.State, pipeline, done)
	})
}

// entityKey appends partner 0 type 0 id to k. Partner ids and canonical
// types hold no 0 byte, so the id, whatever it holds, is the rest.
func entityKey(k []byte, partner, typ, id string) []byte {
	k = append(append(k, partner...), 0)
	k = append(append(k, typ...), 0)
	return append(k, id...)
}

// An entry is a version byte (1), a byte of flags (which events follow),
// then each event present, the applied one first:
//
//	seq(8) receivedAt(8) doneAt(8) updatedAt(8) hasUpdatedAt(1)
//	then id, action, pipeline, shadow, each a uvarint length and its bytes
//
// Times are big-endian Unix nanoseconds. A fixed binary form, not JSON:
// it is written once per outcome on the committer's path.
const (
	entryVersion  = 1
	entryApplied  = 1 << 0
	entryFailed   = 1 << 1
	entryHasStamp = 1
)

var errEntry = errors.New("unreadable entity index entry")

func encodeEntry(rec EntityRecord) []byte {
	b := make([]byte, 2, 2+2*96)
	b[0] = entryVersion
	for i, s := range []*Seen{rec.Applied, rec.Failed} {
		if s == nil {
			continue
		}
		b[1] |= 1 << i
		b = binary.BigEndian.AppendUint64(b, s.Seq)
		b = appendTime(b, s.ReceivedAt)
		b = appendTime(b, s.DoneAt)
		b = appendTime(b, s.UpdatedAt)
		if s.UpdatedAt.IsZero() {
			b = append(b, 0)
		} else {
			b = append(b, entryHasStamp)
		}
		for _, str := range []string{s.ID, s.Action, s.Pipeline, s.Shadow} {
			b = binary.AppendUvarint(b, uint64(len(str)))
			b = append(b, str...)
		}
	}
	return b
}

func decodeEntry(v []byte) (EntityRecord, error) {
	var rec EntityRecord
	if len(v) < 2 || v[0] != entryVersion || v[1]&^(entryApplied|entryFailed) != 0 {
		return rec, errEntry
	}
	r := bytes.NewReader(v[2:])
	for i, state := range []State{StateApplied, StateDeadLettered} {
		if v[1]&(1<<i) == 0 {
			continue
		}
		var fixed [33]byte
		if _, err := io.ReadFull(r, fixed[:]); err != nil {
			return rec, errEntry
		}
		s := Seen{State: state, Seq: binary.BigEndian.Uint64(fixed[0:8]),
			ReceivedAt: readTime(fixed[8:16]), DoneAt: readTime(fixed[16:24])}
		if fixed[32] == entryHasStamp {
			s.UpdatedAt = time.Unix(0, int64(binary.BigEndian.Uint64(fixed[24:32]))).UTC()
		}
		for _, dst := range []*string{&s.ID, &s.Action, &s.Pipeline, &s.Shadow} {
			n, err := binary.ReadUvarint(r)
			if err != nil || n > uint64(r.Len()) {
				return rec, errEntry
			}
			buf := make([]byte, n)
			if _, err := io.ReadFull(r, buf); err != nil {
				return rec, errEntry
			}
			*dst = string(buf)
		}
		if state == StateApplied {
			rec.Applied = &s
		} else {
			rec.Failed = &s
		}
	}
	if r.Len() != 0 {
		return rec, errEntry
	}
	return rec, nil
}

// appendTime appends t as Unix nanoseconds; the zero time as 0, which
// readTime turns back into the zero time (no journal time is 1970).
func appendTime(b []byte, t time.Time) []byte {
	if t.IsZero() {
		return binary.BigEndian.AppendUint64(b, 0)
	}
	return binary.BigEndian.AppendUint64(b, uint64(t.UnixNano()))
}

func readTime(b []byte) time.Time {
	n := int64(binary.BigEndian.Uint64(b))
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(0, n).UTC()
}
