package ingress_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/ingress"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// syncRig is a control service on a real bbolt file, served behind one URL
// whose handler can be swapped, so that the store under it can be replaced
// (restored from a backup, or reset) while routers stay pointed at it.
type syncRig struct {
	at     swappable
	srv    *httptest.Server
	svc    *control.Service
	api    *httpapi.API
	store  *boltstore.Store
	reg    *prometheus.Registry
	legacy *refpipe.Pipeline
	pipe   *httptest.Server
}

func newSyncRig(t *testing.T) *syncRig {
	t.Helper()
	r := &syncRig{legacy: refpipe.New("legacy", refpipe.Faults{}, 1)}
	r.pipe = httptest.NewServer(r.legacy)
	t.Cleanup(r.pipe.Close)
	r.at.set(http.NotFoundHandler())
	r.srv = httptest.NewServer(&r.at)
	t.Cleanup(r.srv.Close)
	return r
}

// serve opens the store at path and serves a control service on it,
// closing the one served before.
func (r *syncRig) serve(t *testing.T, path string) {
	t.Helper()
	r.close(t)
	r.store = bolttest.OpenAt(t, path)
	var err error
	r.svc, err = control.New(context.Background(), r.store, control.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r.reg = prometheus.NewRegistry()
	r.api = httpapi.New(r.svc, quiet, r.reg)
	// Routers keep one token whatever store is served: the rig swaps it
	// for a router token of the store it serves.
	secret, api := r.svc.AddEphemeralToken("router-1", domain.RoleRouter), r.api
	r.at.set(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Header.Get("Authorization") == "Bearer "+routerToken {
			req.Header.Set("Authorization", "Bearer "+secret)
		}
		api.ServeHTTP(w, req)
	}))
}

// close stops serving the store and closes it, as a stopped serve would.
func (r *syncRig) close(t *testing.T) {
	t.Helper()
	if r.api == nil {
		return
	}
	r.at.set(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "control service down", http.StatusServiceUnavailable)
	}))
	r.api.Close() // ends the snapshot streams
	bolttest.Check(t, r.store.DB())
	if err := r.store.Close(); err != nil {
		t.Fatal(err)
	}
	r.api = nil
}

func (r *syncRig) migration(t *testing.T) {
	t.Helper()
	m := domain.Migration{Key: "psa-webhooks-v2", Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(),
		Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: r.pipe.URL}, New: domain.Pipeline{URL: r.pipe.URL + "/new"}}}
	if _, _, err := r.svc.PutMigration(context.Background(), control.Change{Actor: "test"}, m); err != nil {
		t.Fatal(err)
	}
}

func (r *syncRig) partner(t *testing.T, id string) {
	t.Helper()
	s := whsec
	if _, _, err := r.svc.PutPartner(context.Background(), control.Change{Actor: "test"},
		control.PartnerInput{ID: id, Name: id, PSA: domain.PSAGeneric, Secret: &s}); err != nil {
		t.Fatal(err)
	}
}

// metric returns the line of /metrics that starts with name.
func (r *syncRig) metric(t *testing.T, name string) string {
	t.Helper()
	resp, err := http.Get(r.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for line := range strings.SplitSeq(string(b), "\n") {
		if strings.HasPrefix(line, name+" ") {
			return line
		}
	}
	return ""
}

// syncRouter is a standalone router: its flags provider syncs from the
// rig's URL and keeps its snapshot in a file; Current is wired as
// "switchback ingress" wires it.
type syncRouter struct {
	router   *ingress.Router
	provider *flags.Provider
	hooks    *httptest.Server
	journal  *journal.Journal
}

func (r *syncRig) startRouter(t *testing.T, dir string, waitForSnapshot bool) *syncRouter {
	t.Helper()
	j, err := journal.Open(filepath.Join(dir, "journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sr := &syncRouter{journal: j}
	api := isolated.NewAPI()
	sr.router, err = ingress.New(ingress.Options{Journal: j, Flags: api.NewClient(), Logger: quiet, Workers: 2,
		MaxAttempts: 3, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		Pipelines: &pipelineclient.Client{Timeout: 5 * time.Second}, Current: func() bool { return sr.provider.Current() }})
	if err != nil {
		t.Fatal(err)
	}
	// The router token is one the control services on the rig's stores
	// all know: each store is given it before it is served.
	sr.provider, err = flags.NewProvider(flags.Options{URL: r.srv.URL, Token: routerToken, Logger: quiet, RouterID: "router-1",
		ReportInterval: 50 * time.Millisecond, SnapshotFile: filepath.Join(dir, "snapshot.json"), OnSnapshot: sr.router.OnSnapshot,
		MinBackoff: time.Millisecond, MaxBackoff: 20 * time.Millisecond, InitTimeout: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if waitForSnapshot {
		err = api.SetProviderAndWait(ctx, sr.provider)
	} else {
		err = api.SetProvider(ctx, sr.provider)
	}
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { defer close(done); sr.router.Run(ctx) }()
	m := mux.NewRouter()
	sr.router.Mount(m)
	sr.hooks = httptest.NewServer(m)
	t.Cleanup(func() {
		sr.hooks.Close()
		cancel()
		<-done
		api.Shutdown(context.Background())
		j.Close()
	})
	return sr
}

const routerToken = "router-token-for-every-store"

func (sr *syncRouter) post(t *testing.T, partner, id string) (int, http.Header) {
	t.Helper()
	body := []byte(`{"type":"ticket.updated","timestamp":"2026-01-01T00:00:00Z","data":{"id":"T-1"}}`)
	ts := time.Now().Unix()
	req, _ := http.NewRequest(http.MethodPost, sr.hooks.URL+"/hooks/"+partner, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sign(id, ts, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode, resp.Header
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(to, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// A control store restored from a backup (same store, lower version) is
// refused by the router, counted and shown, and the control service then
// publishes past the router's version, so its state, a revert included,
// reaches the router. A fresh store (another identity) is taken at once.
func TestControlStoreRestoredThenReset(t *testing.T) {
	ctx := context.Background()
	rig := newSyncRig(t)
	dir := t.TempDir()
	path, backup := filepath.Join(dir, "switchback.db"), filepath.Join(dir, "backup.db")
	rig.serve(t, path)
	rig.migration(t)
	rig.partner(t, "acme")
	storeID, backupVersion := rig.svc.State().StoreID, rig.svc.State().Version
	rig.close(t)
	copyFile(t, path, backup)

	rig.serve(t, path)
	rig.partner(t, "globex")
	rig.partner(t, "initech")
	ahead := rig.svc.State().Version
	sr := rig.startRouter(t, t.TempDir(), true)
	waitFor(t, "the router to hold the latest version", func() bool {
		return sr.router.RoutingVersion() == ahead && sr.provider.Current()
	})

	rig.close(t)
	copyFile(t, backup, path)
	rig.serve(t, path)
	if st := rig.svc.State(); st.StoreID != storeID || st.Version != backupVersion {
		t.Fatalf("restored store %s at version %d, want %s at %d", st.StoreID, st.Version, storeID, backupVersion)
	}
	waitFor(t, "the router to refuse the lower version", func() bool { return sr.provider.Regressions() >= 1 })
	waitFor(t, "the store to publish past the router's version, and the router to take it", func() bool {
		return rig.svc.State().Version == ahead+1 && sr.router.RoutingVersion() == ahead+1
	})
	if got := sr.provider.Regressions(); got != 1 {
		t.Errorf("router regressions = %d, want 1", got)
	}
	if got, want := rig.metric(t, "switchback_snapshot_regressions_total"), "switchback_snapshot_regressions_total 1"; got != want {
		t.Errorf("control metric %q, want %q", got, want)
	}
	if n, last := rig.svc.Regressions(); n != 1 || last.Router != "router-1" || last.Held != ahead || last.Store != backupVersion || last.MovedTo != ahead+1 {
		t.Errorf("Regressions() = %d, %+v; want 1, router-1 holding %d over %d, moved to %d", n, last, ahead, backupVersion, ahead+1)
	}
	log, err := rig.svc.AuditLog(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if last := log[len(log)-1]; last.Action != "snapshot.fastforward" || last.Actor != "control" {
		t.Errorf("last audit entry %s by %s, want snapshot.fastforward by control", last.Action, last.Actor)
	}
	// The router routes by the restored state: globex, created after the
	// backup, is unknown, and the router knows its snapshot is current.
	if status, _ := sr.post(t, "globex", "g-1"); status != http.StatusNotFound {
		t.Errorf("webhook of a partner the restored store lacks = %d, want 404", status)
	}
	if status, _ := sr.post(t, "acme", "a-1"); status != http.StatusAccepted {
		t.Errorf("webhook of acme = %d, want 202", status)
	}
	if _, err := rig.svc.Revert(ctx, control.Change{Actor: "test", Reason: "drill"}, "psa-webhooks-v2"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revert to reach the router", func() bool {
		return sr.provider.Resolve("psa-webhooks-v2", "acme").Reason == flags.ReasonDisabled
	})

	// A reset: a fresh store, another identity, at a lower version.
	rig.serve(t, filepath.Join(dir, "fresh.db"))
	rig.migration(t)
	rig.partner(t, "umbrella")
	fresh := rig.svc.State()
	waitFor(t, "the router to resync to the fresh store", func() bool {
		s := sr.provider.Snapshot()
		return s.StoreID == fresh.StoreID && s.Version == fresh.Version && sr.router.RoutingVersion() == fresh.Version
	})
	if got := sr.provider.Regressions(); got != 1 {
		t.Errorf("router regressions after a resync = %d, want still 1", got)
	}
	if n, _ := rig.svc.Regressions(); n != 0 {
		t.Errorf("fresh store regressions = %d, want 0", n)
	}
	if status, _ := sr.post(t, "umbrella", "u-1"); status != http.StatusAccepted {
		t.Errorf("webhook of the fresh store's partner = %d, want 202", status)
	}
}

// A standalone router whose snapshot is not known to be the latest (the
// control service is unreachable) answers an unknown partner 429 with
// Retry-After, which every PSA retries; 404 only while it is current.
func TestStaleRouterAnswersUnknownPartner429(t *testing.T) {
	rig := newSyncRig(t)
	path := filepath.Join(t.TempDir(), "switchback.db")
	rig.serve(t, path)
	rig.migration(t)
	rig.partner(t, "acme")
	sr := rig.startRouter(t, t.TempDir(), true)
	waitFor(t, "the router to be current", func() bool { return sr.provider.Current() })
	if status, _ := sr.post(t, "nobody", "n-1"); status != http.StatusNotFound {
		t.Errorf("unknown partner with a current snapshot = %d, want 404", status)
	}

	rig.close(t)
	waitFor(t, "the router to lose the stream", func() bool { return !sr.provider.Current() })
	status, h := sr.post(t, "newcomer", "n-2")
	if status != http.StatusTooManyRequests || h.Get("Retry-After") == "" {
		t.Errorf("unknown partner with a stale snapshot = %d, Retry-After %q; want 429 with Retry-After", status, h.Get("Retry-After"))
	}
	if status, _ := sr.post(t, "acme", "a-1"); status != http.StatusAccepted {
		t.Errorf("known partner with a stale snapshot = %d, want 202", status)
	}

	rig.serve(t, path)
	rig.partner(t, "newcomer")
	waitFor(t, "the router to hold the new partner", func() bool {
		return sr.provider.Current() && sr.router.RoutingVersion() == rig.svc.State().Version
	})
	if status, _ := sr.post(t, "newcomer", "n-3"); status != http.StatusAccepted {
		t.Errorf("the new partner once synced = %d, want 202", status)
	}
}

// A replay asked of a router before it has any snapshot waits for it and
// then runs; it is not marked failed.
func TestReplayAskedBeforeFirstSnapshotWaits(t *testing.T) {
	ctx := context.Background()
	rig := newSyncRig(t)
	rig.serve(t, filepath.Join(t.TempDir(), "switchback.db"))
	rig.migration(t)
	rig.partner(t, "acme")
	// The stream is held shut, so the router starts on an empty data dir
	// and stays without a snapshot; the replays asked are counted.
	var open atomic.Bool
	var asked atomic.Int64
	h := *rig.at.h.Load()
	rig.at.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/snapshot/stream":
			if !open.Load() {
				http.Error(w, "not yet", http.StatusServiceUnavailable)
				return
			}
		case "/v1/replays/asked":
			asked.Add(1)
		}
		h.ServeHTTP(w, r)
	}))
	sr := rig.startRouter(t, t.TempDir(), false)
	now := time.Now().UTC()
	for i, id := range []string{"T-1", "T-2"} {
		_, err := sr.journal.Append(ctx, []journal.Event{{Partner: "acme", PSA: "generic", Type: "ticket", Action: "updated",
			EntityID: id, DeliveryID: "d-" + id, ReceivedAt: now.Add(time.Duration(i) * time.Millisecond), Payload: []byte(`{}`)}})
		if err != nil {
			t.Fatal(err)
		}
	}
	job, err := rig.svc.AskReplay(ctx, control.Change{Actor: "test", Reason: "drill"}, domain.ReplayRequest{Migration: "psa-webhooks-v2",
		Partners: []string{"acme"}, From: now.Add(-time.Hour), To: now.Add(time.Hour), Pipeline: "legacy", Filter: domain.ReplayAll})
	if err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		sr.router.FollowAsked(fctx, http.DefaultClient, mustControls(t, rig.srv.URL), routerToken, 5*time.Millisecond)
	}()
	defer func() { cancel(); <-done }()

	waitFor(t, "the router to be asked three times", func() bool { return asked.Load() >= 3 })
	if got, err := sr.router.Replay(job.ID); err == nil {
		t.Fatalf("replay before the first snapshot: %+v, want it not taken yet", got)
	}
	open.Store(true)
	waitFor(t, "the replay to run once the snapshot came", func() bool {
		got, err := sr.router.Replay(job.ID)
		return err == nil && got.Status == domain.ReplayDone
	})
	if got, _ := sr.router.Replay(job.ID); got.Total != 2 || got.Done != 2 || got.Failed != 0 {
		t.Errorf("replay = total %d, done %d, failed %d; want 2 sent, none failed", got.Total, got.Done, got.Failed)
	}
}

// A replay stored in the journal (the router stopped while running it)
// resumes only once the restarted router has a snapshot: before it, every
// send would fail for want of the pipelines' URLs, and the job would end
// with its events failed for good.
func TestStoredReplayWaitsForTheSnapshot(t *testing.T) {
	ctx := context.Background()
	rig := newSyncRig(t)
	rig.serve(t, filepath.Join(t.TempDir(), "switchback.db"))
	rig.migration(t)
	rig.partner(t, "acme")
	var open atomic.Bool
	h := *rig.at.h.Load()
	rig.at.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v1/snapshot/stream" && !open.Load() {
			http.Error(w, "not yet", http.StatusServiceUnavailable)
			return
		}
		h.ServeHTTP(w, r)
	}))

	dir := t.TempDir()
	j, err := journal.Open(filepath.Join(dir, "journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().UTC()
	if _, err := j.Append(ctx, []journal.Event{{Partner: "acme", PSA: "generic", Type: "ticket", Action: "updated",
		EntityID: "T-1", DeliveryID: "d-1", ReceivedAt: now, Payload: []byte(`{}`)}}); err != nil {
		t.Fatal(err)
	}
	job := domain.ReplayJob{ID: "rpl_0123456789abcdef", Status: domain.ReplayRunning, CreatedAt: now, Cursor: map[string]domain.ReplayCursor{},
		Request: domain.ReplayRequest{Migration: "psa-webhooks-v2", Partners: []string{"acme"}, From: now.Add(-time.Hour), To: now.Add(time.Hour),
			Pipeline: "legacy", Filter: domain.ReplayAll}}
	data, _ := json.Marshal(job)
	if err := j.PutJob(t.Context(), job.ID, data); err != nil {
		t.Fatal(err)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}

	sr := rig.startRouter(t, dir, false)
	// Long enough for a job run without routing to have failed all its
	// attempts (3, with backoffs of at most 5 ms).
	time.Sleep(200 * time.Millisecond)
	if got, err := sr.router.Replay(job.ID); err != nil || got.Status != domain.ReplayRunning || got.Done != 0 {
		t.Fatalf("the stored replay before the first snapshot = %+v, %v; want it waiting, nothing sent", got, err)
	}
	open.Store(true)
	waitFor(t, "the replay to run once the snapshot came", func() bool {
		got, err := sr.router.Replay(job.ID)
		return err == nil && got.Status == domain.ReplayDone
	})
	if got, _ := sr.router.Replay(job.ID); got.Done != 1 || got.Failed != 0 {
		t.Errorf("replay = done %d, failed %d; want 1 sent, none failed", got.Done, got.Failed)
	}
}
