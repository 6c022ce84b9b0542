package etcdstore

import (
	"context"
	"encoding/json"
	"fmt"
	mrand "math/rand/v2"
	"reflect"
	"strings"
	"sync"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// Registry is a control.Registry in etcd, shared by every replica of a
// store. Its keys are under P registry/, apart from the store's state, so
// that a watch of the state can skip them: none of them changes a
// snapshot.
//
//	P registry/routers/<id>                        JSON control.RouterStatus, on a lease of the router TTL
//	P registry/replays/<id>                        JSON domain.ReplayJob as asked
//	P registry/replays/<id>/progress/<router>      JSON domain.ReplayJob: a router's progress on it
//	P registry/guard/<mig>/<partner>               the guard window, oldest first: see window
//
// A router's entry is put on a lease of its own, granted at each rewrite,
// so that the entry of a router that stops reporting expires with it
// whichever replica wrote it last (one lease per replica, kept alive,
// would keep a dead router listed while its replica lives). To keep etcd's
// writes low, a replica rewrites an entry only when the router's version,
// store, refusal or conflict changed, or when its lease is more than half
// used: its journal figures and LastSeen on the other replicas are thus up
// to half a TTL old, while the replica the router reports to lists its
// latest report.
//
// A replay and its progress are dropped when they are older than the
// replay keep time (ReplayKeep by default), by the first listing that
// finds them so.
//
// A guard window is updated by a transaction conditional on the key's mod
// revision, retried from a fresh read up to Attempts times.
type Registry struct {
	s    *Store
	ttl  time.Duration
	keep time.Duration
	now  func() time.Time // dates replays against keep

	mu       sync.Mutex
	routers  map[string]routerEntry      // by router id: what this replica last wrote
	progress map[string]domain.ReplayJob // by replay id 0 router: what this replica last wrote
}

var _ control.Registry = (*Registry)(nil)

type routerEntry struct {
	status  control.RouterStatus
	granted time.Time // when its lease was granted, by this process's clock
}

// Registry defaults.
const (
	// RouterTTL is how long a router's entry outlives its last report.
	RouterTTL = 60 * time.Second
	// ReplayKeep is how long a replay stays on the board.
	ReplayKeep = 72 * time.Hour
	// MaxRouters bounds the routers one replica writes, against a
	// misbehaving router token: past it, new routers are not written
	// until entries expire.
	MaxRouters = 10000
)

// RegistryOption configures Store.Registry.
type RegistryOption func(*Registry)

// WithRouterTTL sets how long a router's entry outlives its last report,
// rounded up to whole seconds (etcd's lease unit).
func WithRouterTTL(d time.Duration) RegistryOption {
	return func(r *Registry) { r.ttl = max(time.Second, d.Round(time.Second)) }
}

// WithReplayKeep sets how long a replay stays on the board.
func WithReplayKeep(d time.Duration) RegistryOption {
	return func(r *Registry) { r.keep = d }
}

// WithRegistryClock sets the clock that dates replays against the keep
// time; it defaults to time.Now. Router leases run on etcd's clock.
func WithRegistryClock(now func() time.Time) RegistryOption {
	return func(r *Registry) { r.now = now }
}

// Registry returns the registry of the store's replicas, under its prefix.
// It shares the store's client and its closing: after Close, every call
// returns ErrClosed.
func (s *Store) Registry(opts ...RegistryOption) *Registry {
	r := &Registry{s: s, ttl: RouterTTL, keep: ReplayKeep, now: time.Now, routers: map[string]routerEntry{}, progress: map[string]domain.ReplayJob{}}
	for _, opt := range opts {
		opt(r)
	}
	return r
}

func (r *Registry) key(table string, parts ...string) string {
	return r.s.key("registry/"+table, parts...)
}

// sameReport tells whether two statuses differ only in what is rewritten
// lazily: the journal figures and when the router was seen.
func sameReport(a, b control.RouterStatus) bool {
	a.Journal, b.Journal = nil, nil
	a.LastSeen, b.LastSeen = time.Time{}, time.Time{}
	return reflect.DeepEqual(a, b)
}

// PutRouter writes the router's entry on a new lease when what it
// reports changed or its lease is more than half used (see Registry). It
// returns ErrClosed, ctx's error, or an error wrapping the client's.
func (r *Registry) PutRouter(ctx context.Context, st control.RouterStatus) error {
	if err := r.s.check(ctx); err != nil {
		return err
	}
	now := time.Now()
	r.mu.Lock()
	old, cached := r.routers[st.ID]
	if cached && st.Journal == nil {
		st.Journal = old.status.Journal
	}
	fresh := cached && now.Sub(old.granted) < r.ttl/2
	if fresh && sameReport(old.status, st) {
		old.status = st // listed by this replica at once
		r.routers[st.ID] = old
		r.mu.Unlock()
		return nil
	}
	if !cached && len(r.routers) >= MaxRouters {
		for id, e := range r.routers {
			if now.Sub(e.granted) >= r.ttl {
				delete(r.routers, id)
			}
		}
		if len(r.routers) >= MaxRouters {
			r.mu.Unlock()
			return nil
		}
	}
	r.mu.Unlock()
	key := r.key("routers", st.ID)
	if !cached && st.Journal == nil {
		// Reported to another replica before: keep the journal it wrote.
		resp, err := r.s.client.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("read router %s: %w", st.ID, err)
		}
		if len(resp.Kvs) == 1 {
			var prev control.RouterStatus
			if json.Unmarshal(resp.Kvs[0].Value, &prev) == nil {
				st.Journal = prev.Journal
			}
		}
	}
	value, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("encode router %s: %w", st.ID, err)
	}
	lease, err := r.s.client.Grant(ctx, int64(r.ttl/time.Second))
	if err != nil {
		return fmt.Errorf("grant router %s a lease: %w", st.ID, err)
	}
	// The key moves to the new lease; the old one expires holding nothing.
	if _, err := r.s.client.Put(ctx, key, string(value), clientv3.WithLease(lease.ID)); err != nil {
		return fmt.Errorf("put router %s: %w", st.ID, err)
	}
	r.mu.Lock()
	r.routers[st.ID] = routerEntry{status: st, granted: now}
	r.mu.Unlock()
	return nil
}

// Routers lists the routers whose lease has not expired; for those that
// last reported to this replica, their latest report. It returns
// ErrClosed, ctx's error, or an error wrapping the client's.
func (r *Registry) Routers(ctx context.Context) ([]control.RouterStatus, error) {
	if err := r.s.check(ctx); err != nil {
		return nil, err
	}
	resp, err := r.s.client.Get(ctx, r.key("routers")+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list routers: %w", err)
	}
	out := make([]control.RouterStatus, 0, len(resp.Kvs))
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, kv := range resp.Kvs {
		var st control.RouterStatus
		if err := json.Unmarshal(kv.Value, &st); err != nil {
			return nil, fmt.Errorf("decode %q: %w", kv.Key, err)
		}
		if e, ok := r.routers[st.ID]; ok && e.status.LastSeen.After(st.LastSeen) {
			st = e.status
		}
		out = append(out, st)
	}
	return out, nil
}

// PutReplay puts the replay on the board. It returns ErrClosed, ctx's
// error, or an error wrapping the client's.
func (r *Registry) PutReplay(ctx context.Context, job domain.ReplayJob) error {
	if err := r.s.check(ctx); err != nil {
		return err
	}
	value, err := json.Marshal(job)
	if err != nil {
		return fmt.Errorf("encode replay %s: %w", job.ID, err)
	}
	if _, err := r.s.client.Put(ctx, r.key("replays", job.ID), string(value)); err != nil {
		return fmt.Errorf("put replay %s: %w", job.ID, err)
	}
	return nil
}

// maxProgressCached bounds the progress this replica remembers writing;
// past it, it forgets all and writes each progress again once.
const maxProgressCached = 10000

// PutReplayProgress writes a router's progress, and the replay with it
// when the board does not hold it, in one transaction; progress equal to
// what this replica last wrote is not written again, and progress on a
// replay older than the keep time is dropped. It returns ErrClosed, ctx's
// error, or an error wrapping the client's.
func (r *Registry) PutReplayProgress(ctx context.Context, router string, p domain.ReplayJob) error {
	if err := r.s.check(ctx); err != nil {
		return err
	}
	if r.now().Sub(p.CreatedAt) > r.keep {
		return nil
	}
	cacheKey := p.ID + "\x00" + router
	r.mu.Lock()
	last, ok := r.progress[cacheKey]
	r.mu.Unlock()
	if ok && reflect.DeepEqual(last, p) {
		return nil
	}
	job, err := json.Marshal(domain.ReplayJob{ID: p.ID, Request: p.Request, CreatedAt: p.CreatedAt})
	if err != nil {
		return fmt.Errorf("encode replay %s: %w", p.ID, err)
	}
	progress, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode replay %s progress: %w", p.ID, err)
	}
	jobKey, progressKey := r.key("replays", p.ID), r.key("replays", p.ID, "progress", router)
	_, err = r.s.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(jobKey), "=", 0)).
		Then(clientv3.OpPut(jobKey, string(job)), clientv3.OpPut(progressKey, string(progress))).
		Else(clientv3.OpPut(progressKey, string(progress))).
		Commit()
	if err != nil {
		return fmt.Errorf("put replay %s progress of %s: %w", p.ID, router, err)
	}
	r.mu.Lock()
	if len(r.progress) >= maxProgressCached {
		clear(r.progress)
	}
	r.progress[cacheKey] = p
	r.mu.Unlock()
	return nil
}

// Replays lists the board's replays with their progress, deleting those
// older than the keep time. It returns ErrClosed, ctx's error, or an
// error wrapping the client's.
func (r *Registry) Replays(ctx context.Context) ([]control.AskedJob, error) {
	if err := r.s.check(ctx); err != nil {
		return nil, err
	}
	prefix := r.key("replays") + "/"
	resp, err := r.s.client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("list replays: %w", err)
	}
	jobs := map[string]*control.AskedJob{}
	progress := map[string]map[string]domain.ReplayJob{}
	for _, kv := range resp.Kvs {
		parts := strings.Split(strings.TrimPrefix(string(kv.Key), prefix), "/")
		var j domain.ReplayJob
		if err := json.Unmarshal(kv.Value, &j); err != nil {
			return nil, fmt.Errorf("decode %q: %w", kv.Key, err)
		}
		id, err := unescape(parts[0])
		if err != nil {
			return nil, fmt.Errorf("decode %q: %w", kv.Key, err)
		}
		switch {
		case len(parts) == 1:
			jobs[id] = &control.AskedJob{Job: j, Progress: map[string]domain.ReplayJob{}}
		case len(parts) == 3 && parts[1] == "progress":
			router, err := unescape(parts[2])
			if err != nil {
				return nil, fmt.Errorf("decode %q: %w", kv.Key, err)
			}
			if progress[id] == nil {
				progress[id] = map[string]domain.ReplayJob{}
			}
			progress[id][router] = j
		default:
			return nil, fmt.Errorf("decode %q: not a replay key", kv.Key)
		}
	}
	out := make([]control.AskedJob, 0, len(jobs))
	for id, j := range jobs {
		if r.now().Sub(j.Job.CreatedAt) > r.keep {
			// The replay and its progress go in one transaction; a router
			// still reporting it does not bring it back (see
			// PutReplayProgress).
			key := r.key("replays", id)
			if _, err := r.s.client.Txn(ctx).Then(clientv3.OpDelete(key), clientv3.OpDelete(key+"/", clientv3.WithPrefix())).Commit(); err != nil {
				return nil, fmt.Errorf("drop replay %s: %w", id, err)
			}
			continue
		}
		if p := progress[id]; p != nil {
			j.Progress = p
		}
		out = append(out, *j)
	}
	return out, nil
}

// UpdateWindow replaces the window with fn's result in a transaction
// conditional on the window's mod revision, running fn again on a fresh
// read when another replica changed it meanwhile, up to Attempts times
// in all. It returns ErrClosed, ctx's error, an error wrapping the
// client's, or a domain error of code conflict wrapping ErrConflict.
func (r *Registry) UpdateWindow(ctx context.Context, migration, partner string, fn func([]string) []string) error {
	key := r.key("guard", migration, partner)
	for attempt := range Attempts {
		if attempt > 0 {
			if err := sleep(ctx, time.Duration(mrand.Int64N(int64(time.Millisecond<<(2*attempt))))); err != nil {
				return err
			}
		}
		if err := r.s.check(ctx); err != nil {
			return err
		}
		resp, err := r.s.client.Get(ctx, key)
		if err != nil {
			return fmt.Errorf("read guard window %s/%s: %w", migration, partner, err)
		}
		var old []string
		var rev int64 // 0: absent
		if len(resp.Kvs) == 1 {
			rev = resp.Kvs[0].ModRevision
			var w window
			if err := json.Unmarshal(resp.Kvs[0].Value, &w); err != nil {
				return fmt.Errorf("decode %q: %w", key, err)
			}
			if old, err = w.outcomes(); err != nil {
				return fmt.Errorf("decode %q: %w", key, err)
			}
		}
		w := fn(old)
		var op clientv3.Op
		switch {
		case w == nil && rev == 0:
			return nil
		case w == nil:
			op = clientv3.OpDelete(key)
		default:
			value, err := json.Marshal(newWindow(w))
			if err != nil {
				return fmt.Errorf("encode guard window %s/%s: %w", migration, partner, err)
			}
			op = clientv3.OpPut(key, string(value))
		}
		tr, err := r.s.client.Txn(ctx).If(clientv3.Compare(clientv3.ModRevision(key), "=", rev)).Then(op).Commit()
		if err != nil {
			return fmt.Errorf("write guard window %s/%s: %w", migration, partner, err)
		}
		if tr.Succeeded {
			return nil
		}
	}
	return &domain.Error{Code: domain.CodeConflict, Message: "the guard window changed on every attempt; its sample was dropped", Err: ErrConflict}
}

// window is a guard window as stored. A window holds up to 100,000
// outcomes (domain.Guard's bound), which as a JSON list of class names
// would pass etcd's 1.5 MiB request limit; the outcomes are a handful of
// classes, so a window stores each distinct outcome once, in Names, and
// the window as one byte per outcome, its index in Names. A window of
// more than 256 distinct outcomes (only a router reporting what is not a
// class sends them) is stored as the plain list, in Outcomes.
type window struct {
	Names    []string `json:"names,omitempty"`
	Indexes  []byte   `json:"indexes,omitempty"` // base64 in JSON
	Outcomes []string `json:"outcomes,omitempty"`
}

func newWindow(outcomes []string) window {
	index := map[string]byte{}
	var w window
	for _, o := range outcomes {
		i, ok := index[o]
		if !ok {
			if len(w.Names) == 256 {
				return window{Outcomes: outcomes}
			}
			i = byte(len(w.Names))
			index[o] = i
			w.Names = append(w.Names, o)
		}
		w.Indexes = append(w.Indexes, i)
	}
	return w
}

func (w window) outcomes() ([]string, error) {
	if w.Outcomes != nil {
		return w.Outcomes, nil
	}
	out := make([]string, len(w.Indexes))
	for n, i := range w.Indexes {
		if int(i) >= len(w.Names) {
			return nil, fmt.Errorf("outcome %d names class %d of %d", n, i, len(w.Names))
		}
		out[n] = w.Names[i]
	}
	return out, nil
}
