package journal

import (
	"bytes"
	"encoding/binary"
	"fmt"

	bbolt "go.etcd.io/bbolt"
)

// An event's replays are records of their own in the replays bucket,
// keyed by the event's seq and the bucket's sequence, so that recording
// one is a put of its JSON (encoded in the caller's goroutine) beside the
// event, not a decoding and encoding of the event's whole record in the
// committer. That holds for the replay that applies a dead letter too,
// which is most of what replays do after a pipeline was down: the applied
// bucket marks the event with the replay that applied it, and readers
// (get, Export) read it as applied by that replay, as a rewrite of its
// record would have said: its state, pipeline, effects and time. The
// event's next outcome recorded otherwise (its record rewritten) clears
// the mark: the latest outcome is what reads.

// addReplay stores the encoded replay v of e (as load read it), after its
// others; if ok and e is dead-lettered, not yet applied by an earlier
// replay, it marks e applied by this one.
func addReplay(tx *bbolt.Tx, e Event, ok bool, v []byte) error {
	b := tx.Bucket(bucketReplays)
	n, err := b.NextSequence()
	if err != nil {
		return err
	}
	if err := b.Put(binary.BigEndian.AppendUint64(seqKey(e.Seq), n), v); err != nil {
		return err
	}
	if !ok || e.State != StateDeadLettered {
		return nil
	}
	applied := tx.Bucket(bucketApplied)
	if applied.Get(seqKey(e.Seq)) != nil {
		return nil
	}
	return applied.Put(seqKey(e.Seq), binary.BigEndian.AppendUint64(nil, n))
}

// readReplays appends to e, the event with seq as its record holds it,
// the replays bucket's replays of it in the order recorded, and applies e
// by the replay the applied bucket names. A file of schema 2 or older
// opened read-only (Export) has neither bucket: nothing to add.
func readReplays(tx *bbolt.Tx, seq uint64, e *Event) error {
	var by uint64
	marked := false
	if b := tx.Bucket(bucketApplied); b != nil && e.State == StateDeadLettered {
		if v := b.Get(seqKey(seq)); len(v) == 8 {
			by, marked = binary.BigEndian.Uint64(v), true
		}
	}
	b := tx.Bucket(bucketReplays)
	if b == nil {
		return nil
	}
	prefix := seqKey(seq)
	c := b.Cursor()
	for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
		r, err := decodeReplay(v)
		if err != nil {
			return fmt.Errorf("decode a replay of event %d: %w", seq, err)
		}
		e.Replays = append(e.Replays, r)
		if marked && len(k) == 16 && binary.BigEndian.Uint64(k[8:]) == by {
			// A dead-lettered event replayed successfully is applied at last.
			e.State, e.Pipeline, e.Effects, e.DoneAt = StateApplied, r.Pipeline, r.Effects, r.At
		}
	}
	return nil
}

// deleteReplays deletes the replays of the event with seq, and its mark.
func deleteReplays(tx *bbolt.Tx, seq uint64) error {
	b := tx.Bucket(bucketReplays)
	prefix := seqKey(seq)
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, bytes.Clone(k)) // deleting under a cursor skips keys
	}
	for _, k := range keys {
		if err := b.Delete(k); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketApplied).Delete(prefix)
}
