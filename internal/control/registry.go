package control

import (
	"context"
	"maps"
	"slices"
	"sync"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Registry holds what the control replicas share beside the store's
// state: the routers' last reports, the replay board and the guard's
// windows. None of it is versioned, audited or part of a snapshot, and
// all of it is filled again by the routers' reports, so a registry may
// forget (expire) what it holds; but the replicas must see one registry,
// so that the dashboard of any replica lists every router, a replay asked
// on one is offered by all, and a partner's guard window is one window
// whichever replica receives its samples.
//
// The default, MemoryRegistry, serves one process; package etcdstore has
// one that several replicas share.
type Registry interface {
	// PutRouter records a router's status, which lasts the registry's
	// time to live unless put again. A nil Journal keeps the one last
	// put. A registry may drop a new router when it holds too many (a
	// bound against a misbehaving router token): that is not an error.
	PutRouter(ctx context.Context, r RouterStatus) error
	// Routers lists the routers whose status has not expired, in any
	// order.
	Routers(ctx context.Context) ([]RouterStatus, error)

	// PutReplay records a replay asked of the routers.
	PutReplay(ctx context.Context, job domain.ReplayJob) error
	// PutReplayProgress records a router's progress on a replay, and the
	// replay itself (its ID, Request and CreatedAt, taken from progress)
	// when the registry does not hold it: asked before the registry
	// forgot it.
	PutReplayProgress(ctx context.Context, router string, progress domain.ReplayJob) error
	// Replays lists the replays the registry keeps, each with the
	// progress of every router that reported it, in any order. A registry
	// may drop replays older than a few days.
	Replays(ctx context.Context) ([]AskedJob, error)

	// UpdateWindow replaces a partner's guard window in a migration with
	// fn's result, atomically: no other update of the same window comes
	// between fn's read and its write. fn gets the window's outcomes,
	// oldest first (nil for none), and must not modify them; returning nil
	// deletes the window. fn may run more than once, against fresher
	// windows, when another replica updated the window meanwhile: it must
	// have no effect but its result and what it sets again on each run.
	UpdateWindow(ctx context.Context, migration, partner string, fn func(outcomes []string) []string) error
}

// AskedJob is a replay asked of the routers, with each router's progress.
type AskedJob struct {
	Job      domain.ReplayJob            // as asked: ID, Request, CreatedAt
	Progress map[string]domain.ReplayJob // by router id
}

// MemoryRegistry is a Registry in the process's memory: one control
// service's, as before replicas. Routers never expire from it (a
// restarted process starts empty and learns them again within one report
// interval) and replays are kept while the process runs.
type MemoryRegistry struct {
	mu      sync.Mutex
	routers map[string]RouterStatus
	jobs    map[string]*AskedJob
	windows map[string][]string // migration 0 partner → outcomes, oldest first
}

var _ Registry = (*MemoryRegistry)(nil)

// NewMemoryRegistry returns an empty MemoryRegistry.
func NewMemoryRegistry() *MemoryRegistry {
	return &MemoryRegistry{routers: map[string]RouterStatus{}, jobs: map[string]*AskedJob{}, windows: map[string][]string{}}
}

// maxRouters bounds the registry against a misbehaving router token.
const maxRouters = 10000

// PutRouter records r, dropping a new router past maxRouters. It never
// fails.
func (m *MemoryRegistry) PutRouter(_ context.Context, r RouterStatus) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	old, known := m.routers[r.ID]
	if !known && len(m.routers) >= maxRouters {
		return nil
	}
	if known && r.Journal == nil {
		r.Journal = old.Journal
	}
	m.routers[r.ID] = r
	return nil
}

// Routers lists every router put. It never fails.
func (m *MemoryRegistry) Routers(context.Context) ([]RouterStatus, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Collect(maps.Values(m.routers)), nil
}

// PutReplay records job. It never fails.
func (m *MemoryRegistry) PutReplay(_ context.Context, job domain.ReplayJob) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.jobs[job.ID] = &AskedJob{Job: job, Progress: map[string]domain.ReplayJob{}}
	return nil
}

// PutReplayProgress records a router's progress. It never fails.
func (m *MemoryRegistry) PutReplayProgress(_ context.Context, router string, p domain.ReplayJob) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	j := m.jobs[p.ID]
	if j == nil {
		j = &AskedJob{Job: domain.ReplayJob{ID: p.ID, Request: p.Request, CreatedAt: p.CreatedAt}, Progress: map[string]domain.ReplayJob{}}
		m.jobs[p.ID] = j
	}
	j.Progress[router] = p
	return nil
}

// Replays lists every replay put, with copies of their progress. It never
// fails.
func (m *MemoryRegistry) Replays(context.Context) ([]AskedJob, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]AskedJob, 0, len(m.jobs))
	for _, j := range m.jobs {
		out = append(out, AskedJob{Job: j.Job, Progress: maps.Clone(j.Progress)})
	}
	return out, nil
}

// UpdateWindow runs fn once, under the registry's lock. It never fails.
func (m *MemoryRegistry) UpdateWindow(_ context.Context, migration, partner string, fn func([]string) []string) error {
	key := migration + "\x00" + partner
	m.mu.Lock()
	defer m.mu.Unlock()
	if w := fn(slices.Clip(m.windows[key])); w != nil {
		m.windows[key] = w
	} else {
		delete(m.windows, key)
	}
	return nil
}
