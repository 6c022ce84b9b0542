package etcdstore_test

import (
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/control/registrytest"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/etcdstore"
	"github.com/switchbackhq/switchback/internal/wire"
)

func TestRegistryConformance(t *testing.T) {
	registrytest.Run(t, func(t *testing.T) control.Registry { return open(t, newPrefix()).Registry() })
}

var setupChange = control.Change{Actor: "setup", Reason: "test setup"}

// replica starts a control service on the store at prefix, with a store
// value and a registry of its own, as a separate process would.
func replica(t *testing.T, prefix string) *control.Service {
	t.Helper()
	s := open(t, prefix)
	svc, err := control.New(t.Context(), s, control.Options{Registry: s.Registry(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("control.New: %v", err)
	}
	return svc
}

// replicas returns two replicas of a store in which partner acme is on
// the new pipeline of migration m, whose guard reverts acme when more
// than half of its last 10 outcomes mismatch. Both load the state after
// it was set up: they are not kept in sync by a watch.
func replicas(t *testing.T) (a, b *control.Service) {
	t.Helper()
	prefix := newPrefix()
	setup := replica(t, prefix)
	secret := "whsec_acme"
	if _, _, err := setup.PutPartner(t.Context(), setupChange, control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise, Secret: &secret}); err != nil {
		t.Fatalf("PutPartner: %v", err)
	}
	m := domain.Migration{
		Key:         "m",
		Description: "move m",
		Pipelines: domain.Pipelines{
			Legacy: domain.Pipeline{URL: "http://legacy.internal/apply"},
			New:    domain.Pipeline{URL: "http://new.internal/apply"},
		},
		Gates: domain.DefaultGates(),
		Guard: domain.Guard{Scope: domain.ScopePartner, Window: 10, MaxMismatchRate: 0.5, MaxErrorRate: 0.5},
	}
	if _, _, err := setup.PutMigration(t.Context(), setupChange, m); err != nil {
		t.Fatalf("PutMigration: %v", err)
	}
	for _, st := range []domain.Stage{domain.StageShadow, domain.StageNew} {
		if _, err := setup.SetStage(t.Context(), setupChange, "m", "acme", st, true); err != nil {
			t.Fatalf("SetStage(%s): %v", st, err)
		}
	}
	return replica(t, prefix), replica(t, prefix)
}

func report(t *testing.T, svc *control.Service, r wire.Report) {
	t.Helper()
	st := svc.State()
	r.StoreID, r.SnapshotVersion = st.StoreID, st.Version
	if _, err := svc.IngestReport(t.Context(), r); err != nil {
		t.Errorf("IngestReport(%s): %v", r.Router, err)
	}
}

func routerIDs(svc *control.Service) []string {
	var ids []string
	for _, r := range svc.Routers() {
		ids = append(ids, r.ID)
	}
	return ids
}

// The routers page of either replica lists the routers of both, with the
// version each confirmed.
func TestReplicasShareRouters(t *testing.T) {
	a, b := replicas(t)
	report(t, a, wire.Report{Router: "ingress-1"})
	report(t, b, wire.Report{Router: "ingress-2"})
	for name, svc := range map[string]*control.Service{"a": a, "b": b} {
		if got, want := routerIDs(svc), []string{"ingress-1", "ingress-2"}; !slices.Equal(got, want) {
			t.Errorf("replica %s lists routers %q, want %q", name, got, want)
		}
		for _, r := range svc.Routers() {
			if r.SnapshotVersion != a.State().Version || r.Conflict != "" {
				t.Errorf("replica %s: %s at version %d (conflict %q), want %d", name, r.ID, r.SnapshotVersion, r.Conflict, a.State().Version)
			}
		}
	}
}

// A replay asked on one replica is offered to the routers by the other,
// and each replica sums the progress reported to both.
func TestReplicasShareReplays(t *testing.T) {
	a, b := replicas(t)
	now := time.Now().UTC()
	job, err := a.AskReplay(t.Context(), control.Change{Actor: "ops", Reason: "replay the bad hour"}, domain.ReplayRequest{
		Migration: "m", Partners: []string{"acme"}, From: now.Add(-time.Hour), To: now, Pipeline: "legacy", Filter: domain.ReplayAll})
	if err != nil {
		t.Fatalf("AskReplay: %v", err)
	}
	asked := b.AskedReplays()
	if len(asked) != 1 || asked[0].ID != job.ID {
		t.Fatalf("replica b offers %+v, want the replay %s asked on a", asked, job.ID)
	}
	done, running := asked[0], asked[0]
	done.Status, done.Total, done.Done = domain.ReplayDone, 10, 10
	running.Status, running.Total, running.Done = domain.ReplayRunning, 20, 5
	report(t, b, wire.Report{Router: "ingress-1", Replays: []domain.ReplayJob{done}})
	report(t, a, wire.Report{Router: "ingress-2", Replays: []domain.ReplayJob{running}})
	for name, svc := range map[string]*control.Service{"a": a, "b": b} {
		got, err := svc.AskedReplay(job.ID)
		if err != nil {
			t.Fatalf("replica %s: AskedReplay: %v", name, err)
		}
		if got.Status != domain.ReplayRunning || got.Total != 30 || got.Done != 15 {
			t.Errorf("replica %s: %s with %d of %d done, want running with 15 of 30", name, got.Status, got.Done, got.Total)
		}
	}
}

// A partner's samples split between two replicas, at once, fill one
// window: neither replica receives a full window, and the guard reverts
// the partner exactly once.
func TestReplicasShareGuardWindows(t *testing.T) {
	a, b := replicas(t)
	var wg sync.WaitGroup
	var n atomic.Int64
	for _, svc := range []*control.Service{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 5 {
				report(t, svc, wire.Report{Router: "ingress-1", Guard: []domain.GuardSample{{Migration: "m", Partner: "acme",
					EventID: "evt_" + time.Now().Format("150405.000000000"), Outcomes: []string{string(domain.ClassValueDiff)}}}})
				n.Add(1)
			}
		}()
	}
	wg.Wait()
	tripped := a
	if b.State().Version > a.State().Version {
		tripped = b // the replica that reverted published the later version
	}
	ms, _ := tripped.State().Migration("m")
	p, _ := tripped.State().Partner("acme")
	if got := ms.StageOf(p).Stage; got != domain.StageShadow {
		t.Errorf("acme on the replica that reverted: %s, want shadow", got)
	}
	var guard []domain.AuditEntry
	entries, err := a.AuditLog(t.Context(), 0, 1000)
	if err != nil {
		t.Fatalf("AuditLog: %v", err)
	}
	for _, e := range entries {
		if e.Actor == "guard" {
			guard = append(guard, e)
		}
	}
	if len(guard) != 1 {
		t.Fatalf("%d guard entries after %d samples split between two replicas, want 1: %+v", len(guard), n.Load(), guard)
	}
	if guard[0].Action != "stage.set" || guard[0].Target != "migration/m/partner/acme" {
		t.Errorf("guard entry %s on %s, want stage.set on migration/m/partner/acme", guard[0].Action, guard[0].Target)
	}
}

// A router that stops reporting drops out when its lease expires.
func TestRouterLeaseExpires(t *testing.T) {
	reg := open(t, newPrefix()).Registry(etcdstore.WithRouterTTL(time.Second))
	if err := reg.PutRouter(t.Context(), control.RouterStatus{ID: "ingress-1", LastSeen: time.Now(), SnapshotVersion: 3}); err != nil {
		t.Fatalf("PutRouter: %v", err)
	}
	waitFor(t, "ingress-1 to drop out", func() bool {
		list, err := reg.Routers(t.Context())
		if err != nil {
			t.Fatalf("Routers: %v", err)
		}
		return len(list) == 0
	})
}

// A router that keeps reporting the same thing is rewritten, on a new
// lease, only once its lease is more than half used.
func TestRouterRewrittenAtHalfLease(t *testing.T) {
	prefix := newPrefix()
	const ttl = 4 * time.Second
	reg := open(t, prefix).Registry(etcdstore.WithRouterTTL(ttl))
	st := control.RouterStatus{ID: "ingress-1", SnapshotVersion: 3}
	entry := func() (lease clientv3.LeaseID, rev int64) {
		t.Helper()
		st.LastSeen = time.Now()
		if err := reg.PutRouter(t.Context(), st); err != nil {
			t.Fatalf("PutRouter: %v", err)
		}
		resp, err := client.Get(t.Context(), prefix+"registry/routers/ingress-1")
		if err != nil || len(resp.Kvs) != 1 {
			t.Fatalf("get the router's key: %v, %d keys", err, len(resp.Kvs))
		}
		return clientv3.LeaseID(resp.Kvs[0].Lease), resp.Kvs[0].ModRevision
	}
	lease1, rev1 := entry()
	if lease2, rev2 := entry(); lease2 != lease1 || rev2 != rev1 {
		t.Errorf("the same report again, at once: lease %x, revision %d; want %x, %d (not rewritten)", lease2, rev2, lease1, rev1)
	}
	st.SnapshotVersion = 4
	lease3, rev3 := entry()
	if lease3 == lease1 || rev3 == rev1 {
		t.Errorf("a new version: lease %x, revision %d; want a new lease and revision", lease3, rev3)
	}
	time.Sleep(ttl/2 + 100*time.Millisecond)
	if lease4, _ := entry(); lease4 == lease3 {
		t.Errorf("the same report past half the lease: lease %x, want a new one", lease4)
	}
}

// A replay older than the keep time leaves the board with its progress,
// and a router still reporting it does not bring it back.
func TestReplaysDroppedAfterKeep(t *testing.T) {
	prefix := newPrefix()
	var mu sync.Mutex
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	reg := open(t, prefix).Registry(etcdstore.WithReplayKeep(time.Hour), etcdstore.WithRegistryClock(clock))
	job := domain.ReplayJob{ID: "rpl_1", CreatedAt: now, Request: domain.ReplayRequest{Migration: "m", Partners: []string{"acme"}}}
	if err := reg.PutReplay(t.Context(), job); err != nil {
		t.Fatalf("PutReplay: %v", err)
	}
	progress := job
	progress.Status = domain.ReplayRunning
	if err := reg.PutReplayProgress(t.Context(), "ingress-1", progress); err != nil {
		t.Fatalf("PutReplayProgress: %v", err)
	}
	if list, err := reg.Replays(t.Context()); err != nil || len(list) != 1 {
		t.Fatalf("Replays = %+v, %v; want rpl_1", list, err)
	}
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	if list, err := reg.Replays(t.Context()); err != nil || len(list) != 0 {
		t.Fatalf("Replays two hours on = %+v, %v; want none", list, err)
	}
	progress.Done = 1
	if err := reg.PutReplayProgress(t.Context(), "ingress-1", progress); err != nil {
		t.Fatalf("PutReplayProgress: %v", err)
	}
	resp, err := client.Get(t.Context(), prefix+"registry/replays/", clientv3.WithPrefix(), clientv3.WithCountOnly())
	if err != nil || resp.Count != 0 {
		t.Errorf("keys left under registry/replays/: %v, %v; want none", resp, err)
	}
}

// waitFor polls cond until it holds, failing the test after a deadline.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// A window as large as a guard allows (100,000 outcomes of the longest
// class names) fits in one etcd request; so does one of a router that
// reports 300 distinct outcomes.
func TestLargeGuardWindow(t *testing.T) {
	reg := open(t, newPrefix()).Registry()
	classes := []string{string(domain.ClassErrorAsymmetry), string(domain.ClassTypeMismatch), string(domain.ClassEqual)}
	large := make([]string, 100000)
	for i := range large {
		large[i] = classes[i%len(classes)]
	}
	odd := make([]string, 300)
	for i := range odd {
		odd[i] = fmt.Sprintf("not-a-class-%d", i)
	}
	for name, want := range map[string][]string{"100,000 outcomes": large, "300 distinct outcomes": odd} {
		set := func([]string) []string { return want }
		if err := reg.UpdateWindow(t.Context(), "m", "acme", set); err != nil {
			t.Fatalf("%s: UpdateWindow: %v", name, err)
		}
		var got []string
		if err := reg.UpdateWindow(t.Context(), "m", "acme", func(w []string) []string { got = w; return w }); err != nil {
			t.Fatalf("%s: UpdateWindow: %v", name, err)
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: read back %d outcomes, not those written", name, len(got))
		}
	}
}
