package notify_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"go.uber.org/goleak"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/notify"
	"github.com/switchbackhq/switchback/internal/wire"
)

// TestMain fails the package if a test leaves a worker behind: Run must
// stop every one when its context ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// secret is a target's Standard Webhooks secret: 24 bytes.
const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"

var admin = control.Change{Actor: "admin", Reason: "test setup"}

// request is what a receiver got.
type request struct {
	header http.Header
	body   []byte
}

// receiver is a real local HTTP server that records what it gets and
// answers with answer(n), n counting requests from 1.
type receiver struct {
	*httptest.Server
	got chan request
}

func newReceiver(t *testing.T, answer func(n int, w http.ResponseWriter, r *http.Request)) *receiver {
	t.Helper()
	rc := &receiver{got: make(chan request, 100)}
	var mu sync.Mutex
	n := 0
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		mu.Lock()
		n++
		i := n
		mu.Unlock()
		rc.got <- request{header: r.Header.Clone(), body: body}
		answer(i, w, r)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) next(t *testing.T) request {
	t.Helper()
	select {
	case r := <-rc.got:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver got nothing")
		return request{}
	}
}

// verify checks a Standard Webhooks delivery the way a receiver does,
// written from the specification, not from package notify: the signed
// content is id.timestamp.body, the key the base64 after "whsec_", the
// signature "v1," and the base64 of HMAC-SHA256, compared in constant
// time; the timestamp within five minutes.
func verify(t *testing.T, secret string, r request) {
	t.Helper()
	id, ts, sigs := r.header.Get("webhook-id"), r.header.Get("webhook-timestamp"), r.header.Get("webhook-signature")
	if id == "" || ts == "" || sigs == "" {
		t.Fatalf("headers %v: want webhook-id, webhook-timestamp and webhook-signature", r.header)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || time.Since(time.Unix(sec, 0)).Abs() > 5*time.Minute {
		t.Errorf("webhook-timestamp %q: want Unix seconds of now", ts)
	}
	key, err := base64.StdEncoding.DecodeString(strings.TrimPrefix(secret, "whsec_"))
	if err != nil {
		t.Fatal(err)
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "." + string(r.body)))
	want := mac.Sum(nil)
	for _, s := range strings.Fields(sigs) {
		v, b64, _ := strings.Cut(s, ",")
		got, err := base64.StdEncoding.DecodeString(b64)
		if v == "v1" && err == nil && hmac.Equal(got, want) {
			return
		}
	}
	t.Errorf("webhook-signature %q does not verify over %s.%s.%s", sigs, id, ts, r.body)
}

// world is a control service on a real bbolt file with a partner on the
// new pipeline, and a notifier hearing it.
type world struct {
	svc    *control.Service
	n      *notify.Notifier
	reg    *prometheus.Registry
	logs   *syncBuffer
	cancel context.CancelFunc
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func newWorld(t testing.TB, opts notify.Options) *world {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	svc, err := control.New(t.Context(), bolttest.Open(t), control.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	w := &world{svc: svc, reg: prometheus.NewRegistry(), logs: logs}
	opts.Targets = func() []domain.Notifier { return svc.State().NotifierList() }
	opts.Registerer, opts.Log = w.reg, log
	if opts.Backoff == 0 {
		opts.Backoff, opts.MaxBackoff = time.Millisecond, 4*time.Millisecond
	}
	w.n = notify.New(opts)
	svc.OnNotice(w.n.Send)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.n.Run(ctx); close(done) }()
	w.cancel = func() { cancel(); <-done }
	t.Cleanup(w.cancel)

	secret := "partner-secret"
	if _, _, err := svc.PutPartner(t.Context(), admin, control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAGeneric, Secret: &secret}); err != nil {
		t.Fatal(err)
	}
	m := domain.Migration{Key: "m", Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://legacy.internal"}, New: domain.Pipeline{URL: "http://new.internal"}},
		Gates: domain.DefaultGates(), Guard: domain.DefaultGuard()}
	if _, _, err := svc.PutMigration(t.Context(), admin, m); err != nil {
		t.Fatal(err)
	}
	for _, st := range []domain.Stage{domain.StageShadow, domain.StageNew} {
		if _, err := svc.SetStage(t.Context(), admin, "m", "acme", st, true); err != nil {
			t.Fatal(err)
		}
	}
	return w
}

func (w *world) target(t testing.TB, name, url, format string, events ...string) {
	t.Helper()
	in := control.NotifierInput{Name: name, URL: &url, Events: events, Format: format}
	if format == domain.FormatStandard {
		in.Secret = ptr(secret)
	}
	if _, _, err := w.svc.PutNotifier(t.Context(), admin, in); err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }

// guardRevert makes the guard revert acme: a zero-tolerance outcome.
func (w *world) guardRevert(t testing.TB) {
	t.Helper()
	if _, err := w.svc.IngestReport(t.Context(), wire.Report{Router: "r1", Guard: []domain.GuardSample{{Migration: "m", Partner: "acme",
		EventID: "evt_1", Outcomes: []string{string(domain.ClassMissing)}}}}); err != nil {
		t.Fatal(err)
	}
	if st := w.svc.State(); st.Migrations["m"].StageOf(st.Partners["acme"]).Stage != domain.StageShadow {
		t.Fatal("the guard did not revert acme")
	}
}

// waitState waits until the target's delivery of notice is in state.
func (w *world) waitState(t *testing.T, target, notice, state string) wire.Delivery {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := w.n.Status(target)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range st.Deliveries {
			if d.Notice == notice && d.State == state {
				return d
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("delivery of %s to %s never %s: %+v", notice, target, state, st.Deliveries)
		}
		time.Sleep(time.Millisecond)
	}
}

// A real guard revert reaches a real receiver as a Standard Webhooks
// delivery that verifies: the notice's id as webhook-id, the payload
// {"type", "timestamp", "data"} with the partners and the evidence.
func TestGuardRevertSignedDelivery(t *testing.T) {
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	w := newWorld(t, notify.Options{})
	w.target(t, "ops", rc.URL+"/hooks/switchback", domain.FormatStandard, domain.NoticeGuardRevert)
	w.guardRevert(t)
	r := rc.next(t)
	verify(t, secret, r)
	if ct := r.header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q", ct)
	}
	var body struct {
		Type      string    `json:"type"`
		Timestamp time.Time `json:"timestamp"`
		Data      struct {
			ID, Event, Actor, Migration, Text string
			Detail                            struct {
				Partners []string `json:"partners"`
				Evidence string   `json:"evidence"`
			} `json:"detail"`
		} `json:"data"`
	}
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatalf("body %s: %v", r.body, err)
	}
	if body.Type != domain.NoticeGuardRevert || body.Timestamp.IsZero() || body.Data.ID != r.header.Get("webhook-id") ||
		body.Data.Actor != "guard" || body.Data.Migration != "m" || len(body.Data.Detail.Partners) != 1 || body.Data.Detail.Partners[0] != "acme" ||
		!strings.Contains(body.Data.Detail.Evidence, "evt_1") || body.Data.Text == "" {
		t.Errorf("body = %s", r.body)
	}
	d := w.waitState(t, "ops", body.Data.ID, wire.DeliveryDelivered)
	if d.Attempts != 1 || d.Status != http.StatusOK || d.Event != domain.NoticeGuardRevert {
		t.Errorf("delivery = %+v", d)
	}
	// A tampered body does not verify: the verifier can fail.
	r.body = bytes.Replace(r.body, []byte("acme"), []byte("acmf"), 1)
	ft := &testing.T{}
	verify(ft, secret, r)
	if !ft.Failed() {
		t.Error("the verifier accepted a tampered body")
	}
}

// A receiver that fails twice (500) gets the notice on the third
// attempt, with the same webhook-id each time; the status shows three
// attempts, delivered, and the totals two retries.
func TestRetriesUntilDelivered(t *testing.T) {
	rc := newReceiver(t, func(n int, w http.ResponseWriter, _ *http.Request) {
		if n <= 2 {
			w.WriteHeader(http.StatusInternalServerError)
		}
	})
	w := newWorld(t, notify.Options{})
	w.target(t, "ops", rc.URL, domain.FormatStandard, domain.NoticeGuardRevert)
	w.guardRevert(t)
	var ids []string
	for range 3 {
		r := rc.next(t)
		verify(t, secret, r)
		ids = append(ids, r.header.Get("webhook-id"))
	}
	if ids[0] != ids[1] || ids[1] != ids[2] {
		t.Errorf("webhook-ids %v: want one id on every attempt", ids)
	}
	d := w.waitState(t, "ops", ids[0], wire.DeliveryDelivered)
	if d.Attempts != 3 || d.Status != http.StatusOK || d.Error != "" {
		t.Errorf("delivery = %+v, want 3 attempts, delivered with 200", d)
	}
	st, _ := w.n.Status("ops")
	if st.Totals.Delivered != 1 || st.Totals.Retries != 2 || st.Totals.Failed != 0 {
		t.Errorf("totals = %+v", st.Totals)
	}
	if got := testutil.ToFloat64(metric(t, w.reg, "ops", "delivered")); got != 1 {
		t.Errorf("switchback_notifications_total{outcome=delivered} = %v, want 1", got)
	}
}

// metric returns the collector of the notifications counter's series.
func metric(t *testing.T, reg *prometheus.Registry, target, outcome string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "switchback_notifications_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["target"] == target && labels["outcome"] == outcome {
				c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
				c.Add(m.GetCounter().GetValue())
				return c
			}
		}
	}
	return prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
}

// Answers that another attempt would not change fail at once: a 4xx, a
// redirect (never followed); retries end after Attempts.
func TestFailures(t *testing.T) {
	tests := []struct {
		name     string
		status   int
		attempts int
		want     string
	}{
		{"bad request", http.StatusBadRequest, 1, "HTTP 400"},
		{"unauthorized", http.StatusUnauthorized, 1, "HTTP 401"},
		{"gone", http.StatusGone, 1, "410 Gone"},
		{"redirect", http.StatusFound, 1, "redirect"},
		{"always 503", http.StatusServiceUnavailable, 3, "gave up after 3 attempts"},
		{"always 429", http.StatusTooManyRequests, 3, "HTTP 429"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) {
				if tt.status == http.StatusFound {
					w.Header().Set("Location", "http://127.0.0.1:1/elsewhere")
				}
				w.WriteHeader(tt.status)
			})
			w := newWorld(t, notify.Options{Attempts: 3})
			w.target(t, "ops", rc.URL, domain.FormatStandard, domain.NoticeGuardRevert)
			w.guardRevert(t)
			id := rc.next(t).header.Get("webhook-id")
			d := w.waitState(t, "ops", id, wire.DeliveryFailed)
			if d.Attempts != tt.attempts || d.Status != tt.status || !strings.Contains(d.Error, tt.want) {
				t.Errorf("delivery = %+v, want %d attempts, status %d, error with %q", d, tt.attempts, tt.status, tt.want)
			}
			if len(rc.got) != tt.attempts-1 {
				t.Errorf("the receiver got %d requests, want %d", len(rc.got)+1, tt.attempts)
			}
			if got := testutil.ToFloat64(metric(t, w.reg, "ops", "failed")); got != 1 {
				t.Errorf("failed = %v, want 1", got)
			}
		})
	}
}

// A receiver that hangs does not delay the revert: with the receiver
// blocked on the first notice, further reverts and resumes return, and
// each is queued behind it.
func TestHangingReceiverDoesNotDelayRevert(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {
		entered <- struct{}{}
		<-release
	})
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the receiver's Close, which waits for its handlers
	w := newWorld(t, notify.Options{Timeout: time.Hour})
	w.target(t, "ops", rc.URL, domain.FormatStandard, domain.NoticeRevert, domain.NoticeResume)
	if _, err := w.svc.Revert(t.Context(), admin, "m"); err != nil {
		t.Fatal(err)
	}
	<-entered // the receiver holds the first delivery and does not answer
	for range 3 {
		if _, err := w.svc.Resume(t.Context(), admin, "m"); err != nil {
			t.Fatal(err)
		}
		if _, err := w.svc.Revert(t.Context(), admin, "m"); err != nil {
			t.Fatal(err)
		}
	}
	// Every call above returned while the receiver was still blocked.
	select {
	case <-release:
		t.Fatal("the receiver was released before the reverts returned")
	default:
	}
	st, _ := w.n.Status("ops")
	if st.Totals.Queued != 7 || st.Deliveries[len(st.Deliveries)-1].State != wire.DeliveryQueued {
		t.Errorf("status while the receiver hangs: totals %+v, deliveries %+v; want 7 queued, the first in flight", st.Totals, st.Deliveries)
	}
	unblock()
	for range 6 {
		rc.next(t)
	}
}

// A slack target gets {"text": …} only, with Slack's markup escaped, and
// no signature.
func TestSlackFormat(t *testing.T) {
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	w := newWorld(t, notify.Options{})
	w.target(t, "chat", rc.URL+"/services/T0/B0/X0", domain.FormatSlack, domain.NoticeRevert)
	if _, err := w.svc.Revert(t.Context(), control.Change{Actor: "alice", Reason: "<!channel> errors & timeouts"}, "m"); err != nil {
		t.Fatal(err)
	}
	r := rc.next(t)
	var body map[string]any
	if err := json.Unmarshal(r.body, &body); err != nil {
		t.Fatal(err)
	}
	text, ok := body["text"].(string)
	if len(body) != 1 || !ok {
		t.Fatalf("slack body = %s, want {\"text\": …} only", r.body)
	}
	if want := "alice reverted migration m: kill switch on, every partner on legacy: &lt;!channel&gt; errors &amp; timeouts"; text != want {
		t.Errorf("text = %q, want %q", text, want)
	}
	if r.header.Get("webhook-signature") != "" || r.header.Get("Content-Type") != "application/json" {
		t.Errorf("headers = %v: want JSON, unsigned", r.header)
	}
}

// A full queue drops its oldest queued notice for the newer one, and
// says so in the delivery, the totals and the metric; the one being
// sent is not dropped.
func TestQueueOverflowDropsTheOldest(t *testing.T) {
	release := make(chan struct{})
	entered := make(chan struct{}, 100)
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {
		entered <- struct{}{}
		<-release
	})
	t.Cleanup(func() { close(release) })
	w := newWorld(t, notify.Options{QueueSize: 2, Timeout: time.Hour})
	w.target(t, "ops", rc.URL, domain.FormatStandard, domain.NoticeRevert)
	ids := []string{"ntc_first", "ntc_second", "ntc_third", "ntc_fourth"}
	w.n.Send(domain.Notice{ID: ids[0], Event: domain.NoticeRevert, Text: "1"})
	<-entered
	for _, id := range ids[1:] {
		w.n.Send(domain.Notice{ID: id, Event: domain.NoticeRevert, Text: id})
	}
	st, _ := w.n.Status("ops")
	states := map[string]string{}
	for _, d := range st.Deliveries {
		states[d.Notice] = d.State
	}
	want := map[string]string{ids[0]: wire.DeliveryQueued, ids[1]: wire.DeliveryDropped, ids[2]: wire.DeliveryQueued, ids[3]: wire.DeliveryQueued}
	for id, s := range want {
		if states[id] != s {
			t.Errorf("%s: %q, want %q (all: %v)", id, states[id], s, states)
		}
	}
	if st.Totals.Dropped != 1 || st.Totals.Queued != 3 {
		t.Errorf("totals = %+v, want 1 dropped, 3 queued (one in flight)", st.Totals)
	}
	if got := testutil.ToFloat64(metric(t, w.reg, "ops", "dropped")); got != 1 {
		t.Errorf("dropped = %v, want 1", got)
	}
	if !strings.Contains(w.logs.String(), "queue is full") {
		t.Error("the drop is not logged")
	}
}

// Neither the secret nor the URL's path (a Slack webhook's credential)
// is in the status or the log, delivered or failed.
func TestSecretsNeverShown(t *testing.T) {
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	w := newWorld(t, notify.Options{Attempts: 2})
	w.target(t, "ops", rc.URL+"/pathcredential", domain.FormatStandard, domain.NoticeGuardRevert)
	// A target nobody listens at: connection refused, with the path.
	closed := httptest.NewServer(http.NotFoundHandler())
	dead := closed.URL + "/deadcredential"
	closed.Close()
	w.target(t, "dead", dead, domain.FormatSlack, domain.NoticeGuardRevert)
	w.guardRevert(t)
	id := rc.next(t).header.Get("webhook-id")
	w.waitState(t, "ops", id, wire.DeliveryDelivered)
	w.waitState(t, "dead", id, wire.DeliveryFailed)
	var shown strings.Builder
	for _, name := range []string{"ops", "dead"} {
		st, _ := w.n.Status(name)
		b, _ := json.Marshal(st)
		shown.Write(b)
	}
	b, _ := json.Marshal(w.n.Statuses())
	shown.Write(b)
	for what, text := range map[string]string{"status": shown.String(), "log": w.logs.String()} {
		for _, leak := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "pathcredential", "deadcredential"} {
			if strings.Contains(text, leak) {
				t.Errorf("the %s holds %q:\n%s", what, leak, text)
			}
		}
	}
	if !strings.Contains(shown.String(), `"hasSecret":true`) || !strings.Contains(shown.String(), "connection refused") {
		t.Errorf("status %s: want hasSecret and the network's error", shown.String())
	}
}

// A test notice goes to the named target whatever its events; an
// unknown target is not_found.
func TestSendTo(t *testing.T) {
	rc := newReceiver(t, func(int, http.ResponseWriter, *http.Request) {})
	w := newWorld(t, notify.Options{})
	w.target(t, "ops", rc.URL, domain.FormatStandard, domain.NoticeRouterStale)
	n, err := w.svc.TestNotifier(t.Context(), admin, "ops")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.n.SendTo("ops", n); err != nil {
		t.Fatal(err)
	}
	r := rc.next(t)
	verify(t, secret, r)
	if r.header.Get("webhook-id") != n.ID || !bytes.Contains(r.body, []byte(`"type":"test"`)) {
		t.Errorf("test delivery %v %s", r.header, r.body)
	}
	if err := w.n.SendTo("nobody", n); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("SendTo(unknown) = %v, want not_found", err)
	}
}

// Deleting a target ends its deliveries: one waiting for a retry fails.
func TestDeletedTargetGivesUp(t *testing.T) {
	rc := newReceiver(t, func(_ int, w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusBadGateway) })
	w := newWorld(t, notify.Options{Backoff: time.Hour, MaxBackoff: time.Hour})
	w.target(t, "ops", rc.URL, domain.FormatStandard, domain.NoticeGuardRevert)
	w.guardRevert(t)
	id := rc.next(t).header.Get("webhook-id")
	w.waitState(t, "ops", id, wire.DeliveryRetrying)
	if err := w.svc.DeleteNotifier(t.Context(), admin, "ops"); err != nil {
		t.Fatal(err)
	}
	if _, err := w.n.Status("ops"); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("Status of a deleted target = %v, want not_found", err)
	}
	w.n.Prune()
	w.cancel() // returns only once the worker stopped
	if got := testutil.ToFloat64(metric(t, w.reg, "ops", "retried")); got != 0 {
		t.Errorf("retried = %v after Prune, want the deleted target's series gone", got)
	}
	if !strings.Contains(w.logs.String(), "the notification target was deleted") {
		t.Errorf("the delivery waiting for a retry did not end with the target's deletion:\n%s", w.logs.String())
	}
}

func benchmarkRevert(b *testing.B, hanging bool) {
	w := newWorld(b, notify.Options{Timeout: time.Hour})
	if hanging {
		release := make(chan struct{})
		srv := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) { <-release }))
		b.Cleanup(srv.Close)
		b.Cleanup(func() { close(release) })
		w.target(b, "ops", srv.URL, domain.FormatStandard, domain.NoticeRevert, domain.NoticeResume)
	}
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if _, err := w.svc.Revert(ctx, admin, "m"); err != nil {
			b.Fatal(err)
		}
		if _, err := w.svc.Resume(ctx, admin, "m"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRevertWithHangingTarget is a revert and a resume with a target
// that never answers, to hold against BenchmarkRevertWithoutTarget: the
// notices cost a queue append, not the receiver's time.
func BenchmarkRevertWithHangingTarget(b *testing.B) { benchmarkRevert(b, true) }

// BenchmarkRevertWithoutTarget is the same without any target.
func BenchmarkRevertWithoutTarget(b *testing.B) { benchmarkRevert(b, false) }
