package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/wire"
)

// streamEnv is a control service with its API on a real HTTP server.
type streamEnv struct {
	svc                   *control.Service
	api                   *httpapi.API
	srv                   *httptest.Server
	viewer, router, admin string
}

func newStreamEnv(t *testing.T, opts ...httpapi.Option) *streamEnv {
	t.Helper()
	ctx := context.Background()
	svc, err := control.New(ctx, bolttest.Open(t), control.Options{Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e := &streamEnv{svc: svc}
	e.admin, _, _ = svc.Bootstrap(ctx, "stream-admin-secret-0123456789")
	for _, r := range []domain.Role{domain.RoleViewer, domain.RoleRouter} {
		_, secret, err := svc.CreateToken(ctx, control.Change{Actor: "test"}, "stream-"+string(r), r)
		if err != nil {
			t.Fatal(err)
		}
		if r == domain.RoleViewer {
			e.viewer = secret
		} else {
			e.router = secret
		}
	}
	e.api = httpapi.New(svc, discardLogger(), prometheus.NewRegistry(), opts...)
	e.srv = httptest.NewServer(e.api)
	t.Cleanup(func() {
		e.api.Close()
		e.srv.Close()
	})
	return e
}

func (e *streamEnv) addPartner(t *testing.T, id, secret string) {
	t.Helper()
	s := secret
	if _, _, err := e.svc.PutPartner(context.Background(), control.Change{Actor: "test"},
		control.PartnerInput{ID: id, Name: "Partner " + id, PSA: domain.PSAGeneric, Secret: &s}); err != nil {
		t.Fatal(err)
	}
}

// sseEvent is one parsed Server-Sent Event; comment is set for heartbeats.
type sseEvent struct {
	id, event, data string
	comment         bool
}

type sseReader struct {
	resp *http.Response
	rd   *bufio.Reader
}

func subscribe(t *testing.T, e *streamEnv, token, lastEventID string) *sseReader {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/snapshot/stream", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("stream answered %d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseReader{resp: resp, rd: bufio.NewReaderSize(resp.Body, 1<<16)}
}

// next reads the next event or heartbeat.
func (r *sseReader) next(t *testing.T) sseEvent {
	t.Helper()
	var ev sseEvent
	for {
		line, err := r.rd.ReadString('\n')
		if err != nil {
			t.Fatalf("read stream: %v", err)
		}
		line = strings.TrimRight(line, "\n")
		switch {
		case line == "":
			if ev.event != "" || ev.comment {
				return ev
			}
		case strings.HasPrefix(line, ":"):
			ev.comment = true
		case strings.HasPrefix(line, "id: "):
			ev.id = strings.TrimPrefix(line, "id: ")
		case strings.HasPrefix(line, "event: "):
			ev.event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			ev.data += strings.TrimPrefix(line, "data: ")
		}
	}
}

// nextSnapshot skips heartbeats and decodes the next snapshot event.
func (r *sseReader) nextSnapshot(t *testing.T) wire.Snapshot {
	t.Helper()
	for {
		ev := r.next(t)
		if ev.comment {
			continue
		}
		if ev.event != "snapshot" {
			t.Fatalf("event %q, want snapshot", ev.event)
		}
		var s wire.Snapshot
		if err := json.Unmarshal([]byte(ev.data), &s); err != nil {
			t.Fatalf("decode snapshot: %v", err)
		}
		if ev.id != strconv.FormatUint(s.Version, 10) {
			t.Errorf("event id %q, want the version %d", ev.id, s.Version)
		}
		return s
	}
}

func TestStreamSendsSnapshotOnConnectAndOnEveryChange(t *testing.T) {
	e := newStreamEnv(t)
	sub := subscribe(t, e, e.viewer, "")
	first := sub.nextSnapshot(t)
	if first.Version != e.svc.State().Version {
		t.Fatalf("first snapshot version %d, want the current %d", first.Version, e.svc.State().Version)
	}
	e.addPartner(t, "acme", "whsec-acme")
	got := sub.nextSnapshot(t)
	if got.Version != first.Version+1 {
		t.Errorf("version after a change = %d, want %d", got.Version, first.Version+1)
	}
	if _, ok := got.Partners["acme"]; !ok {
		t.Errorf("snapshot after adding acme lacks it: %+v", got.Partners)
	}
}

func TestStreamLastEventIDSkipsWhatTheClientHolds(t *testing.T) {
	e := newStreamEnv(t, httpapi.WithHeartbeat(20*time.Millisecond))
	e.addPartner(t, "acme", "x")
	cur := e.svc.State().Version
	sub := subscribe(t, e, e.viewer, strconv.FormatUint(cur, 10))
	if ev := sub.next(t); ev.event != "current" || ev.data != strconv.FormatUint(cur, 10) {
		t.Fatalf("first event %+v, want event current with data %d: the client already holds that version", ev, cur)
	}
	if ev := sub.next(t); !ev.comment {
		t.Fatalf("second event %+v, want a heartbeat: nothing changed", ev)
	}
	e.addPartner(t, "globex", "y")
	if got := sub.nextSnapshot(t); got.Version != cur+1 {
		t.Errorf("version = %d, want %d", got.Version, cur+1)
	}

	older := subscribe(t, e, e.viewer, strconv.FormatUint(cur-1, 10))
	if got := older.nextSnapshot(t); got.Version != cur+1 {
		t.Errorf("client behind got version %d, want the newest %d", got.Version, cur+1)
	}
}

func TestStreamSecretsOnlyForRouters(t *testing.T) {
	e := newStreamEnv(t)
	e.addPartner(t, "acme", "whsec-very-secret")
	viewer := subscribe(t, e, e.viewer, "")
	ev := viewer.next(t)
	if strings.Contains(ev.data, "whsec-very-secret") {
		t.Errorf("a viewer's stream carries a webhook secret")
	}
	router := subscribe(t, e, e.router, "")
	if got := router.nextSnapshot(t); got.Partners["acme"].Secret != "whsec-very-secret" {
		t.Errorf("router's snapshot secret = %q, want the partner's secret", got.Partners["acme"].Secret)
	}
}

// A subscriber that never reads must not hold back the others, and its
// handler must end once its writes time out.
func TestStreamSlowSubscriberDoesNotDelayOthers(t *testing.T) {
	e := newStreamEnv(t, httpapi.WithStreamWriteTimeout(300*time.Millisecond))
	// Big snapshots fill the stuck client's socket buffers quickly.
	for i := range 300 {
		e.addPartner(t, fmt.Sprintf("p%03d", i), strings.Repeat("s", 1000))
	}
	conn, err := net.Dial("tcp", e.srv.Listener.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	fmt.Fprintf(conn, "GET /v1/snapshot/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", e.router)

	fast := subscribe(t, e, e.router, "")
	fast.nextSnapshot(t)
	for i := range 40 {
		e.addPartner(t, fmt.Sprintf("late%02d", i), strings.Repeat("t", 1000))
	}
	want := e.svc.State().Version
	for {
		if got := fast.nextSnapshot(t); got.Version == want {
			break
		}
	}
}

func TestStreamEndsOnClose(t *testing.T) {
	e := newStreamEnv(t)
	sub := subscribe(t, e, e.viewer, "")
	sub.nextSnapshot(t)
	e.api.Close()
	if _, err := io.ReadAll(sub.rd); err != nil {
		t.Fatalf("stream did not end cleanly after Close: %v", err)
	}
}

func TestStreamClientLeavesMidEvent(t *testing.T) {
	e := newStreamEnv(t)
	for i := range 50 {
		e.addPartner(t, fmt.Sprintf("p%02d", i), strings.Repeat("s", 2000))
	}
	sub := subscribe(t, e, e.router, "")
	buf := make([]byte, 100)
	io.ReadFull(sub.rd, buf)
	sub.resp.Body.Close()
	e.addPartner(t, "after", "x")
	// goleak in TestMain fails the package if the handler lingers.
}
