package httpapi_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
)

const (
	adminSecret = "some-admin-secret-1234"
	// acmeSecret is the webhook secret of the seeded partner acme: a string
	// that can only appear in a response body if the secret leaked.
	acmeSecret = "whsec_YWNtZS13ZWJob29rLWtleS1ieXRlcy1mb3ItdGVzdHM="
	mig        = "/v1/migrations/tickets"
)

var fixedNow = time.Date(2025, 3, 4, 5, 6, 7, 0, time.UTC)

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }

// fixture is a control service on a real bbolt store behind a real HTTP
// server, with one token per role.
type fixture struct {
	svc *control.Service
	srv *httptest.Server
	// tok holds token secrets by token name; each token is named after its
	// role: admin, viewer, operator, router.
	tok map[string]string
}

func newService(t testing.TB) (*control.Service, *httpapi.API, map[string]string) {
	t.Helper()
	ctx := context.Background()
	store := bolttest.Open(t)
	svc, err := control.New(ctx, store, control.Options{Now: func() time.Time { return fixedNow }, Logger: discardLogger()})
	if err != nil {
		t.Fatalf("control.New: %v", err)
	}
	if _, created, err := svc.Bootstrap(ctx, adminSecret); err != nil || !created {
		t.Fatalf("Bootstrap: created %v, err %v", created, err)
	}
	tok := map[string]string{"admin": adminSecret}
	for _, role := range []domain.Role{domain.RoleViewer, domain.RoleOperator, domain.RoleRouter} {
		_, secret, err := svc.CreateToken(ctx, control.Change{Actor: "test", Reason: "fixture"}, string(role), role)
		if err != nil {
			t.Fatalf("CreateToken %s: %v", role, err)
		}
		tok[string(role)] = secret
	}
	return svc, httpapi.New(svc, discardLogger(), prometheus.NewRegistry()), tok
}

func newFixture(t testing.TB) *fixture {
	t.Helper()
	svc, api, tok := newService(t)
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	return &fixture{svc: svc, srv: srv, tok: tok}
}

// request is one HTTP request to the fixture's server.
type request struct {
	method, path string
	// as names the caller: a token name of the fixture, "" for no
	// Authorization header, or "bad" for an unknown token.
	as          string
	body        string // sent raw; "" sends no body
	contentType string // defaults to application/json when there is a body
	header      map[string]string
}

type response struct {
	status int
	header http.Header
	body   []byte
}

func (r response) String() string {
	return fmt.Sprintf("%d %s", r.status, bytes.TrimSpace(r.body))
}

func (f *fixture) do(t testing.TB, r request) response {
	t.Helper()
	var body io.Reader = http.NoBody
	if r.body != "" {
		body = strings.NewReader(r.body)
	}
	req, err := http.NewRequest(r.method, f.srv.URL+r.path, body)
	if err != nil {
		t.Fatalf("new request %s %s: %v", r.method, r.path, err)
	}
	switch r.as {
	case "":
	case "bad":
		req.Header.Set("Authorization", "Bearer sbk_not-a-real-token")
	default:
		secret, ok := f.tok[r.as]
		if !ok {
			t.Fatalf("fixture has no token %q", r.as)
		}
		req.Header.Set("Authorization", "Bearer "+secret)
	}
	if r.body != "" {
		ct := r.contentType
		if ct == "" {
			ct = "application/json"
		}
		req.Header.Set("Content-Type", ct)
	}
	for k, v := range r.header {
		req.Header.Set(k, v)
	}
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", r.method, r.path, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", r.method, r.path, err)
	}
	return response{status: res.StatusCode, header: res.Header, body: b}
}

// call sends v as JSON (when not nil) and returns the response.
func (f *fixture) call(t testing.TB, as, method, path string, v any) response {
	t.Helper()
	return f.do(t, request{method: method, path: path, as: as, body: jsonOf(t, v)})
}

// must calls and fails t unless the status is want; it decodes the body
// into out when out is not nil.
func (f *fixture) must(t testing.TB, want int, as, method, path string, v, out any) response {
	t.Helper()
	res := f.call(t, as, method, path, v)
	if res.status != want {
		t.Fatalf("%s %s as %s: got %s, want status %d", method, path, as, res, want)
	}
	if out != nil {
		if err := json.Unmarshal(res.body, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, res.body, err)
		}
	}
	return res
}

func jsonOf(t testing.TB, v any) string {
	t.Helper()
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	}
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("marshal %v: %v", v, err)
	}
	return string(b)
}

type obj = map[string]any

func migrationBody(desc string) obj {
	return obj{
		"description": desc,
		"pipelines": obj{
			"legacy": obj{"url": "http://legacy.internal/hook"},
			"new":    obj{"url": "https://new.internal/hook"},
		},
		"compare": obj{"ignore": []string{"fields.updatedAt"}},
		"reason":  "seed",
	}
}

// seed creates, through the API, the partners acme (with acmeSecret),
// globex and initech, and the migration tickets.
func (f *fixture) seed(t testing.TB) {
	t.Helper()
	f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/partners/acme",
		obj{"name": "Acme", "psa": "generic", "secret": acmeSecret, "reason": "seed"}, nil)
	f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/partners/globex",
		obj{"name": "Globex", "psa": "connectwise", "secret": "globex-secret-value", "reason": "seed"}, nil)
	f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/partners/initech",
		obj{"name": "Initech", "psa": "halopsa", "reason": "seed"}, nil)
	f.must(t, http.StatusCreated, "admin", http.MethodPut, mig, migrationBody("ticket sync"), nil)
}

func (f *fixture) putCohort(t testing.TB, key, name string, order int, partners ...string) {
	t.Helper()
	f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/migrations/"+key+"/cohorts/"+name,
		obj{"order": order, "partners": partners, "reason": "seed"}, nil)
}

func (f *fixture) setStage(t testing.TB, key, partner, stage string, force bool) {
	t.Helper()
	body := obj{"stage": stage, "force": force, "reason": "test moves " + partner}
	f.must(t, http.StatusOK, "operator", http.MethodPut, "/v1/migrations/"+key+"/partners/"+partner, body, nil)
}

// moveTo walks a partner forward from legacy to stage, forcing gated moves.
func (f *fixture) moveTo(t testing.TB, key, partner, stage string) {
	t.Helper()
	for _, s := range []string{"shadow", "new", "done"} {
		f.setStage(t, key, partner, s, s != "shadow")
		if s == stage {
			return
		}
	}
}

type stageRow struct {
	Partner string    `json:"partner"`
	Stage   string    `json:"stage"`
	Cohort  string    `json:"cohort"`
	Since   time.Time `json:"since"`
	Stats   struct {
		Compared   uint64            `json:"compared"`
		Mismatched uint64            `json:"mismatched"`
		ByClass    map[string]uint64 `json:"byClass"`
	} `json:"stats"`
}

func (f *fixture) stages(t testing.TB, key string) map[string]stageRow {
	t.Helper()
	var rows []stageRow
	f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/migrations/"+key+"/partners", nil, &rows)
	out := map[string]stageRow{}
	for _, r := range rows {
		out[r.Partner] = r
	}
	return out
}

type snapshotBody struct {
	Version    uint64 `json:"version"`
	Migrations map[string]struct {
		Reverted bool              `json:"reverted"`
		Stages   map[string]string `json:"stages"`
	} `json:"migrations"`
	Partners map[string]struct {
		Name   string `json:"name"`
		PSA    string `json:"psa"`
		Secret string `json:"secret"`
	} `json:"partners"`
}

func (f *fixture) snapshot(t testing.TB) snapshotBody {
	t.Helper()
	var s snapshotBody
	f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/snapshot", nil, &s)
	return s
}

type evaluation struct {
	Value     string `json:"value"`
	Variant   string `json:"variant"`
	Reason    string `json:"reason"`
	ErrorCode string `json:"errorCode"`
	Metadata  struct {
		Shadow          string `json:"shadow"`
		Stage           string `json:"stage"`
		SnapshotVersion uint64 `json:"snapshotVersion"`
	} `json:"metadata"`
}

func (f *fixture) evaluate(t testing.TB, flag, targetingKey string) evaluation {
	t.Helper()
	var e evaluation
	f.must(t, http.StatusOK, "viewer", http.MethodPost, "/v1/evaluate",
		obj{"flag": flag, "context": obj{"targetingKey": targetingKey}}, &e)
	return e
}

func (f *fixture) auditLog(t testing.TB, after uint64) []domain.AuditEntry {
	t.Helper()
	var entries []domain.AuditEntry
	f.must(t, http.StatusOK, "viewer", http.MethodGet, fmt.Sprintf("/v1/audit?after=%d&limit=1000", after), nil, &entries)
	return entries
}

func (f *fixture) lastSeq(t testing.TB) uint64 {
	t.Helper()
	entries := f.auditLog(t, 0)
	if len(entries) == 0 {
		return 0
	}
	return entries[len(entries)-1].Seq
}

// errorEnvelope is the contract's error body, with the gate report that a
// refused advance adds.
type errorEnvelope struct {
	Error *struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	} `json:"error"`
	Gate *gateReport `json:"gate"`
}

type gateReport struct {
	Verdict  string `json:"verdict"`
	Pass     bool   `json:"pass"`
	Partners []struct {
		Partner string `json:"partner"`
		Verdict string `json:"verdict"`
		Pass    bool   `json:"pass"`
		Checks  []struct {
			Name    string  `json:"name"`
			Verdict string  `json:"verdict"`
			Pass    bool    `json:"pass"`
			Value   float64 `json:"value"`
			Limit   float64 `json:"limit"`
		} `json:"checks"`
	} `json:"partners"`
}

// checkError asserts the status and the error envelope with code, and
// returns the decoded envelope.
func checkError(t testing.TB, res response, status int, code string) errorEnvelope {
	t.Helper()
	if res.status != status {
		t.Errorf("status: got %s, want %d", res, status)
	}
	env := checkEnvelope(t, res)
	if env.Error != nil && env.Error.Code != code {
		t.Errorf("error code: got %q, want %q (body %s)", env.Error.Code, code, res.body)
	}
	return env
}

// checkEnvelope asserts that res's body is {"error": {"code", "message"}}
// with a snake_case code and a non-empty message.
func checkEnvelope(t testing.TB, res response) errorEnvelope {
	t.Helper()
	if ct := res.header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("error Content-Type: got %q, want application/json", ct)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(res.body, &raw); err != nil {
		t.Fatalf("error body is not a JSON object: %v: %s", err, res.body)
	}
	var inner map[string]any
	if err := json.Unmarshal(raw["error"], &inner); err != nil || inner == nil {
		t.Fatalf("error body: got %s, want an object under \"error\"", res.body)
	}
	code, _ := inner["code"].(string)
	msg, _ := inner["message"].(string)
	if code == "" || strings.Trim(code, "abcdefghijklmnopqrstuvwxyz_") != "" {
		t.Errorf("error.code: got %q, want a snake_case code (body %s)", inner["code"], res.body)
	}
	if strings.TrimSpace(msg) == "" {
		t.Errorf("error.message: got %q, want a non-empty message (body %s)", inner["message"], res.body)
	}
	if leak := goTypeIn(msg); leak != "" {
		t.Errorf("error.message: got %q, which names a Go type (%q); want a sentence in the API's words", msg, leak)
	}
	var env errorEnvelope
	if err := json.Unmarshal(res.body, &env); err != nil {
		t.Fatalf("decode error body %s: %v", res.body, err)
	}
	return env
}

// goTypeIn returns the first sign of a Go type in an error message, or "".
func goTypeIn(msg string) string {
	for _, s := range []string{"Go value", "Go struct", "struct {", "map[", "interface {}", "[]string", "[]domain", "domain.", "httpapi.", "control.", "time.Time", "json:", "float64", "uint64", "int64"} {
		if strings.Contains(msg, s) {
			return s
		}
	}
	return ""
}

// --- 1. roles

// allowedByContract is API.md's role rule: viewer < operator < admin, each
// including the ones before; router reads like a viewer and no more.
func allowedByContract(role, need string) bool {
	rank := map[string]int{"viewer": 1, "operator": 2, "admin": 3}
	if role == "router" {
		return need == "viewer"
	}
	return rank[role] >= rank[need]
}

func TestRolesByEndpoint(t *testing.T) {
	// With a notifier, so that a test notification is sent, not refused.
	f, _ := newNotifyFixture(t)
	f.seed(t)
	f.putCohort(t, "tickets", "first", 1, "acme", "globex")
	f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/notifications/ops", obj{"url": notifyURL, "events": []string{"revert"}, "secret": notifySecret}, nil)

	endpoints := []struct {
		name         string
		method, path string
		body         any
		need         string // the minimum role, from API.md
	}{
		{"tokens create", http.MethodPost, "/v1/tokens", obj{"name": "made-by-table", "role": "viewer"}, "admin"},
		{"tokens list", http.MethodGet, "/v1/tokens", nil, "admin"},
		{"tokens revoke", http.MethodDelete, "/v1/tokens/no-such-token", nil, "admin"},
		{"partners put", http.MethodPut, "/v1/partners/acme", obj{"name": "Acme", "psa": "generic"}, "admin"},
		{"partners list", http.MethodGet, "/v1/partners", nil, "viewer"},
		{"partners get", http.MethodGet, "/v1/partners/acme", nil, "viewer"},
		{"migrations put", http.MethodPut, mig, migrationBody("ticket sync"), "admin"},
		{"migrations list", http.MethodGet, "/v1/migrations", nil, "viewer"},
		{"migrations get", http.MethodGet, mig, nil, "viewer"},
		{"partner stage put", http.MethodPut, mig + "/partners/initech", obj{"stage": "legacy", "reason": "table"}, "operator"},
		{"migration partners list", http.MethodGet, mig + "/partners", nil, "viewer"},
		{"cohorts put", http.MethodPut, mig + "/cohorts/first", obj{"order": 1, "partners": []string{"acme", "globex"}}, "admin"},
		{"cohorts list", http.MethodGet, mig + "/cohorts", nil, "viewer"},
		{"cohorts gate", http.MethodGet, mig + "/cohorts/first/gate", nil, "viewer"},
		{"cohorts advance", http.MethodPost, mig + "/cohorts/first/advance", obj{"reason": "table"}, "operator"},
		{"migration revert", http.MethodPost, mig + "/revert", obj{"reason": "table"}, "operator"},
		{"migration resume", http.MethodPost, mig + "/resume", obj{"reason": "table"}, "operator"},
		{"global revert", http.MethodPost, "/v1/revert", obj{"reason": "table"}, "operator"},
		{"evaluate", http.MethodPost, "/v1/evaluate", obj{"flag": "tickets", "context": obj{"targetingKey": "acme"}}, "viewer"},
		{"snapshot", http.MethodGet, "/v1/snapshot", nil, "viewer"},
		{"flagd flags", http.MethodGet, "/v1/flagd/flags.json", nil, "viewer"},
		{"audit", http.MethodGet, "/v1/audit?limit=5", nil, "viewer"},
		{"partner noise", http.MethodGet, mig + "/partners/acme/noise", nil, "viewer"},
		{"noise pin", http.MethodPut, mig + "/noise", obj{"eventType": "ticket", "path": "ticket:fields.processedAt", "as": "noise", "reason": "table"}, "operator"},
		{"changes list", http.MethodGet, "/v1/changes?state=pending", nil, "viewer"},
		{"changes get", http.MethodGet, "/v1/changes/chg_000000000000000000000000", nil, "viewer"},
		{"changes approve", http.MethodPost, "/v1/changes/chg_000000000000000000000000/approve", obj{"reason": "table"}, "operator"},
		{"changes reject", http.MethodPost, "/v1/changes/chg_000000000000000000000000/reject", obj{"reason": "table"}, "operator"},
		{"autopilot status", http.MethodGet, mig + "/autopilot", nil, "viewer"},
		{"autopilot pause", http.MethodPost, mig + "/autopilot/pause", obj{"reason": "table"}, "operator"},
		{"autopilot resume", http.MethodPost, mig + "/autopilot/resume", obj{"reason": "table"}, "operator"},
		{"notifications put", http.MethodPut, "/v1/notifications/ops", obj{"url": notifyURL, "events": []string{"revert", "resume"}, "secret": notifySecret}, "admin"},
		{"notifications list", http.MethodGet, "/v1/notifications", nil, "admin"},
		{"notifications get", http.MethodGet, "/v1/notifications/ops", nil, "admin"},
		{"notifications test", http.MethodPost, "/v1/notifications/ops/test", obj{"reason": "table"}, "admin"},
		{"notifications delete", http.MethodDelete, "/v1/notifications/no-such-target?reason=table", nil, "admin"},
	}
	callers := []string{"", "bad", "viewer", "operator", "admin", "router"}

	for _, ep := range endpoints {
		t.Run(ep.name, func(t *testing.T) {
			for _, as := range callers {
				name := as
				switch as {
				case "":
					name = "no token"
				case "bad":
					name = "bad token"
				}
				t.Run(name, func(t *testing.T) {
					res := f.call(t, as, ep.method, ep.path, ep.body)
					switch {
					case as == "" || as == "bad":
						checkError(t, res, http.StatusUnauthorized, "unauthenticated")
						if got := res.header.Get("WWW-Authenticate"); !strings.HasPrefix(got, "Bearer") {
							t.Errorf("WWW-Authenticate: got %q, want a Bearer challenge", got)
						}
					case !allowedByContract(as, ep.need):
						checkError(t, res, http.StatusForbidden, "permission_denied")
					default:
						if res.status == http.StatusUnauthorized || res.status == http.StatusForbidden || res.status >= 500 {
							t.Fatalf("got %s, want the %s role to be let through", res, as)
						}
						if res.status >= 400 {
							checkEnvelope(t, res)
						}
					}
				})
			}
		})
	}

	t.Run("open endpoints", func(t *testing.T) {
		for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
			t.Run(path, func(t *testing.T) {
				res := f.call(t, "", http.MethodGet, path, nil)
				if got, want := res.status, http.StatusOK; got != want {
					t.Errorf("GET %s without a token: got %s, want %d", path, res, want)
				}
			})
		}
	})

	t.Run("snapshot secrets by role", func(t *testing.T) {
		for _, as := range []string{"viewer", "operator", "admin", "router"} {
			t.Run(as, func(t *testing.T) {
				res := f.call(t, as, http.MethodGet, "/v1/snapshot", nil)
				if res.status != http.StatusOK {
					t.Fatalf("got %s, want 200", res)
				}
				got, want := bytes.Contains(res.body, []byte(acmeSecret)), as == "router"
				if got != want {
					t.Errorf("snapshot for %s holds the webhook secret: got %v, want %v", as, got, want)
				}
			})
		}
	})
}

func TestAuthorizationHeaderForms(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name   string
		header string
		want   int
	}{
		{"bearer", "Bearer " + adminSecret, http.StatusOK},
		{"lower-case scheme", "bearer " + adminSecret, http.StatusOK},
		{"basic scheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:"+adminSecret)), http.StatusUnauthorized},
		{"no scheme", adminSecret, http.StatusUnauthorized},
		{"scheme only", "Bearer", http.StatusUnauthorized},
		{"empty secret", "Bearer ", http.StatusUnauthorized},
		{"wrong secret", "Bearer " + adminSecret + "x", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, request{method: http.MethodGet, path: "/v1/tokens", header: map[string]string{"Authorization": tt.header}})
			if got, want := res.status, tt.want; got != want {
				t.Fatalf("got %s, want %d", res, want)
			}
			if tt.want == http.StatusUnauthorized {
				checkError(t, res, http.StatusUnauthorized, "unauthenticated")
				if res.header.Get("WWW-Authenticate") == "" {
					t.Errorf("401 without WWW-Authenticate")
				}
			}
		})
	}
}

// --- 2. bad input

func TestBadInput(t *testing.T) {
	big := `{"name":"` + strings.Repeat("a", (1<<20)+1024) + `","psa":"generic"}`
	tests := []struct {
		name   string
		setup  func(t *testing.T, f *fixture)
		req    request
		status int
		code   string
		check  func(t *testing.T, res response, env errorEnvelope)
	}{
		{
			name:   "malformed JSON",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `{"name": "Acme", "psa": `},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "not JSON at all",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `name=Acme`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "empty body",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin"},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "unknown field",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `{"name":"Acme","psa":"generic","colour":"red"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("colour"),
		},
		{
			name: "unknown nested field",
			req: request{method: http.MethodPut, path: mig, as: "admin",
				body: `{"pipelines":{"legacy":{"url":"http://a.example","verb":"POST"},"new":{"url":"http://b.example"}}}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("verb"),
		},
		{
			name:   "trailing second JSON object",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `{"name":"Acme","psa":"generic"} {"name":"Evil","psa":"generic"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "trailing garbage",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `{"name":"Acme","psa":"generic"}]`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "wrong JSON type for a field",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `{"name":5,"psa":"generic"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("name"),
		},
		{
			name:   "array instead of object",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `[{"name":"Acme","psa":"generic"}]`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "wrong JSON type for force",
			setup:  seeded,
			req:    request{method: http.MethodPut, path: mig + "/partners/acme", as: "operator", body: `{"stage":"shadow","force":"yes"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("force"),
		},
		{
			name:   "partner id with upper case and underscore",
			req:    request{method: http.MethodPut, path: "/v1/partners/Bad_ID", as: "admin", body: `{"name":"Bad","psa":"generic"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "partner id starting with a dash",
			req:    request{method: http.MethodPut, path: "/v1/partners/-x", as: "admin", body: `{"name":"Bad","psa":"generic"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "partner id of 64 characters",
			req:    request{method: http.MethodPut, path: "/v1/partners/" + strings.Repeat("a", 64), as: "admin", body: `{"name":"Long","psa":"generic"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "get partner with a bad id",
			req:    request{method: http.MethodGet, path: "/v1/partners/Bad_ID", as: "viewer"},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "migration key with upper case",
			req:    request{method: http.MethodPut, path: "/v1/migrations/Tickets", as: "admin", body: jsonOf(t, migrationBody("x"))},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "cohort name starting with a dot",
			setup:  seeded,
			req:    request{method: http.MethodPut, path: mig + "/cohorts/.hidden", as: "admin", body: `{"order":1,"partners":["acme"]}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "token name of 64 characters",
			req:    request{method: http.MethodPost, path: "/v1/tokens", as: "admin", body: jsonOf(t, obj{"name": strings.Repeat("t", 64), "role": "viewer"})},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "revoke a token with a bad name",
			req:    request{method: http.MethodDelete, path: "/v1/tokens/Bad_ID", as: "admin"},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "unknown stage",
			setup:  seeded,
			req:    request{method: http.MethodPut, path: mig + "/partners/acme", as: "operator", body: `{"stage":"canary","reason":"x"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "unknown psa",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `{"name":"Acme","psa":"servicenow"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "missing partner name",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `{"psa":"generic"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "unknown role",
			req:    request{method: http.MethodPost, path: "/v1/tokens", as: "admin", body: `{"name":"someone","role":"superuser"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "token name taken",
			req:    request{method: http.MethodPost, path: "/v1/tokens", as: "admin", body: `{"name":"viewer","role":"viewer"}`},
			status: http.StatusConflict, code: "conflict",
		},
		{
			name:   "migration without pipeline URLs",
			req:    request{method: http.MethodPut, path: mig, as: "admin", body: `{"description":"no pipelines"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name: "migration with a rate above 1",
			req: request{method: http.MethodPut, path: mig, as: "admin",
				body: jsonOf(t, withField(migrationBody("x"), "gates", obj{"maxMismatchRate": 1.5}))},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name: "migration with an unknown guard scope",
			req: request{method: http.MethodPut, path: mig, as: "admin",
				body: jsonOf(t, withField(migrationBody("x"), "guard", obj{"scope": "planet"}))},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			// API.md: zeroTolerance is a list of classes; a name that is no
			// class is bad input.
			name: "migration with an unknown zeroTolerance class",
			req: request{method: http.MethodPut, path: mig, as: "admin",
				body: jsonOf(t, withField(migrationBody("x"), "gates", obj{"zeroTolerance": []string{"not_a_class"}}))},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name: "partner put in two cohorts of one migration",
			setup: func(t *testing.T, f *fixture) {
				f.seed(t)
				f.putCohort(t, "tickets", "first", 1, "acme")
			},
			req:    request{method: http.MethodPut, path: mig + "/cohorts/second", as: "admin", body: `{"order":2,"partners":["globex","acme"]}`},
			status: http.StatusConflict, code: "conflict",
		},
		{
			name:   "partner listed twice in a cohort",
			setup:  seeded,
			req:    request{method: http.MethodPut, path: mig + "/cohorts/first", as: "admin", body: `{"order":1,"partners":["acme","acme"]}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "cohort with an unknown partner",
			setup:  seeded,
			req:    request{method: http.MethodPut, path: mig + "/cohorts/first", as: "admin", body: `{"order":1,"partners":["acme","nobody"]}`},
			status: http.StatusNotFound, code: "not_found",
		},
		{
			name:   "cohort of an unknown migration",
			setup:  seeded,
			req:    request{method: http.MethodPut, path: "/v1/migrations/nosuch/cohorts/first", as: "admin", body: `{"order":1,"partners":["acme"]}`},
			status: http.StatusNotFound, code: "not_found",
		},
		{
			name:   "unknown partner",
			req:    request{method: http.MethodGet, path: "/v1/partners/nobody", as: "viewer"},
			status: http.StatusNotFound, code: "not_found",
		},
		{
			name:   "unknown migration",
			req:    request{method: http.MethodGet, path: "/v1/migrations/nosuch", as: "viewer"},
			status: http.StatusNotFound, code: "not_found",
		},
		{
			name:   "gate of an unknown cohort",
			setup:  seeded,
			req:    request{method: http.MethodGet, path: mig + "/cohorts/nosuch/gate", as: "viewer"},
			status: http.StatusNotFound, code: "not_found",
		},
		{
			name:   "body over 1 MiB",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: big},
			status: http.StatusRequestEntityTooLarge, code: "body_too_large",
		},
		{
			name:   "Content-Type text/plain",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `{"name":"Acme","psa":"generic"}`, contentType: "text/plain"},
			status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
		},
		{
			name:   "Content-Type form on an optional body",
			setup:  seeded,
			req:    request{method: http.MethodPost, path: mig + "/revert", as: "operator", body: `{"reason":"x"}`, contentType: "application/x-www-form-urlencoded"},
			status: http.StatusUnsupportedMediaType, code: "unsupported_media_type",
		},
		{
			name:   "wrong method on a collection",
			req:    request{method: http.MethodDelete, path: "/v1/partners", as: "admin"},
			status: http.StatusMethodNotAllowed, code: "method_not_allowed",
		},
		{
			name:   "wrong method on an item",
			req:    request{method: http.MethodPost, path: "/v1/partners/acme", as: "admin", body: `{}`},
			status: http.StatusMethodNotAllowed, code: "method_not_allowed",
		},
		{
			name:   "unknown path",
			req:    request{method: http.MethodGet, path: "/v1/nothing-here", as: "admin"},
			status: http.StatusNotFound, code: "not_found",
		},
		{
			name:   "forward stage jump legacy to new",
			setup:  seeded,
			req:    request{method: http.MethodPut, path: mig + "/partners/acme", as: "operator", body: `{"stage":"new","reason":"skip ahead","force":true}`},
			status: http.StatusConflict, code: "invalid_transition",
		},
		{
			name: "unforced shadow to new with no comparisons",
			setup: func(t *testing.T, f *fixture) {
				f.seed(t)
				f.setStage(t, "tickets", "acme", "shadow", false)
			},
			req:    request{method: http.MethodPut, path: mig + "/partners/acme", as: "operator", body: `{"stage":"new","reason":"looks fine"}`},
			status: http.StatusConflict, code: "gate_refused",
			check: func(t *testing.T, res response, env errorEnvelope) {
				checkRefusedGate(t, env, "acme")
			},
		},
		{
			name: "forced move without a reason",
			setup: func(t *testing.T, f *fixture) {
				f.seed(t)
				f.setStage(t, "tickets", "acme", "shadow", false)
			},
			req:    request{method: http.MethodPut, path: mig + "/partners/acme", as: "operator", body: `{"stage":"new","force":true}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name: "forced move with a blank reason",
			setup: func(t *testing.T, f *fixture) {
				f.seed(t)
				f.setStage(t, "tickets", "acme", "shadow", false)
			},
			req:    request{method: http.MethodPut, path: mig + "/partners/acme", as: "operator", body: `{"stage":"new","force":true,"reason":"   "}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name: "forward move while the migration is reverted",
			setup: func(t *testing.T, f *fixture) {
				f.seed(t)
				f.must(t, http.StatusOK, "operator", http.MethodPost, mig+"/revert", obj{"reason": "incident"}, nil)
			},
			req:    request{method: http.MethodPut, path: mig + "/partners/acme", as: "operator", body: `{"stage":"shadow","reason":"try"}`},
			status: http.StatusConflict, code: "migration_reverted",
		},
		{
			name: "forced cohort advance while the migration is reverted",
			setup: func(t *testing.T, f *fixture) {
				f.seed(t)
				f.putCohort(t, "tickets", "first", 1, "acme")
				f.must(t, http.StatusOK, "operator", http.MethodPost, "/v1/revert", obj{"reason": "incident"}, nil)
			},
			req:    request{method: http.MethodPost, path: mig + "/cohorts/first/advance", as: "operator", body: `{"reason":"push","force":true}`},
			status: http.StatusConflict, code: "migration_reverted",
		},
		{
			name:   "audit limit=0",
			req:    request{method: http.MethodGet, path: "/v1/audit?limit=0", as: "viewer"},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "audit limit=abc",
			req:    request{method: http.MethodGet, path: "/v1/audit?limit=abc", as: "viewer"},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "audit after=-1",
			req:    request{method: http.MethodGet, path: "/v1/audit?after=-1", as: "viewer"},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "revoking the last admin token",
			req:    request{method: http.MethodDelete, path: "/v1/tokens/admin", as: "admin"},
			status: http.StatusConflict, code: "conflict",
		},
		{
			name:   "revoking an unknown token",
			req:    request{method: http.MethodDelete, path: "/v1/tokens/nobody", as: "admin"},
			status: http.StatusNotFound, code: "not_found",
		},
		{
			name:   "evaluate without a flag",
			req:    request{method: http.MethodPost, path: "/v1/evaluate", as: "viewer", body: `{"context":{"targetingKey":"acme"}}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		{
			name:   "evaluate with a numeric targetingKey",
			setup:  seeded,
			req:    request{method: http.MethodPost, path: "/v1/evaluate", as: "viewer", body: `{"flag":"tickets","context":{"targetingKey":42}}`},
			status: http.StatusBadRequest, code: "invalid_argument",
		},
		// Bodies of the wrong shape get a sentence, never a Go type.
		{
			name:   "body of [] on a required body",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `[]`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs("the body must be a JSON object, not an array"),
		},
		{
			name:   "body of [] on an optional body",
			setup:  seeded,
			req:    request{method: http.MethodPost, path: mig + "/revert", as: "operator", body: `[]`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs("the body must be a JSON object, not an array"),
		},
		{
			name:   "body of null",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `null`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs("the body must be a JSON object, not null"),
		},
		{
			name:   "body of null on an optional body",
			setup:  seeded,
			req:    request{method: http.MethodPost, path: "/v1/revert", as: "operator", body: ` null `},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs("the body must be a JSON object, not null"),
		},
		{
			name:   "body of a string",
			req:    request{method: http.MethodPost, path: "/v1/tokens", as: "admin", body: `"viewer"`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs("the body must be a JSON object, not a string"),
		},
		{
			name:   "body of a number",
			req:    request{method: http.MethodPost, path: "/v1/evaluate", as: "viewer", body: `42`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs("the body must be a JSON object, not a number"),
		},
		{
			name:   "body of true",
			req:    request{method: http.MethodPut, path: mig, as: "admin", body: `true`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs("the body must be a JSON object, not true or false"),
		},
		{
			name:   "array for an object field",
			req:    request{method: http.MethodPut, path: mig, as: "admin", body: jsonOf(t, withField(migrationBody("x"), "gates", []int{}))},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs(`field "gates" must be an object, not an array`),
		},
		{
			name:   "array for the evaluation context",
			req:    request{method: http.MethodPost, path: "/v1/evaluate", as: "viewer", body: `{"flag":"tickets","context":[]}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs(`field "context" must be an object, not an array`),
		},
		{
			name:   "string for a nested integer",
			req:    request{method: http.MethodPut, path: mig, as: "admin", body: jsonOf(t, withField(migrationBody("x"), "gates", obj{"minComparisons": "200"}))},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs(`field "gates.minComparisons" must be an integer, not a string`),
		},
		{
			name:   "fraction for an integer",
			setup:  seeded,
			req:    request{method: http.MethodPut, path: mig + "/cohorts/first", as: "admin", body: `{"order":1.5,"partners":[]}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs(`field "order" must be an integer, not the number 1.5`),
		},
		{
			name:   "integer out of range",
			setup:  seeded,
			req:    request{method: http.MethodPut, path: mig + "/cohorts/first", as: "admin", body: `{"order":99999999999999999999,"partners":[]}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs(`field "order" must be an integer from -9223372036854775808 to 9223372036854775807, not the number 99999999999999999999`),
		},
		{
			name:   "number in a list of partners",
			setup:  seeded,
			req:    request{method: http.MethodPut, path: mig + "/cohorts/first", as: "admin", body: `{"order":1,"partners":["acme",7]}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs(`each item of field "partners" must be a string, not a number`),
		},
		{
			name:   "string for a list of classes",
			req:    request{method: http.MethodPut, path: mig, as: "admin", body: jsonOf(t, withField(migrationBody("x"), "gates", obj{"zeroTolerance": "missing"}))},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs(`field "gates.zeroTolerance" must be an array, not a string`),
		},
		{
			name:   "string for a replay's partners, a field of an embedded struct",
			setup:  seeded,
			req:    request{method: http.MethodPost, path: "/v1/replays", as: "operator", body: `{"migration":"tickets","partners":"acme"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs(`field "partners" must be an array, not a string`),
		},
		{
			name:   "replay time that does not parse",
			setup:  seeded,
			req:    request{method: http.MethodPost, path: "/v1/replays", as: "operator", body: `{"migration":"tickets","partners":["acme"],"from":"yesterday"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs(`field "from" must be an RFC 3339 time such as 2026-01-02T15:04:05Z`),
		},
		{
			name:   "replay time as a number",
			setup:  seeded,
			req:    request{method: http.MethodPost, path: "/v1/replays", as: "operator", body: `{"migration":"tickets","partners":["acme"],"from":"2025-03-04T00:00:00Z","to":1741046400}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs(`field "to" must be an RFC 3339 time such as 2026-01-02T15:04:05Z`),
		},
		// Free text is UTF-8 without control characters.
		{
			name:   "partner name with an escape sequence",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `{"name":"Acme\u001b[2J","psa":"generic"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("partner name"),
		},
		{
			name:   "partner name with a C1 control",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `{"name":"Acme\u009b2J","psa":"generic"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("partner name"),
		},
		{
			name:   "partner name with a newline",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `{"name":"Acme\nCorp","psa":"generic"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("partner name"),
		},
		{
			name:   "partner name with a byte that is not UTF-8",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: "{\"name\":\"Caf\xe9\",\"psa\":\"generic\"}"},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs(`field "name" is not valid UTF-8 text`),
		},
		{
			name:   "partner name with half a surrogate pair",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `{"name":"Acme \ud83d","psa":"generic"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageIs(`field "name" is not valid UTF-8 text`),
		},
		{
			name:   "migration description with a control character",
			req:    request{method: http.MethodPut, path: mig, as: "admin", body: jsonOf(t, migrationBody("sync\x07"))},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("description"),
		},
		{
			name:   "migration with a zeroTolerance class twice",
			req:    request{method: http.MethodPut, path: mig, as: "admin", body: jsonOf(t, withField(migrationBody("x"), "gates", obj{"zeroTolerance": []string{"missing", "type_mismatch", "missing"}}))},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames(`zeroTolerance lists the class "missing" twice`),
		},
		{
			name:   "cohort gates with a zeroTolerance class twice",
			setup:  seeded,
			req:    request{method: http.MethodPut, path: mig + "/cohorts/first", as: "admin", body: `{"order":1,"partners":["acme"],"gates":{"zeroTolerance":["empty","empty"]}}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("twice"),
		},
		{
			name:   "reason that clears the terminal on a partner",
			req:    request{method: http.MethodPut, path: "/v1/partners/acme", as: "admin", body: `{"name":"Acme","psa":"generic","reason":"ok\u001b[2J\u001b[H"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("reason"),
		},
		{
			name:   "reason with a bare carriage return on a stage",
			setup:  seeded,
			req:    request{method: http.MethodPut, path: mig + "/partners/acme", as: "operator", body: `{"stage":"shadow","reason":"approved\rdenied"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("reason"),
		},
		{
			name: "reason with a control character on an advance",
			setup: func(t *testing.T, f *fixture) {
				f.seed(t)
				f.putCohort(t, "tickets", "first", 1, "acme")
			},
			req:    request{method: http.MethodPost, path: mig + "/cohorts/first/advance", as: "operator", body: `{"reason":"go\u0000"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("reason"),
		},
		{
			name:   "reason with a control character on a revert",
			setup:  seeded,
			req:    request{method: http.MethodPost, path: mig + "/revert", as: "operator", body: `{"reason":"incident\u0007"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("reason"),
		},
		{
			name: "reason with a control character on a resume",
			setup: func(t *testing.T, f *fixture) {
				f.seed(t)
				f.must(t, http.StatusOK, "operator", http.MethodPost, mig+"/revert", obj{"reason": "incident"}, nil)
			},
			req:    request{method: http.MethodPost, path: mig + "/resume", as: "operator", body: `{"reason":"fixed\u001b[1A"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("reason"),
		},
		{
			name:   "reason of 1001 characters on a global revert",
			setup:  seeded,
			req:    request{method: http.MethodPost, path: "/v1/revert", as: "operator", body: jsonOf(t, obj{"reason": strings.Repeat("r", domain.MaxReason+1)})},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("reason is longer than 1000 characters"),
		},
		{
			name:   "reason with a control character on a token",
			req:    request{method: http.MethodPost, path: "/v1/tokens", as: "admin", body: `{"name":"ci","role":"viewer","reason":"for CI\u001b]0;x\u0007"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("reason"),
		},
		{
			name:   "reason with a control character on a token revocation",
			req:    request{method: http.MethodDelete, path: "/v1/tokens/viewer?reason=gone%1B%5B2J", as: "admin"},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("reason"),
		},
		{
			name:  "reason with a control character on a replay",
			setup: seeded,
			req: request{method: http.MethodPost, path: "/v1/replays", as: "operator",
				body: `{"migration":"tickets","partners":["acme"],"from":"2025-03-04T00:00:00Z","to":"2025-03-04T05:00:00Z","pipeline":"legacy","filter":"all","reason":"again\u001b[2J"}`},
			status: http.StatusBadRequest, code: "invalid_argument",
			check: messageNames("reason"),
		},
		{
			name: "advance a cohort without partners",
			setup: func(t *testing.T, f *fixture) {
				f.seed(t)
				f.putCohort(t, "tickets", "empty", 1)
			},
			req:    request{method: http.MethodPost, path: mig + "/cohorts/empty/advance", as: "operator", body: `{"reason":"x"}`},
			status: http.StatusConflict, code: "conflict",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.setup != nil {
				tt.setup(t, f)
			}
			before := f.lastSeq(t)
			res := f.do(t, tt.req)
			env := checkError(t, res, tt.status, tt.code)
			if tt.check != nil {
				tt.check(t, res, env)
			}
			if got := f.lastSeq(t); got != before {
				t.Errorf("audit log: got last seq %d after a refused request, want %d (nothing written)", got, before)
			}
		})
	}
}

func seeded(t *testing.T, f *fixture) { f.seed(t) }

func withField(m obj, k string, v any) obj {
	m[k] = v
	return m
}

func messageIs(want string) func(t *testing.T, res response, env errorEnvelope) {
	return func(t *testing.T, res response, env errorEnvelope) {
		t.Helper()
		if env.Error == nil || env.Error.Message != want {
			t.Errorf("error message: got %s, want %q", res.body, want)
		}
	}
}

func messageNames(s string) func(t *testing.T, res response, env errorEnvelope) {
	return func(t *testing.T, res response, env errorEnvelope) {
		t.Helper()
		if env.Error == nil || !strings.Contains(env.Error.Message, s) {
			t.Errorf("error message: got %s, want it to name %q", res.body, s)
		}
	}
}

// checkRefusedGate asserts a refused gate report that judged partners with
// no comparisons under the default gates: inconclusive, and, when it came
// with an error, a message that waits for data rather than one that says
// the gates failed.
func checkRefusedGate(t *testing.T, env errorEnvelope, partners ...string) {
	t.Helper()
	if env.Gate == nil {
		t.Fatalf("gate_refused without a gate report")
	}
	if env.Gate.Pass || env.Gate.Verdict != "inconclusive" {
		t.Errorf("gate: got pass=%v verdict=%q, want pass=false verdict inconclusive", env.Gate.Pass, env.Gate.Verdict)
	}
	if env.Error != nil {
		if !strings.HasPrefix(env.Error.Message, "waiting for data: ") {
			t.Errorf("error message: got %q, want it to start %q", env.Error.Message, "waiting for data: ")
		}
		for _, p := range partners {
			if want := p + ": no comparisons in this stage yet, baked"; !strings.Contains(env.Error.Message, want) {
				t.Errorf("error message: got %q, want it to say %q", env.Error.Message, want)
			}
		}
		if strings.Contains(env.Error.Message, "refuse") || strings.Contains(env.Error.Message, "fail") {
			t.Errorf("error message %q says the gates failed, with no data", env.Error.Message)
		}
	}
	var got []string
	for _, p := range env.Gate.Partners {
		got = append(got, p.Partner)
		if p.Pass || p.Verdict != "inconclusive" {
			t.Errorf("gate partner %s: got pass=%v verdict=%q with no comparisons, want pass=false verdict inconclusive", p.Partner, p.Pass, p.Verdict)
		}
		for _, c := range p.Checks {
			if c.Verdict == "fail" {
				t.Errorf("gate partner %s: check %s fails with no data, want it inconclusive", p.Partner, c.Name)
			}
		}
		found := false
		for _, c := range p.Checks {
			if c.Name != "minComparisons" {
				continue
			}
			found = true
			if c.Pass || c.Value != 0 || c.Limit != 200 {
				t.Errorf("gate partner %s minComparisons: got pass=%v value=%v limit=%v, want pass=false value=0 limit=200", p.Partner, c.Pass, c.Value, c.Limit)
			}
		}
		if !found {
			t.Errorf("gate partner %s: no minComparisons check in %+v", p.Partner, p.Checks)
		}
	}
	slices.Sort(got)
	want := slices.Clone(partners)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("gate partners: got %v, want %v", got, want)
	}
}

// --- 3. behaviour

func TestPutCreatesThenUpdates(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	tests := []struct {
		name           string
		path           string
		create, update any
	}{
		{"partner", "/v1/partners/hooli", obj{"name": "Hooli", "psa": "autotask"}, obj{"name": "Hooli XYZ", "psa": "autotask"}},
		{"migration", "/v1/migrations/billing", migrationBody("billing"), migrationBody("billing, take two")},
		{"cohort", mig + "/cohorts/pilot", obj{"order": 1, "partners": []string{"acme"}}, obj{"order": 1, "partners": []string{"acme", "globex"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			steps := []struct {
				name string
				body any
				want int
			}{
				{"create", tt.create, http.StatusCreated},
				{"update", tt.update, http.StatusOK},
				{"same again", tt.update, http.StatusOK},
			}
			for _, s := range steps {
				res := f.call(t, "admin", http.MethodPut, tt.path, s.body)
				if got, want := res.status, s.want; got != want {
					t.Errorf("%s: got %s, want %d", s.name, res, want)
				}
				if !json.Valid(res.body) {
					t.Errorf("%s: body is not JSON: %s", s.name, res.body)
				}
			}
		})
	}

	t.Run("update keeps the secret when none is sent", func(t *testing.T) {
		var snap snapshotBody
		f.must(t, http.StatusOK, "router", http.MethodGet, "/v1/snapshot", nil, &snap)
		if got, want := snap.Partners["acme"].Secret, acmeSecret; got != want {
			t.Fatalf("router snapshot before: got secret %q, want %q", got, want)
		}
		f.must(t, http.StatusOK, "admin", http.MethodPut, "/v1/partners/acme", obj{"name": "Acme Corp", "psa": "generic"}, nil)
		f.must(t, http.StatusOK, "router", http.MethodGet, "/v1/snapshot", nil, &snap)
		if got, want := snap.Partners["acme"].Secret, acmeSecret; got != want {
			t.Errorf("router snapshot after an update without secret: got secret %q, want %q", got, want)
		}
		if got, want := snap.Partners["acme"].Name, "Acme Corp"; got != want {
			t.Errorf("name: got %q, want %q", got, want)
		}
	})
}

func TestPartnerSecretNeverReturned(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	f.putCohort(t, "tickets", "first", 1, "acme")
	// Change the secret too, so the audit log has an update of it.
	const rotated = "whsec_cm90YXRlZC1zZWNyZXQtb2YtYWNtZS1mb3ItdGVzdHM="
	put := f.must(t, http.StatusOK, "admin", http.MethodPut, "/v1/partners/acme",
		obj{"name": "Acme", "psa": "generic", "secret": rotated, "reason": "rotate"}, nil)

	tests := []struct {
		name       string
		as, path   string
		wantSecret bool
	}{
		{"partners get", "viewer", "/v1/partners/acme", false},
		{"partners get as admin", "admin", "/v1/partners/acme", false},
		{"partners list", "viewer", "/v1/partners", false},
		{"partners list as router", "router", "/v1/partners", false},
		{"audit log", "viewer", "/v1/audit?limit=1000", false},
		{"audit log as admin", "admin", "/v1/audit?limit=1000", false},
		{"migration partners", "viewer", mig + "/partners", false},
		{"cohorts", "viewer", mig + "/cohorts", false},
		{"snapshot as viewer", "viewer", "/v1/snapshot", false},
		{"snapshot as admin", "admin", "/v1/snapshot", false},
		{"snapshot as router", "router", "/v1/snapshot", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.call(t, tt.as, http.MethodGet, tt.path, nil)
			if res.status != http.StatusOK {
				t.Fatalf("got %s, want 200", res)
			}
			for _, secret := range []string{acmeSecret, rotated} {
				got := bytes.Contains(res.body, []byte(secret))
				want := tt.wantSecret && secret == rotated
				if got != want {
					t.Errorf("body holds secret %q: got %v, want %v", secret, got, want)
				}
			}
		})
	}
	t.Run("put response", func(t *testing.T) {
		if bytes.Contains(put.body, []byte(rotated)) || bytes.Contains(put.body, []byte(`"secret"`)) {
			t.Errorf("PUT response holds the secret: %s", put.body)
		}
		var p map[string]any
		if err := json.Unmarshal(put.body, &p); err != nil {
			t.Fatal(err)
		}
		if got, want := p["secretSet"], true; got != want {
			t.Errorf("secretSet: got %v, want %v", got, want)
		}
	})
}

func TestTokenSecretOnlyOnCreate(t *testing.T) {
	f := newFixture(t)
	var created struct {
		Name  string `json:"name"`
		Role  string `json:"role"`
		Token string `json:"token"`
	}
	f.must(t, http.StatusCreated, "admin", http.MethodPost, "/v1/tokens", obj{"name": "ci-bot", "role": "operator", "reason": "ci"}, &created)
	if got, want := created.Name, "ci-bot"; got != want {
		t.Errorf("name: got %q, want %q", got, want)
	}
	if got, want := created.Role, "operator"; got != want {
		t.Errorf("role: got %q, want %q", got, want)
	}
	if created.Token == "" {
		t.Fatalf("create: got no token in the answer")
	}

	// The new token works, with its role.
	f.tok["ci-bot"] = created.Token
	if res := f.call(t, "ci-bot", http.MethodPost, "/v1/revert", obj{"reason": "check"}); res.status != http.StatusOK {
		t.Errorf("operator action with the new token: got %s, want 200", res)
	}
	if res := f.call(t, "ci-bot", http.MethodGet, "/v1/tokens", nil); res.status != http.StatusForbidden {
		t.Errorf("admin action with the new operator token: got %s, want 403", res)
	}

	res := f.must(t, http.StatusOK, "admin", http.MethodGet, "/v1/tokens", nil, nil)
	sum := sha256.Sum256([]byte(created.Token))
	for _, leak := range []string{created.Token, adminSecret, f.tok["viewer"], hex.EncodeToString(sum[:]), base64.StdEncoding.EncodeToString(sum[:])} {
		if bytes.Contains(res.body, []byte(leak)) {
			t.Errorf("GET /v1/tokens holds a secret or hash %q: %s", leak, res.body)
		}
	}
	var list []map[string]any
	if err := json.Unmarshal(res.body, &list); err != nil {
		t.Fatalf("decode token list %s: %v", res.body, err)
	}
	names := []string{}
	for _, tk := range list {
		names = append(names, fmt.Sprint(tk["name"]))
		for _, k := range []string{"token", "hash", "secret"} {
			if _, ok := tk[k]; ok {
				t.Errorf("token %v in the list has field %q", tk["name"], k)
			}
		}
	}
	if got, want := names, []string{"admin", "ci-bot", "operator", "router", "viewer"}; !slices.Equal(got, want) {
		t.Errorf("token names: got %v, want %v", got, want)
	}

	// Revoked, the token stops working.
	f.must(t, http.StatusNoContent, "admin", http.MethodDelete, "/v1/tokens/ci-bot?reason=rotate", nil, nil)
	checkError(t, f.call(t, "ci-bot", http.MethodGet, "/v1/partners", nil), http.StatusUnauthorized, "unauthenticated")
}

func TestSnapshotETag(t *testing.T) {
	f := newFixture(t)
	f.seed(t)

	first := f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/snapshot", nil, nil)
	etag := first.header.Get("ETag")
	if etag == "" {
		t.Fatalf("GET /v1/snapshot: no ETag")
	}
	var snap snapshotBody
	if err := json.Unmarshal(first.body, &snap); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name        string
		as          string
		ifNoneMatch string
		want        int
	}{
		{"current ETag", "viewer", etag, http.StatusNotModified},
		{"current ETag as operator", "operator", etag, http.StatusNotModified},
		{"stale ETag", "viewer", `"v0"`, http.StatusOK},
		{"no If-None-Match", "viewer", "", http.StatusOK},
		{"viewer ETag as router", "router", etag, http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := map[string]string{}
			if tt.ifNoneMatch != "" {
				h["If-None-Match"] = tt.ifNoneMatch
			}
			res := f.do(t, request{method: http.MethodGet, path: "/v1/snapshot", as: tt.as, header: h})
			if got, want := res.status, tt.want; got != want {
				t.Fatalf("got %s, want %d", res, want)
			}
			if res.header.Get("ETag") == "" {
				t.Errorf("no ETag on a %d", res.status)
			}
			if tt.want == http.StatusNotModified && len(res.body) != 0 {
				t.Errorf("304 with a body: %q", res.body)
			}
		})
	}

	t.Run("router ETag", func(t *testing.T) {
		res := f.call(t, "router", http.MethodGet, "/v1/snapshot", nil)
		rtag := res.header.Get("ETag")
		if rtag == "" || rtag == etag {
			t.Fatalf("router ETag: got %q, want one that differs from the viewer's %q", rtag, etag)
		}
		again := f.do(t, request{method: http.MethodGet, path: "/v1/snapshot", as: "router", header: map[string]string{"If-None-Match": rtag}})
		if got, want := again.status, http.StatusNotModified; got != want {
			t.Errorf("router with its ETag: got %s, want %d", again, want)
		}
		viewer := f.do(t, request{method: http.MethodGet, path: "/v1/snapshot", as: "viewer", header: map[string]string{"If-None-Match": rtag}})
		if got, want := viewer.status, http.StatusOK; got != want {
			t.Errorf("viewer with the router's ETag: got %s, want %d", viewer, want)
		}
	})

	t.Run("a change makes the ETag stale", func(t *testing.T) {
		f.setStage(t, "tickets", "acme", "shadow", false)
		res := f.do(t, request{method: http.MethodGet, path: "/v1/snapshot", as: "viewer", header: map[string]string{"If-None-Match": etag}})
		if got, want := res.status, http.StatusOK; got != want {
			t.Fatalf("old ETag after a change: got %s, want %d", res, want)
		}
		if got := res.header.Get("ETag"); got == etag {
			t.Errorf("ETag after a change: got %q again", got)
		}
		var next snapshotBody
		if err := json.Unmarshal(res.body, &next); err != nil {
			t.Fatal(err)
		}
		if got, want := next.Version, snap.Version+1; got != want {
			t.Errorf("version after one change: got %d, want %d", got, want)
		}
		if got, want := next.Migrations["tickets"].Stages["acme"], "shadow"; got != want {
			t.Errorf("snapshot stage of acme: got %q, want %q", got, want)
		}
	})
}

func TestEvaluate(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/partners/hooli", obj{"name": "Hooli", "psa": "generic"}, nil)
	f.moveTo(t, "tickets", "acme", "shadow")
	f.moveTo(t, "tickets", "globex", "new")
	f.moveTo(t, "tickets", "hooli", "done")
	version := f.snapshot(t).Version

	type want struct {
		value, variant, reason, errorCode, shadow, stage string
	}
	check := func(t *testing.T, got evaluation, w want, version uint64) {
		t.Helper()
		if got.Value != w.value || got.Variant != w.variant || got.Reason != w.reason || got.ErrorCode != w.errorCode {
			t.Errorf("got value=%q variant=%q reason=%q errorCode=%q, want value=%q variant=%q reason=%q errorCode=%q",
				got.Value, got.Variant, got.Reason, got.ErrorCode, w.value, w.variant, w.reason, w.errorCode)
		}
		if got.Metadata.Shadow != w.shadow || got.Metadata.Stage != w.stage {
			t.Errorf("metadata: got shadow=%q stage=%q, want shadow=%q stage=%q", got.Metadata.Shadow, got.Metadata.Stage, w.shadow, w.stage)
		}
		if got, want := got.Metadata.SnapshotVersion, version; got != want {
			t.Errorf("metadata.snapshotVersion: got %d, want %d", got, want)
		}
	}

	tests := []struct {
		name, flag, key string
		want            want
	}{
		{"legacy partner", "tickets", "initech", want{"legacy", "legacy", "TARGETING_MATCH", "", "", "legacy"}},
		{"shadow partner", "tickets", "acme", want{"legacy", "shadow", "TARGETING_MATCH", "", "new", "shadow"}},
		{"new partner", "tickets", "globex", want{"new", "new", "TARGETING_MATCH", "", "legacy", "new"}},
		{"done partner", "tickets", "hooli", want{"new", "done", "TARGETING_MATCH", "", "", "done"}},
		{"unknown targetingKey", "tickets", "nobody", want{"legacy", "legacy", "DEFAULT", "", "", ""}},
		{"unknown flag", "nosuch", "acme", want{"legacy", "", "ERROR", "FLAG_NOT_FOUND", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, f.evaluate(t, tt.flag, tt.key), tt.want, version)
		})
	}

	t.Run("after revert", func(t *testing.T) {
		var rv struct {
			SnapshotVersion uint64 `json:"snapshotVersion"`
		}
		f.must(t, http.StatusOK, "operator", http.MethodPost, mig+"/revert", obj{"reason": "incident 42"}, &rv)
		if got, want := rv.SnapshotVersion, version+1; got != want {
			t.Errorf("revert snapshotVersion: got %d, want %d", got, want)
		}
		for _, tt := range []struct {
			key   string
			stage string
		}{{"initech", "legacy"}, {"acme", "shadow"}, {"globex", "new"}, {"hooli", "done"}} {
			t.Run(tt.key, func(t *testing.T) {
				check(t, f.evaluate(t, "tickets", tt.key), want{"legacy", "legacy", "DISABLED", "", "", tt.stage}, rv.SnapshotVersion)
			})
		}
	})
}

func TestGlobalRevertIsOneVersion(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	keys := []string{"tickets", "billing", "assets"}
	for _, k := range keys[1:] {
		f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/migrations/"+k, migrationBody(k), nil)
	}
	for _, k := range keys {
		f.moveTo(t, k, "acme", "new")
	}
	// One migration already reverted: the global revert still takes one version.
	f.must(t, http.StatusOK, "operator", http.MethodPost, "/v1/migrations/assets/revert", obj{"reason": "early"}, nil)
	before := f.snapshot(t).Version

	var rv struct {
		SnapshotVersion uint64 `json:"snapshotVersion"`
	}
	f.must(t, http.StatusOK, "operator", http.MethodPost, "/v1/revert", obj{"reason": "everything off"}, &rv)
	if got, want := rv.SnapshotVersion, before+1; got != want {
		t.Errorf("POST /v1/revert snapshotVersion: got %d, want %d", got, want)
	}
	snap := f.snapshot(t)
	if got, want := snap.Version, before+1; got != want {
		t.Errorf("snapshot version: got %d, want %d", got, want)
	}
	for _, k := range keys {
		t.Run(k, func(t *testing.T) {
			if !snap.Migrations[k].Reverted {
				t.Errorf("snapshot: %s reverted = false, want true", k)
			}
			var m struct {
				Reverted        bool   `json:"reverted"`
				SnapshotVersion uint64 `json:"snapshotVersion"`
			}
			f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/migrations/"+k, nil, &m)
			if !m.Reverted || m.SnapshotVersion != before+1 {
				t.Errorf("GET migration: got reverted=%v snapshotVersion=%d, want true and %d", m.Reverted, m.SnapshotVersion, before+1)
			}
			if got := f.evaluate(t, k, "acme"); got.Reason != "DISABLED" || got.Value != "legacy" {
				t.Errorf("evaluate: got reason=%q value=%q, want DISABLED and legacy", got.Reason, got.Value)
			}
		})
	}

	t.Run("again changes nothing", func(t *testing.T) {
		var again struct {
			SnapshotVersion uint64 `json:"snapshotVersion"`
		}
		f.must(t, http.StatusOK, "operator", http.MethodPost, "/v1/revert", obj{"reason": "again"}, &again)
		if got, want := again.SnapshotVersion, before+1; got != want {
			t.Errorf("second global revert: got version %d, want %d", got, want)
		}
	})
}

func TestResumeRestoresStages(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/partners/hooli", obj{"name": "Hooli", "psa": "generic"}, nil)
	f.putCohort(t, "tickets", "first", 1, "acme", "globex")
	f.moveTo(t, "tickets", "acme", "shadow")
	f.moveTo(t, "tickets", "globex", "new")
	f.moveTo(t, "tickets", "hooli", "done")

	stagesBefore := f.stages(t, "tickets")
	evalBefore := map[string]evaluation{}
	for id := range stagesBefore {
		evalBefore[id] = f.evaluate(t, "tickets", id)
	}
	snapBefore := f.snapshot(t)

	f.must(t, http.StatusOK, "operator", http.MethodPost, mig+"/revert", obj{"reason": "incident"}, nil)
	if got := f.stages(t, "tickets"); !reflect.DeepEqual(got, stagesBefore) {
		t.Errorf("stages while reverted: got %+v, want them kept as %+v", got, stagesBefore)
	}
	for id := range stagesBefore {
		if got := f.evaluate(t, "tickets", id); got.Value != "legacy" || got.Reason != "DISABLED" {
			t.Errorf("%s while reverted: got value=%q reason=%q, want legacy and DISABLED", id, got.Value, got.Reason)
		}
	}

	// Updating the settings of a reverted migration keeps its kill switch on.
	var upd struct {
		Reverted bool `json:"reverted"`
	}
	f.must(t, http.StatusOK, "admin", http.MethodPut, mig, migrationBody("ticket sync, patched"), &upd)
	if !upd.Reverted {
		t.Errorf("PUT of a reverted migration: got reverted=false, want true")
	}
	if got := f.evaluate(t, "tickets", "globex"); got.Reason != "DISABLED" {
		t.Errorf("globex after updating the reverted migration: got reason %q, want DISABLED", got.Reason)
	}

	var rs struct {
		SnapshotVersion uint64 `json:"snapshotVersion"`
	}
	f.must(t, http.StatusOK, "operator", http.MethodPost, mig+"/resume", obj{"reason": "fixed"}, &rs)
	if got, want := rs.SnapshotVersion, snapBefore.Version+3; got != want {
		t.Errorf("resume snapshotVersion: got %d, want %d", got, want)
	}
	if got := f.stages(t, "tickets"); !reflect.DeepEqual(got, stagesBefore) {
		t.Errorf("stages after resume: got %+v, want %+v", got, stagesBefore)
	}
	snapAfter := f.snapshot(t)
	if got, want := snapAfter.Migrations["tickets"], snapBefore.Migrations["tickets"]; !reflect.DeepEqual(got, want) {
		t.Errorf("snapshot migration after resume: got %+v, want %+v", got, want)
	}
	for id, before := range evalBefore {
		t.Run(id, func(t *testing.T) {
			got := f.evaluate(t, "tickets", id)
			got.Metadata.SnapshotVersion, before.Metadata.SnapshotVersion = 0, 0
			if got != before {
				t.Errorf("evaluation after resume: got %+v, want %+v", got, before)
			}
		})
	}
}

func TestCohortAdvanceAllOrNothing(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/partners/hooli", obj{"name": "Hooli", "psa": "generic"}, nil)
	members := []string{"acme", "globex", "initech"}
	f.putCohort(t, "tickets", "first", 1, members...)
	advance := mig + "/cohorts/first/advance"

	type result struct {
		Cohort   string   `json:"cohort"`
		From     string   `json:"from"`
		To       string   `json:"to"`
		Partners []string `json:"partners"`
	}
	checkStages := func(t *testing.T, want string) {
		t.Helper()
		st := f.stages(t, "tickets")
		for _, id := range members {
			if got := st[id].Stage; got != want {
				t.Errorf("%s: got stage %q, want %q", id, got, want)
			}
			if got := st[id].Cohort; got != "first" {
				t.Errorf("%s: got cohort %q, want first", id, got)
			}
		}
		if got := st["hooli"].Stage; got != "legacy" {
			t.Errorf("hooli, in no cohort: got stage %q, want legacy", got)
		}
	}
	cohortStage := func(t *testing.T) string {
		t.Helper()
		var cs []struct {
			Name     string   `json:"name"`
			Order    int      `json:"order"`
			Partners []string `json:"partners"`
			Stage    string   `json:"stage"`
		}
		f.must(t, http.StatusOK, "viewer", http.MethodGet, mig+"/cohorts", nil, &cs)
		if len(cs) != 1 || cs[0].Name != "first" || !slices.Equal(cs[0].Partners, members) {
			t.Fatalf("cohorts: got %+v, want one cohort first with %v", cs, members)
		}
		return cs[0].Stage
	}

	t.Run("legacy to shadow needs no gate", func(t *testing.T) {
		var g gateReport
		f.must(t, http.StatusOK, "viewer", http.MethodGet, mig+"/cohorts/first/gate", nil, &g)
		if !g.Pass || len(g.Partners) != len(members) {
			t.Errorf("gate at legacy: got pass=%v with %d partners, want pass with %d", g.Pass, len(g.Partners), len(members))
		}
		var r result
		f.must(t, http.StatusOK, "operator", http.MethodPost, advance, obj{"reason": "start shadowing"}, &r)
		slices.Sort(r.Partners)
		if r.Cohort != "first" || r.From != "legacy" || r.To != "shadow" || !slices.Equal(r.Partners, members) {
			t.Errorf("advance: got %+v, want first legacy→shadow with %v", r, members)
		}
		checkStages(t, "shadow")
		if got, want := cohortStage(t), "shadow"; got != want {
			t.Errorf("cohort stage: got %q, want %q", got, want)
		}
	})

	t.Run("gate report refuses with no data", func(t *testing.T) {
		var g gateReport
		res := f.must(t, http.StatusOK, "viewer", http.MethodGet, mig+"/cohorts/first/gate", nil, &g)
		checkRefusedGate(t, errorEnvelope{Gate: &g}, members...)
		if t.Failed() {
			t.Logf("gate body: %s", res.body)
		}
	})

	t.Run("unforced advance moves nobody", func(t *testing.T) {
		before := f.snapshot(t).Version
		seq := f.lastSeq(t)
		res := f.call(t, "operator", http.MethodPost, advance, obj{"reason": "looks good"})
		env := checkError(t, res, http.StatusConflict, "gate_refused")
		checkRefusedGate(t, env, members...)
		checkStages(t, "shadow")
		if got := f.snapshot(t).Version; got != before {
			t.Errorf("snapshot version after a refused advance: got %d, want %d", got, before)
		}
		if got := f.lastSeq(t); got != seq {
			t.Errorf("audit after a refused advance: got last seq %d, want %d", got, seq)
		}
	})

	t.Run("cohort gates with minComparisons 0 still refuse without data", func(t *testing.T) {
		f.must(t, http.StatusOK, "admin", http.MethodPut, mig+"/cohorts/first", obj{
			"order": 1, "partners": members, "reason": "relax gates",
			"gates": obj{"minComparisons": 0, "minBakeSeconds": 0, "minCoverage": 0, "maxMismatchRate": 1, "maxErrorRate": 1},
		}, nil)
		res := f.call(t, "operator", http.MethodPost, advance, obj{"reason": "relaxed"})
		env := checkError(t, res, http.StatusConflict, "gate_refused")
		if env.Gate == nil || env.Gate.Pass {
			t.Errorf("gate: got %s, want a refused report", res.body)
		}
		checkStages(t, "shadow")
	})

	t.Run("forced advance moves everyone", func(t *testing.T) {
		before := f.snapshot(t).Version
		var r result
		f.must(t, http.StatusOK, "operator", http.MethodPost, advance, obj{"reason": "vendor sign-off", "force": true}, &r)
		slices.Sort(r.Partners)
		if r.From != "shadow" || r.To != "new" || !slices.Equal(r.Partners, members) {
			t.Errorf("forced advance: got %+v, want shadow→new with %v", r, members)
		}
		checkStages(t, "new")
		if got, want := f.snapshot(t).Version, before+1; got != want {
			t.Errorf("snapshot version after one advance: got %d, want %d", got, want)
		}
	})

	t.Run("only the laggards move", func(t *testing.T) {
		f.setStage(t, "tickets", "acme", "shadow", false) // a backward move needs no gate
		var r result
		f.must(t, http.StatusOK, "operator", http.MethodPost, advance, obj{"reason": "catch up", "force": true}, &r)
		if r.From != "shadow" || r.To != "new" || !slices.Equal(r.Partners, []string{"acme"}) {
			t.Errorf("advance with one laggard: got %+v, want shadow→new with [acme]", r)
		}
		checkStages(t, "new")
	})
}

func TestAuditRecordsEveryMutation(t *testing.T) {
	// With a notifier, so that a test notification is sent (and audited).
	f, _ := newNotifyFixture(t)
	f.seed(t)
	// A second admin, so that actors differ between steps.
	var ops struct {
		Token string `json:"token"`
	}
	f.must(t, http.StatusCreated, "admin", http.MethodPost, "/v1/tokens", obj{"name": "ops-admin", "role": "admin"}, &ops)
	f.tok["ops-admin"] = ops.Token

	tests := []struct {
		name         string
		as           string
		method, path string
		body         any
		reason       string
		want         int
		target       string // a part of the audit target
	}{
		{"token create", "ops-admin", http.MethodPost, "/v1/tokens", obj{"name": "temp", "role": "viewer", "reason": "r-token-create"}, "r-token-create", http.StatusCreated, "temp"},
		{"token revoke", "ops-admin", http.MethodDelete, "/v1/tokens/temp?reason=r-token-revoke", nil, "r-token-revoke", http.StatusNoContent, "temp"},
		{"partner create", "admin", http.MethodPut, "/v1/partners/hooli", obj{"name": "Hooli", "psa": "generic", "reason": "r-partner-create"}, "r-partner-create", http.StatusCreated, "hooli"},
		{"partner update", "ops-admin", http.MethodPut, "/v1/partners/hooli", obj{"name": "Hooli XYZ", "psa": "generic", "secret": "s3cret-hooli", "reason": "r-partner-update"}, "r-partner-update", http.StatusOK, "hooli"},
		{"migration create", "admin", http.MethodPut, "/v1/migrations/billing", withField(migrationBody("billing"), "reason", "r-migration-create"), "r-migration-create", http.StatusCreated, "billing"},
		{"migration update", "ops-admin", http.MethodPut, "/v1/migrations/billing", withField(migrationBody("billing v2"), "reason", "r-migration-update"), "r-migration-update", http.StatusOK, "billing"},
		{"stage set", "operator", http.MethodPut, mig + "/partners/initech", obj{"stage": "shadow", "reason": "r-stage"}, "r-stage", http.StatusOK, "initech"},
		{"forced stage set", "admin", http.MethodPut, mig + "/partners/initech", obj{"stage": "new", "force": true, "reason": "r-stage-forced"}, "r-stage-forced", http.StatusOK, "initech"},
		{"cohort create", "admin", http.MethodPut, mig + "/cohorts/first", obj{"order": 1, "partners": []string{"acme"}, "reason": "r-cohort-create"}, "r-cohort-create", http.StatusCreated, "first"},
		{"cohort update", "ops-admin", http.MethodPut, mig + "/cohorts/first", obj{"order": 2, "partners": []string{"acme", "globex"}, "reason": "r-cohort-update"}, "r-cohort-update", http.StatusOK, "first"},
		{"cohort advance", "operator", http.MethodPost, mig + "/cohorts/first/advance", obj{"reason": "r-advance"}, "r-advance", http.StatusOK, "first"},
		{"forced cohort advance", "operator", http.MethodPost, mig + "/cohorts/first/advance", obj{"reason": "r-advance-forced", "force": true}, "r-advance-forced", http.StatusOK, "first"},
		{"noise pin", "operator", http.MethodPut, mig + "/noise", obj{"eventType": "ticket", "path": "ticket:fields.processedAt", "as": "noise", "reason": "r-noise-pin"}, "r-noise-pin", http.StatusOK, "ticket:fields.processedAt"},
		{"migration revert", "operator", http.MethodPost, mig + "/revert", obj{"reason": "r-revert"}, "r-revert", http.StatusOK, "tickets"},
		{"migration resume", "operator", http.MethodPost, mig + "/resume", obj{"reason": "r-resume"}, "r-resume", http.StatusOK, "tickets"},
		{"global revert", "admin", http.MethodPost, "/v1/revert", obj{"reason": "r-revert-all"}, "r-revert-all", http.StatusOK, "migration"},
		{"resume without a body", "operator", http.MethodPost, "/v1/migrations/billing/resume", nil, "", http.StatusOK, "billing"},
		// After the reverts: a revert pauses an autopilot in its own write, with its own reason.
		{"autopilot set", "admin", http.MethodPut, "/v1/migrations/billing", withField(withField(migrationBody("billing v2"), "autopilot",
			obj{"enabled": true, "windows": []obj{{"days": []string{"mon"}, "from": "09:00", "to": "16:00", "timeZone": "UTC"}}}), "reason", "r-autopilot-set"),
			"r-autopilot-set", http.StatusOK, "billing"},
		{"autopilot pause", "operator", http.MethodPost, "/v1/migrations/billing/autopilot/pause", obj{"reason": "r-autopilot-pause"}, "r-autopilot-pause", http.StatusOK, "billing"},
		{"autopilot resume", "ops-admin", http.MethodPost, "/v1/migrations/billing/autopilot/resume", obj{"reason": "r-autopilot-resume"}, "r-autopilot-resume", http.StatusOK, "billing"},
		{"notification create", "admin", http.MethodPut, "/v1/notifications/ops", obj{"url": notifyURL, "events": []string{"revert"}, "secret": notifySecret, "reason": "r-notify-create"},
			"r-notify-create", http.StatusCreated, "notification/ops"},
		{"notification update", "ops-admin", http.MethodPut, "/v1/notifications/ops", obj{"events": []string{"revert", "advance"}, "reason": "r-notify-update"},
			"r-notify-update", http.StatusOK, "notification/ops"},
		{"notification test", "admin", http.MethodPost, "/v1/notifications/ops/test", obj{"reason": "r-notify-test"}, "r-notify-test", http.StatusAccepted, "notification/ops"},
		{"notification delete", "ops-admin", http.MethodDelete, "/v1/notifications/ops?reason=r-notify-delete", nil, "r-notify-delete", http.StatusNoContent, "notification/ops"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			seq := f.lastSeq(t)
			f.must(t, tt.want, tt.as, tt.method, tt.path, tt.body, nil)
			entries := f.auditLog(t, seq)
			if len(entries) == 0 {
				t.Fatalf("no audit entry after %s %s", tt.method, tt.path)
			}
			for _, e := range entries {
				if got, want := e.Actor, tt.as; got != want {
					t.Errorf("entry %d (%s %s): got actor %q, want %q", e.Seq, e.Action, e.Target, got, want)
				}
				if got, want := e.Reason, tt.reason; got != want {
					t.Errorf("entry %d (%s %s): got reason %q, want %q", e.Seq, e.Action, e.Target, got, want)
				}
				if e.Action == "" || !strings.Contains(e.Target, tt.target) {
					t.Errorf("entry %d: got action %q target %q, want an action and a target naming %q", e.Seq, e.Action, e.Target, tt.target)
				}
				if !e.At.Equal(fixedNow) {
					t.Errorf("entry %d: got at %v, want %v", e.Seq, e.At, fixedNow)
				}
			}
		})
	}

	t.Run("chain and paging", func(t *testing.T) {
		all := f.auditLog(t, 0)
		v := audit.NewVerifier(domain.AuditEntry{})
		if err := v.Check(all); err != nil {
			t.Errorf("audit chain: %v", err)
		}
		for i := 1; i < len(all); i++ {
			if all[i].Seq <= all[i-1].Seq {
				t.Fatalf("audit order: seq %d after %d", all[i].Seq, all[i-1].Seq)
			}
		}
		var page []domain.AuditEntry
		f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/audit?after=2&limit=3", nil, &page)
		if got, want := len(page), 3; got != want {
			t.Fatalf("page length: got %d, want %d", got, want)
		}
		if got, want := page[0].Seq, uint64(3); got != want {
			t.Errorf("first seq after=2: got %d, want %d", got, want)
		}
		var dflt []domain.AuditEntry
		f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/audit", nil, &dflt)
		if got, want := len(dflt), min(len(all), 100); got != want {
			t.Errorf("default page: got %d entries, want %d", got, want)
		}
	})
}

func TestOpenEndpoints(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	tests := []struct {
		path     string
		contains string
	}{
		{"/healthz", `"ok"`},
		{"/readyz", `"ready"`},
		{"/metrics", "switchback_snapshot_version"},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := f.call(t, "", http.MethodGet, tt.path, nil)
			if got, want := res.status, http.StatusOK; got != want {
				t.Fatalf("got %s, want %d", res, want)
			}
			if !bytes.Contains(res.body, []byte(tt.contains)) {
				t.Errorf("body: got %.300s, want it to hold %s", res.body, tt.contains)
			}
		})
	}
}

func TestMigrationView(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	f.moveTo(t, "tickets", "acme", "shadow")
	var m struct {
		Key             string         `json:"key"`
		Reverted        bool           `json:"reverted"`
		Stages          map[string]int `json:"stages"`
		SnapshotVersion uint64         `json:"snapshotVersion"`
		Gates           map[string]any `json:"gates"`
	}
	f.must(t, http.StatusOK, "viewer", http.MethodGet, mig, nil, &m)
	if got, want := m.Stages, map[string]int{"legacy": 2, "shadow": 1, "new": 0, "done": 0}; !reflect.DeepEqual(got, want) {
		t.Errorf("stages: got %v, want %v", got, want)
	}
	if got, want := m.SnapshotVersion, f.snapshot(t).Version; got != want {
		t.Errorf("snapshotVersion: got %d, want %d", got, want)
	}
	if m.Reverted {
		t.Errorf("reverted: got true, want false")
	}
	wantGates := map[string]any{"minComparisons": 200.0, "maxMismatchRate": 0.001, "minBakeSeconds": 3600.0, "maxErrorRate": 0.01, "minCoverage": 0.99,
		"zeroTolerance": []any{"type_mismatch", "missing", "empty", "error_asymmetry"}, "minPerEventType": 50.0}
	for k, want := range wantGates {
		if got := m.Gates[k]; !reflect.DeepEqual(got, want) {
			t.Errorf("default gates.%s: got %v, want %v", k, got, want)
		}
	}
	// Query strings do not reach ids.
	if res := f.call(t, "viewer", http.MethodGet, mig+"?x="+url.QueryEscape("Bad_ID"), nil); res.status != http.StatusOK {
		t.Errorf("GET with a query string: got %s, want 200", res)
	}
}

// compare.allowExtraKinds is kept, shown and published to routers, and a
// list the comparator could not use is refused.
func TestMigrationAllowExtraKinds(t *testing.T) {
	f := newFixture(t)
	body := migrationBody("contacts too")
	body["compare"] = obj{"allowExtraKinds": []string{"contact", "company"}}
	f.must(t, http.StatusCreated, "admin", http.MethodPut, mig, body, nil)
	var view struct {
		Compare map[string]any `json:"compare"`
	}
	f.must(t, http.StatusOK, "viewer", http.MethodGet, mig, nil, &view)
	want := map[string]any{"ignore": []any{}, "sets": []any{}, "allowExtraKinds": []any{"contact", "company"}, "noiseSampleRate": 0.05}
	if !reflect.DeepEqual(view.Compare, want) {
		t.Errorf("compare: got %v, want %v", view.Compare, want)
	}
	var snap struct {
		Migrations map[string]struct {
			Compare map[string]any `json:"compare"`
		} `json:"migrations"`
	}
	f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/snapshot", nil, &snap)
	if got := snap.Migrations["tickets"].Compare["allowExtraKinds"]; !reflect.DeepEqual(got, want["allowExtraKinds"]) {
		t.Errorf("snapshot's compare.allowExtraKinds: got %v, want %v", got, want["allowExtraKinds"])
	}
	for name, kinds := range map[string][]string{"twice": {"contact", "contact"}, "empty": {""}} {
		body["compare"] = obj{"allowExtraKinds": kinds}
		if res := f.call(t, "admin", http.MethodPut, mig, body); res.status != http.StatusBadRequest || !bytes.Contains(res.body, []byte("allowExtraKinds")) {
			t.Errorf("a kind %s: got %s, want 400 naming allowExtraKinds", name, res)
		}
	}
}

// A migration's reconcile setting is taken, kept and shown with durations
// as Go writes them and the window filled in; left out, the view has no
// reconcile field, and a setting the reconciler could not use is refused
// naming its field.
func TestMigrationReconcile(t *testing.T) {
	f := newFixture(t)
	view := func(t *testing.T) map[string]any {
		t.Helper()
		var m map[string]any
		f.must(t, http.StatusOK, "viewer", http.MethodGet, mig, nil, &m)
		return m
	}
	f.must(t, http.StatusCreated, "admin", http.MethodPut, mig, migrationBody("none"), nil)
	if got, ok := view(t)["reconcile"]; ok {
		t.Errorf("a migration without the setting shows reconcile %v, want no field", got)
	}

	set := []struct {
		name string
		in   obj
		want map[string]any
	}{
		{"the documented example", obj{"afterRevert": true, "every": "1h", "window": "2h"},
			map[string]any{"afterRevert": true, "every": "1h0m0s", "window": "2h0m0s"}},
		{"window left out is every", obj{"every": "90m"},
			map[string]any{"afterRevert": false, "every": "1h30m0s", "window": "1h30m0s"}},
		{"after revert only", obj{"afterRevert": true},
			map[string]any{"afterRevert": true, "every": "0s", "window": "0s"}},
	}
	for _, tt := range set {
		t.Run(tt.name, func(t *testing.T) {
			var put map[string]any
			f.must(t, http.StatusOK, "admin", http.MethodPut, mig, withField(migrationBody("x"), "reconcile", tt.in), &put)
			if got := put["reconcile"]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("PUT answers reconcile %v, want %v", got, tt.want)
			}
			if got := view(t)["reconcile"]; !reflect.DeepEqual(got, tt.want) {
				t.Errorf("GET shows reconcile %v, want %v", got, tt.want)
			}
		})
	}
	var list []map[string]any
	f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/migrations", nil, &list)
	if len(list) != 1 || !reflect.DeepEqual(list[0]["reconcile"], set[len(set)-1].want) {
		t.Errorf("GET /v1/migrations: got %v, want the setting on the one migration", list)
	}

	refused := []struct {
		name  string
		in    any
		names string
	}{
		{"every under 5m", obj{"every": "4m"}, "reconcile: every"},
		{"every over 31 days", obj{"every": "745h"}, "reconcile: every"},
		{"every negative", obj{"every": "-1h"}, "reconcile: every"},
		{"window negative", obj{"every": "1h", "window": "-2h"}, "reconcile: window"},
		{"window over 31 days", obj{"every": "1h", "window": "745h"}, "reconcile: window"},
		{"every not a duration", obj{"every": "hourly"}, `reconcile: every "hourly" is not a duration`},
		{"window a number", obj{"every": "1h", "window": 7200}, `field "reconcile.window" must be a string`},
		{"afterRevert a string", obj{"afterRevert": "yes"}, `field "reconcile.afterRevert" must be true or false`},
		{"unknown field", obj{"afterRevert": true, "evry": "1h"}, `unknown field "evry" in reconcile`},
		{"a field's name in another case", obj{"AfterRevert": true}, `unknown field "AfterRevert" in reconcile`},
		{"not an object", "1h", `field "reconcile" must be an object`},
	}
	for _, tt := range refused {
		t.Run(tt.name, func(t *testing.T) {
			res := f.call(t, "admin", http.MethodPut, mig, withField(migrationBody("refused"), "reconcile", tt.in))
			var env errorEnvelope
			json.Unmarshal(res.body, &env)
			if res.status != http.StatusBadRequest || env.Error == nil || !strings.Contains(env.Error.Message, tt.names) {
				t.Errorf("got %s, want 400 naming %q", res, tt.names)
			}
		})
	}
	if got := view(t)["reconcile"]; !reflect.DeepEqual(got, set[len(set)-1].want) {
		t.Errorf("after refused PUTs the view shows reconcile %v, want the last setting kept", got)
	}

	// A PUT replaces the whole migration: left out, the setting is gone.
	f.must(t, http.StatusOK, "admin", http.MethodPut, mig, migrationBody("off again"), nil)
	if got, ok := view(t)["reconcile"]; ok {
		t.Errorf("a PUT without reconcile left %v, want no field", got)
	}
}

// gates.minPerEventType defaults to 50, takes 0 to turn the rule off, and
// still answers to its earlier name, minComparisonsPerType, which the new
// name overrides.
func TestMinPerEventType(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name  string
		gates obj
		want  float64
	}{
		{"left out", obj{}, 50},
		{"set", obj{"minPerEventType": 80}, 80},
		{"off", obj{"minPerEventType": 0}, 0},
		{"by its earlier name", obj{"minComparisonsPerType": 120}, 120},
		{"both names", obj{"minComparisonsPerType": 120, "minPerEventType": 70}, 70},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if res := f.call(t, "admin", http.MethodPut, mig, withField(migrationBody("x"), "gates", tt.gates)); res.status != http.StatusCreated && res.status != http.StatusOK {
				t.Fatalf("PUT: got %s, want 201 or 200", res)
			}
			var m struct {
				Gates map[string]any `json:"gates"`
			}
			f.must(t, http.StatusOK, "viewer", http.MethodGet, mig, nil, &m)
			if got := m.Gates["minPerEventType"]; got != tt.want {
				t.Errorf("gates.minPerEventType = %v, want %v", got, tt.want)
			}
			if _, ok := m.Gates["minComparisonsPerType"]; ok {
				t.Errorf("the view still shows minComparisonsPerType: %v", m.Gates)
			}
		})
	}
}

func TestListsAreArrays(t *testing.T) {
	f := newFixture(t)
	f.must(t, http.StatusCreated, "admin", http.MethodPut, mig, migrationBody("empty"), nil)
	tests := []struct {
		name, path string
		wantLen    int
	}{
		{"partners", "/v1/partners", 0},
		{"migrations", "/v1/migrations", 1},
		{"migration partners", mig + "/partners", 0},
		{"cohorts", mig + "/cohorts", 0},
		{"tokens", "/v1/tokens", 4},
		{"audit after the last entry", "/v1/audit?after=1000000", 0},
		// seq > after holds for the largest after too: after+1 must not wrap.
		{"audit after the largest seq", "/v1/audit?after=18446744073709551615", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			as := "viewer"
			if tt.path == "/v1/tokens" {
				as = "admin"
			}
			res := f.must(t, http.StatusOK, as, http.MethodGet, tt.path, nil, nil)
			var list []json.RawMessage
			if err := json.Unmarshal(res.body, &list); err != nil || list == nil {
				t.Fatalf("got %s, want a JSON array", res.body)
			}
			if got, want := len(list), tt.wantLen; got != want {
				t.Errorf("length: got %d, want %d (body %.300s)", got, want, res.body)
			}
		})
	}
}

func TestStageListShape(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	f.putCohort(t, "tickets", "first", 1, "acme")
	res := f.must(t, http.StatusOK, "viewer", http.MethodGet, mig+"/partners", nil, nil)
	var rows []map[string]any
	if err := json.Unmarshal(res.body, &rows); err != nil {
		t.Fatal(err)
	}
	if got, want := len(rows), 3; got != want {
		t.Fatalf("rows: got %d, want %d", got, want)
	}
	for _, r := range rows {
		for _, k := range []string{"partner", "stage", "cohort", "since", "stats"} {
			if _, ok := r[k]; !ok {
				t.Errorf("row %v: no field %q", r["partner"], k)
			}
		}
		stats, _ := r["stats"].(map[string]any)
		for _, k := range []string{"compared", "mismatched", "byClass"} {
			if _, ok := stats[k]; !ok {
				t.Errorf("row %v: no stats.%s in %v", r["partner"], k, r["stats"])
			}
		}
	}
	st := f.stages(t, "tickets")
	tests := []struct {
		partner, stage, cohort string
	}{
		{"acme", "legacy", "first"},
		{"globex", "legacy", ""},
		{"initech", "legacy", ""},
	}
	for _, tt := range tests {
		t.Run(tt.partner, func(t *testing.T) {
			got := st[tt.partner]
			if got.Stage != tt.stage || got.Cohort != tt.cohort || !got.Since.Equal(fixedNow) {
				t.Errorf("got stage=%q cohort=%q since=%v, want %q %q %v", got.Stage, got.Cohort, got.Since, tt.stage, tt.cohort, fixedNow)
			}
			if got.Stats.Compared != 0 || got.Stats.Mismatched != 0 || got.Stats.ByClass == nil {
				t.Errorf("stats: got %+v, want zero counts and an empty byClass", got.Stats)
			}
		})
	}
}

func TestConcurrentChanges(t *testing.T) {
	f := newFixture(t)
	f.must(t, http.StatusCreated, "admin", http.MethodPut, mig, migrationBody("concurrent"), nil)
	const n = 12
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("p%02d", i)
		f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/partners/"+ids[i], obj{"name": ids[i], "psa": "generic"}, nil)
	}
	start := f.snapshot(t).Version
	startSeq := f.lastSeq(t)

	errs := make(chan string, 4*n)
	done := make(chan struct{})
	for _, id := range ids {
		go func() {
			defer func() { done <- struct{}{} }()
			res := f.call(t, "operator", http.MethodPut, mig+"/partners/"+id, obj{"stage": "shadow", "reason": "parallel " + id})
			if res.status != http.StatusOK {
				errs <- fmt.Sprintf("stage %s: got %s, want 200", id, res)
			}
		}()
		go func() {
			defer func() { done <- struct{}{} }()
			res := f.call(t, "viewer", http.MethodPost, "/v1/evaluate", obj{"flag": "tickets", "context": obj{"targetingKey": id}})
			var e evaluation
			if res.status != http.StatusOK || json.Unmarshal(res.body, &e) != nil || e.Value != "legacy" || e.Reason != "TARGETING_MATCH" {
				errs <- fmt.Sprintf("evaluate %s: got %s, want legacy by TARGETING_MATCH", id, res)
			}
			if snap := f.call(t, "router", http.MethodGet, "/v1/snapshot", nil); snap.status != http.StatusOK || !json.Valid(snap.body) {
				errs <- fmt.Sprintf("snapshot: got %s", snap)
			}
		}()
	}
	for range 2 * n {
		<-done
	}
	close(errs)
	for e := range errs {
		t.Error(e)
	}

	snap := f.snapshot(t)
	if got, want := snap.Version, start+n; got != want {
		t.Errorf("version after %d changes: got %d, want %d", n, got, want)
	}
	for _, id := range ids {
		if got, want := snap.Migrations["tickets"].Stages[id], "shadow"; got != want {
			t.Errorf("%s: got stage %q, want %q", id, got, want)
		}
	}
	entries := f.auditLog(t, 0)
	if err := audit.NewVerifier(domain.AuditEntry{}).Check(entries); err != nil {
		t.Errorf("audit chain after concurrent changes: %v", err)
	}
	if got, want := len(f.auditLog(t, startSeq)), n; got != want {
		t.Errorf("audit entries of the concurrent changes: got %d, want %d", got, want)
	}
}

// POST /v1/reports refuses a report with a count out of range with 400,
// and answers a report whose reportId it applied before 200, not 202.
func TestReportsBoundsAndIdempotency(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	row := func(count uint64) obj {
		return obj{"migration": "psa-webhooks-v2", "partner": "acme", "stage": "shadow", "eventType": "ticket",
			"class": "type_mismatch", "minute": fixedNow.Truncate(time.Minute), "count": count}
	}
	tests := []struct {
		name       string
		body       obj
		wantStatus int
	}{
		{"a count that wraps", obj{"router": "edge-1", "comparisons": []obj{row(18446744073709551613)}}, http.StatusBadRequest},
		{"errors above calls", obj{"router": "edge-1", "candidate": []obj{{"migration": "psa-webhooks-v2", "partner": "acme", "stage": "shadow", "calls": 1, "errors": 2}}}, http.StatusBadRequest},
		{"a first report", obj{"router": "edge-1", "reportId": obj{"epoch": "j1", "seq": 1}, "comparisons": []obj{row(1)}}, http.StatusAccepted},
		{"the same report again", obj{"router": "edge-1", "reportId": obj{"epoch": "j1", "seq": 1}, "comparisons": []obj{row(1)}}, http.StatusOK},
		{"the next report", obj{"router": "edge-1", "reportId": obj{"epoch": "j1", "seq": 2}, "comparisons": []obj{row(1)}}, http.StatusAccepted},
	}
	for _, tt := range tests {
		res := f.call(t, "router", http.MethodPost, "/v1/reports", tt.body)
		if res.status != tt.wantStatus {
			t.Errorf("%s: got %s, want status %d", tt.name, res, tt.wantStatus)
		}
		if tt.wantStatus == http.StatusBadRequest {
			checkError(t, res, http.StatusBadRequest, domain.CodeInvalid)
		}
	}
}

// A pin shows in the partner's noise list and in the migration's compare
// rules; "none" removes it; a path outside fields is refused.
func TestNoiseEndpoints(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	var view struct {
		Partner         string             `json:"partner"`
		NoiseSampleRate float64            `json:"noiseSampleRate"`
		LearnedAfter    int                `json:"learnedAfter"`
		Paths           []domain.NoisePath `json:"paths"`
	}
	f.must(t, http.StatusOK, "viewer", http.MethodGet, mig+"/partners/acme/noise", nil, &view)
	if view.Partner != "acme" || view.NoiseSampleRate != domain.DefaultNoiseSampleRate || view.LearnedAfter != domain.NoiseLearnedAfter || view.Paths == nil || len(view.Paths) != 0 {
		t.Errorf("noise before anything = %+v, want no paths at the default rate", view)
	}
	f.must(t, http.StatusOK, "operator", http.MethodPut, mig+"/noise", obj{"eventType": "ticket", "path": "ticket:fields.processedAt", "as": "noise", "reason": "stamped by legacy"}, nil)
	f.must(t, http.StatusOK, "viewer", http.MethodGet, mig+"/partners/acme/noise", nil, &view)
	if want := (domain.NoisePath{EventType: "ticket", Path: "ticket:fields.processedAt", Pin: domain.PinNoise, Noise: true}); len(view.Paths) != 1 || view.Paths[0] != want {
		t.Errorf("noise after a pin = %+v, want %+v", view.Paths, want)
	}
	var m struct {
		Compare domain.CompareRules `json:"compare"`
	}
	f.must(t, http.StatusOK, "viewer", http.MethodGet, mig, nil, &m)
	if len(m.Compare.NoisePins) != 1 || m.Compare.NoiseSampleRate == nil || *m.Compare.NoiseSampleRate != domain.DefaultNoiseSampleRate {
		t.Errorf("migration compare = %+v, want the pin and the default rate shown", m.Compare)
	}
	f.must(t, http.StatusOK, "operator", http.MethodPut, mig+"/noise", obj{"eventType": "ticket", "path": "ticket:fields.processedAt", "as": "none", "reason": "was wrong"}, nil)
	f.must(t, http.StatusOK, "viewer", http.MethodGet, mig+"/partners/acme/noise", nil, &view)
	if len(view.Paths) != 0 {
		t.Errorf("noise after unpinning = %+v, want none", view.Paths)
	}
	res := f.call(t, "operator", http.MethodPut, mig+"/noise", obj{"eventType": "ticket", "path": "kind", "as": "noise", "reason": "r"})
	checkError(t, res, http.StatusBadRequest, "invalid_argument")
	res = f.call(t, "operator", http.MethodPut, mig+"/noise", obj{"eventType": "ticket", "path": "ticket:fields.x", "as": "maybe", "reason": "r"})
	checkError(t, res, http.StatusBadRequest, "invalid_argument")
}
