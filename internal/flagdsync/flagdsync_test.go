package flagdsync_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"testing"
	"time"

	"buf.build/gen/go/open-feature/flagd/grpc/go/flagd/sync/v1/syncv1grpc"
	syncv1 "buf.build/gen/go/open-feature/flagd/protocolbuffers/go/flagd/sync/v1"
	flagdprovider "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/flagd"
	"github.com/switchbackhq/switchback/internal/flagd/flagdtest"
	"github.com/switchbackhq/switchback/internal/flagdsync"
	"github.com/switchbackhq/switchback/internal/httpapi"
)

var (
	ctx   = context.Background()
	admin = control.Change{Actor: "admin", Reason: "test"}
)

// env is a control service on a real bbolt file (without fsync, for
// speed) and its flag sync service on a loopback listener.
type env struct {
	svc   *control.Service
	store *boltstore.Store
	addr  *net.TCPAddr
}

func newEnv(t testing.TB) *env {
	t.Helper()
	store := bolttest.Open(t)
	store.DB().NoSync = true
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := control.New(ctx, store, control.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return &env{svc: svc, store: store, addr: serveSync(t, flagdsync.ControlSource(svc))}
}

// serveSync serves the sync service of src on 127.0.0.1 until the test
// ends, and checks that it then stops.
func serveSync(t testing.TB, src flagdsync.Source) *net.TCPAddr {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srvCtx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	srv := flagdsync.New(src, slog.New(slog.DiscardHandler), nil)
	go func() { done <- srv.Serve(srvCtx, ln, nil) }()
	t.Cleanup(func() {
		stop()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return ln.Addr().(*net.TCPAddr)
}

func (e *env) migration(t testing.TB, key string) {
	t.Helper()
	m := domain.Migration{Key: key, Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(),
		Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://127.0.0.1:9/legacy"}, New: domain.Pipeline{URL: "http://127.0.0.1:9/new"}}}
	if _, _, err := e.svc.PutMigration(ctx, admin, m); err != nil {
		t.Fatal(err)
	}
}

func (e *env) partner(t testing.TB, id string) {
	t.Helper()
	if _, _, err := e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: id, Name: id, PSA: domain.PSAGeneric}); err != nil {
		t.Fatal(err)
	}
}

// stage moves the partner one step at a time (forced) to stage.
func (e *env) stage(t testing.TB, key, partner string, to domain.Stage) {
	t.Helper()
	order := []domain.Stage{domain.StageLegacy, domain.StageShadow, domain.StageNew, domain.StageDone}
	cur := domain.StageLegacy
	if ps, ok := e.svc.State().Migrations[key].Stages[partner]; ok {
		cur = ps.Stage
	}
	idx := func(s domain.Stage) int {
		for i, o := range order {
			if o == s {
				return i
			}
		}
		t.Fatalf("stage %q", s)
		return 0
	}
	if idx(to) < idx(cur) {
		if _, err := e.svc.SetStage(ctx, admin, key, partner, to, false); err != nil {
			t.Fatal(err)
		}
		return
	}
	for i := idx(cur) + 1; i <= idx(to); i++ {
		if _, err := e.svc.SetStage(ctx, admin, key, partner, order[i], true); err != nil {
			t.Fatal(err)
		}
	}
}

// provider connects flagd's Go provider, in in-process mode, to the sync
// service, and returns an OpenFeature client of it.
func (e *env) provider(t testing.TB, opts ...flagdprovider.ProviderOption) *openfeature.Client {
	t.Helper()
	p, err := flagdprovider.NewProvider(append([]flagdprovider.ProviderOption{flagdprovider.WithInProcessResolver(),
		flagdprovider.WithHost("127.0.0.1"), flagdprovider.WithPort(uint16(e.addr.Port))}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Shutdown(ctx) })
	return api.NewClient()
}

// answer is a partner's answer for a migration: KEY's value and
// KEY:shadow's.
type answer struct{ value, shadow string }

func flagdAnswer(c *openfeature.Client, key, partner string) answer {
	ec := openfeature.NewEvaluationContext(partner, nil)
	v, _ := c.StringValue(ctx, key, "code-default", ec)
	s, _ := c.StringValue(ctx, key+flagd.ShadowSuffix, "code-default", ec)
	return answer{v, s}
}

func (e *env) want(key, partner string) answer {
	v, s := flagdtest.Want(e.svc.State().Flags(), key, partner)
	return answer{v, s}
}

// eventually polls until the provider answers as Evaluate does for every
// partner, or fails t after a deadline.
func (e *env) eventually(t testing.TB, c *openfeature.Client, key string, partners ...string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, p := range partners {
		for {
			got, want := flagdAnswer(c, key, p), e.want(key, p)
			if got == want {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s for %q: flagd answers %+v, Evaluate %+v", key, p, got, want)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
}

// flagd's provider answers every partner of 1,000, at random stages, and
// of a reverted migration as Evaluate (/v1/evaluate, the flags provider)
// does, for KEY and KEY:shadow; a random 50 of them also as POST
// /v1/evaluate over HTTP and the flags provider answer.
func TestProviderAnswersAsEvaluate(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 1))
	e := newEnv(t)
	e.migration(t, "tickets")
	e.migration(t, "billing")
	stages := []domain.Stage{domain.StageLegacy, domain.StageShadow, domain.StageNew, domain.StageDone}
	var partners []string
	for i := range 1000 {
		id := "p-" + strconv.Itoa(i)
		e.partner(t, id)
		partners = append(partners, id)
		for _, key := range []string{"tickets", "billing"} {
			switch r := rng.IntN(10); {
			case r == 0:
				// A stage record at legacy: moved to shadow and back.
				e.stage(t, key, id, domain.StageShadow)
				e.stage(t, key, id, domain.StageLegacy)
			case r < 3:
				// No stage record.
			default:
				e.stage(t, key, id, stages[rng.IntN(len(stages))])
			}
		}
	}
	if _, err := e.svc.Revert(ctx, admin, "billing"); err != nil {
		t.Fatal(err)
	}
	c := e.provider(t)
	keys := append(partners, "", "unknown", "p-1000", "p-1,p-2")
	counts := map[answer]int{}
	for _, key := range []string{"tickets", "billing"} {
		for _, p := range keys {
			got, want := flagdAnswer(c, key, p), e.want(key, p)
			if got != want {
				t.Errorf("%s for %q: flagd answers %+v, Evaluate %+v", key, p, got, want)
			}
			counts[got]++
		}
	}
	// Every kind of answer was asked about.
	for _, a := range []answer{{"legacy", "none"}, {"legacy", "new"}, {"new", "legacy"}, {"new", "none"}} {
		if counts[a] == 0 {
			t.Errorf("no partner answered %+v: the property checked too little", a)
		}
	}

	// A sample, through what routers actually call: POST /v1/evaluate
	// over HTTP and the public flags provider on the snapshot stream, so
	// that Evaluate above is known to be what they answer.
	api := httpapi.New(e.svc, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
	hs := httptest.NewServer(api)
	t.Cleanup(func() { api.Close(); hs.Close() })
	_, viewer, err := e.svc.CreateToken(ctx, admin, "viewer", domain.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	fl, err := flags.NewProvider(flags.Options{URL: hs.URL, Token: viewer, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	flagsAPI := isolated.NewAPI()
	if err := flagsAPI.SetProviderAndWait(ctx, fl); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { flagsAPI.Shutdown(ctx) })
	flagsClient := flagsAPI.NewClient()
	sample := []string{"unknown"}
	for _, i := range rng.Perm(len(partners))[:50] {
		sample = append(sample, partners[i])
	}
	for _, key := range []string{"tickets", "billing"} {
		for _, p := range sample {
			got := flagdAnswer(c, key, p)
			if viaHTTP := evaluateOverHTTP(t, hs.URL, viewer, key, p); got != viaHTTP {
				t.Errorf("%s for %q: flagd answers %+v, POST /v1/evaluate %+v", key, p, got, viaHTTP)
			}
			if viaFlags := flagsAnswer(flagsClient, key, p); got != viaFlags {
				t.Errorf("%s for %q: flagd answers %+v, the flags provider %+v", key, p, got, viaFlags)
			}
		}
	}
}

// evaluateOverHTTP asks POST /v1/evaluate for the partner's answer.
func evaluateOverHTTP(t *testing.T, base, token, key, partner string) answer {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"flag": key, "context": map[string]any{"targetingKey": partner}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/evaluate", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("POST /v1/evaluate %s for %q = %d: %s", key, partner, resp.StatusCode, data)
	}
	var e struct {
		Value    string `json:"value"`
		Metadata struct {
			Shadow string `json:"shadow"`
		} `json:"metadata"`
	}
	if err := json.Unmarshal(data, &e); err != nil {
		t.Fatalf("POST /v1/evaluate: %v: %s", err, data)
	}
	return answer{e.Value, noShadow(e.Metadata.Shadow)}
}

// flagsAnswer is the flags provider's answer: KEY's value, and the
// pipeline to dry-run from its metadata.
func flagsAnswer(c *openfeature.Client, key, partner string) answer {
	d, _ := c.StringValueDetails(ctx, key, "code-default", openfeature.NewEvaluationContext(partner, nil))
	s, _ := d.FlagMetadata.GetString("shadow")
	return answer{d.Value, noShadow(s)}
}

// noShadow spells "no dry-run" as KEY:shadow does: Evaluate's metadata
// leaves shadow out.
func noShadow(s string) string {
	if s == "" {
		return "none"
	}
	return s
}

// A revert, a resume, an advance and a new partner reach a connected
// provider.
func TestChangesReachProvider(t *testing.T) {
	e := newEnv(t)
	e.migration(t, "tickets")
	for _, p := range []string{"acme", "globex", "initech"} {
		e.partner(t, p)
	}
	e.stage(t, "tickets", "acme", domain.StageNew)
	e.stage(t, "tickets", "globex", domain.StageShadow)
	c := e.provider(t)
	all := []string{"acme", "globex", "initech", "umbrella"}
	e.eventually(t, c, "tickets", all...)
	if got := flagdAnswer(c, "tickets", "acme"); got != (answer{"new", "legacy"}) {
		t.Fatalf("acme before the revert: %+v", got)
	}

	if _, err := e.svc.Revert(ctx, admin, "tickets"); err != nil {
		t.Fatal(err)
	}
	e.eventually(t, c, "tickets", all...)
	for _, p := range all {
		if got := flagdAnswer(c, "tickets", p); got != (answer{"legacy", "none"}) {
			t.Errorf("%s after the revert: %+v, want legacy and no dry-run", p, got)
		}
	}

	if _, err := e.svc.Resume(ctx, admin, "tickets"); err != nil {
		t.Fatal(err)
	}
	e.stage(t, "tickets", "globex", domain.StageNew)
	e.eventually(t, c, "tickets", all...)
	if got := flagdAnswer(c, "tickets", "globex"); got != (answer{"new", "legacy"}) {
		t.Errorf("globex after its advance: %+v, want new with a legacy dry-run", got)
	}

	e.partner(t, "umbrella")
	e.stage(t, "tickets", "umbrella", domain.StageShadow)
	e.eventually(t, c, "tickets", all...)
	if got := flagdAnswer(c, "tickets", "umbrella"); got != (answer{"legacy", "new"}) {
		t.Errorf("umbrella once added and shadowed: %+v, want legacy with a new dry-run", got)
	}
}

// A provider with a selector gets that migration's flags only, and
// follows a migration created after it connected.
func TestProviderSelector(t *testing.T) {
	e := newEnv(t)
	e.migration(t, "tickets")
	e.partner(t, "acme")
	e.stage(t, "tickets", "acme", domain.StageDone)
	c := e.provider(t, flagdprovider.WithSelector("billing"))
	if got := flagdAnswer(c, "tickets", "acme"); got != (answer{"code-default", "code-default"}) {
		t.Errorf("tickets through the selector billing: %+v, want the code's default (flag not found)", got)
	}
	e.migration(t, "billing")
	e.stage(t, "billing", "acme", domain.StageNew)
	e.eventually(t, c, "billing", "acme", "globex")
	if got := flagdAnswer(c, "billing", "acme"); got != (answer{"new", "legacy"}) {
		t.Errorf("billing for acme: %+v", got)
	}
}

func dial(t testing.TB, addr net.Addr) syncv1grpc.FlagSyncServiceClient {
	t.Helper()
	conn, err := grpc.NewClient(addr.String(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return syncv1grpc.NewFlagSyncServiceClient(conn)
}

func TestFetchAllFlagsAndGetMetadata(t *testing.T) {
	e := newEnv(t)
	e.migration(t, "tickets")
	e.migration(t, "billing")
	c := dial(t, e.addr)
	st := e.svc.State()
	for _, tc := range []struct {
		name   string
		ctx    context.Context
		field  string
		wantOf string
	}{
		{"all", ctx, "", ""},
		{"field", ctx, "tickets", "tickets"},
		{"header over field", metadata.AppendToOutgoingContext(ctx, flagdsync.SelectorHeader, "billing"), "tickets", "billing"},
	} {
		res, err := c.FetchAllFlags(tc.ctx, &syncv1.FetchAllFlagsRequest{Selector: tc.field})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		want, _ := flagd.Encode(st.Flags(), tc.wantOf)
		if res.GetFlagConfiguration() != string(want.JSON) {
			t.Errorf("%s: got %s, want %s", tc.name, res.GetFlagConfiguration(), want.JSON)
		}
	}
	_, err := c.FetchAllFlags(ctx, &syncv1.FetchAllFlagsRequest{Selector: "flagSetId=x"})
	if status.Code(err) != codes.InvalidArgument {
		t.Errorf("a selector that names no migration: %v, want InvalidArgument", err)
	}
	md, err := c.GetMetadata(ctx, &syncv1.GetMetadataRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if got := md.GetMetadata().AsMap(); got["version"] != strconv.FormatUint(st.Version, 10) || got["flagSetId"] != "switchback" {
		t.Errorf("GetMetadata = %v, want version %d and flagSetId switchback", got, st.Version)
	}
}

// fakeSource is a Source whose snapshot and availability the test sets.
type fakeSource struct {
	mu      sync.Mutex
	snap    *flags.Snapshot
	changed chan struct{}
	err     error
}

func newFakeSource(s *flags.Snapshot) *fakeSource {
	return &fakeSource{snap: s, changed: make(chan struct{})}
}

func (f *fakeSource) Changed() (*flags.Snapshot, <-chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.snap, f.changed
}

func (f *fakeSource) Available() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.err
}

func (f *fakeSource) CatchUp(context.Context) error { return nil }

// publish sets the snapshot, or (s nil) the availability, and wakes the
// streams.
func (f *fakeSource) publish(s *flags.Snapshot, err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if s != nil {
		f.snap = s
	}
	f.err = err
	close(f.changed)
	f.changed = make(chan struct{})
}

func jsonUnmarshal(t testing.TB, s string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(s), v); err != nil {
		t.Fatal(err)
	}
}

// The stream sends the configuration on every version, skips to the
// newest, and ends with Unavailable when the source becomes stale.
func TestSyncFlagsStream(t *testing.T) {
	src := newFakeSource(&flags.Snapshot{Version: 1, Migrations: map[string]*flags.Migration{"m": {}}})
	c := dial(t, serveSync(t, src))
	stream, err := c.SyncFlags(ctx, &syncv1.SyncFlagsRequest{})
	if err != nil {
		t.Fatal(err)
	}
	version := func() string {
		t.Helper()
		res, err := stream.Recv()
		if err != nil {
			t.Fatal(err)
		}
		ev := flagdtest.New(t)
		ev.Load(t, []byte(res.GetFlagConfiguration()))
		var v struct {
			Metadata struct{ Version string } `json:"metadata"`
		}
		jsonUnmarshal(t, res.GetFlagConfiguration(), &v)
		return v.Metadata.Version
	}
	if v := version(); v != "1" {
		t.Fatalf("first message: version %s, want 1", v)
	}
	// Two versions while the client reads nothing: it gets the newest.
	src.publish(&flags.Snapshot{Version: 2, Migrations: map[string]*flags.Migration{"m": {}}}, nil)
	src.publish(&flags.Snapshot{Version: 3, Migrations: map[string]*flags.Migration{"m": {Reverted: true}}}, nil)
	for v := version(); v != "3"; v = version() {
		if v != "2" {
			t.Fatalf("after two publishes: version %s, want 2 then 3, or 3", v)
		}
	}
	src.publish(nil, fmt.Errorf("wrapped: %w", domain.Errorf(domain.CodeStoreUnavailable, "cut off")))
	if _, err := stream.Recv(); status.Code(err) != codes.Unavailable {
		t.Fatalf("a stale source: %v, want Unavailable", err)
	}
	// A new stream is refused while the source is stale.
	again, err := c.SyncFlags(ctx, &syncv1.SyncFlagsRequest{})
	if err == nil {
		_, err = again.Recv()
	}
	if status.Code(err) != codes.Unavailable {
		t.Fatalf("a new stream on a stale source: %v, want Unavailable", err)
	}
}
