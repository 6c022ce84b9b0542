package ingress_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/mux"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/switchbackhq/switchback/internal/ingress"
	"github.com/switchbackhq/switchback/internal/journal"
)

// hookAnswer is an error answer of the webhook endpoint as a PSA sees it.
type hookAnswer struct {
	status     int
	retryAfter string
	code       string
}

// readAnswer reads an error answer and fails t unless its body is exactly
// the documented envelope {"error": {"code", "message"}} with a message.
func readAnswer(t *testing.T, resp *http.Response) hookAnswer {
	t.Helper()
	defer resp.Body.Close()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Errorf("Content-Type = %q, want application/json", ct)
	}
	var body map[string]map[string]string
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("answer is not the error envelope: %v", err)
	}
	e, ok := body["error"]
	if len(body) != 1 || !ok || len(e) != 2 || e["message"] == "" {
		t.Errorf("body = %v, want only {\"error\": {\"code\", \"message\"}}", body)
	}
	return hookAnswer{status: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), code: e["code"]}
}

// TestHookAnswersAsDocumented pins the webhook endpoint's refusals to
// docs/api.md: status, code, Retry-After and the envelope.
func TestHookAnswersAsDocumented(t *testing.T) {
	e := newEnv(t)
	post := func(t *testing.T, partner string, body []byte, h http.Header) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, e.hooks.URL+"/hooks/"+partner, bytes.NewReader(body))
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}
	signed := func(ts, sig string) http.Header {
		return http.Header{"Webhook-Id": {"msg-1"}, "Webhook-Timestamp": {ts}, "Webhook-Signature": {sig}}
	}
	unix := time.Now().Unix()
	now := strconv.FormatInt(unix, 10)
	tests := []struct {
		name    string
		partner string
		body    []byte
		header  http.Header
		want    hookAnswer
	}{
		{name: "unknown partner, snapshot current", partner: "nobody", body: []byte(`{}`),
			want: hookAnswer{status: 404, code: "not_found"}},
		{name: "not a valid id", partner: "No%20Such", body: []byte(`{}`),
			want: hookAnswer{status: 404, code: "not_found"}},
		{name: "unsigned", partner: "acme", body: []byte(`{}`),
			want: hookAnswer{status: 401, code: "missing_signature"}},
		{name: "wrongly signed", partner: "acme", body: []byte(`{}`), header: signed(now, "v1,AAAA"),
			want: hookAnswer{status: 401, code: "bad_signature"}},
		{name: "signed in 1970", partner: "acme", body: []byte(`{}`), header: signed("1", "v1,AAAA"),
			want: hookAnswer{status: 401, code: "stale_timestamp"}},
		{name: "authentic but not JSON", partner: "acme", body: []byte(`not json`), header: signed(now, sign("msg-1", unix, []byte(`not json`))),
			want: hookAnswer{status: 400, code: "malformed_body"}},
		{name: "over the body limit", partner: "acme", body: []byte(`{"x":"` + strings.Repeat("x", 2<<20) + `"}`),
			want: hookAnswer{status: 413, code: "body_too_large"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readAnswer(t, post(t, tt.partner, tt.body, tt.header)); got != tt.want {
				t.Errorf("answer = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestHookAnswersRouterStarting: a router without a snapshot asks every
// delivery to come back in two seconds.
func TestHookAnswersRouterStarting(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rt, err := ingress.New(ingress.Options{Journal: j, Flags: isolated.NewAPI().NewClient(), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r := mux.NewRouter()
	rt.Mount(r)
	srv := httptest.NewServer(r)
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/hooks/acme", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readAnswer(t, resp), (hookAnswer{status: 429, retryAfter: "2", code: "router_starting"}); got != want {
		t.Errorf("answer = %+v, want %+v", got, want)
	}
}

// TestHookAnswersJournalBusy: a delivery the journal cannot take is asked
// to come back in a second, never answered 5xx.
func TestHookAnswersJournalBusy(t *testing.T) {
	e := newEnv(t)
	e.journal.Close()
	body := []byte(`{"type":"ticket.updated","data":{"id":"T-1"}}`)
	unix := time.Now().Unix()
	req, _ := http.NewRequest(http.MethodPost, e.hooks.URL+"/hooks/acme", bytes.NewReader(body))
	req.Header.Set("Webhook-Id", "msg-1")
	req.Header.Set("Webhook-Timestamp", strconv.FormatInt(unix, 10))
	req.Header.Set("Webhook-Signature", sign("msg-1", unix, body))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := readAnswer(t, resp), (hookAnswer{status: 429, retryAfter: "1", code: "journal_busy"}); got != want {
		t.Errorf("answer = %+v, want %+v", got, want)
	}
}
