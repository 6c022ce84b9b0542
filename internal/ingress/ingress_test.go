package ingress_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/goleak"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/ingress"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// whsec is a Standard Webhooks secret and its key bytes.
const whsec = "whsec_c3dpdGNoYmFjay10ZXN0LWtleS0wMTIzNDU2Nzg5"

func sign(id string, ts int64, body []byte) string {
	key, _ := base64.StdEncoding.DecodeString(strings.TrimPrefix(whsec, "whsec_"))
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%d.%s", id, ts, body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}

// env is a control service, both reference pipelines and a router wired as
// serve wires them, all on real HTTP servers.
type env struct {
	svc           *control.Service
	control       *httptest.Server
	hooks         *httptest.Server
	router        *ingress.Router
	journal       *journal.Journal
	legacy, newer *refpipe.Pipeline
	legacySrv     *httptest.Server
	legacyAt      swappable // what legacySrv serves, replaceable while it runs
	stop          func()
	journalPath   string
	legacyFaults  refpipe.Faults
	newFaults     refpipe.Faults
	maxAttempts   int
	maxBacklog    int
	now           func() time.Time // the router's clock; nil is time.Now
	compare       domain.CompareRules
	wrapNew       func(http.Handler) http.Handler // what the new pipeline's server serves, around refpipe

	workers, partnerBacklog    int // the router's delivery workers and a partner's share of its backlog
	shadowWorkers, shadowQueue int
	shadowMinShare             float64
	contended                  func() bool          // the router's judge of its CPU; nil is the runtime's
	metrics                    *prometheus.Registry // the running router's
	// tierURLs, if set, are the NATS servers of the routers' shared
	// journal (natstier); routerName names this env's router there.
	tierURLs, routerName string
	wrapTier             func(ingress.Tier) ingress.Tier // around the router's tier, if set
	claimLease           time.Duration                   // the tier's ClaimLease; 0 is natstier's default
}

type envOption func(*env)

func withFaults(legacy, newer refpipe.Faults) envOption {
	return func(e *env) { e.legacyFaults, e.newFaults = legacy, newer }
}

func withAttempts(n int) envOption { return func(e *env) { e.maxAttempts = n } }

func withBacklog(n int) envOption { return func(e *env) { e.maxBacklog = n } }

func withWorkers(n int) envOption { return func(e *env) { e.workers = n } }

func withPartnerBacklog(n int) envOption { return func(e *env) { e.partnerBacklog = n } }

func withShadowPool(workers, queue int) envOption {
	return func(e *env) { e.shadowWorkers, e.shadowQueue = workers, queue }
}

func withShadowBudget(minShare float64, contended func() bool) envOption {
	return func(e *env) { e.shadowMinShare, e.contended = minShare, contended }
}

func withClock(now func() time.Time) envOption { return func(e *env) { e.now = now } }

func withCompare(r domain.CompareRules) envOption { return func(e *env) { e.compare = r } }

func withNewPipeline(wrap func(http.Handler) http.Handler) envOption {
	return func(e *env) { e.wrapNew = wrap }
}

func newEnv(t testing.TB, opts ...envOption) *env {
	t.Helper()
	e := &env{maxAttempts: 3, workers: 4}
	for _, o := range opts {
		o(e)
	}
	ctx := context.Background()
	var err error
	store := bolttest.Open(t)
	e.svc, err = control.New(ctx, store, control.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	e.legacy = refpipe.New("legacy", e.legacyFaults, 1)
	e.newer = refpipe.New("new", e.newFaults, 2)
	e.legacyAt.set(e.legacy)
	e.legacySrv = httptest.NewServer(&e.legacyAt)
	var newer http.Handler = e.newer
	if e.wrapNew != nil {
		newer = e.wrapNew(newer)
	}
	newSrv := httptest.NewServer(newer)
	t.Cleanup(e.legacySrv.Close)
	t.Cleanup(newSrv.Close)

	c := control.Change{Actor: "test"}
	m := domain.Migration{Key: "psa-webhooks-v2", Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(), Compare: e.compare,
		Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: e.legacySrv.URL}, New: domain.Pipeline{URL: newSrv.URL}}}
	if _, _, err := e.svc.PutMigration(ctx, c, m); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"acme", "globex"} {
		s := whsec
		if _, _, err := e.svc.PutPartner(ctx, c, control.PartnerInput{ID: id, Name: id, PSA: domain.PSAGeneric, Secret: &s}); err != nil {
			t.Fatal(err)
		}
	}
	api := httpapi.New(e.svc, quiet, prometheus.NewRegistry())
	e.control = httptest.NewServer(api)
	t.Cleanup(func() { api.Close(); e.control.Close() })
	e.journalPath = filepath.Join(t.TempDir(), "journal.db")
	e.start(t)
	return e
}

// start runs a router on the env's journal file.
func (e *env) start(t testing.TB) {
	t.Helper()
	j, err := journal.Open(e.journalPath, journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.journal = j
	api := isolated.NewAPI()
	// One idle connection per worker, as a process has, or every call
	// would dial anew.
	transport := &http.Transport{MaxIdleConnsPerHost: e.workers}
	e.metrics = prometheus.NewRegistry()
	var tier ingress.Tier
	if e.tierURLs != "" {
		tier = openTier(t, e.tierURLs, e.routerName, e.metrics, e.claimLease)
		if e.wrapTier != nil {
			tier = e.wrapTier(tier)
		}
	}
	rt, err := ingress.New(ingress.Options{Journal: j, Tier: tier, Flags: api.NewClient(), Logger: quiet, Workers: e.workers, Registry: e.metrics,
		MaxAttempts: e.maxAttempts, MaxBacklog: e.maxBacklog, PartnerBacklog: e.partnerBacklog, MinBackoff: time.Millisecond, MaxBackoff: 5 * time.Millisecond,
		ShadowWorkers: e.shadowWorkers, ShadowQueue: e.shadowQueue, ShadowMinShare: e.shadowMinShare,
		Pipelines:      &pipelineclient.Client{HTTP: &http.Client{Transport: transport}, Timeout: 5 * time.Second},
		ReconcileEvery: 50 * time.Millisecond, Now: e.now})
	if err != nil {
		t.Fatal(err)
	}
	e.router = rt
	if e.contended != nil {
		rt.SetContention(e.contended)
	}
	token := e.svc.AddEphemeralToken("router-test", domain.RoleRouter)
	p, err := flags.NewProvider(flags.Options{URL: e.control.URL, Token: token, Logger: quiet, OnSnapshot: rt.OnSnapshot})
	if err != nil {
		t.Fatal(err)
	}
	if err := api.SetProviderAndWait(context.Background(), p); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rt.Run(ctx) }()
	r := mux.NewRouter()
	rt.Mount(r)
	e.hooks = httptest.NewServer(r)
	var once sync.Once
	e.stop = func() {
		once.Do(func() {
			e.hooks.Close()
			cancel()
			<-done
			api.Shutdown(context.Background())
			transport.CloseIdleConnections()
			if tier != nil {
				tier.Close()
			}
			j.Close()
		})
	}
	t.Cleanup(e.stop)
}

// post sends a Standard Webhooks delivery; sig "" signs it correctly.
func (e *env) post(t *testing.T, partner, id, typ, entity string, fields map[string]any, sig string) (int, map[string]any) {
	t.Helper()
	data := map[string]any{"id": entity}
	for k, v := range fields {
		data[k] = v
	}
	body, _ := json.Marshal(map[string]any{"type": typ, "timestamp": time.Now().UTC().Format(time.RFC3339), "data": data})
	ts := time.Now().Unix()
	if sig == "" {
		sig = sign(id, ts, body)
	}
	req, _ := http.NewRequest(http.MethodPost, e.hooks.URL+"/hooks/"+partner, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sig)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// waitFor polls cond until it holds or 10 s pass.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func (e *env) pendingCount(t *testing.T) int {
	st, err := e.journal.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return st.Pending
}

func TestWebhookIsJournaledThenAppliedByTheFlaggedPipeline(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	// globex goes to new; acme stays on legacy.
	for _, st := range []domain.Stage{domain.StageShadow, domain.StageNew} {
		if _, err := e.svc.SetStage(ctx, control.Change{Actor: "t", Reason: "test"}, "psa-webhooks-v2", "globex", st, true); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the router to see globex on new", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })

	status, body := e.post(t, "acme", "msg-1", "ticket.updated", "T-1", map[string]any{"summary": "printer on fire"}, "")
	if status != http.StatusAccepted {
		t.Fatalf("status = %d %v, want 202", status, body)
	}
	if status, _ := e.post(t, "globex", "msg-2", "schedule_entry.created", "S-9", map[string]any{"tech": "ana"}, ""); status != 202 {
		t.Fatalf("globex status = %d", status)
	}
	waitFor(t, "both events applied", func() bool { return e.pendingCount(t) == 0 && e.legacy.Applications()+e.newer.Applications() == 2 })
	if got := e.legacy.AppliedKeys(); len(got) != 1 || got[0] != "ticket/T-1" {
		t.Errorf("legacy applied %v, want ticket/T-1", got)
	}
	if got := e.newer.AppliedKeys(); len(got) != 1 || got[0] != "schedule_entry/S-9" {
		t.Errorf("new applied %v, want schedule_entry/S-9", got)
	}
	ev, err := e.journal.Get(t.Context(), 1)
	if err != nil {
		t.Fatal(err)
	}
	if ev.State != journal.StateApplied || ev.Pipeline != "legacy" || ev.SnapshotVersion != e.svc.State().Version || len(ev.Effects) == 0 {
		t.Errorf("journal record = %+v, want applied by legacy under the current version with its effects", ev)
	}
}

func TestDuplicateDeliveryIsAcknowledgedNotAppliedTwice(t *testing.T) {
	e := newEnv(t)
	for range 3 {
		if status, _ := e.post(t, "acme", "msg-dup", "ticket.updated", "T-1", nil, ""); status != 202 {
			t.Fatalf("status = %d", status)
		}
	}
	waitFor(t, "the event applied", func() bool { return e.pendingCount(t) == 0 && e.legacy.Calls(pipelineclient.Apply) >= 1 })
	st, _ := e.journal.Stats(t.Context())
	if st.Events != 1 {
		t.Errorf("journal holds %d events, want 1", st.Events)
	}
	if got := e.legacy.Calls(pipelineclient.Apply); got != 1 {
		t.Errorf("legacy called %d times, want 1", got)
	}
	ev, _ := e.journal.Get(t.Context(), 1)
	if ev.Duplicates != 2 {
		t.Errorf("duplicates recorded = %d, want 2", ev.Duplicates)
	}
}

func TestConcurrentDuplicatesAreRaceFree(t *testing.T) {
	e := newEnv(t)
	var wg sync.WaitGroup
	for i := range 40 {
		wg.Go(func() {
			id := fmt.Sprintf("msg-%d", i%5)
			if status, _ := e.post(t, "acme", id, "ticket.updated", "T-"+id, nil, ""); status != 202 {
				t.Errorf("status = %d", status)
			}
		})
	}
	wg.Wait()
	waitFor(t, "all applied", func() bool { return e.pendingCount(t) == 0 })
	if st, _ := e.journal.Stats(t.Context()); st.Events != 5 {
		t.Errorf("journal holds %d events, want 5 distinct deliveries", st.Events)
	}
	if got := e.legacy.Calls(pipelineclient.Apply); got != 5 {
		t.Errorf("legacy called %d times, want 5", got)
	}
}

func TestRefusedDeliveriesAreNotJournaled(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name, partner, sig string
		want               int
	}{
		{"wrong signature", "acme", "v1,AAAA", http.StatusUnauthorized},
		{"no signature", "acme", " ", http.StatusUnauthorized},
		{"unknown partner", "nobody", "", http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := e.post(t, tt.partner, "msg-x", "ticket.updated", "T-1", nil, tt.sig)
			if status != tt.want {
				t.Errorf("status = %d %v, want %d", status, body, tt.want)
			}
			if _, ok := body["error"]; !ok {
				t.Errorf("no error body: %v", body)
			}
		})
	}
	big := map[string]any{"blob": strings.Repeat("x", 2<<20)}
	if status, _ := e.post(t, "acme", "msg-big", "ticket.updated", "T-1", big, ""); status != http.StatusRequestEntityTooLarge {
		t.Errorf("oversize = %d, want 413", status)
	}
	if st, _ := e.journal.Stats(t.Context()); st.Events != 0 {
		t.Errorf("journal holds %d events after refused deliveries, want 0", st.Events)
	}
}

func TestUnknownEntityTypeIsDeliveredAsUnknown(t *testing.T) {
	e := newEnv(t)
	if status, _ := e.post(t, "acme", "msg-u", "invoice.paid", "I-1", nil, ""); status != 202 {
		t.Fatalf("status = %d", status)
	}
	waitFor(t, "applied", func() bool { return e.pendingCount(t) == 0 })
	if got := e.legacy.AppliedKeys(); len(got) != 1 || got[0] != "unknown/I-1" {
		t.Errorf("legacy applied %v, want unknown/I-1", got)
	}
}

func TestFailingPipelineDeadLettersThenReplayRecovers(t *testing.T) {
	e := newEnv(t, withFaults(refpipe.Faults{Error: 1}, refpipe.Faults{}), withAttempts(3))
	start := time.Now().Add(-time.Minute)
	for i := range 3 {
		if status, _ := e.post(t, "acme", fmt.Sprintf("m%d", i), "ticket.updated", fmt.Sprintf("T-%d", i), nil, ""); status != 202 {
			t.Fatal(status)
		}
	}
	waitFor(t, "dead-lettered", func() bool { return e.pendingCount(t) == 0 })
	for seq := uint64(1); seq <= 3; seq++ {
		if ev, _ := e.journal.Get(t.Context(), seq); ev.State != journal.StateDeadLettered || ev.Attempts != 3 || ev.LastError == "" {
			t.Errorf("event %d = %s after %d attempts (%q), want dead-lettered after 3", seq, ev.State, ev.Attempts, ev.LastError)
		}
	}
	// The legacy pipeline is fixed: replay what failed through it.
	fixed := refpipe.New("legacy-fixed", refpipe.Faults{}, 3)
	e.legacyAt.set(fixed)
	job, err := e.router.StartReplay(context.Background(), domain.ReplayRequest{Migration: "psa-webhooks-v2", Partners: []string{"acme"},
		From: start, To: time.Now().Add(time.Minute), Pipeline: "legacy", Filter: domain.ReplayFailed, Rate: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if job.Total != 3 {
		t.Fatalf("replay total = %d, want 3", job.Total)
	}
	waitFor(t, "replay done", func() bool { j, _ := e.router.Replay(job.ID); return j.Status == domain.ReplayDone })
	if j, _ := e.router.Replay(job.ID); j.Done != 3 || j.Failed != 0 {
		t.Errorf("replay = %+v, want 3 done, 0 failed", j)
	}
	if got := fixed.Applications(); got != 3 {
		t.Errorf("fixed legacy applied %d, want 3", got)
	}
	for seq := uint64(1); seq <= 3; seq++ {
		ev, _ := e.journal.Get(t.Context(), seq)
		if ev.State != journal.StateApplied || len(ev.Replays) != 1 || !ev.Replays[0].OK || ev.Replays[0].Job != job.ID {
			t.Errorf("event %d after replay = %s with replays %+v", seq, ev.State, ev.Replays)
		}
	}
}

func TestRestartResumesPendingEvents(t *testing.T) {
	// The pipeline is down while the router takes the webhooks: they stay
	// journaled without an outcome across a restart, then get applied.
	e := newEnv(t, withAttempts(1000))
	e.legacyAt.set(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	for i := range 5 {
		if status, _ := e.post(t, "acme", fmt.Sprintf("r%d", i), "ticket.updated", fmt.Sprintf("T-%d", i), nil, ""); status != 202 {
			t.Fatal(status)
		}
	}
	e.stop()
	e.legacyAt.set(e.legacy)
	e.start(t)
	waitFor(t, "resumed events applied", func() bool { return e.pendingCount(t) == 0 })
	if got := e.legacy.Applications(); got != 5 {
		t.Errorf("applied %d after restart, want 5", got)
	}
}

// swappable is a handler whose target can change while a server runs.
type swappable struct{ h atomic.Pointer[http.Handler] }

func (s *swappable) set(h http.Handler) { s.h.Store(&h) }

func (s *swappable) ServeHTTP(w http.ResponseWriter, r *http.Request) { (*s.h.Load()).ServeHTTP(w, r) }

// A router stops promptly while a replay runs, and resumes it after a
// restart from its cursor.
func TestShutdownDuringReplayThenResume(t *testing.T) {
	e := newEnv(t)
	start := time.Now().Add(-time.Minute)
	for i := range 4 {
		if status, _ := e.post(t, "acme", fmt.Sprintf("s%d", i), "ticket.updated", fmt.Sprintf("T-%d", i), nil, ""); status != 202 {
			t.Fatal(status)
		}
	}
	waitFor(t, "applied", func() bool { return e.pendingCount(t) == 0 })
	job, err := e.router.StartReplay(context.Background(), domain.ReplayRequest{Migration: "psa-webhooks-v2", Partners: []string{"acme"},
		From: start, To: time.Now().Add(time.Minute), Pipeline: "legacy", Filter: domain.ReplayAll, Rate: 2})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replay to start", func() bool { j, _ := e.router.Replay(job.ID); return j.Done >= 1 })
	stopped := make(chan struct{})
	go func() { e.stop(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("the router did not stop while a replay ran")
	}
	e.start(t)
	waitFor(t, "the resumed replay to finish", func() bool { j, _ := e.router.Replay(job.ID); return j.Status == domain.ReplayDone })
	if j, _ := e.router.Replay(job.ID); j.Done != 4 || j.Failed != 0 {
		t.Errorf("resumed replay = %+v, want 4 done exactly once each", j)
	}
}

// A legacy outage while a partner is in shadow is the legacy pipeline's
// failure: its dead-lettered events are primary_error (a coverage gap), not
// error_asymmetry (a zero-tolerance finding against the new pipeline).
func TestLegacyOutageInShadowIsPrimaryError(t *testing.T) {
	e := newEnv(t, withAttempts(2))
	e.legacyAt.set(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "down for maintenance", http.StatusServiceUnavailable)
	}))
	ctx := context.Background()
	if _, err := e.svc.SetStage(ctx, control.Change{Actor: "t", Reason: "test"}, "psa-webhooks-v2", "acme", domain.StageShadow, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router to see acme in shadow", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })
	if status, _ := e.post(t, "acme", "outage-1", "ticket.updated", "T-1", nil, ""); status != http.StatusAccepted {
		t.Fatalf("status = %d, want 202", status)
	}
	var ev journal.Event
	waitFor(t, "the comparison recorded", func() bool { ev, _ = e.journal.Get(t.Context(), 1); return ev.Comparison != "" })
	if ev.State != journal.StateDeadLettered {
		t.Errorf("state = %s, want dead_lettered", ev.State)
	}
	if got, want := domain.Class(ev.Comparison), domain.ClassPrimaryError; got != want {
		t.Errorf("comparison = %s, want %s", got, want)
	}
	// Counted and shown by the control service, and not held against the
	// new pipeline by the default zero-tolerance gate.
	e.report(t, e.control.URL)
	waitFor(t, "the comparison reported", func() bool { _, byClass := e.comparisons(t); return byClass[domain.ClassPrimaryError] == 1 })
	ms, _ := e.svc.State().Migration("psa-webhooks-v2")
	p, _ := e.svc.State().Partner("acme")
	ps := ms.StageOf(p)
	counts, err := e.svc.StageCounts(ctx, "psa-webhooks-v2", ps)
	if err != nil {
		t.Fatal(err)
	}
	report := gate.Judge(domain.DefaultGates(), "acme", ps.Stage, ps.Since, time.Now(), counts)
	for _, c := range report.Checks {
		if c.Name == "zeroTolerance" && (!c.Pass || c.Value != 0) {
			t.Errorf("zeroTolerance = %+v, want a pass: a legacy outage is not the new pipeline's fault", c)
		}
	}
	if got := counts.Compared(); got != 0 {
		t.Errorf("compared = %d, want 0: primary_error is a coverage gap", got)
	}
}
