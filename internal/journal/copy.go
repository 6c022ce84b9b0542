package journal

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/switchbackhq/switchback/internal/boltfile"
)

// What moving a journal between a router's bbolt file and a tier's stream
// (switchback journal copy) needs of this package: reading a file that no
// router has open without ever writing to it, and writing events that
// carry their outcome already.

// Reader reads a journal file read-only: the router that owns it must be
// stopped.
type Reader struct {
	db *bbolt.DB
}

// OpenReader opens the journal file at path read-only, having read it
// whole first: a damaged file is an error wrapping boltfile.ErrDamaged,
// before anything is read from it (Export salvages such a file), and a
// file another process holds is ErrLocked.
func OpenReader(path string) (*Reader, error) {
	db, err := boltfile.Open(path, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	err = db.View(func(tx *bbolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		if meta == nil || tx.Bucket(bucketEvents) == nil {
			return errors.New("not a switchback journal: it has no events")
		}
		if n, err := strconv.Atoi(string(meta.Get(keySchema))); err != nil || n > SchemaVersion {
			return fmt.Errorf("journal schema %q is not one this release reads (%d or older)", meta.Get(keySchema), SchemaVersion)
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &Reader{db: db}, nil
}

// Len is the number of events in the file.
func (r *Reader) Len() int {
	n := 0
	r.db.View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucketEvents).Stats().KeyN
		return nil
	})
	return n
}

// Each calls fn with every event of the file in seq order, as its record
// holds it: the replays recorded since schema 3 are not read. It stops at
// fn's first error, and returns it, or ctx's if ctx ends first.
func (r *Reader) Each(ctx context.Context, fn func(Event) error) error {
	return r.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketEvents).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			e, err := decodeEvent(v)
			if err != nil {
				return fmt.Errorf("decode event %d: %w", binary.BigEndian.Uint64(k), err)
			}
			return fn(e)
		})
	})
}

// Close closes the file.
func (r *Reader) Close() error { return r.db.Close() }

// Import journals events that may carry their outcome already, durably,
// each in one transaction with it: an event whose State is terminal
// (applied, dead_lettered) is written with its State, Attempts, Pipeline,
// LastError and DoneAt, indexed in the entity index as recording that
// outcome would, and is never pending, so a router opened on the journal
// does not deliver it; any other is journaled as Append journals it,
// pending. Seq is assigned here and the event's ID kept (derived as
// Append derives it when empty). Replays, shadow comparisons and their
// due are not imported: Replays, Shadow and Comparison are dropped. An
// event whose partner and delivery id the journal holds already is not
// journaled again: its result says Duplicate.
func (j *Journal) Import(ctx context.Context, events []Event) ([]Appended, error) {
	if len(events) == 0 {
		return []Appended{}, nil
	}
	events = slices.Clone(events)
	for i := range events {
		e := &events[i]
		var err error
		if e.Payload, err = compactRaw(e.Payload); err != nil {
			return nil, fmt.Errorf("event %s: payload: %w", e.ID, err)
		}
		if e.Effects, err = compactRaw(e.Effects); err != nil {
			return nil, fmt.Errorf("event %s: effects: %w", e.ID, err)
		}
		e.Replays, e.Shadow, e.Comparison = nil, "", ""
		if !e.State.Terminal() {
			e.Attempts, e.Pipeline, e.LastError, e.LastStatus, e.DoneAt, e.Effects, e.SnapshotVersion = 0, "", "", 0, time.Time{}, nil, 0
		}
	}
	o := &op{events: events, imported: true, done: make(chan struct{})}
	if err := j.enqueueWait(ctx, o); err != nil {
		return nil, err
	}
	select {
	case <-o.done:
		return o.result, o.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
