package control

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"
)

// RouterStatus is what a router last told the control service: the snapshot
// version it holds and its journal figures.
type RouterStatus struct {
	ID              string    `json:"id"`
	LastSeen        time.Time `json:"lastSeen"`
	SnapshotVersion uint64    `json:"snapshotVersion"`
	// StoreID is the store of the snapshot the router holds; empty from
	// routers that predate store ids.
	StoreID string `json:"storeId,omitempty"`
	// Refused is the version of this store the router last refused
	// because it holds a later one: the store went back.
	Refused uint64          `json:"refused,omitempty"`
	Journal json.RawMessage `json:"journal,omitempty"`
	// Conflict says, for the routers page, why the router's snapshot is
	// not one of this store's: empty when it is.
	Conflict string `json:"conflict,omitempty"`
}

// Regression is the last time a router held a version of this store
// that the store no longer has.
type Regression struct {
	At      time.Time `json:"at"`
	Router  string    `json:"router"`
	Held    uint64    `json:"held"`    // the version the router held
	Store   uint64    `json:"store"`   // the store's version then
	MovedTo uint64    `json:"movedTo"` // the version published past it
}

// regressions counts the times the store was found behind a router.
type regressions struct {
	mu    sync.Mutex
	count uint64
	last  Regression
	tried time.Time // the last fast-forward tried, for fastForwardEvery
}

// registryTimeout bounds a call to the registry made without a caller's
// context (the listings of the routers page and the replay board).
const registryTimeout = 5 * time.Second

// ReportRouter records a router's report.
func (s *Service) ReportRouter(r RouterStatus) {
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	s.reportRouter(ctx, r)
}

// reportRouter records a router's report in the registry. A registry that
// fails is logged, not returned: the router must still be answered, and
// what is lost is this report on the routers page of the other replicas
// (the router reports again within seconds).
func (s *Service) reportRouter(ctx context.Context, r RouterStatus) {
	r.LastSeen = s.now().UTC()
	r.Conflict = ""
	if st := s.State(); r.StoreID != "" && r.StoreID != st.StoreID {
		r.Conflict = "holds a snapshot of another store: it resyncs to this one"
	} else if r.StoreID != "" && behind(st.Version, r) {
		r.Conflict = fmt.Sprintf("holds version %d of this store, which went back to version %d (restored from a backup?)", r.SnapshotVersion, st.Version)
	}
	if err := s.registry.PutRouter(ctx, r); err != nil {
		s.log.Error("registry: router report not shared", "router", r.ID, "err", err)
	}
}

// Routers lists the routers by id: every replica's, when the registry is
// shared. A registry that fails is logged and answers no routers.
func (s *Service) Routers() []RouterStatus {
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	out, err := s.registry.Routers(ctx)
	if err != nil {
		s.log.Error("registry: list routers", "err", err)
		return []RouterStatus{}
	}
	slices.SortFunc(out, func(a, b RouterStatus) int { return strings.Compare(a.ID, b.ID) })
	return out
}

// RoutersSeenSince lists the routers but except that reported at or after
// since: those whose journals may hold events of a window from since. Its
// error is the registry's: then nobody can say which journals to read.
func (s *Service) RoutersSeenSince(ctx context.Context, since time.Time, except string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, registryTimeout)
	defer cancel()
	all, err := s.registry.Routers(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the router registry: %w", err)
	}
	var ids []string
	for _, r := range all {
		if r.ID != except && !r.LastSeen.Before(since) {
			ids = append(ids, r.ID)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// Regressions returns how many times since start a router held a version
// of this store that the store no longer had, and the last time.
func (s *Service) Regressions() (uint64, Regression) {
	s.regress.mu.Lock()
	defer s.regress.mu.Unlock()
	return s.regress.count, s.regress.last
}

// behind reports whether a router of this store holds a version the
// store at version does not have: a later one, or this very version with
// other contents (it refused this version's snapshot as not newer). A
// router that refused an older version, offered by a replica that had not
// yet followed the others, holds a version the store has.
func behind(version uint64, r RouterStatus) bool {
	return r.SnapshotVersion > version || r.SnapshotVersion == version && r.Refused == version
}

// fastForwardEvery bounds how often the control service moves its version
// past a router's; a router's provider reports every 15 s.
const fastForwardEvery = 10 * time.Second

// fastForward answers a router that holds a version of this store that
// the store no longer has: a store restored from a backup, or copied back,
// starts again from an earlier version, and every router holding a later
// one would refuse its snapshots, a revert included, until the version
// passed its own. The control service publishes its state again at a
// version past the router's, audited, so every router takes it. Reports
// of another store, or of versions this store has, change nothing.
func (s *Service) fastForward(ctx context.Context, r RouterStatus) error {
	st := s.State()
	if r.StoreID == "" || r.StoreID != st.StoreID {
		return nil
	}
	if !behind(st.Version, r) {
		return nil
	}
	// A router token may claim any version: at most one fast-forward per
	// fastForwardEvery, so a rogue router cannot flood the audit log and
	// every router with versions. A router still ahead reports again.
	s.regress.mu.Lock()
	now := s.now()
	recent := !s.regress.tried.IsZero() && now.Sub(s.regress.tried) < fastForwardEvery
	if !recent {
		s.regress.tried = now // claimed: a report at the same moment does not fast-forward too
	}
	s.regress.mu.Unlock()
	if recent {
		return nil
	}
	reason := fmt.Sprintf("router %s holds snapshot version %d of this store, which is at version %d: the store went back (restored from a backup?)",
		r.ID, r.SnapshotVersion, st.Version)
	moved := false
	next, err := s.apply(ctx, Change{Actor: "control", Reason: reason}, func(cur *State, _ time.Time) (plan, error) {
		moved = false
		if !behind(cur.Version, r) {
			// Moved past it meanwhile, or this replica was only behind
			// the shared store, which apply caught up with.
			return plan{}, nil
		}
		moved = true
		to := r.SnapshotVersion + 1
		return plan{next: cur.clone(), minVersion: to, records: []record{{action: "snapshot.fastforward", target: "snapshot",
			before: map[string]uint64{"version": cur.Version}, after: map[string]any{"version": to, "router": r.ID, "routerVersion": r.SnapshotVersion}}}}, nil
	})
	if err != nil || !moved {
		return err
	}
	s.regress.mu.Lock()
	s.regress.count++
	s.regress.last = Regression{At: s.now().UTC(), Router: r.ID, Held: r.SnapshotVersion, Store: st.Version, MovedTo: next.Version}
	s.regress.mu.Unlock()
	s.log.Error("snapshot version went backwards: published the state again past the router's version", "router", r.ID,
		"routerVersion", r.SnapshotVersion, "storeVersion", st.Version, "store", st.StoreID, "version", next.Version)
	return nil
}
