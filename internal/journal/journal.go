// Package journal keeps every webhook a router acknowledges in a bbolt file,
// durably, before the acknowledgement, and tracks each event to a terminal
// outcome.
//
// Writes go through one committer goroutine that puts everything queued
// into one transaction, so concurrent requests share one fsync (group
// commit). A full queue is refused at once with ErrBusy, which the ingress
// answers with 429: every PSA retries that.
//
// Bucket layout (schema 3):
//
//	meta       "schema" → decimal schema version
//	events     8-byte big-endian seq → JSON Event, without the replays recorded since schema 3
//	replays    8-byte seq, 8-byte big-endian replay seq (the bucket's sequence) → JSON Replay: an event's replays, in the order recorded
//	applied    8-byte seq of a dead-lettered event → 8-byte replay seq of the replay that applied it (replays.go)
//	partner    partner id, 0x00, 8-byte big-endian received-at (Unix ns), 8-byte seq → empty: time-window scans per partner
//	dedup      partner id, 0x00, delivery id → 8-byte seq of the first delivery
//	pending    8-byte seq → empty: events without a terminal outcome
//	compare    8-byte seq → empty: events with an outcome whose shadow comparison is due
//	jobs       job id → JSON state of a background job (replays)
//	owed       tally key → 8-byte big-endian count not yet sealed into a report
//	reports    8-byte big-endian report seq → JSON Sealed (the session's epoch, tally key → count): not yet acknowledged
//	entities   partner id, 0x00, entity type, 0x00, entity id → the entity's latest applied and dead-lettered events (entities.go)
//
// Schema 1 had no entities bucket; Open builds it from the events of a
// schema 1 file, in the transaction that upgrades it. Up to schema 2 an
// event's replays were kept in its record, which recording one decoded
// and encoded whole (payload, effects and every replay before it), as
// did a replay that applied a dead letter; since schema 3 a replay is a
// record of its own, and the event's record is not rewritten for it
// (replays.go). The replays an older router stored in an event's record
// stay there: readers see those, then the replays bucket's (see get).
package journal

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	bbolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"

	"github.com/switchbackhq/switchback/internal/boltfile"
	"github.com/switchbackhq/switchback/internal/rawjson"
)

// SchemaVersion is the layout this package reads and writes.
const SchemaVersion = 3

var (
	bucketMeta    = []byte("meta")
	bucketEvents  = []byte("events")
	bucketPartner = []byte("partner")
	bucketDedup   = []byte("dedup")
	bucketPending = []byte("pending")
	bucketCompare = []byte("compare")
	bucketReplays = []byte("replays")
	bucketApplied = []byte("applied")
	keySchema     = []byte("schema")
)

// Errors.
var (
	// ErrBusy means the journal's queue is full: answer 429 and let the
	// sender retry.
	ErrBusy = errors.New("journal: queue full")
	// ErrClosed means the journal is closed.
	ErrClosed = errors.New("journal: closed")
	// ErrNotFound means no event has that seq.
	ErrNotFound = errors.New("journal: no such event")
	// ErrLocked means another process holds the file.
	ErrLocked = errors.New("journal: the file is in use by another process")
)

// State is where an event is in its life.
type State string

const (
	StateJournaled    State = "journaled"     // on disk, not yet applied
	StateApplied      State = "applied"       // the primary pipeline applied it
	StateDeadLettered State = "dead_lettered" // every attempt failed: parked for a replay
)

// Terminal reports whether s is an outcome.
func (s State) Terminal() bool { return s == StateApplied || s == StateDeadLettered }

// Event is one journaled webhook event and its life.
type Event struct {
	Seq        uint64    `json:"seq"`
	ID         string    `json:"id"`
	Partner    string    `json:"partner"`
	PSA        string    `json:"psa"`
	Type       string    `json:"type"`
	SourceType string    `json:"sourceType,omitempty"`
	Action     string    `json:"action"`
	EntityID   string    `json:"entityId"`
	DeliveryID string    `json:"deliveryId"`
	ReceivedAt time.Time `json:"receivedAt"`
	// EntityUpdatedAt is the entity's last update as the PSA stamped it in
	// Payload, by the PSA's clock, read by Options.UpdatedAt when the event
	// is appended (zero when the payload has none, or the journal reads
	// none): the entity index keeps it (entities.go).
	EntityUpdatedAt time.Time         `json:"entityUpdatedAt,omitzero"`
	Headers         map[string]string `json:"headers,omitempty"`
	Payload         json.RawMessage   `json:"payload"`

	State           State           `json:"state"`
	Attempts        int             `json:"attempts"`
	Pipeline        string          `json:"pipeline,omitempty"` // the pipeline that applied it or last failed
	SnapshotVersion uint64          `json:"snapshotVersion,omitempty"`
	Effects         json.RawMessage `json:"effects,omitempty"`
	LastError       string          `json:"lastError,omitempty"`
	// LastStatus is the pipeline's HTTP status on the last failed attempt,
	// 0 when no answer came.
	LastStatus int       `json:"lastStatus,omitempty"`
	DoneAt     time.Time `json:"doneAt,omitzero"`
	Duplicates int       `json:"duplicates,omitempty"` // resent deliveries recognized and not applied again
	// Shadow is the pipeline asked in dry-run to compare the outcome with,
	// when one was: its Comparison is due.
	Shadow string `json:"shadow,omitempty"`
	// Comparison is the class of the shadow comparison, once made.
	Comparison string `json:"comparison,omitempty"`
	// Replays are the event's replays in the order recorded: those stored
	// in its record before schema 3, then those of the replays bucket.
	Replays []Replay `json:"replays,omitempty"`
	// Backfill marks an event a reconciliation made from the PSA's
	// change API rather than a webhook (internal/reconcile).
	Backfill bool `json:"backfill,omitempty"`
}

// Replay is the outcome of one replay of an event.
type Replay struct {
	Job      string          `json:"job"`
	Pipeline string          `json:"pipeline"`
	At       time.Time       `json:"at"`
	OK       bool            `json:"ok"`
	Effects  json.RawMessage `json:"effects,omitempty"`
	Error    string          `json:"error,omitempty"`
}

// Appended is the result of appending one event.
type Appended struct {
	Seq       uint64
	ID        string
	Duplicate bool // the delivery id was seen before: nothing new was journaled
}

// Outcome is what delivery learned about an event.
type Outcome struct {
	State           State
	Attempts        int
	Pipeline        string
	SnapshotVersion uint64
	Effects         json.RawMessage
	Error           string
	Status          int // the pipeline's status on the last failed attempt
	At              time.Time
	Shadow          string  // the pipeline that will compare it, if one will
	Replay          *Replay // set for a replay's outcome: appended, the state is kept
	// Comparison, set alone, records the shadow comparison's class. Set
	// with a terminal State, it is the class of a comparison decided before
	// the outcome was written (one shed by a router whose shadow work fell
	// behind): it is recorded with the outcome, and never due.
	Comparison string
	// Tallies are added to what the router owes the control service, in
	// the transaction that records the outcome, so a comparison is either
	// recorded and owed or neither.
	Tallies []Tally
}

// Options configure a Journal.
type Options struct {
	// QueueSize bounds the writes waiting for the committer; past it,
	// Append returns ErrBusy. Default 16384.
	QueueSize int
	// MaxBatch bounds the writes in one transaction. 1 gives one fsync per
	// write, for comparison. Default 4096.
	MaxBatch int
	// LockTimeout bounds the wait for another process to release the file.
	LockTimeout time.Duration
	// UpdatedAt reads, from an event's PSA kind and payload, the entity's
	// last update as the PSA stamped it (psa.UpdatedAt), for the entity
	// index. Append calls it in its caller's goroutine, not the
	// committer's, which writes for every caller. Nil records no stamp:
	// the reconciliation then judges by the time events were received,
	// within its clock-skew bound.
	UpdatedAt func(psa string, payload []byte) (time.Time, bool)
}

// Journal is an open journal file.
type Journal struct {
	db   *bbolt.DB
	opts Options
	// session is a random id made at Open, the epoch of the reports this
	// session seals (see Sealed).
	session string
	queue   chan *op
	stop    chan struct{}
	done    chan struct{}
	once    sync.Once

	mu     sync.RWMutex // guards closed against sends on queue
	closed bool

	commits, committed uint64 // guarded by statsMu
	statsMu            sync.Mutex
}

// op is one write waiting for the committer.
type op struct {
	events []Event // append
	// imported and adopt mark events that may carry their outcome:
	// Import's and Adopt's (carryEvents).
	imported, adopt bool
	seq             uint64 // complete
	outcome         Outcome
	tallies         []Tally // tally alone: no event, no seq
	replay          []byte  // outcome.Replay, encoded in the caller's goroutine
	result          []Appended
	err             error
	done            chan struct{}
	// then, if set, is called with err by the committer once the op is
	// written (or failed): CompleteLater's waiter.
	then func(error)
}

// Open opens or creates the journal at path and starts its committer. A
// damaged file returns an error wrapping boltfile.ErrDamaged.
func Open(path string, opts Options) (*Journal, error) {
	if opts.QueueSize <= 0 {
		opts.QueueSize = 16384
	}
	if opts.MaxBatch <= 0 {
		opts.MaxBatch = 4096
	}
	if opts.LockTimeout <= 0 {
		opts.LockTimeout = 2 * time.Second
	}
	// A damaged journal is refused here, before the router listens, not at
	// the first read that meets the damage.
	db, err := boltfile.Open(path, &bbolt.Options{Timeout: opts.LockTimeout, FreelistType: bbolt.FreelistMapType})
	if errors.Is(err, bolterrors.ErrTimeout) {
		return nil, fmt.Errorf("open %s: %w", path, ErrLocked)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	j := &Journal{db: db, opts: opts, session: newEpoch(), queue: make(chan *op, opts.QueueSize), stop: make(chan struct{}), done: make(chan struct{})}
	if err := db.Update(j.initSchema); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	go j.commit()
	return j, nil
}

// initSchema creates the buckets of a new file, and upgrades a file of an
// older schema in the transaction that opens it: whole or not at all.
func (j *Journal) initSchema(tx *bbolt.Tx) error {
	for _, b := range [][]byte{bucketMeta, bucketEvents, bucketReplays, bucketApplied, bucketPartner, bucketDedup, bucketPending, bucketCompare, bucketJobs, bucketOwed, bucketReports, bucketEntities} {
		if _, err := tx.CreateBucketIfNotExists(b); err != nil {
			return err
		}
	}
	meta := tx.Bucket(bucketMeta)
	v := meta.Get(keySchema)
	if v == nil {
		return meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
	}
	n, err := strconv.Atoi(string(v))
	if err != nil || n > SchemaVersion {
		return fmt.Errorf("journal schema %q is newer than this router's %d", v, SchemaVersion)
	}
	if n < 2 {
		if err := j.buildEntityIndex(tx); err != nil {
			return fmt.Errorf("upgrade journal schema %d to %d: %w", n, SchemaVersion, err)
		}
	}
	if n < SchemaVersion {
		return meta.Put(keySchema, []byte(strconv.Itoa(SchemaVersion)))
	}
	return nil
}

// Close stops the committer after the writes already queued and closes the
// file.
func (j *Journal) Close() error {
	j.once.Do(func() {
		j.mu.Lock()
		j.closed = true
		j.mu.Unlock()
		close(j.stop)
		<-j.done
	})
	return j.db.Close()
}

// DB returns the bbolt file, for consistency checks in tests.
func (j *Journal) DB() *bbolt.DB { return j.db }

// Append journals a delivery's events durably and returns when they are on
// disk. An event whose partner and delivery id were journaled before is not
// journaled again: its result says Duplicate and carries the first one's
// seq. Seq and State are assigned here, ID unless the event has one (a
// backfill's id is derived from its change, so that pipelines apply it
// once), and EntityUpdatedAt when it is zero and Options.UpdatedAt reads a
// stamp; events itself is not changed.
func (j *Journal) Append(ctx context.Context, events []Event) ([]Appended, error) {
	if len(events) == 0 {
		return []Appended{}, nil
	}
	events = slices.Clone(events)
	for i := range events {
		// Compacted here, once, and spliced as it is from then on (codec.go).
		p, err := compactRaw(events[i].Payload)
		if err != nil {
			return nil, fmt.Errorf("event %d of the delivery: payload: %w", i, err)
		}
		events[i].Payload = p
		if j.opts.UpdatedAt != nil && events[i].EntityUpdatedAt.IsZero() {
			events[i].EntityUpdatedAt = j.stamp(events[i])
		}
	}
	o := &op{events: events, done: make(chan struct{})}
	if err := j.enqueue(o); err != nil {
		return nil, err
	}
	select {
	case <-o.done:
		return o.result, o.err
	case <-ctx.Done():
		// The write may still land; the sender will retry and the retry
		// will be recognized as a duplicate.
		return nil, ctx.Err()
	}
}

// Complete records an event's outcome durably.
func (j *Journal) Complete(ctx context.Context, seq uint64, out Outcome) error {
	o, err := completion(seq, out)
	if err != nil {
		return err
	}
	return j.write1(ctx, o)
}

// CompleteLater queues an event's outcome like Complete, waiting only for
// room in the queue, not for the outcome to be written: done is called
// with what Complete would return once it is written or failed. Outcomes
// are written in the order they are queued (one transaction, or one
// after another), so that when one is on disk, every outcome queued
// before it is on disk too, or failed. done runs on the committer's goroutine: it must be quick and
// must not call the journal. If the outcome cannot be queued (ctx ends
// while the queue is full, or the journal is closed), CompleteLater
// returns the error and done is not called.
func (j *Journal) CompleteLater(ctx context.Context, seq uint64, out Outcome, done func(error)) error {
	o, err := completion(seq, out)
	if err != nil {
		return err
	}
	o.then = done
	return j.enqueueWait(ctx, o)
}

// completion is the write of an outcome, with the raw effects it brings
// into the journal compacted, and a replay encoded, once, in the caller's
// goroutine rather than the committer's (codec.go).
func completion(seq uint64, out Outcome) (*op, error) {
	o := &op{seq: seq, done: make(chan struct{})}
	var err error
	if out.Effects, err = compactRaw(out.Effects); err != nil {
		return nil, fmt.Errorf("the outcome's effects: %w", err)
	}
	if out.Replay != nil {
		r := *out.Replay
		// encodeReplay copies the effects into the record: compacted
		// only if they are not already, never copied twice.
		if r.Effects != nil && !rawjson.Storable(r.Effects) {
			if r.Effects, err = compactRaw(r.Effects); err != nil {
				return nil, fmt.Errorf("the replay's effects: %w", err)
			}
		}
		if o.replay, err = encodeReplay(r); err != nil {
			return nil, fmt.Errorf("the replay: %w", err)
		}
		r.Effects = nil // the committer stores o.replay, and reads only the rest of r
		out.Replay = &r
	}
	o.outcome = out
	return o, nil
}

// write1 queues o, waiting for room, and waits until it is committed.
func (j *Journal) write1(ctx context.Context, o *op) error {
	if err := j.enqueueWait(ctx, o); err != nil {
		return err
	}
	select {
	case <-o.done:
		return o.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// enqueue queues o without waiting: a full queue is ErrBusy.
func (j *Journal) enqueue(o *op) error {
	j.mu.RLock()
	defer j.mu.RUnlock()
	if j.closed {
		return ErrClosed
	}
	select {
	case j.queue <- o:
		return nil
	default:
		return ErrBusy
	}
}

// enqueueWait queues o, waiting for room: outcomes must not be lost to a
// burst of appends.
func (j *Journal) enqueueWait(ctx context.Context, o *op) error {
	for {
		err := j.enqueue(o)
		if !errors.Is(err, ErrBusy) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}

// commit is the committer goroutine: it writes everything queued in one
// transaction, then answers every waiter.
func (j *Journal) commit() {
	defer close(j.done)
	batch := make([]*op, 0, j.opts.MaxBatch)
	for {
		batch = batch[:0]
		select {
		case o := <-j.queue:
			batch = append(batch, o)
		case <-j.stop:
			// Drain what was queued before Close.
			for {
				select {
				case o := <-j.queue:
					batch = append(batch, o)
					continue
				default:
				}
				break
			}
			if len(batch) > 0 {
				j.write(batch)
			}
			return
		}
	fill:
		for len(batch) < j.opts.MaxBatch {
			select {
			case o := <-j.queue:
				batch = append(batch, o)
			default:
				break fill
			}
		}
		j.write(batch)
	}
}

// write commits a batch in one transaction. If the transaction fails, each
// op is retried alone so one bad op cannot fail the others.
func (j *Journal) write(batch []*op) {
	err := j.db.Update(func(tx *bbolt.Tx) error {
		for _, o := range batch {
			o.result, o.err = nil, nil
			if err := j.apply(tx, o); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && len(batch) > 1 {
		for _, o := range batch {
			j.write([]*op{o})
		}
		return
	}
	j.statsMu.Lock()
	j.commits++
	j.committed += uint64(len(batch))
	j.statsMu.Unlock()
	for _, o := range batch {
		if err != nil {
			o.err, o.result = err, nil
		}
		close(o.done)
		if o.then != nil {
			o.then(o.err)
		}
	}
}

func (j *Journal) apply(tx *bbolt.Tx, o *op) error {
	if o.events != nil && (o.adopt || o.imported) {
		res, err := j.carryEvents(tx, o.events, o.adopt)
		o.result = res
		return err
	}
	if o.events != nil {
		res, err := appendEvents(tx, o.events)
		o.result = res
		return err
	}
	if o.seq == 0 {
		return addTallies(tx, o.tallies)
	}
	err := j.completeEvent(tx, o.seq, o.outcome, o.replay)
	switch {
	case errors.Is(err, errCompared):
		return nil // counted when it was first recorded
	case errors.Is(err, ErrNotFound):
		// This op's answer, not the batch's: the others commit with it.
		// Its tallies are owed all the same: the comparison or the call
		// was made, though the event was swept meanwhile.
		o.err = err
	case err != nil:
		return err
	}
	return addTallies(tx, o.outcome.Tallies)
}

// errCompared is a comparison for an event whose comparison is recorded:
// made twice (resumed at a start while it was being made), owed once.
var errCompared = errors.New("journal: comparison already recorded")

func appendEvents(tx *bbolt.Tx, events []Event) ([]Appended, error) {
	evb, dedup, pending := tx.Bucket(bucketEvents), tx.Bucket(bucketDedup), tx.Bucket(bucketPending)
	out := make([]Appended, len(events))
	for i, e := range events {
		dk := dedupKey(e.Partner, e.DeliveryID)
		if v := dedup.Get(dk); v != nil {
			seq := binary.BigEndian.Uint64(v)
			orig, err := load(evb, seq)
			if err == nil {
				orig.Duplicates++
				if err := put(evb, orig); err != nil {
					return nil, err
				}
				out[i] = Appended{Seq: seq, ID: orig.ID, Duplicate: true}
				continue
			}
			// The original was swept by retention: journal this one anew.
		}
		e.ID = IDOf(e)
		e.State = StateJournaled
		seq, err := putNew(tx, e)
		if err != nil {
			return nil, err
		}
		if err := pending.Put(seqKey(seq), nil); err != nil {
			return nil, err
		}
		out[i] = Appended{Seq: seq, ID: e.ID}
	}
	return out, nil
}

// putNew stores e under the events bucket's next sequence, which it
// returns, with its dedup key and its place among its partner's events.
func putNew(tx *bbolt.Tx, e Event) (uint64, error) {
	evb := tx.Bucket(bucketEvents)
	seq, err := evb.NextSequence()
	if err != nil {
		return 0, err
	}
	e.Seq = seq
	if err := put(evb, e); err != nil {
		return 0, err
	}
	if err := tx.Bucket(bucketDedup).Put(dedupKey(e.Partner, e.DeliveryID), seqKey(seq)); err != nil {
		return 0, err
	}
	return seq, tx.Bucket(bucketPartner).Put(partnerKey(e.Partner, e.ReceivedAt, seq), nil)
}

// completeEvent records out, and replay (out.Replay encoded), on the
// event with seq.
func (j *Journal) completeEvent(tx *bbolt.Tx, seq uint64, out Outcome, replay []byte) error {
	evb := tx.Bucket(bucketEvents)
	e, err := load(evb, seq)
	if err != nil {
		return err
	}
	if out.Comparison != "" && out.State == "" {
		if e.Comparison != "" {
			return errCompared
		}
		e.Comparison = out.Comparison
		if err := put(evb, e); err != nil {
			return err
		}
		return tx.Bucket(bucketCompare).Delete(seqKey(seq))
	}
	if out.Replay != nil {
		if err := addReplay(tx, e, out.Replay.OK, replay); err != nil {
			return err
		}
		if !out.Replay.OK {
			return nil
		}
		// A replay applies through its pipeline (the primary, once a
		// revert made it so): the entity's latest application if no later
		// event was applied.
		return j.index(tx, e, StateApplied, out.Replay.Pipeline, out.Replay.At)
	}
	if e.State == StateDeadLettered {
		// This outcome is the event's latest: it reads as written, not as
		// applied by a replay before it (replays.go).
		if err := tx.Bucket(bucketApplied).Delete(seqKey(seq)); err != nil {
			return err
		}
	}
	e.State, e.Attempts, e.Pipeline, e.SnapshotVersion = out.State, out.Attempts, out.Pipeline, out.SnapshotVersion
	e.Effects, e.LastError, e.LastStatus, e.DoneAt, e.Shadow = out.Effects, out.Error, out.Status, out.At, out.Shadow
	if out.State.Terminal() && e.Comparison == "" {
		// A comparison decided with the outcome (shed) costs no second
		// read and rewrite of the event, and is never due.
		e.Comparison = out.Comparison
	}
	if err := put(evb, e); err != nil {
		return err
	}
	if !out.State.Terminal() {
		return nil
	}
	if err := j.index(tx, e, out.State, out.Pipeline, out.At); err != nil {
		return err
	}
	if out.Shadow != "" && e.Comparison == "" {
		// Due until recorded: a router that dies between the outcome and
		// the comparison compares again at its next start.
		if err := tx.Bucket(bucketCompare).Put(seqKey(seq), nil); err != nil {
			return err
		}
	}
	return tx.Bucket(bucketPending).Delete(seqKey(seq))
}

// Get returns the event with seq, or ErrNotFound; ctx's error if ctx has
// ended.
func (j *Journal) Get(ctx context.Context, seq uint64) (Event, error) {
	if err := ctx.Err(); err != nil {
		return Event{}, err
	}
	var e Event
	err := j.db.View(func(tx *bbolt.Tx) error {
		var err error
		e, err = get(tx, seq)
		return err
	})
	return e, err
}

// Holds reports, for each event, whether this journal holds a delivery
// with its partner and delivery id, in whatever state.
func (j *Journal) Holds(ctx context.Context, events []Event) ([]bool, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := make([]bool, len(events))
	err := j.db.View(func(tx *bbolt.Tx) error {
		dedup, evb := tx.Bucket(bucketDedup), tx.Bucket(bucketEvents)
		for i, e := range events {
			v := dedup.Get(dedupKey(e.Partner, e.DeliveryID))
			out[i] = v != nil && evb.Get(v) != nil
		}
		return nil
	})
	return out, err
}

// Pending returns every event without a terminal outcome, oldest first:
// what a restarted router must still deliver. It returns ctx's error if
// ctx ends before it has read them all.
func (j *Journal) Pending(ctx context.Context) ([]Event, error) {
	return j.indexed(ctx, bucketPending)
}

// ComparisonsDue returns every event with an outcome whose shadow
// comparison was asked and is not recorded, oldest first: what a
// restarted router must still compare. It returns ctx's error if ctx ends
// before it has read them all.
func (j *Journal) ComparisonsDue(ctx context.Context) ([]Event, error) {
	return j.indexed(ctx, bucketCompare)
}

// indexed returns the events whose seqs are the keys of the index bucket.
// bbolt takes no context: ctx is checked between events.
func (j *Journal) indexed(ctx context.Context, index []byte) ([]Event, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	var out []Event
	err := j.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(index).ForEach(func(k, _ []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			e, err := get(tx, binary.BigEndian.Uint64(k))
			if err != nil {
				return err
			}
			out = append(out, e)
			return nil
		})
	})
	return out, err
}

// Position is a place in a partner's events, which are ordered by the time
// received, then seq.
type Position struct {
	At  time.Time `json:"at"`
	Seq uint64    `json:"seq"`
}

// After returns the position just after the event at p.
func (p Position) After() Position { return Position{At: p.At, Seq: p.Seq + 1} }

// Scan calls fn with the partner's events from start on and received
// before to, in order, until fn returns false. fn runs inside a read
// transaction: it must not write to the journal (bbolt would deadlock);
// collect what to change and change it after Scan returns. It returns
// ctx's error if ctx ends first, checked between events.
func (j *Journal) Scan(ctx context.Context, partner string, start Position, to time.Time, fn func(Event) bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return j.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketPartner).Cursor()
		prefix := append([]byte(partner), 0)
		end := partnerKey(partner, to, 0)
		for k, _ := c.Seek(partnerKey(partner, start.At, start.Seq)); k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k, end) < 0; k, _ = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			e, err := get(tx, binary.BigEndian.Uint64(k[len(k)-8:]))
			if errors.Is(err, ErrNotFound) {
				continue // swept
			}
			if err != nil {
				return err
			}
			if !fn(e) {
				return nil
			}
		}
		return nil
	})
}

// Count returns how many events Scan would call fn with for partner,
// start and to (every one: fn returning true), from the partner index's
// keys alone, without reading the events. It returns ctx's error if ctx
// ends first, checked every few thousand keys.
func (j *Journal) Count(ctx context.Context, partner string, start Position, to time.Time) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := j.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketPartner).Cursor()
		prefix := append([]byte(partner), 0)
		end := partnerKey(partner, to, 0)
		for k, _ := c.Seek(partnerKey(partner, start.At, start.Seq)); k != nil && bytes.HasPrefix(k, prefix) && bytes.Compare(k, end) < 0; k, _ = c.Next() {
			if n%4096 == 0 {
				if err := ctx.Err(); err != nil {
					return err
				}
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	return n, nil
}

// Stats are the journal's figures.
type Stats struct {
	Events    int       `json:"events"`
	Pending   int       `json:"pending"`
	SizeBytes int64     `json:"sizeBytes"`
	Oldest    time.Time `json:"oldest,omitzero"`
	Commits   uint64    `json:"commits"`   // transactions, each one fsync
	Committed uint64    `json:"committed"` // writes in them
}

// Stats returns the journal's figures, or ctx's error if ctx has ended.
func (j *Journal) Stats(ctx context.Context) (Stats, error) {
	if err := ctx.Err(); err != nil {
		return Stats{}, err
	}
	var s Stats
	err := j.db.View(func(tx *bbolt.Tx) error {
		// One partner index key per event, and ~100 keys a page where
		// the events take a page or two each: counting the index reads a
		// hundredth of the pages (routers measure every ReconcileEvery).
		s.Events = tx.Bucket(bucketPartner).Stats().KeyN
		s.Pending = tx.Bucket(bucketPending).Stats().KeyN
		s.SizeBytes = tx.Size()
		if _, v := tx.Bucket(bucketEvents).Cursor().First(); v != nil {
			var e Event
			if err := json.Unmarshal(v, &e); err == nil {
				s.Oldest = e.ReceivedAt
			}
		}
		return nil
	})
	j.statsMu.Lock()
	s.Commits, s.Committed = j.commits, j.committed
	j.statsMu.Unlock()
	return s, err
}

// Sweep deletes events with a terminal outcome received before cutoff,
// with their replays, index and dedup entries, at most limit of them, and returns
// how many it deleted. Events without an outcome are never swept. It
// returns ctx's error, having deleted nothing, if ctx ends first: ctx is
// checked between the events it looks at.
func (j *Journal) Sweep(ctx context.Context, cutoff time.Time, limit int) (int, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	n := 0
	err := j.db.Update(func(tx *bbolt.Tx) error {
		evb, pending := tx.Bucket(bucketEvents), tx.Bucket(bucketPending)
		c := evb.Cursor()
		var doomed []Event
		for k, v := c.First(); k != nil && len(doomed) < limit; k, v = c.Next() {
			if err := ctx.Err(); err != nil {
				return err
			}
			var e Event
			if err := json.Unmarshal(v, &e); err != nil {
				return err
			}
			if !e.ReceivedAt.Before(cutoff) {
				break
			}
			if pending.Get(k) == nil {
				doomed = append(doomed, e)
			}
		}
		for _, e := range doomed {
			if err := evb.Delete(seqKey(e.Seq)); err != nil {
				return err
			}
			if err := deleteReplays(tx, e.Seq); err != nil {
				return err
			}
			if err := tx.Bucket(bucketCompare).Delete(seqKey(e.Seq)); err != nil {
				return err
			}
			if err := tx.Bucket(bucketPartner).Delete(partnerKey(e.Partner, e.ReceivedAt, e.Seq)); err != nil {
				return err
			}
			dk := dedupKey(e.Partner, e.DeliveryID)
			if v := tx.Bucket(bucketDedup).Get(dk); v != nil && binary.BigEndian.Uint64(v) == e.Seq {
				if err := tx.Bucket(bucketDedup).Delete(dk); err != nil {
					return err
				}
			}
		}
		n = len(doomed)
		return nil
	})
	return n, err
}

// get returns the event with seq as readers see it: its record, with its
// replays (readReplays). What the committer rewrites it reads with load
// instead: the replays must not be copied into the record.
func get(tx *bbolt.Tx, seq uint64) (Event, error) {
	e, err := load(tx.Bucket(bucketEvents), seq)
	if err != nil {
		return Event{}, err
	}
	if err := readReplays(tx, seq, &e); err != nil {
		return Event{}, err
	}
	return e, nil
}

// load returns the event with seq as its record holds it: without the
// replays recorded since schema 3, and dead-lettered if it is applied by
// one of them.
func load(b *bbolt.Bucket, seq uint64) (Event, error) {
	v := b.Get(seqKey(seq))
	if v == nil {
		return Event{}, ErrNotFound
	}
	e, err := decodeEvent(v)
	if err != nil {
		return Event{}, fmt.Errorf("decode event %d: %w", seq, err)
	}
	return e, nil
}

func put(b *bbolt.Bucket, e Event) error {
	v, err := encodeEvent(e)
	if err != nil {
		return err
	}
	return b.Put(seqKey(e.Seq), v)
}

func seqKey(seq uint64) []byte { return binary.BigEndian.AppendUint64(make([]byte, 0, 8), seq) }

func dedupKey(partner, delivery string) []byte {
	return append(append(append(make([]byte, 0, len(partner)+1+len(delivery)), partner...), 0), delivery...)
}

func partnerKey(partner string, at time.Time, seq uint64) []byte {
	k := append(append(make([]byte, 0, len(partner)+17), partner...), 0)
	k = binary.BigEndian.AppendUint64(k, uint64(max(0, at.UnixNano())))
	return binary.BigEndian.AppendUint64(k, seq)
}

// EventID is the id of the event of a partner's delivery, the
// Idempotency-Key pipelines see: derived from the partner and the
// delivery's dedup key alone, so that two routers that both journal a
// retried delivery give it the same id, and a pipeline applies it once.
// The derivation is part of the contract (docs/api.md, "Webhook
// endpoint"): "evt_" and the first 12 bytes, in hex, of the SHA-256 of
// "switchback.event.v1", the partner id and the dedup key, each followed
// by a zero byte.
func EventID(partner, delivery string) string {
	h := sha256.New()
	for _, part := range []string{"switchback.event.v1", partner, delivery} {
		h.Write([]byte(part))
		h.Write([]byte{0})
	}
	return "evt_" + hex.EncodeToString(h.Sum(nil)[:12])
}

// IDOf is the id an event is journaled under, on any journal: its own if
// it has one, else EventID's, else, for an event without a dedup key, a
// random one.
func IDOf(e Event) string {
	switch {
	case e.ID != "":
		return e.ID
	case e.DeliveryID != "":
		return EventID(e.Partner, e.DeliveryID)
	}
	var b [12]byte
	rand.Read(b[:])
	return "evt_" + hex.EncodeToString(b[:])
}

var bucketJobs = []byte("jobs")

// PutJob stores a background job's state (replays), by id, durably. It
// returns ctx's error, storing nothing, if ctx has ended.
func (j *Journal) PutJob(ctx context.Context, id string, state []byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return j.db.Update(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketJobs).Put([]byte(id), state)
	})
}

// Jobs returns every stored job's state by id, or ctx's error if ctx ends
// before it has read them all.
func (j *Journal) Jobs(ctx context.Context) (map[string][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := map[string][]byte{}
	err := j.db.View(func(tx *bbolt.Tx) error {
		return tx.Bucket(bucketJobs).ForEach(func(k, v []byte) error {
			if err := ctx.Err(); err != nil {
				return err
			}
			out[string(k)] = append([]byte(nil), v...)
			return nil
		})
	})
	return out, err
}
