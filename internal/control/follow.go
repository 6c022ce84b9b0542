package control

import (
	"context"
	"errors"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Shared is a Store that several control services (replicas) change at
// once, such as etcd. Each replica follows the others' changes (Follow)
// and publishes the state they wrote at the version they wrote, so a
// router moving from one replica to another never goes backwards.
type Shared interface {
	Store
	// Head returns the seq of the last audit entry. Every change appends
	// one, so a head past a replica's own tells it another replica
	// changed the store. It returns an error of code store_unavailable
	// when the store cannot be reached.
	Head(ctx context.Context) (uint64, error)
	// Changes returns a channel that receives a value soon after the
	// head may have moved, coalescing bursts; it is closed when ctx ends.
	Changes(ctx context.Context) <-chan struct{}
}

// followEvery is how often Follow checks the store's head when the
// watch says nothing: it bounds both how late a missed change is seen
// and how long a replica answers writes while its store is unreachable
// without knowing it.
const followEvery = time.Second

// Follow keeps the published state equal to the shared store's until ctx
// ends: it loads the store whenever another replica changed it, and marks
// the state stale while the store cannot be reached (see Stale). It
// returns at once for a store that is not Shared.
func (s *Service) Follow(ctx context.Context) {
	sh, ok := s.store.(Shared)
	if !ok {
		return
	}
	changes := sh.Changes(ctx)
	tick := time.NewTicker(followEvery)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-changes:
		case <-tick.C:
		}
		s.CatchUp(ctx)
	}
}

// CatchUp publishes the shared store's latest state if another replica
// changed it since this one last looked; it does nothing for a store
// that is not Shared. It returns the store's error when it cannot be
// reached. The head is read without the change lock, so that a store
// slow to answer does not hold up changes and reads that need the lock.
func (s *Service) CatchUp(ctx context.Context) error {
	sh, ok := s.store.(Shared)
	if !ok {
		return nil
	}
	head, err := sh.Head(ctx)
	if err == nil {
		s.mu.Lock()
		if head > s.lastAudit.Seq {
			err = s.syncLocked(ctx)
		}
		s.mu.Unlock()
	}
	s.noteSync(err)
	return err
}

// catchUpLocked loads a shared store when its head is past this
// service's, and notes whether it answered. The caller holds s.mu.
func (s *Service) catchUpLocked(ctx context.Context) error {
	sh, ok := s.store.(Shared)
	if !ok {
		return nil
	}
	head, err := sh.Head(ctx)
	if err == nil && head > s.lastAudit.Seq {
		err = s.syncLocked(ctx)
	}
	s.noteSync(err)
	return err
}

// noteSync records whether the store answered, for Stale.
func (s *Service) noteSync(err error) {
	if err == nil {
		s.unreachable.Store(nil)
		return
	}
	if ctxErr(err) {
		return // stopping, not unreachable
	}
	if s.unreachable.Load() == nil {
		at := s.now().UTC()
		s.unreachable.Store(&at)
		s.log.Error("the shared store cannot be reached: serving the last state, refusing changes", "err", err)
		// Wake the snapshot streams, which end while the state is stale
		// so that their routers move to a replica that can follow.
		ch := make(chan struct{})
		close(*s.changed.Swap(&ch))
	}
}

func ctxErr(err error) bool {
	return errors.Is(err, context.Canceled)
}

// Stale reports since when the shared store could not be reached, if it
// cannot now: the published state may be behind the store's. Becoming
// stale wakes the Changed channel without a new state.
func (s *Service) Stale() (since time.Time, stale bool) {
	if at := s.unreachable.Load(); at != nil {
		return *at, true
	}
	return time.Time{}, false
}

// Available returns a store_unavailable error while the shared store is
// known unreachable, so that a change (or a router's stream or report) is
// refused at once rather than after the store's timeout.
func (s *Service) Available() error {
	since, stale := s.Stale()
	if !stale {
		return nil
	}
	return &domain.Error{Code: domain.CodeStoreUnavailable, RetryAfter: 2 * followEvery,
		Message: "the control store cannot be reached since " + since.Format(time.RFC3339) + ": this replica makes no change and reads only its last state; try again, or another replica"}
}

// syncLocked loads the store and, if its audit head is past this
// service's, publishes its state at the version stored with it. The
// caller holds s.mu.
func (s *Service) syncLocked(ctx context.Context) error {
	data, err := s.store.Load(ctx)
	if err != nil {
		return storeError("load store", err)
	}
	if data.LastAudit.Seq <= s.lastAudit.Seq {
		return nil
	}
	s.lastAudit = data.LastAudit
	s.setTokens(data.Tokens)
	s.changes.Store(newChangeBook(data.Changes))
	cur := s.state.Load()
	if data.Version == cur.Version && data.StoreID == cur.StoreID {
		return nil // an audited action that changed no state
	}
	s.publish(newState(data), data.Version, s.now().UTC())
	s.log.Info("followed a change of another replica", "version", data.Version, "auditSeq", data.LastAudit.Seq)
	return nil
}
