package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/gorillamux"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
)

// ofrepSpec is the OFREP OpenAPI document that every OFREP answer is held
// to: testdata/ofrep/openapi.yaml, version 0.3.0.
type ofrepSpec struct {
	doc    *openapi3.T
	router routers.Router
}

// codeDefaultExample is the document's own example of a single flag's 200.
const codeDefaultExample = `{"key":"discount-banner","value":true,"reason":"TARGETING_MATCH","variant":"enabled"}`

// loadOFREPSpec loads the document and corrects its one contradiction.
//
// evaluationSuccess is a oneOf of the typed flags (booleanFlag, stringFlag,
// …) and codeDefaultFlag, the answer without a value. The document says
// codeDefaultFlag "has no value property", but its schema is an object with
// no constraint, which every answer matches: an answer with a value then
// matches two members of the oneOf, and no answer with a value is valid,
// the document's own examples included. The correction says what the
// document says in words: codeDefaultFlag has no value. The test first
// checks that the published document still needs it.
func loadOFREPSpec(t *testing.T) *ofrepSpec {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile("testdata/ofrep/openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	router, err := gorillamux.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	s := &ofrepSpec{doc: doc, router: router}
	example := func() error {
		req := httptest.NewRequest(http.MethodPost, "/ofrep/v1/evaluate/flags/discount-banner", nil)
		return s.validate(req, http.StatusOK, jsonHeader(), []byte(codeDefaultExample))
	}
	if example() == nil {
		t.Fatal("the published document accepts its own example now: drop the codeDefaultFlag correction in loadOFREPSpec")
	}
	codeDefault := doc.Components.Schemas["codeDefaultFlag"]
	if codeDefault == nil || codeDefault.Value == nil {
		t.Fatal("the document has no codeDefaultFlag schema")
	}
	codeDefault.Value.Not = &openapi3.SchemaRef{Value: &openapi3.Schema{Required: []string{"value"}}}
	if err := example(); err != nil {
		t.Fatalf("the corrected document refuses its own example: %v", err)
	}
	return s
}

func jsonHeader() http.Header { return http.Header{"Content-Type": {"application/json"}} }

// validate checks one answer to req against the document: the operation
// exists, the status is one it declares, and the headers and body match
// that response. A 304 must have no body; kin-openapi checks no more of it.
func (s *ofrepSpec) validate(req *http.Request, status int, header http.Header, body []byte) error {
	route, params, err := s.router.FindRoute(req)
	if err != nil {
		return fmt.Errorf("the document has no operation %s %s: %w", req.Method, req.URL.Path, err)
	}
	if route.Operation.Responses.Status(status) == nil {
		return fmt.Errorf("%s %s: the document declares no status %d", req.Method, route.Path, status)
	}
	if status == http.StatusNotModified && len(body) > 0 {
		return fmt.Errorf("%s %s: a 304 with a body: %s", req.Method, route.Path, body)
	}
	return openapi3filter.ValidateResponse(context.Background(), &openapi3filter.ResponseValidationInput{
		RequestValidationInput: &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route},
		Status:                 status,
		Header:                 header,
		Body:                   io.NopCloser(bytes.NewReader(body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true, MultiError: true},
	})
}

// ofrepCall is one OFREP request and what its answer must be.
type ofrepCall struct {
	name string
	path string // below /ofrep/v1/evaluate/flags
	body string
	// token is sent as Bearer; "-" sends none. header adds headers.
	token  string
	header map[string]string
	status int
	// want is the reason of a single success, each reason of a bulk
	// success in order, or the errorCode of a failure.
	want []string
}

// Every answer of the OFREP endpoints, on a real server, is valid against
// the OFREP OpenAPI document: successes at every stage and for every
// reason, each error code, the bulk call, its 304, and the auth failures.
func TestOFREPAnswersMatchTheOpenAPIDocument(t *testing.T) {
	spec := loadOFREPSpec(t)
	e := rolloutEnv(t)
	ctx := context.Background()
	operator := e.viewer
	if _, secret, err := e.svc.CreateToken(ctx, control.Change{Actor: "test"}, "ofrep-operator", domain.RoleOperator); err == nil {
		operator = secret
	} else {
		t.Fatal(err)
	}
	huge := `{"context":{"targetingKey":"p-new","blob":"` + strings.Repeat("x", 2<<20) + `"}}`
	ctxOf := func(partner string) string {
		return `{"context":{"targetingKey":"` + partner + `","eventType":"ticket"}}`
	}
	const v2, v3 = "/psa-webhooks-v2", "/psa-webhooks-v3"
	one := func(s string) []string { return []string{s} }
	calls := []ofrepCall{
		{name: "legacy", path: v2, body: ctxOf("p-legacy"), status: 200, want: one("TARGETING_MATCH")},
		{name: "shadow", path: v2, body: ctxOf("p-shadow"), status: 200, want: one("TARGETING_MATCH")},
		{name: "new", path: v2, body: ctxOf("p-new"), status: 200, want: one("TARGETING_MATCH")},
		{name: "done", path: v2, body: ctxOf("p-done"), status: 200, want: one("TARGETING_MATCH")},
		{name: "reverted", path: v3, body: ctxOf("p-new"), status: 200, want: one("DISABLED")},
		{name: "unknown partner", path: v2, body: ctxOf("nobody"), status: 200, want: one("STATIC")},
		{name: "unknown partner of a reverted migration", path: v3, body: ctxOf("nobody"), status: 200, want: one("STATIC")},
		{name: "X-API-Key", path: v2, body: ctxOf("p-new"), token: "-", header: map[string]string{"X-API-Key": e.viewer}, status: 200, want: one("TARGETING_MATCH")},
		{name: "router token", path: v2, body: ctxOf("p-new"), token: e.router, status: 200, want: one("TARGETING_MATCH")},
		{name: "operator token", path: v2, body: ctxOf("p-new"), token: operator, status: 200, want: one("TARGETING_MATCH")},
		{name: "admin token", path: v2, body: ctxOf("p-new"), token: e.admin, status: 200, want: one("TARGETING_MATCH")},
		{name: "not JSON", path: v2, body: `{"context":`, status: 400, want: one("PARSE_ERROR")},
		{name: "body over 1 MiB", path: v2, body: huge, status: 400, want: one("PARSE_ERROR")},
		{name: "context not an object", path: v2, body: `{"context":[1,2]}`, status: 400, want: one("INVALID_CONTEXT")},
		{name: "targetingKey not a string", path: v2, body: `{"context":{"targetingKey":42}}`, status: 400, want: one("INVALID_CONTEXT")},
		{name: "no targetingKey", path: v2, body: `{"context":{"eventType":"ticket"}}`, status: 400, want: one("TARGETING_KEY_MISSING")},
		{name: "no body", path: v2, body: ``, status: 400, want: one("TARGETING_KEY_MISSING")},
		{name: "unknown flag", path: "/no-such-migration", body: ctxOf("p-new"), status: 404, want: one("FLAG_NOT_FOUND")},
		{name: "unknown flag without targetingKey", path: "/no-such-migration", body: `{"context":{}}`, status: 404, want: one("FLAG_NOT_FOUND")},
		{name: "no token", path: v2, body: ctxOf("p-new"), token: "-", status: 401},
		{name: "wrong token", path: v2, body: ctxOf("p-new"), token: "wrong", status: 401},
		{name: "wrong X-API-Key", path: v2, body: ctxOf("p-new"), token: "-", header: map[string]string{"X-API-Key": "wrong"}, status: 401},

		{name: "bulk", body: ctxOf("p-shadow"), status: 200, want: []string{"TARGETING_MATCH", "DISABLED"}},
		{name: "bulk for an unknown partner", body: ctxOf("nobody"), status: 200, want: []string{"STATIC", "STATIC"}},
		{name: "bulk with a router token", body: ctxOf("p-new"), token: e.router, status: 200, want: []string{"TARGETING_MATCH", "DISABLED"}},
		{name: "bulk not JSON", body: `nope`, status: 400, want: one("PARSE_ERROR")},
		{name: "bulk body over 1 MiB", body: huge, status: 400, want: one("PARSE_ERROR")},
		{name: "bulk context not an object", body: `{"context":"acme"}`, status: 400, want: one("INVALID_CONTEXT")},
		{name: "bulk without targetingKey", body: `{"context":{}}`, status: 400, want: one("TARGETING_KEY_MISSING")},
		{name: "bulk no token", body: ctxOf("p-new"), token: "-", status: 401},
		{name: "bulk wrong token", body: ctxOf("p-new"), token: "wrong", status: 401},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			req, resp, body := callOFREP(t, e, c)
			if resp.StatusCode != c.status {
				t.Fatalf("status = %d (%s), want %d", resp.StatusCode, body, c.status)
			}
			if err := spec.validate(req, resp.StatusCode, resp.Header, body); err != nil {
				t.Fatalf("the answer does not match the OFREP document: %v\nbody: %.500s", err, body)
			}
			if got := ofrepOutcome(t, resp.StatusCode, body); fmt.Sprint(got) != fmt.Sprint(c.want) {
				t.Errorf("reasons or error code = %v, want %v", got, c.want)
			}
		})
	}

	t.Run("bulk 304", func(t *testing.T) {
		first := ofrepCall{body: ctxOf("p-new")}
		_, resp, _ := callOFREP(t, e, first)
		etag := resp.Header.Get("ETag")
		if etag == "" {
			t.Fatal("the bulk answer has no ETag")
		}
		again := first
		again.header = map[string]string{"If-None-Match": etag}
		req, resp, body := callOFREP(t, e, again)
		if resp.StatusCode != http.StatusNotModified || resp.Header.Get("ETag") != etag {
			t.Fatalf("same ETag = %d with ETag %q, want 304 with %q", resp.StatusCode, resp.Header.Get("ETag"), etag)
		}
		if err := spec.validate(req, resp.StatusCode, resp.Header, body); err != nil {
			t.Fatal(err)
		}
	})

	t.Run("bulk without migrations", func(t *testing.T) {
		empty := newStreamEnv(t)
		req, resp, body := callOFREP(t, empty, ofrepCall{body: ctxOf("p-new")})
		if resp.StatusCode != 200 || strings.TrimSpace(string(body)) != `{"flags":[]}` {
			t.Fatalf("got %d %s, want 200 {\"flags\":[]}", resp.StatusCode, body)
		}
		if err := spec.validate(req, resp.StatusCode, resp.Header, body); err != nil {
			t.Fatal(err)
		}
	})
}

// Every evaluation error the flags package can give, including those no
// request to a running server can bring about (a snapshot not built yet, a
// stage this build cannot read), is answered in a shape of the document,
// alone and as an item of a bulk answer.
func TestOFREPEvaluationErrorsMatchTheOpenAPIDocument(t *testing.T) {
	spec := loadOFREPSpec(t)
	var notBuilt *flags.Snapshot
	snap := &flags.Snapshot{Version: 7, Migrations: map[string]*flags.Migration{
		"m": {Stages: map[string]string{"odd": "a-stage-from-the-future"}}}}
	tests := []struct {
		name   string
		res    flags.Resolution
		status int
		code   string
	}{
		{"flag not found", snap.Evaluate("nope", "p"), 404, "FLAG_NOT_FOUND"},
		{"targeting key missing", snap.Evaluate("m", ""), 400, "TARGETING_KEY_MISSING"},
		{"unreadable stage", snap.Evaluate("m", "odd"), 400, "PARSE_ERROR"},
		{"snapshot not built", notBuilt.Evaluate("m", "p"), 500, "GENERAL"},
		{"a code the document does not know", flags.Resolution{Value: flags.Legacy, Reason: flags.ReasonError, ErrorCode: "SOMETHING_NEW"}, 500, "GENERAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			httpapi.WriteOFREPAnswer(rec, "m", tt.res)
			req := httptest.NewRequest(http.MethodPost, "/ofrep/v1/evaluate/flags/m", nil)
			body := rec.Body.Bytes()
			if rec.Code != tt.status {
				t.Fatalf("status = %d (%s), want %d", rec.Code, body, tt.status)
			}
			if err := spec.validate(req, rec.Code, rec.Header(), body); err != nil {
				t.Fatalf("the answer does not match the OFREP document: %v\nbody: %s", err, body)
			}
			if got := ofrepOutcome(t, rec.Code, body); fmt.Sprint(got) != "["+tt.code+"]" {
				t.Errorf("errorCode = %v, want %s", got, tt.code)
			}
			if tt.code == "FLAG_NOT_FOUND" {
				return // never an item of a bulk answer, which evaluates existing flags only
			}
			item, _ := json.Marshal(map[string]any{"flags": []any{httpapi.OFREPBulkItem("m", tt.res)}})
			bulk := httptest.NewRequest(http.MethodPost, "/ofrep/v1/evaluate/flags", nil)
			if err := spec.validate(bulk, http.StatusOK, jsonHeader(), item); err != nil {
				t.Fatalf("the bulk item does not match the OFREP document: %v\nbody: %s", err, item)
			}
		})
	}
}

// callOFREP sends c to e's OFREP endpoints and reads the answer.
func callOFREP(t *testing.T, e *streamEnv, c ofrepCall) (*http.Request, *http.Response, []byte) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, e.srv.URL+"/ofrep/v1/evaluate/flags"+c.path, strings.NewReader(c.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	switch c.token {
	case "-":
	case "":
		req.Header.Set("Authorization", "Bearer "+e.viewer)
	default:
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	for k, v := range c.header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return req, resp, body
}

// ofrepOutcome reads the reasons of a success, or the errorCode of an
// OFREP failure; for a 401 it checks the API's error envelope instead.
func ofrepOutcome(t *testing.T, status int, body []byte) []string {
	t.Helper()
	var out struct {
		Reason    string `json:"reason"`
		ErrorCode string `json:"errorCode"`
		Flags     []struct {
			Reason, ErrorCode string
		} `json:"flags"`
		Error *struct{ Code, Message string } `json:"error"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		t.Fatalf("the answer is not JSON: %s", body)
	}
	switch {
	case status == http.StatusUnauthorized:
		if out.Error == nil || out.Error.Code != "unauthenticated" || out.Error.Message == "" {
			t.Errorf("a 401 without the API's error envelope: %s", body)
		}
		return nil
	case out.ErrorCode != "":
		return []string{out.ErrorCode}
	case out.Flags != nil:
		var got []string
		for _, f := range out.Flags {
			got = append(got, f.Reason+f.ErrorCode)
		}
		return got
	}
	return []string{out.Reason}
}
