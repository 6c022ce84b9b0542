package flags

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"go.uber.org/goleak"
)

// TestMain fails the package's tests if any goroutine outlives them: the
// provider's sync, reporter and file writer must all stop on Shutdown.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

const pvToken = "test-token"

// pvWire is a snapshot as the control service sends it, with the fields the
// flags package ignores.
type pvWire struct {
	Version    uint64                   `json:"version"`
	BuiltAt    string                   `json:"builtAt"`
	Migrations map[string]pvWireMig     `json:"migrations"`
	Partners   map[string]pvWirePartner `json:"partners"`
}

type pvWireMig struct {
	Seq       int               `json:"seq"`
	Reverted  bool              `json:"reverted"`
	Stages    map[string]string `json:"stages"`
	Pipelines map[string]string `json:"pipelines"`
	Compare   map[string]any    `json:"compare"`
	Guard     map[string]any    `json:"guard"`
}

type pvWirePartner struct {
	Name   string `json:"name"`
	PSA    string `json:"psa"`
	Secret string `json:"secret,omitempty"`
}

// pvBaseWire is the snapshot most tests start from: acme in shadow, globex
// on new, initech done, umbrella known and at legacy, hooli at a stage this
// provider does not know; "kill-switched" is reverted.
func pvBaseWire(version uint64) pvWire {
	partners := map[string]pvWirePartner{}
	for id, psa := range map[string]string{"acme": "connectwise", "globex": "autotask", "initech": "halopsa", "umbrella": "generic", "hooli": "generic"} {
		partners[id] = pvWirePartner{Name: strings.ToUpper(id[:1]) + id[1:], PSA: psa, Secret: "whsec-" + id}
	}
	return pvWire{
		Version: version,
		BuiltAt: "2026-03-01T12:00:00Z",
		Migrations: map[string]pvWireMig{
			"psa-webhooks-v2": {Seq: 1, Stages: map[string]string{"acme": "shadow", "globex": "new", "initech": "done", "hooli": "canary"},
				Pipelines: map[string]string{"legacy": "http://legacy/apply", "new": "http://new/apply"}},
			"kill-switched": {Seq: 2, Reverted: true, Stages: map[string]string{"acme": "new"}},
		},
		Partners: partners,
	}
}

func (w pvWire) json() string {
	b, err := json.Marshal(w)
	if err != nil {
		panic(err)
	}
	return string(b)
}

type pvReport struct {
	Router          string `json:"router"`
	SnapshotVersion uint64 `json:"snapshotVersion"`
	StoreID         string `json:"storeId"`
	Refused         uint64 `json:"refused"`
	auth            string
}

// fakeControl is a control service that speaks the snapshot stream and
// takes router reports, with knobs to misbehave: answer a status instead
// of the stream, hold stream requests, drop streams, send bytes of the
// test's choosing first.
type fakeControl struct {
	srv       *httptest.Server
	handler   http.Handler // what srv serves; replicas serve it too
	quit      chan struct{}
	closeOnce sync.Once

	mu        sync.Mutex
	version   uint64
	raw       string
	changed   chan struct{} // closed and replaced by each publish
	drop      chan struct{} // closed and replaced to drop every stream
	status    int           // non-zero: stream requests get this answer
	gate      chan struct{} // non-nil: stream requests wait until it is closed
	heartbeat time.Duration // zero: no heartbeats
	preludes  []string      // written first, one per stream request, in order
	lastIDs   []string      // the Last-Event-ID of each stream request
	reports   []pvReport
}

func startFakeControl(t *testing.T) *fakeControl {
	t.Helper()
	f := &fakeControl{
		quit:      make(chan struct{}),
		changed:   make(chan struct{}),
		drop:      make(chan struct{}),
		heartbeat: 20 * time.Millisecond,
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/snapshot/stream", f.serveStream)
	mux.HandleFunc("POST /v1/reports", f.serveReport)
	f.handler = mux
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.close)
	return f
}

// close takes the control service down for good: connections are refused.
func (f *fakeControl) close() {
	f.closeOnce.Do(func() {
		close(f.quit)
		f.srv.Close()
	})
}

func (f *fakeControl) publish(w pvWire) {
	raw := w.json()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version, f.raw = w.Version, raw
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeControl) dropStreams() {
	f.mu.Lock()
	defer f.mu.Unlock()
	close(f.drop)
	f.drop = make(chan struct{})
}

// setStatus makes stream requests answer code (0: serve the stream again)
// and drops the streams open.
func (f *fakeControl) setStatus(code int) {
	f.mu.Lock()
	f.status = code
	f.mu.Unlock()
	f.dropStreams()
}

func (f *fakeControl) setGate(gate chan struct{}) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.gate = gate
}

// setPreludes sets what the next stream requests get first, one each.
func (f *fakeControl) setPreludes(preludes ...string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.preludes = preludes
}

func (f *fakeControl) streamRequests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.lastIDs)
}

func (f *fakeControl) receivedReports() []pvReport {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.reports)
}

func (f *fakeControl) serveStream(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+pvToken {
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	f.mu.Lock()
	f.lastIDs = append(f.lastIDs, r.Header.Get("Last-Event-ID"))
	gate, status, heartbeat := f.gate, f.status, f.heartbeat
	prelude := ""
	if len(f.preludes) > 0 {
		prelude, f.preludes = f.preludes[0], f.preludes[1:]
	}
	f.mu.Unlock()
	if gate != nil {
		select {
		case <-gate:
		case <-r.Context().Done():
			return
		case <-f.quit:
			return
		}
	}
	if status != 0 {
		http.Error(w, http.StatusText(status), status)
		return
	}
	sent, _ := strconv.ParseUint(r.Header.Get("Last-Event-ID"), 10, 64)
	w.Header().Set("Content-Type", "text/event-stream")
	w.WriteHeader(http.StatusOK)
	flusher := w.(http.Flusher)
	_, _ = io.WriteString(w, prelude)
	flusher.Flush()
	var beat <-chan time.Time
	if heartbeat > 0 {
		tk := time.NewTicker(heartbeat)
		defer tk.Stop()
		beat = tk.C
	}
	for {
		f.mu.Lock()
		version, raw, changed, drop := f.version, f.raw, f.changed, f.drop
		f.mu.Unlock()
		if version > sent {
			fmt.Fprintf(w, "id: %d\nevent: snapshot\ndata: %s\n\n", version, raw)
			flusher.Flush()
			sent = version
		}
		select {
		case <-changed:
		case <-beat:
			_, _ = io.WriteString(w, ": ping\n\n")
			flusher.Flush()
		case <-drop:
			return
		case <-r.Context().Done():
			return
		case <-f.quit:
			return
		}
	}
}

func (f *fakeControl) serveReport(w http.ResponseWriter, r *http.Request) {
	var rep pvReport
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	rep.auth = r.Header.Get("Authorization")
	f.mu.Lock()
	f.reports = append(f.reports, rep)
	f.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

// pvLog collects a provider's logs; they are printed if the test fails.
type pvLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *pvLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *pvLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// pvOptions are Options with short timeouts, for a control service at url.
func pvOptions(t *testing.T, url string) (Options, *pvLog) {
	t.Helper()
	logs := &pvLog{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("provider logs:\n%s", logs)
		}
	})
	return Options{
		URL:              url,
		Token:            pvToken,
		Logger:           slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
		InitTimeout:      5 * time.Second,
		StaleGrace:       150 * time.Millisecond,
		MinBackoff:       2 * time.Millisecond,
		MaxBackoff:       20 * time.Millisecond,
		HeartbeatTimeout: 5 * time.Second,
		ReportInterval:   time.Hour,
	}, logs
}

func pvNewProvider(t *testing.T, opts Options) *Provider {
	t.Helper()
	p, err := NewProvider(opts)
	if err != nil {
		t.Fatalf("NewProvider: %v", err)
	}
	return p
}

type pvEvent struct {
	typ openfeature.EventType
	openfeature.EventDetails
}

// pvRegister registers p with an OpenFeature API of the test's own and
// returns a client, the events the API handlers see, and Init's answer.
// The API, and so p, is shut down when the test ends.
func pvRegister(t *testing.T, p *Provider) (*openfeature.Client, chan pvEvent, error) {
	t.Helper()
	api := isolated.NewAPI()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := api.Shutdown(ctx); err != nil {
			t.Errorf("OpenFeature API Shutdown: %v", err)
		}
	})
	events := make(chan pvEvent, 256)
	for _, typ := range []openfeature.EventType{openfeature.ProviderReady, openfeature.ProviderConfigChange, openfeature.ProviderStale, openfeature.ProviderError} {
		cb := func(d openfeature.EventDetails) {
			select {
			case events <- pvEvent{typ, d}:
			default:
			}
		}
		api.AddHandler(typ, &cb)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	err := api.SetProviderAndWait(ctx, p)
	return api.NewClient(), events, err
}

// pvWaitEvent waits for an event of type typ, skipping others.
func pvWaitEvent(t *testing.T, events <-chan pvEvent, typ openfeature.EventType) openfeature.EventDetails {
	t.Helper()
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	var seen []openfeature.EventType
	for {
		select {
		case ev := <-events:
			if ev.typ == typ {
				return ev.EventDetails
			}
			seen = append(seen, ev.typ)
		case <-deadline.C:
			t.Fatalf("no %s event; saw %v", typ, seen)
		}
	}
}

// pvWaitUntil waits for cond to hold.
func pvWaitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func pvEval(c *openfeature.Client, flag, partner, def string) openfeature.StringEvaluationDetails {
	d, _ := c.StringValueDetails(context.Background(), flag, def, openfeature.NewEvaluationContext(partner, map[string]any{"eventType": "ticket"}))
	return d
}

func pvVersion(p *Provider) uint64 {
	if s := p.Snapshot(); s != nil {
		return s.Version
	}
	return 0
}

func TestOptionsValidate(t *testing.T) {
	ok := Options{URL: "https://control.example:8443/base", Token: "t"}
	tests := []struct {
		name    string
		mod     func(*Options)
		wantErr string // "" means valid
	}{
		{"valid", func(*Options) {}, ""},
		{"valid http with durations", func(o *Options) { o.URL, o.MinBackoff, o.MaxBackoff = "http://127.0.0.1:1", time.Second, time.Second }, ""},
		{"no URL", func(o *Options) { o.URL = "" }, "URL (or URLs) is required"},
		{"ftp URL", func(o *Options) { o.URL = "ftp://control.example" }, "http or https"},
		{"relative URL", func(o *Options) { o.URL = "/v1" }, "http or https"},
		{"no host", func(o *Options) { o.URL = "http://" }, "no host"},
		{"unparsable URL", func(o *Options) { o.URL = "http://a b\x7f" }, "Options.URL does not parse"},
		{"replicas", func(o *Options) { o.URL, o.URLs = "", []string{"https://a.example", "http://10.0.0.2:8080/base"} }, ""},
		{"one replica", func(o *Options) { o.URL, o.URLs = "", []string{"https://a.example"} }, ""},
		{"URL and URLs", func(o *Options) { o.URLs = []string{"https://a.example"} }, "not both"},
		{"empty URLs", func(o *Options) { o.URL, o.URLs = "", []string{} }, "URL (or URLs) is required"},
		{"an empty replica URL", func(o *Options) { o.URL, o.URLs = "", []string{"https://a.example", ""} }, "Options.URLs[1] is empty"},
		{"a replica URL without scheme", func(o *Options) { o.URL, o.URLs = "", []string{"https://a.example", "b.example:8080"} }, "Options.URLs[1] must be an http or https URL"},
		{"a replica URL without host", func(o *Options) { o.URL, o.URLs = "", []string{"https://"} }, "Options.URLs[0] has no host"},
		{"a replica twice", func(o *Options) {
			o.URL, o.URLs = "", []string{"https://a.example", "https://b.example", "https://a.example"}
		}, "URLs[2] repeats URLs[0]"},
		{"no token", func(o *Options) { o.Token = "" }, "Token is required"},
		{"negative grace", func(o *Options) { o.StaleGrace = -time.Second }, "StaleGrace must not be negative"},
		{"negative heartbeat", func(o *Options) { o.HeartbeatTimeout = -1 }, "HeartbeatTimeout"},
		{"min above max", func(o *Options) { o.MinBackoff, o.MaxBackoff = time.Minute, time.Second }, "MinBackoff"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := ok
			tt.mod(&o)
			err := o.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: got %v, want nil", err)
				}
				if _, err := NewProvider(o); err != nil {
					t.Fatalf("NewProvider: got %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Validate: got %v, want an error containing %q", err, tt.wantErr)
			}
			if _, err := NewProvider(o); err == nil {
				t.Fatalf("NewProvider accepted options Validate refuses")
			}
		})
	}
}

func TestOptionsDefaults(t *testing.T) {
	p := pvNewProvider(t, Options{URL: "http://control.example", Token: "t"})
	got := p.opts
	want := Options{URL: "http://control.example", Token: "t",
		ReportInterval: 15 * time.Second, InitTimeout: 5 * time.Second, StaleGrace: 30 * time.Second,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 30 * time.Second, HeartbeatTimeout: 45 * time.Second}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("options with defaults:\n got %+v\nwant %+v", got, want)
	}
	if p.Metadata().Name != "switchback" {
		t.Errorf("Metadata().Name: got %q, want switchback", p.Metadata().Name)
	}
	if got, want := p.replicas, []replica{{"http://control.example", "http://control.example/v1/snapshot/stream?deltas=1", "http://control.example/v1/reports"}}; !slices.Equal(got, want) {
		t.Errorf("replicas: got %+v, want %+v", got, want)
	}
	if got, want := p.ControlURL(), "http://control.example"; got != want {
		t.Errorf("ControlURL() = %q, want %q", got, want)
	}
}

// TestProviderEvaluation goes through every answer of the provider, through
// an OpenFeature client, and checks the provider's own Resolve agrees.
func TestProviderEvaluation(t *testing.T) {
	f := startFakeControl(t)
	f.publish(pvBaseWire(1))
	opts, _ := pvOptions(t, f.srv.URL)
	p := pvNewProvider(t, opts)
	client, _, err := pvRegister(t, p)
	if err != nil {
		t.Fatalf("SetProviderAndWait: %v", err)
	}
	meta := func(stage, shadow string) openfeature.FlagMetadata {
		return openfeature.FlagMetadata{"stage": stage, "shadow": shadow, "snapshotVersion": int64(1)}
	}
	const def = "caller-default"
	tests := []struct {
		name    string
		flag    string
		evalCtx openfeature.EvaluationContext
		value   string
		variant string
		reason  openfeature.Reason
		code    openfeature.ErrorCode
		meta    openfeature.FlagMetadata // checked when not nil
	}{
		{"shadow", "psa-webhooks-v2", openfeature.NewEvaluationContext("acme", nil),
			Legacy, StageShadow, openfeature.TargetingMatchReason, "", meta(StageShadow, New)},
		{"new", "psa-webhooks-v2", openfeature.NewEvaluationContext("globex", nil),
			New, StageNew, openfeature.TargetingMatchReason, "", meta(StageNew, Legacy)},
		{"done", "psa-webhooks-v2", openfeature.NewEvaluationContext("initech", nil),
			New, StageDone, openfeature.TargetingMatchReason, "", meta(StageDone, "")},
		{"known partner at legacy", "psa-webhooks-v2", openfeature.NewEvaluationContext("umbrella", map[string]any{"eventType": "ticket"}),
			Legacy, StageLegacy, openfeature.TargetingMatchReason, "", meta(StageLegacy, "")},
		{"kill switch on", "kill-switched", openfeature.NewEvaluationContext("acme", nil),
			Legacy, StageLegacy, openfeature.DisabledReason, "", meta(StageNew, "")},
		{"unknown partner", "psa-webhooks-v2", openfeature.NewEvaluationContext("stranger", nil),
			Legacy, StageLegacy, openfeature.DefaultReason, "", meta("", "")},
		{"unknown migration", "no-such-migration", openfeature.NewEvaluationContext("acme", nil),
			def, "", openfeature.ErrorReason, openfeature.FlagNotFoundCode, nil},
		{"no targeting key", "psa-webhooks-v2", openfeature.NewEvaluationContext("", map[string]any{"eventType": "ticket"}),
			def, "", openfeature.ErrorReason, openfeature.TargetingKeyMissingCode, nil},
		{"targeting key not a string", "psa-webhooks-v2", openfeature.NewEvaluationContext("", map[string]any{"targetingKey": 42}),
			def, "", openfeature.ErrorReason, openfeature.InvalidContextCode, nil},
		{"unknown stage", "psa-webhooks-v2", openfeature.NewEvaluationContext("hooli", nil),
			def, "", openfeature.ErrorReason, openfeature.ParseErrorCode, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := client.StringValueDetails(context.Background(), tt.flag, def, tt.evalCtx)
			if (err != nil) != (tt.code != "") {
				t.Errorf("error: got %v, want one: %v", err, tt.code != "")
			}
			if got.Value != tt.value || got.Variant != tt.variant || got.Reason != tt.reason || got.ErrorCode != tt.code {
				t.Errorf("got value %q variant %q reason %s code %q, want %q %q %s %q",
					got.Value, got.Variant, got.Reason, got.ErrorCode, tt.value, tt.variant, tt.reason, tt.code)
			}
			if tt.meta != nil && !reflect.DeepEqual(got.FlagMetadata, tt.meta) {
				t.Errorf("metadata: got %v, want %v", got.FlagMetadata, tt.meta)
			}
			if tt.code != "" && got.ErrorMessage == "" {
				t.Errorf("error %s without a message", tt.code)
			}
			// The fast path answers the same.
			if key, _ := tt.evalCtx.Attribute(openfeature.TargetingKey).(string); tt.code != openfeature.InvalidContextCode {
				if key == "" {
					key = tt.evalCtx.TargetingKey()
				}
				r := p.Resolve(tt.flag, key)
				if tt.code == "" && (r.Value != got.Value || r.Variant != got.Variant || openfeature.Reason(r.Reason) != got.Reason) {
					t.Errorf("Resolve: got %+v, the client got %q %q %s", r, got.Value, got.Variant, got.Reason)
				}
				if tt.code != "" && openfeature.ErrorCode(r.ErrorCode) != tt.code {
					t.Errorf("Resolve error code: got %q, want %q", r.ErrorCode, tt.code)
				}
			}
		})
	}

	t.Run("other types are a type mismatch", func(t *testing.T) {
		ec := openfeature.NewEvaluationContext("acme", nil)
		ctx := context.Background()
		b, _ := client.BooleanValueDetails(ctx, "psa-webhooks-v2", true, ec)
		i, _ := client.IntValueDetails(ctx, "psa-webhooks-v2", 7, ec)
		fl, _ := client.FloatValueDetails(ctx, "psa-webhooks-v2", 0.5, ec)
		o, _ := client.ObjectValueDetails(ctx, "psa-webhooks-v2", "obj", ec)
		for _, got := range []struct {
			value any
			want  any
			code  openfeature.ErrorCode
		}{{b.Value, true, b.ErrorCode}, {i.Value, int64(7), i.ErrorCode}, {fl.Value, 0.5, fl.ErrorCode}, {o.Value, "obj", o.ErrorCode}} {
			if got.value != got.want || got.code != openfeature.TypeMismatchCode {
				t.Errorf("got %v with code %q, want the default %v with TYPE_MISMATCH", got.value, got.code, got.want)
			}
		}
	})

	t.Run("metadata handed out is a copy", func(t *testing.T) {
		d := pvEval(client, "psa-webhooks-v2", "acme", def)
		d.FlagMetadata["stage"] = "tampered"
		if got := pvEval(client, "psa-webhooks-v2", "acme", def).FlagMetadata["stage"]; got != StageShadow {
			t.Errorf("stage after a caller changed its copy: got %v, want shadow", got)
		}
	})
}

// TestProviderNotReady covers a provider that has never synced: every
// answer is the caller's default with PROVIDER_NOT_READY, until the stream
// delivers and the provider says READY.
func TestProviderNotReady(t *testing.T) {
	t.Run("never initialized", func(t *testing.T) {
		p := pvNewProvider(t, Options{URL: "http://127.0.0.1:1", Token: "t"})
		got := p.StringEvaluation(context.Background(), "psa-webhooks-v2", Legacy, openfeature.FlattenedContext{"targetingKey": "acme"})
		if got.Value != Legacy || got.Reason != openfeature.ErrorReason || got.ResolutionDetail().ErrorCode != openfeature.ProviderNotReadyCode {
			t.Errorf("got %+v, want legacy, ERROR, PROVIDER_NOT_READY", got)
		}
		if r := p.Resolve("psa-webhooks-v2", "acme"); r.ErrorCode != ErrProviderNotReady || r.Value != Legacy {
			t.Errorf("Resolve: got %+v, want legacy with PROVIDER_NOT_READY", r)
		}
		if p.Snapshot() != nil {
			t.Errorf("Snapshot: got %+v, want nil", p.Snapshot())
		}
	})

	t.Run("init times out, then the stream delivers", func(t *testing.T) {
		f := startFakeControl(t)
		f.publish(pvBaseWire(1))
		gate := make(chan struct{})
		f.setGate(gate) // the control service is slow to answer
		opts, _ := pvOptions(t, f.srv.URL)
		opts.InitTimeout = 50 * time.Millisecond
		p := pvNewProvider(t, opts)
		client, events, err := pvRegister(t, p)
		if err == nil || !strings.Contains(err.Error(), "no snapshot") {
			t.Fatalf("SetProviderAndWait: got %v, want the init timeout", err)
		}
		pvWaitEvent(t, events, openfeature.ProviderError)
		if got := client.State(); got != openfeature.ErrorState {
			t.Errorf("client state: got %s, want ERROR", got)
		}
		got := pvEval(client, "psa-webhooks-v2", "acme", Legacy)
		if got.Value != Legacy || got.Reason != openfeature.ErrorReason || got.ErrorCode != openfeature.ProviderNotReadyCode {
			t.Errorf("before any sync: got %q %s %q, want legacy ERROR PROVIDER_NOT_READY", got.Value, got.Reason, got.ErrorCode)
		}

		close(gate)
		pvWaitEvent(t, events, openfeature.ProviderReady)
		got = pvEval(client, "psa-webhooks-v2", "acme", Legacy)
		if got.Reason != openfeature.TargetingMatchReason || got.Variant != StageShadow {
			t.Errorf("after the first sync: got %q %q %s %q, want shadow TARGETING_MATCH", got.Value, got.Variant, got.Reason, got.ErrorCode)
		}
	})

	t.Run("token refused", func(t *testing.T) {
		f := startFakeControl(t)
		f.publish(pvBaseWire(1))
		f.setStatus(http.StatusUnauthorized)
		opts, logs := pvOptions(t, f.srv.URL)
		// Init waits this long, then names the last error: long enough for
		// the first 401 to come back on a loaded machine.
		opts.InitTimeout = time.Second
		p := pvNewProvider(t, opts)
		client, events, err := pvRegister(t, p)
		if err == nil || !strings.Contains(err.Error(), "401") {
			t.Fatalf("SetProviderAndWait: got %v, want an error naming the 401", err)
		}
		if !strings.Contains(logs.String(), "refused the token") {
			t.Errorf("no log of the refused token")
		}
		if got := pvEval(client, "psa-webhooks-v2", "acme", Legacy); got.Value != Legacy || got.ErrorCode != openfeature.ProviderNotReadyCode {
			t.Errorf("got %q %q, want legacy PROVIDER_NOT_READY", got.Value, got.ErrorCode)
		}
		f.setStatus(0) // the token is granted
		pvWaitEvent(t, events, openfeature.ProviderReady)
		if got := pvEval(client, "psa-webhooks-v2", "globex", Legacy); got.Value != New {
			t.Errorf("after the token is granted: got %q %q, want new", got.Value, got.ErrorCode)
		}
	})

	t.Run("shutdown during init", func(t *testing.T) {
		f := startFakeControl(t)
		f.setGate(make(chan struct{}))
		opts, _ := pvOptions(t, f.srv.URL)
		opts.InitTimeout = time.Minute
		p := pvNewProvider(t, opts)
		errc := make(chan error, 1)
		go func() { errc <- p.Init(openfeature.EvaluationContext{}) }()
		pvWaitUntil(t, "the stream is requested", func() bool { return len(f.streamRequests()) > 0 })
		p.Shutdown()
		if err := <-errc; err == nil || !strings.Contains(err.Error(), "shut down") {
			t.Errorf("Init: got %v, want an error saying the provider shut down", err)
		}
	})

	t.Run("init context done", func(t *testing.T) {
		f := startFakeControl(t)
		f.setGate(make(chan struct{}))
		opts, _ := pvOptions(t, f.srv.URL)
		p := pvNewProvider(t, opts)
		defer p.Shutdown()
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if err := p.InitWithContext(ctx, openfeature.EvaluationContext{}); !errors.Is(err, context.Canceled) {
			t.Errorf("InitWithContext: got %v, want context.Canceled", err)
		}
	})
}

// TestProviderEvents follows a provider through a new version, the loss of
// the control service, the grace period and the recovery.
func TestProviderEvents(t *testing.T) {
	f := startFakeControl(t)
	f.publish(pvBaseWire(1))
	opts, _ := pvOptions(t, f.srv.URL)
	p := pvNewProvider(t, opts)
	client, events, err := pvRegister(t, p)
	if err != nil {
		t.Fatalf("SetProviderAndWait: %v", err)
	}
	pvWaitEvent(t, events, openfeature.ProviderReady)

	// v2: acme moves to new, a migration appears; kill-switched is untouched.
	v2 := pvBaseWire(2)
	v2.Migrations["psa-webhooks-v2"].Stages["acme"] = StageNew
	v2.Migrations["brand-new"] = pvWireMig{Seq: 3, Stages: map[string]string{"globex": StageShadow}}
	f.publish(v2)
	ev := pvWaitEvent(t, events, openfeature.ProviderConfigChange)
	if want := []string{"brand-new", "psa-webhooks-v2"}; !slices.Equal(ev.FlagChanges, want) {
		t.Errorf("FlagChanges: got %v, want %v", ev.FlagChanges, want)
	}
	if got := ev.EventMetadata["snapshotVersion"]; got != int64(2) {
		t.Errorf("event snapshotVersion: got %v (%T), want 2", got, got)
	}
	if got := pvEval(client, "psa-webhooks-v2", "acme", Legacy); got.Value != New || got.FlagMetadata["snapshotVersion"] != int64(2) {
		t.Errorf("after v2: got %q %v, want new at version 2", got.Value, got.FlagMetadata)
	}

	// The control service goes down: STALE at once, ERROR after the grace,
	// and all along the last snapshot answers.
	f.setStatus(http.StatusServiceUnavailable)
	pvWaitEvent(t, events, openfeature.ProviderStale)
	if got := pvEval(client, "psa-webhooks-v2", "acme", Legacy); got.Value != New || got.Reason != openfeature.TargetingMatchReason {
		t.Errorf("while stale: got %q %s %q, want new TARGETING_MATCH from the last snapshot", got.Value, got.Reason, got.ErrorCode)
	}
	pvWaitEvent(t, events, openfeature.ProviderError)
	pvWaitUntil(t, "the client sees ERROR", func() bool { return client.State() == openfeature.ErrorState })
	if got := pvEval(client, "psa-webhooks-v2", "acme", Legacy); got.Value != New || got.Reason != openfeature.TargetingMatchReason {
		t.Errorf("past the grace: got %q %s %q, want new TARGETING_MATCH from the last snapshot", got.Value, got.Reason, got.ErrorCode)
	}

	// It comes back: READY again, having asked only for what is newer.
	f.setStatus(0)
	pvWaitEvent(t, events, openfeature.ProviderReady)
	pvWaitUntil(t, "the client sees READY", func() bool { return client.State() == openfeature.ReadyState })
	reqs := f.streamRequests()
	if got := reqs[len(reqs)-1]; got != "2" {
		t.Errorf("Last-Event-ID of the reconnection: got %q, want 2", got)
	}
	v3 := pvBaseWire(3)
	v3.Migrations["psa-webhooks-v2"] = pvWireMig{Reverted: true, Stages: v2.Migrations["psa-webhooks-v2"].Stages}
	v3.Migrations["brand-new"] = v2.Migrations["brand-new"]
	f.publish(v3)
	ev = pvWaitEvent(t, events, openfeature.ProviderConfigChange)
	if want := []string{"psa-webhooks-v2"}; !slices.Equal(ev.FlagChanges, want) {
		t.Errorf("FlagChanges after the revert: got %v, want %v", ev.FlagChanges, want)
	}
	if got := pvEval(client, "psa-webhooks-v2", "acme", New); got.Value != Legacy || got.Reason != openfeature.DisabledReason {
		t.Errorf("after the revert: got %q %s, want legacy DISABLED", got.Value, got.Reason)
	}
}

func TestProviderReconnects(t *testing.T) {
	t.Run("stream dropped", func(t *testing.T) {
		f := startFakeControl(t)
		f.publish(pvBaseWire(1))
		opts, _ := pvOptions(t, f.srv.URL)
		p := pvNewProvider(t, opts)
		if _, _, err := pvRegister(t, p); err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
		f.dropStreams()
		pvWaitUntil(t, "a second stream request", func() bool { return len(f.streamRequests()) >= 2 })
		if got := f.streamRequests()[1]; got != "1" {
			t.Errorf("Last-Event-ID: got %q, want 1", got)
		}
		if got := f.streamRequests()[0]; got != "" {
			t.Errorf("first request's Last-Event-ID: got %q, want none", got)
		}
		f.publish(pvBaseWire(2))
		pvWaitUntil(t, "version 2 arrives", func() bool { return pvVersion(p) == 2 })
	})

	t.Run("silent stream", func(t *testing.T) {
		f := startFakeControl(t)
		f.mu.Lock()
		f.heartbeat = 0 // a stream that hangs without a word
		f.mu.Unlock()
		f.publish(pvBaseWire(1))
		opts, _ := pvOptions(t, f.srv.URL)
		opts.HeartbeatTimeout = 100 * time.Millisecond
		p := pvNewProvider(t, opts)
		if _, _, err := pvRegister(t, p); err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
		pvWaitUntil(t, "a reconnection", func() bool { return len(f.streamRequests()) >= 2 })
		if got := f.streamRequests()[1]; got != "1" {
			t.Errorf("Last-Event-ID: got %q, want 1", got)
		}
	})

	t.Run("older version ignored", func(t *testing.T) {
		f := startFakeControl(t)
		f.publish(pvBaseWire(5))
		opts, _ := pvOptions(t, f.srv.URL)
		p := pvNewProvider(t, opts)
		if _, _, err := pvRegister(t, p); err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
		// A control service restored from an old backup must not roll the
		// routers back.
		f.setPreludes("id: 4\nevent: snapshot\ndata: " + pvBaseWire(4).json() + "\n\n")
		f.dropStreams()
		pvWaitUntil(t, "a reconnection", func() bool { return len(f.streamRequests()) >= 2 })
		f.publish(pvBaseWire(6))
		pvWaitUntil(t, "version 6", func() bool { return pvVersion(p) == 6 })
	})
}

// TestProviderSnapshotFile covers the file that lets a router restarted
// during a control-plane outage route as before.
func TestProviderSnapshotFile(t *testing.T) {
	t.Run("restart with the control service down", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "snapshot.json")
		f := startFakeControl(t)
		f.publish(pvBaseWire(1))
		opts, _ := pvOptions(t, f.srv.URL)
		opts.SnapshotFile = file
		first := pvNewProvider(t, opts)
		t.Cleanup(first.Shutdown)
		if err := first.Init(openfeature.EvaluationContext{}); err != nil {
			t.Fatalf("Init: %v", err)
		}
		v2 := pvBaseWire(2)
		v2.Migrations["psa-webhooks-v2"].Stages["umbrella"] = StageShadow
		f.publish(v2)
		pvWaitUntil(t, "version 2 on file", func() bool {
			s, _, _, err := readSnapshotFile(file)
			return err == nil && s.Version == 2
		})
		first.Shutdown()
		f.close()

		second := pvNewProvider(t, opts)
		client, events, err := pvRegister(t, second)
		if err != nil {
			t.Fatalf("SetProviderAndWait with the control service down: %v", err)
		}
		got := pvEval(client, "psa-webhooks-v2", "umbrella", Legacy)
		if got.Value != Legacy || got.Variant != StageShadow || got.Reason != openfeature.TargetingMatchReason || got.FlagMetadata["snapshotVersion"] != int64(2) {
			t.Errorf("from the file: got %q %q %s %v, want legacy shadow TARGETING_MATCH at version 2", got.Value, got.Variant, got.Reason, got.FlagMetadata)
		}
		// Never connected: no STALE, but ERROR once the grace is over,
		// still answering from the file.
		pvWaitEvent(t, events, openfeature.ProviderError)
		if got := pvEval(client, "psa-webhooks-v2", "globex", Legacy); got.Value != New {
			t.Errorf("past the grace: got %q %q, want new", got.Value, got.ErrorCode)
		}
	})

	t.Run("written atomically, private, in schema 1", func(t *testing.T) {
		dir := t.TempDir()
		file := filepath.Join(dir, "snapshot.json")
		f := startFakeControl(t)
		f.publish(pvBaseWire(1))
		opts, _ := pvOptions(t, f.srv.URL)
		opts.SnapshotFile = file
		p := pvNewProvider(t, opts)
		if _, _, err := pvRegister(t, p); err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
		for v := uint64(2); v <= 20; v++ {
			f.publish(pvBaseWire(v))
		}
		pvWaitUntil(t, "version 20 on file", func() bool {
			s, _, _, err := readSnapshotFile(file)
			return err == nil && s.Version == 20
		})
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		var wrapper struct {
			Schema   int                        `json:"schema"`
			Snapshot map[string]json.RawMessage `json:"snapshot"`
		}
		if err := json.Unmarshal(b, &wrapper); err != nil {
			t.Fatalf("file is not the wrapper: %v", err)
		}
		if wrapper.Schema != 1 || wrapper.Snapshot["builtAt"] == nil {
			t.Errorf("file: got schema %d and snapshot fields %v, want schema 1 and the snapshot as sent", wrapper.Schema, slices.Sorted(maps.Keys(wrapper.Snapshot)))
		}
		fi, err := os.Stat(file)
		if err != nil {
			t.Fatal(err)
		}
		if got := fi.Mode().Perm(); got != 0o600 {
			t.Errorf("file mode: got %o, want 600 (it holds webhook secrets)", got)
		}
		entries, _ := os.ReadDir(dir)
		if len(entries) != 1 {
			t.Errorf("directory holds %d entries, want only the file (no temporary left)", len(entries))
		}
	})

	t.Run("a file of this schema from testdata loads", func(t *testing.T) {
		s, _, _, err := readSnapshotFile(filepath.Join("testdata", "snapshot-schema1.json"))
		if err != nil {
			t.Fatalf("readSnapshotFile: %v", err)
		}
		if got := s.Evaluate("psa-webhooks-v2", "acme"); got.Value != Legacy || got.Shadow != New || got.Version != 41 {
			t.Errorf("Evaluate from the file: got %+v, want legacy with shadow new at version 41", got)
		}
	})

	valid, err := os.ReadFile(filepath.Join("testdata", "snapshot-schema1.json"))
	if err != nil {
		t.Fatal(err)
	}
	unusable := []struct {
		name     string
		contents func(t *testing.T) []byte
	}{
		{"truncated", func(t *testing.T) []byte { return pvReadTestdata(t, "snapshot-truncated.json") }},
		{"newer schema", func(t *testing.T) []byte { return pvReadTestdata(t, "snapshot-schema99.json") }},
		{"no schema", func(*testing.T) []byte { return []byte(`{"snapshot":{"version":3}}`) }},
		{"empty", func(*testing.T) []byte { return nil }},
		{"garbage", func(*testing.T) []byte { return []byte("\x00\xffnot json at all") }},
		{"snapshot not an object", func(*testing.T) []byte { return []byte(`{"schema":1,"snapshot":[1,2]}`) }},
		{"snapshot without a version", func(*testing.T) []byte { return []byte(`{"schema":1,"snapshot":{"migrations":{}}}`) }},
		{"cut in the middle of a long file", func(*testing.T) []byte { return valid[:len(valid)-2] }},
	}
	for _, tt := range unusable {
		t.Run("ignored: "+tt.name, func(t *testing.T) {
			file := filepath.Join(t.TempDir(), "snapshot.json")
			if err := os.WriteFile(file, tt.contents(t), 0o600); err != nil {
				t.Fatal(err)
			}
			f := startFakeControl(t)
			f.close() // the control service is down too
			opts, logs := pvOptions(t, f.srv.URL)
			opts.SnapshotFile = file
			opts.InitTimeout = 30 * time.Millisecond
			p := pvNewProvider(t, opts)
			client, _, err := pvRegister(t, p)
			if err == nil {
				t.Fatalf("SetProviderAndWait: got nil, want an error: the file is unusable and the control service down")
			}
			if !strings.Contains(logs.String(), "ignoring unusable snapshot file") {
				t.Errorf("no warning about the file in the logs")
			}
			if got := pvEval(client, "psa-webhooks-v2", "acme", Legacy); got.Value != Legacy || got.ErrorCode != openfeature.ProviderNotReadyCode {
				t.Errorf("got %q %q, want legacy PROVIDER_NOT_READY", got.Value, got.ErrorCode)
			}
		})
	}

	t.Run("an unusable file is replaced after the first sync", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "snapshot.json")
		if err := os.WriteFile(file, pvReadTestdata(t, "snapshot-truncated.json"), 0o600); err != nil {
			t.Fatal(err)
		}
		f := startFakeControl(t)
		f.publish(pvBaseWire(7))
		opts, _ := pvOptions(t, f.srv.URL)
		opts.SnapshotFile = file
		p := pvNewProvider(t, opts)
		if _, _, err := pvRegister(t, p); err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
		pvWaitUntil(t, "version 7 on file", func() bool {
			s, _, _, err := readSnapshotFile(file)
			return err == nil && s.Version == 7
		})
	})

	t.Run("file older than the stream", func(t *testing.T) {
		file := filepath.Join(t.TempDir(), "snapshot.json")
		if err := os.WriteFile(file, valid, 0o600); err != nil { // version 41
			t.Fatal(err)
		}
		f := startFakeControl(t)
		v42 := pvBaseWire(42)
		v42.Migrations["psa-webhooks-v2"].Stages["umbrella"] = StageDone
		f.publish(v42)
		opts, _ := pvOptions(t, f.srv.URL)
		opts.SnapshotFile = file
		p := pvNewProvider(t, opts)
		client, events, err := pvRegister(t, p)
		if err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
		ev := pvWaitEvent(t, events, openfeature.ProviderConfigChange)
		if !slices.Contains(ev.FlagChanges, "psa-webhooks-v2") {
			t.Errorf("FlagChanges: got %v, want psa-webhooks-v2 among them", ev.FlagChanges)
		}
		if got := pvEval(client, "psa-webhooks-v2", "umbrella", Legacy); got.Value != New {
			t.Errorf("after the stream's version: got %q, want new", got.Value)
		}
		if got := f.streamRequests()[0]; got != "41" {
			t.Errorf("Last-Event-ID after loading the file: got %q, want 41", got)
		}
	})
}

func pvReadTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestWriteSnapshotFileErrors(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "no-such-dir", "snapshot.json")
	if err := writeSnapshotFile(missing, []byte(`{"version":1}`), nil); err == nil {
		t.Errorf("writeSnapshotFile into a missing directory: got nil, want an error")
	}
	if _, _, _, err := readSnapshotFile(missing); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("readSnapshotFile of a missing file: got %v, want fs.ErrNotExist", err)
	}
}

func TestProviderRouterReport(t *testing.T) {
	t.Run("after each new snapshot", func(t *testing.T) {
		f := startFakeControl(t)
		f.publish(pvBaseWire(1))
		opts, _ := pvOptions(t, f.srv.URL)
		opts.RouterID = "router-7"
		p := pvNewProvider(t, opts)
		if _, _, err := pvRegister(t, p); err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
		hasVersion := func(v uint64) func() bool {
			return func() bool {
				return slices.ContainsFunc(f.receivedReports(), func(r pvReport) bool { return r.SnapshotVersion == v })
			}
		}
		pvWaitUntil(t, "a report of version 1", hasVersion(1))
		f.publish(pvBaseWire(2))
		pvWaitUntil(t, "a report of version 2", hasVersion(2))
		for _, r := range f.receivedReports() {
			if r.Router != "router-7" || r.auth != "Bearer "+pvToken {
				t.Errorf("report: got router %q with %q, want router-7 with the token", r.Router, r.auth)
			}
		}
	})

	t.Run("every interval", func(t *testing.T) {
		f := startFakeControl(t)
		f.publish(pvBaseWire(3))
		opts, _ := pvOptions(t, f.srv.URL)
		opts.RouterID = "router-8"
		opts.ReportInterval = 10 * time.Millisecond
		p := pvNewProvider(t, opts)
		if _, _, err := pvRegister(t, p); err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
		pvWaitUntil(t, "several reports", func() bool { return len(f.receivedReports()) >= 4 })
		for _, r := range f.receivedReports() {
			if r.Router != "router-8" || r.SnapshotVersion != 3 {
				t.Errorf("report: got %+v, want router-8 at version 3", r)
			}
		}
	})

	t.Run("none without a router id", func(t *testing.T) {
		f := startFakeControl(t)
		f.publish(pvBaseWire(1))
		opts, _ := pvOptions(t, f.srv.URL)
		p := pvNewProvider(t, opts)
		if _, _, err := pvRegister(t, p); err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
		f.publish(pvBaseWire(2))
		pvWaitUntil(t, "version 2", func() bool { return pvVersion(p) == 2 })
		p.Shutdown() // waits for every goroutine: a report would be in by now
		if got := f.receivedReports(); len(got) != 0 {
			t.Errorf("reports: got %v, want none", got)
		}
	})
}

// TestProviderHostileStream feeds the provider what a broken or hostile
// control service (or proxy) might send.
func TestProviderHostileStream(t *testing.T) {
	t.Run("garbage around a good snapshot", func(t *testing.T) {
		f := startFakeControl(t)
		f.publish(pvBaseWire(1)) // sent after the prelude, and older than its snapshot
		good := pvBaseWire(5)
		good.Migrations["psa-webhooks-v2"].Stages["umbrella"] = StageNew
		goodJSON := good.json()
		half := strings.Index(goodJSON, `,"partners"`) + 1 // between two members: a line break is whitespace there
		f.mu.Lock()
		f.preludes = []string{
			": welcome\r\n\r\n" +
				"event: snapshot\ndata: {not json\n\n" +
				"event: snapshot\ndata: null\n\n" +
				"event: snapshot\ndata: \n\n" +
				"event: snapshot\ndata: {\"version\":0,\"migrations\":{}}\n\n" +
				"event: snapshot\ndata: [1,2,3]\n\n" +
				"event: other\ndata: {\"version\":99}\n\n" +
				"data: {\"version\":98}\n\n" +
				"retry: 1\nid: \x00\nwhat is this\n\n" +
				strings.Repeat("\n", 100) +
				// A good snapshot, split over two data lines, with CRLF.
				"id: 5\r\nevent: snapshot\r\ndata: " + goodJSON[:half] + "\r\ndata: " + goodJSON[half:] + "\r\n\r\n",
		}
		f.mu.Unlock()
		opts, logs := pvOptions(t, f.srv.URL)
		p := pvNewProvider(t, opts)
		client, _, err := pvRegister(t, p)
		if err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
		if got := pvVersion(p); got != 5 {
			t.Errorf("version: got %d, want 5", got)
		}
		if got := pvEval(client, "psa-webhooks-v2", "umbrella", Legacy); got.Value != New {
			t.Errorf("got %q %q, want new from version 5", got.Value, got.ErrorCode)
		}
		if got := strings.Count(logs.String(), "undecodable snapshot event ignored"); got != 5 {
			t.Errorf("warnings about undecodable events: got %d, want 5", got)
		}
	})

	t.Run("event over the limit", func(t *testing.T) {
		f := startFakeControl(t)
		f.publish(pvBaseWire(1))
		f.setPreludes("event: snapshot\ndata: {\"version\":9,\"pad\":\"" + strings.Repeat("x", 256<<10) + "\"}\n\n")
		opts, logs := pvOptions(t, f.srv.URL)
		p := pvNewProvider(t, opts)
		p.maxEvent = 64 << 10 // stands for the 64 MiB limit
		if _, _, err := pvRegister(t, p); err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
		if got := pvVersion(p); got != 1 {
			t.Errorf("version: got %d, want 1 (the oversized event dropped)", got)
		}
		if n := len(f.streamRequests()); n < 2 {
			t.Errorf("stream requests: got %d, want a reconnection after the oversized event", n)
		}
		if !strings.Contains(logs.String(), errEventTooLarge.Error()) {
			t.Errorf("no log of the oversized event")
		}
	})

	t.Run("many data lines over the limit", func(t *testing.T) {
		f := startFakeControl(t)
		f.publish(pvBaseWire(1))
		f.setPreludes("event: snapshot\n" + strings.Repeat("data: xxxxxxxxxxxxxxxx\n", 8<<10) + "\n")
		opts, _ := pvOptions(t, f.srv.URL)
		p := pvNewProvider(t, opts)
		p.maxEvent = 64 << 10
		if _, _, err := pvRegister(t, p); err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
		if n := len(f.streamRequests()); n < 2 {
			t.Errorf("stream requests: got %d, want a reconnection after the oversized event", n)
		}
	})

	t.Run("a snapshot of several MB", func(t *testing.T) {
		f := startFakeControl(t)
		big := pvBigWire(1, 60000)
		f.publish(big)
		if n := len(big.json()); n < 3<<20 {
			t.Fatalf("the big snapshot weighs %d bytes, want several MB", n)
		}
		opts, _ := pvOptions(t, f.srv.URL)
		// Decoding several MB under the race detector on a shared machine
		// can take longer than the default wait; this bounds a failure only.
		opts.InitTimeout = time.Minute
		p := pvNewProvider(t, opts)
		if _, _, err := pvRegister(t, p); err != nil {
			t.Fatalf("SetProviderAndWait: %v", err)
		}
		if got := p.Resolve("psa-webhooks-v2", "p-59999"); got.Reason != ReasonTargetingMatch {
			t.Errorf("Resolve in the big snapshot: got %+v", got)
		}
	})

	t.Run("not an event stream", func(t *testing.T) {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "text/html")
			_, _ = io.WriteString(w, "<html>captive portal</html>")
		}))
		defer srv.Close()
		opts, _ := pvOptions(t, srv.URL)
		opts.InitTimeout = 50 * time.Millisecond
		p := pvNewProvider(t, opts)
		_, _, err := pvRegister(t, p)
		if err == nil || !strings.Contains(err.Error(), "text/event-stream") {
			t.Errorf("SetProviderAndWait: got %v, want an error naming the content type", err)
		}
	})
}

// pvBigWire is a snapshot with n partners p-0…p-(n-1), spread over the
// stages of psa-webhooks-v2.
func pvBigWire(version uint64, n int) pvWire {
	stages := []string{StageLegacy, StageShadow, StageNew, StageDone}
	w := pvWire{Version: version, BuiltAt: "2026-03-01T12:00:00Z",
		Migrations: map[string]pvWireMig{"psa-webhooks-v2": {Seq: 1, Stages: make(map[string]string, n)}},
		Partners:   make(map[string]pvWirePartner, n)}
	for i := range n {
		id := "p-" + strconv.Itoa(i)
		w.Partners[id] = pvWirePartner{Name: "Partner " + id, PSA: "connectwise", Secret: "whsec-0123456789abcdef-" + id}
		if st := stages[i%len(stages)]; st != StageLegacy {
			w.Migrations["psa-webhooks-v2"].Stages[id] = st
		}
	}
	return w
}

func TestFlagChanges(t *testing.T) {
	base := func() *Snapshot {
		return &Snapshot{Version: 1,
			Migrations: map[string]*Migration{
				"a": {Stages: map[string]string{"p1": StageShadow}},
				"b": {Reverted: true, Stages: map[string]string{"p1": StageNew}},
				"c": nil,
			},
			Partners: map[string]Partner{"p1": {Name: "P1"}, "p2": {Name: "P2"}},
		}
	}
	tests := []struct {
		name   string
		change func(s *Snapshot)
		want   []string
	}{
		{"nothing", func(*Snapshot) {}, nil},
		{"a partner renamed", func(s *Snapshot) { s.Partners["p1"] = Partner{Name: "renamed"} }, nil},
		{"a stage", func(s *Snapshot) { s.Migrations["a"] = &Migration{Stages: map[string]string{"p1": StageNew}} }, []string{"a"}},
		{"a stage added", func(s *Snapshot) {
			s.Migrations["a"] = &Migration{Stages: map[string]string{"p1": StageShadow, "p2": StageShadow}}
		}, []string{"a"}},
		{"kill switch off", func(s *Snapshot) { s.Migrations["b"] = &Migration{Stages: map[string]string{"p1": StageNew}} }, []string{"b"}},
		{"migration added", func(s *Snapshot) { s.Migrations["d"] = &Migration{} }, []string{"d"}},
		{"migration removed", func(s *Snapshot) { delete(s.Migrations, "a") }, []string{"a"}},
		{"nil migration filled", func(s *Snapshot) { s.Migrations["c"] = &Migration{} }, []string{"c"}},
		{"partner added", func(s *Snapshot) { s.Partners["p3"] = Partner{} }, []string{"a", "b", "c"}},
		{"partner replaced", func(s *Snapshot) { delete(s.Partners, "p2"); s.Partners["p3"] = Partner{} }, []string{"a", "b", "c"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cur := base()
			tt.change(cur)
			if got := flagChanges(base(), cur); !slices.Equal(got, tt.want) {
				t.Errorf("flagChanges: got %v, want %v", got, tt.want)
			}
		})
	}
}

func TestBackoff(t *testing.T) {
	if d := backoff(1000, time.Hour, 2*time.Hour); d < 0 || d > 2*time.Hour {
		t.Errorf("backoff with a large minimum: got %s, want within [0, 2h]", d)
	}
	const lo, hi = 100 * time.Millisecond, 30 * time.Second
	for attempt := range 100 {
		ceil := hi
		if attempt < 9 { // 100ms·2^9 > 30s
			ceil = lo << attempt
		}
		for range 50 {
			if d := backoff(attempt, lo, hi); d < 0 || d > ceil {
				t.Fatalf("backoff(%d): got %s, want within [0, %s]", attempt, d, ceil)
			}
		}
	}
}

func TestResolveDoesNotAllocate(t *testing.T) {
	p := pvNewProvider(t, Options{URL: "http://127.0.0.1:1", Token: "t"})
	var s Snapshot
	if err := json.Unmarshal([]byte(pvBigWire(3, 1000).json()), &s); err != nil {
		t.Fatal(err)
	}
	p.cur.Store(newHeld(&s))
	keys := []string{"p-0", "p-1", "p-2", "p-3", "stranger", ""}
	var sink Resolution
	if allocs := testing.AllocsPerRun(1000, func() {
		for _, k := range keys {
			sink = p.Resolve("psa-webhooks-v2", k)
			sink = p.Resolve("nope", k)
		}
	}); allocs != 0 {
		t.Errorf("Resolve allocates %v times per run, want 0", allocs)
	}
	_ = sink

	// The provider's share of an OpenFeature evaluation does not allocate
	// either: the metadata maps are built once per snapshot.
	flat := openfeature.FlattenedContext{"targetingKey": "p-1", "eventType": "ticket"}
	var detail openfeature.StringResolutionDetail
	if allocs := testing.AllocsPerRun(1000, func() {
		detail = p.StringEvaluation(context.Background(), "psa-webhooks-v2", Legacy, flat)
	}); allocs != 0 {
		t.Errorf("StringEvaluation allocates %v times per run, want 0", allocs)
	}
	if detail.Variant != StageShadow {
		t.Errorf("StringEvaluation: got %+v, want p-1 in shadow", detail)
	}
}

func TestSSEReader(t *testing.T) {
	long := strings.Repeat("x", 200<<10) // longer than the reader's buffer
	type ev struct{ id, typ, data string }
	tests := []struct {
		name    string
		in      string
		max     int
		want    []ev
		wantErr error // the error after the events; io.EOF if none
	}{
		{"LF", "id: 1\nevent: snapshot\ndata: {}\n\n", 0, []ev{{"1", "snapshot", "{}"}}, io.EOF},
		{"CRLF", "id: 1\r\nevent: snapshot\r\ndata: {}\r\n\r\n", 0, []ev{{"1", "snapshot", "{}"}}, io.EOF},
		{"CR", "id: 1\revent: snapshot\rdata: {}\r\r", 0, []ev{{"1", "snapshot", "{}"}}, io.EOF},
		{"mixed line ends", "data: a\r\ndata: b\rdata: c\n\r\n", 0, []ev{{"", "message", "a\nb\nc"}}, io.EOF},
		{"multi-line data", "event: snapshot\ndata: {\"a\":\ndata: 1}\n\n", 0, []ev{{"", "snapshot", "{\"a\":\n1}"}}, io.EOF},
		{"comments", ": ping\n\n:\n: x\ndata: y\n\n", 0, []ev{{"", "message", "y"}}, io.EOF},
		{"no space after the colon", "data:x\n\ndata:  two spaces\n\n", 0, []ev{{"", "message", "x"}, {"", "message", " two spaces"}}, io.EOF},
		{"field without a colon", "data\n\n", 0, []ev{{"", "message", ""}}, io.EOF},
		{"empty data line", "data:\ndata:\n\n", 0, []ev{{"", "message", "\n"}}, io.EOF},
		{"no data, no event", "event: snapshot\nid: 4\n\ndata: z\n\n", 0, []ev{{"4", "message", "z"}}, io.EOF},
		{"id carries over", "id: 3\ndata: a\n\ndata: b\n\n", 0, []ev{{"3", "message", "a"}, {"3", "message", "b"}}, io.EOF},
		{"id with NUL ignored", "id: 3\ndata: a\n\nid: 4\x00\ndata: b\n\n", 0, []ev{{"3", "message", "a"}, {"3", "message", "b"}}, io.EOF},
		{"unknown fields ignored", "retry: 10\nfoo: bar\ndata: a\n\n", 0, []ev{{"", "message", "a"}}, io.EOF},
		{"cut short at the end", "data: a\n\ndata: b\n", 0, []ev{{"", "message", "a"}}, io.EOF},
		{"cut mid-line", "data: a\n\ndata: b", 0, []ev{{"", "message", "a"}}, io.EOF},
		{"long line", "event: snapshot\ndata: " + long + "\n\n", 0, []ev{{"", "snapshot", long}}, io.EOF},
		{"line over the limit", "data: " + long + "\n\n", 64 << 10, nil, errEventTooLarge},
		{"data over the limit", strings.Repeat("data: 0123456789\n", 1000) + "\n", 4 << 10, nil, errEventTooLarge},
		{"empty stream", "", 0, nil, io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			max := tt.max
			if max == 0 {
				max = maxEventBytes
			}
			r := newSSEReader(strings.NewReader(tt.in), max)
			var got []ev
			var err error
			for {
				var e sseEvent
				if e, err = r.next(); err != nil {
					break
				}
				got = append(got, ev{e.id, e.typ, string(e.data)})
			}
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("error: got %v, want %v", err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// FuzzSSEReader checks the parser on any input: no panic, no event over
// the limit, an end with io.EOF or the limit's error.
func FuzzSSEReader(f *testing.F) {
	for _, seed := range []string{
		"id: 1\nevent: snapshot\ndata: {}\n\n",
		"id: 1\r\nevent: snapshot\r\ndata: {\"version\":1}\r\n\r\n",
		": ping\r\rdata:x\r\r",
		"data\n\ndata:\n\n",
		"data: " + strings.Repeat("y", 300) + "\n\n",
		"\r\n\r\r\n\n:\n",
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		const max = 256
		r := newSSEReader(bytes.NewReader(in), max)
		for range len(in) + 1 {
			e, err := r.next()
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, errEventTooLarge) {
					t.Fatalf("unexpected error %v", err)
				}
				return
			}
			if len(e.data) > max {
				t.Fatalf("event of %d bytes passed the limit of %d", len(e.data), max)
			}
		}
		t.Fatalf("more events than input bytes")
	})
}

func TestDecodeSnapshot(t *testing.T) {
	tests := []struct {
		in      string
		wantErr bool
	}{
		{`{"version":1}`, false},
		{` {"version":2,"unknown":{"x":[1]}} `, false},
		{`{"version":0}`, true},
		{`{}`, true},
		{`null`, true},
		{`[]`, true},
		{``, true},
		{`{"version":"1"}`, true},
		{`{"version":1,"migrations":{"m":{"stages":{"p":7}}}}`, true},
	}
	for _, tt := range tests {
		_, err := decodeSnapshot([]byte(tt.in))
		if (err != nil) != tt.wantErr {
			t.Errorf("decodeSnapshot(%q): got error %v, want error: %v", tt.in, err, tt.wantErr)
		}
	}
}
