package control

import (
	"context"
	"encoding/json"
	"log/slog"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// ComparisonStats answers the counts the gates judge for a partner's
// stint in a stage. The service tallies them from its store's rows; tests
// give it another to put partners on either side of a gate without
// reporting thousands of comparisons.
type ComparisonStats interface {
	StageCounts(ctx context.Context, migration, partner string, stage domain.Stage, since time.Time) (gate.Counts, error)
}

// storeCounts tallies the counts from the store's rows: the gates judge
// what gate.Tally makes of them, never a store's own idea of a count.
type storeCounts struct{ store Store }

// StageCounts returns gate.Tally of the stage's rows.
func (c storeCounts) StageCounts(ctx context.Context, migration, partner string, stage domain.Stage, since time.Time) (gate.Counts, error) {
	rows, err := c.store.StageRows(ctx, migration, partner, stage, since)
	if err != nil {
		return gate.Counts{}, err
	}
	return gate.Tally(rows), nil
}

// Options configure a Service.
type Options struct {
	Now    func() time.Time // defaults to time.Now
	Stats  ComparisonStats  // defaults to tallying the store's rows
	Logger *slog.Logger     // defaults to slog.Default()
	// Registry holds the routers' reports, the replay board and the
	// guard's windows; it defaults to a MemoryRegistry. Replicas sharing a
	// store share one registry.
	Registry Registry
	// CannotReconcile says why reconciliations would be refused wherever
	// this service runs (a shared store, whose replicas' routers keep
	// journals of their own; no embedded router), "" when they can run.
	// A migration's reconcile setting is then refused (PutMigration):
	// accepted, its reconciliations would fail at every period unseen.
	CannotReconcile string
}

// Service is the control service.
type Service struct {
	store Store
	now   func() time.Time
	stats ComparisonStats
	log   *slog.Logger
	// cannotReconcile is Options.CannotReconcile.
	cannotReconcile string

	mu        sync.Mutex // serializes changes; guards lastAudit
	lastAudit domain.AuditEntry

	state     atomic.Pointer[State]
	tokens    atomic.Pointer[map[string]domain.Token] // by hex SHA-256 of the secret
	ephemeral atomic.Pointer[map[string]domain.Token] // in memory only: see AddEphemeralToken
	changes   atomic.Pointer[changeBook]              // the change requests kept: see changes.go
	changed   atomic.Pointer[chan struct{}]           // closed when a new State is published
	reverts   atomic.Uint64
	regress   regressions
	registry  Registry
	scheduler atomic.Pointer[ReplayScheduler] // the one running, if any
	onRevert  atomic.Pointer[func(RevertEvent)]
	onNotice  atomic.Pointer[func(domain.Notice)]
	// unreachable is when a shared store stopped answering, nil while
	// it answers: see Follow.
	unreachable atomic.Pointer[time.Time]
}

// New loads the store and returns a service publishing its state.
func New(ctx context.Context, store Store, opts Options) (*Service, error) {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Stats == nil {
		opts.Stats = storeCounts{store}
	}
	if opts.Logger == nil {
		opts.Logger = slog.Default()
	}
	if opts.Registry == nil {
		opts.Registry = NewMemoryRegistry()
	}
	data, err := store.Load(ctx)
	if err != nil {
		return nil, domain.Internal("load store", err)
	}
	s := &Service{store: store, now: opts.Now, stats: opts.Stats, log: opts.Logger, registry: opts.Registry, lastAudit: data.LastAudit,
		cannotReconcile: opts.CannotReconcile}
	st := newState(data)
	st.seal(data.Version, s.now().UTC(), data.LastAudit)
	s.state.Store(st)
	s.setTokens(data.Tokens)
	s.changes.Store(newChangeBook(data.Changes))
	ch := make(chan struct{})
	s.changed.Store(&ch)
	return s, nil
}

// State returns the current state. Never modify it.
func (s *Service) State() *State { return s.state.Load() }

// Changed returns the current state and a channel closed as soon as a newer
// one is published.
func (s *Service) Changed() (*State, <-chan struct{}) {
	ch := *s.changed.Load()
	return s.state.Load(), ch
}

// Reverts counts the kill switches turned on since start.
func (s *Service) Reverts() uint64 { return s.reverts.Load() }

// AuditLog returns up to limit entries with seq > after. It returns an
// error of code invalid for a limit outside 1..1000, and of code
// store_unavailable when a shared store cannot be reached.
func (s *Service) AuditLog(ctx context.Context, after uint64, limit int) ([]domain.AuditEntry, error) {
	if limit <= 0 || limit > 1000 {
		return nil, domain.Errorf(domain.CodeInvalid, "limit must be between 1 and 1000")
	}
	if err := s.Available(); err != nil {
		return nil, err
	}
	entries, err := s.store.AuditLog(ctx, after, limit)
	if err != nil {
		return nil, storeError("read audit log", err)
	}
	return entries, nil
}

// AuditHead returns the last entry of the audit log, as a witness: its
// store, sequence number and hash (zero for an empty log).
func (s *Service) AuditHead() flags.AuditHead {
	s.mu.Lock()
	defer s.mu.Unlock()
	return flags.AuditHead{StoreID: s.State().StoreID, Seq: s.lastAudit.Seq, Hash: s.lastAudit.Hash}
}

// Change identifies who makes a change and why.
type Change struct {
	Actor  string
	Reason string
}

// Validate returns an invalid_argument error when the reason is not one
// domain.CheckReason accepts. Every change checks it in apply; a caller
// with a side effect before its change (starting a replay) checks first.
func (c Change) Validate() error { return domain.CheckReason(c.Reason) }

// record is one audit entry of a change, before it is chained. Its
// actor and reason are the change's unless set: a change request's move
// is audited as its requester's, written when another approves it.
type record struct {
	action, target string
	before, after  any
	actor, reason  string
}

// plan is what a change does: the next state (nil when the snapshot does not
// change), the writes and the audit records.
type plan struct {
	next    *State
	writes  func(Tx) error
	records []record
	tokens  *map[string]domain.Token
	// changes, when set, is the change requests once the plan committed.
	changes *changeBook
	// minVersion, if above the next version, is the version to publish
	// instead: see fastForward.
	minVersion uint64
}

// changeAttempts bounds how often apply decides a change again after the
// store refused it because another replica changed what it was decided on;
// with its waits, a change gives up after about half a second of losing.
const changeAttempts = 8

// apply runs decide under the change lock, writes its plan in one
// transaction and publishes the result. When the store is shared and
// another replica committed first, the store refuses the write (the audit
// head moved); apply then loads what the other wrote and decides again, so
// a revert racing an advance still lands, decided on the advanced state.
func (s *Service) apply(ctx context.Context, c Change, decide func(cur *State, now time.Time) (plan, error)) (*State, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.Available(); err != nil {
		return nil, err
	}
	// A decision that nothing needs doing ("already reverted") must be
	// right: on a shared store, catch up with the others first.
	if err := s.catchUpLocked(ctx); err != nil {
		return nil, err
	}
	for attempt := 1; ; attempt++ {
		st, lost, err := s.applyOnce(ctx, c, decide)
		if !lost || attempt == changeAttempts {
			return st, err
		}
		// Another replica won: wait a random while, longer each time, so
		// that two replicas racing do not collide again, then decide on
		// what it wrote.
		if err := sleep(ctx, time.Duration(rand.Int64N(int64(time.Millisecond<<attempt)))); err != nil {
			return nil, err
		}
		if err := s.syncLocked(ctx); err != nil {
			return nil, err
		}
	}
}

// applyOnce decides on the published state and writes the plan. lost
// reports a write refused because the store moved past that state.
func (s *Service) applyOnce(ctx context.Context, c Change, decide func(cur *State, now time.Time) (plan, error)) (_ *State, lost bool, _ error) {
	cur := s.state.Load()
	now := s.now().UTC()
	p, err := decide(cur, now)
	if err != nil {
		return nil, false, err
	}
	if p.next == nil && len(p.records) == 0 {
		return cur, false, nil
	}
	entries := make([]domain.AuditEntry, len(p.records))
	prev := s.lastAudit
	for i, r := range p.records {
		actor, reason := c.Actor, c.Reason
		if r.actor != "" {
			actor, reason = r.actor, r.reason
		}
		prev = audit.Next(prev, domain.AuditEntry{
			At: now, Actor: actor, Action: r.action, Target: r.target,
			Before: mustJSON(r.before), After: mustJSON(r.after), Reason: reason,
		})
		entries[i] = prev
	}
	version := cur.Version
	if p.next != nil {
		version = max(version+1, p.minVersion)
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		if p.writes != nil {
			if err := p.writes(tx); err != nil {
				return err
			}
		}
		if p.next != nil {
			if err := tx.SetVersion(version); err != nil {
				return err
			}
		}
		for _, e := range entries {
			if err := tx.AppendAudit(e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil && domain.ErrorCode(err) == domain.CodeStoreUnavailable && len(entries) > 0 {
		err = s.outcome(ctx, entries[0], err)
	}
	if err != nil {
		return nil, domain.ErrorCode(err) == domain.CodeConflict, storeError("write change", err)
	}
	if len(entries) > 0 {
		s.lastAudit = entries[len(entries)-1]
	}
	if p.tokens != nil {
		s.tokens.Store(p.tokens)
	}
	if p.changes != nil {
		s.changes.Store(p.changes)
	}
	if p.next == nil {
		return cur, false, nil
	}
	s.publish(p.next, version, now)
	for _, r := range p.records {
		s.log.Info("change", "actor", c.Actor, "action", r.action, "target", r.target, "version", version)
	}
	return p.next, false, nil
}

// outcome finds out whether a write that failed with the store
// unreachable committed all the same (etcd may apply a transaction whose
// answer was lost): by its first audit entry, which only that write puts
// at that seq with that hash. It returns nil when the write committed, a
// conflict when another change took the seq, and otherwise err, saying
// whether the write is known not to have happened.
func (s *Service) outcome(ctx context.Context, first domain.AuditEntry, err error) error {
	got, readErr := s.store.AuditLog(ctx, first.Seq-1, 1)
	switch {
	case readErr != nil:
		return &domain.Error{Code: domain.CodeStoreUnavailable, RetryAfter: 2 * followEvery, Err: err,
			Message: "the control store cannot be reached and the change may or may not have been made: check the audit log (GET /v1/audit) before sending it again"}
	case len(got) == 1 && got[0].Seq == first.Seq && got[0].Hash == first.Hash:
		s.log.Warn("a change whose answer from the store was lost had committed", "seq", first.Seq, "err", err)
		return nil
	case len(got) == 1 && got[0].Seq == first.Seq:
		return &domain.Error{Code: domain.CodeConflict, Message: "another change took the audit seq", Err: err}
	}
	return &domain.Error{Code: domain.CodeStoreUnavailable, RetryAfter: 2 * followEvery, Err: err,
		Message: "the control store cannot be reached; nothing was changed: try again"}
}

// publish seals next at version and makes it the current state. The
// caller holds s.mu.
func (s *Service) publish(next *State, version uint64, now time.Time) {
	next.seal(version, now, s.lastAudit)
	// next's delta is from prev, known before anyone can ask for it;
	// prev's own predecessor is let go.
	prev := s.state.Load()
	next.enc.deltaBase = prev.Version
	next.enc.base.Store(prev)
	s.state.Store(next)
	prev.enc.base.Store(nil)
	ch := make(chan struct{})
	close(*s.changed.Swap(&ch))
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

func mustJSON(v any) json.RawMessage {
	if v == nil {
		return json.RawMessage("null")
	}
	b, err := json.Marshal(v)
	if err != nil {
		// Only the package's own plain structs reach here.
		panic("control: audit value does not marshal: " + err.Error())
	}
	return b
}

// RecordAction writes an audit entry for an action that changes nothing
// the control service stores, such as starting a replay on a router.
func (s *Service) RecordAction(ctx context.Context, c Change, action, target string, detail any) error {
	_, err := s.apply(ctx, c, func(*State, time.Time) (plan, error) {
		return plan{records: []record{{action: action, target: target, after: detail}}}, nil
	})
	return err
}

// storeError is a store's failure, of a write or a read: a conflict the
// store reports (another replica changed what a write was decided on) is
// the caller's to retry, answered 409; a store that cannot be reached
// answers 503 with Retry-After; anything else is internal.
func storeError(what string, err error) error {
	if code := domain.ErrorCode(err); code == domain.CodeConflict || code == domain.CodeStoreUnavailable {
		return err
	}
	return domain.Internal(what, err)
}

// every calls fn each period until ctx ends: the loop of the service's
// background work (expiring change requests, the autopilots, the watch of
// routers).
func every(ctx context.Context, period time.Duration, fn func()) {
	t := time.NewTicker(period)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn()
		}
	}
}
