package ingress_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// An event that a failing pipeline keeps from its outcome past the stuck
// threshold is listed by GET /v1/events?state=stuck on the control API of
// the router's process, as docs/api.md shows it: the journal's record with
// the payload null.
func TestStuckEventsAreListedWithoutPayload(t *testing.T) {
	var ahead atomic.Int64 // how far the router's clock runs ahead
	e := newEnv(t, withFaults(refpipe.Faults{Error: 1}, refpipe.Faults{}), withAttempts(1_000_000),
		withClock(func() time.Time { return time.Now().Add(time.Duration(ahead.Load())) }))
	if status, _ := e.post(t, "acme", "stuck-1", "ticket.updated", "T-1", map[string]any{"summary": "printer"}, ""); status != 202 {
		t.Fatalf("webhook answered %d, want 202", status)
	}
	api := httpapi.New(e.svc, quiet, prometheus.NewRegistry(), httpapi.WithIngress(e.router))
	srv := httptest.NewServer(api)
	t.Cleanup(func() { api.Close(); srv.Close() })
	viewer := e.svc.AddEphemeralToken("viewer-test", domain.RoleViewer)
	list := func() []map[string]any {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/v1/events?state=stuck", nil)
		req.Header.Set("Authorization", "Bearer "+viewer)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET /v1/events?state=stuck answered %d: %s", resp.StatusCode, body)
		}
		var out []map[string]any
		if err := json.Unmarshal(body, &out); err != nil || out == nil {
			t.Fatalf("GET /v1/events?state=stuck: %v: %s, want a JSON array", err, body)
		}
		return out
	}

	if got := list(); len(got) != 0 {
		t.Fatalf("before the threshold: %d stuck events, want none", len(got))
	}
	ahead.Store(int64(6 * time.Minute)) // past the default 5 minutes
	got := list()
	if len(got) != 1 {
		t.Fatalf("past the threshold: %d stuck events, want 1: %v", len(got), got)
	}
	ev := got[0]
	if payload, ok := ev["payload"]; !ok || payload != nil {
		t.Errorf("payload = %v (present %v), want null", payload, ok)
	}
	for k, want := range map[string]any{"partner": "acme", "psa": "generic", "state": "journaled", "deliveryId": "stuck-1"} {
		if ev[k] != want {
			t.Errorf("%s = %v, want %v", k, ev[k], want)
		}
	}
	if _, ok := ev["attempts"]; !ok {
		t.Errorf("attempts is left out; docs/api.md says it never is")
	}
}
