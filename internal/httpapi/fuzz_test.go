package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/httpapi"
)

// statusOfCode is API.md's table of error codes to statuses, as the fuzz
// targets check it.
var statusOfCode = map[string]int{
	"invalid_argument":       http.StatusBadRequest,
	"unauthenticated":        http.StatusUnauthorized,
	"permission_denied":      http.StatusForbidden,
	"not_found":              http.StatusNotFound,
	"method_not_allowed":     http.StatusMethodNotAllowed,
	"conflict":               http.StatusConflict,
	"invalid_transition":     http.StatusConflict,
	"gate_refused":           http.StatusConflict,
	"migration_reverted":     http.StatusConflict,
	"body_too_large":         http.StatusRequestEntityTooLarge,
	"unsupported_media_type": http.StatusUnsupportedMediaType,
}

// fuzzAPI is an API on a real bbolt store (without fsync, for speed) with
// the partners acme, globex and initech, the migration tickets and the
// cohort first holding acme and globex.
func fuzzAPI(f *testing.F) *httpapi.API {
	f.Helper()
	ctx := context.Background()
	store := bolttest.Open(f)
	store.DB().NoSync = true
	svc, err := control.New(ctx, store, control.Options{Now: func() time.Time { return fixedNow }, Logger: discardLogger()})
	if err != nil {
		f.Fatalf("control.New: %v", err)
	}
	if _, _, err := svc.Bootstrap(ctx, adminSecret); err != nil {
		f.Fatalf("Bootstrap: %v", err)
	}
	a := httpapi.New(svc, discardLogger(), prometheus.NewRegistry())
	seed := []struct {
		method, path, body string
	}{
		{http.MethodPut, "/v1/partners/acme", `{"name":"Acme","psa":"generic","secret":"` + acmeSecret + `"}`},
		{http.MethodPut, "/v1/partners/globex", `{"name":"Globex","psa":"connectwise"}`},
		{http.MethodPut, "/v1/partners/initech", `{"name":"Initech","psa":"autotask"}`},
		{http.MethodPut, mig, `{"pipelines":{"legacy":{"url":"http://legacy.internal"},"new":{"url":"http://new.internal"}}}`},
		{http.MethodPut, mig + "/cohorts/first", `{"order":1,"partners":["acme","globex"]}`},
	}
	for _, s := range seed {
		rec := serve(a, s.method, s.path, []byte(s.body))
		if rec.Code != http.StatusCreated {
			f.Fatalf("seed %s %s: got %d %s, want 201", s.method, s.path, rec.Code, rec.Body)
		}
	}
	return a
}

func serve(a *httpapi.API, method, path string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(method, path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminSecret)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	a.ServeHTTP(rec, req)
	return rec
}

// checkFuzzResponse asserts the invariants of any answer: never a 5xx,
// always JSON, and every error in the envelope with a known code whose
// status is the one API.md gives it.
func checkFuzzResponse(t *testing.T, rec *httptest.ResponseRecorder, body []byte) {
	t.Helper()
	if rec.Code >= 500 {
		t.Fatalf("body %q: got status %d %s, want no 5xx", body, rec.Code, rec.Body)
	}
	if !json.Valid(rec.Body.Bytes()) {
		t.Fatalf("body %q: got status %d with a body that is not JSON: %q", body, rec.Code, rec.Body)
	}
	if rec.Code >= 200 && rec.Code < 300 {
		return
	}
	var env struct {
		Error *struct {
			Code    *string `json:"code"`
			Message *string `json:"message"`
		} `json:"error"`
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Error == nil || env.Error.Code == nil || env.Error.Message == nil {
		t.Fatalf("body %q: got %d %s, want the error envelope", body, rec.Code, rec.Body)
	}
	want, known := statusOfCode[*env.Error.Code]
	if !known {
		t.Fatalf("body %q: got unknown error code %q (%d %s)", body, *env.Error.Code, rec.Code, rec.Body)
	}
	if rec.Code != want {
		t.Fatalf("body %q: got status %d for code %q, want %d", body, rec.Code, *env.Error.Code, want)
	}
	if *env.Error.Message == "" {
		t.Fatalf("body %q: got an empty error message (%d %s)", body, rec.Code, rec.Body)
	}
	if leak := goTypeIn(*env.Error.Message); leak != "" {
		t.Fatalf("body %q: got the message %q, which names a Go type (%q)", body, *env.Error.Message, leak)
	}
	if bytes.Contains(rec.Body.Bytes(), []byte(acmeSecret)) {
		t.Fatalf("body %q: the answer holds acme's webhook secret: %s", body, rec.Body)
	}
}

func fuzzEndpoint(f *testing.F, method, path string) {
	a := fuzzAPI(f)
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := serve(a, method, path, body)
		checkFuzzResponse(t, rec, body)
	})
}

func FuzzPutPartner(f *testing.F) {
	fuzzEndpoint(f, http.MethodPut, "/v1/partners/fuzzed")
}

func FuzzPutMigration(f *testing.F) {
	fuzzEndpoint(f, http.MethodPut, "/v1/migrations/fuzzed")
}

func FuzzPutStage(f *testing.F) {
	fuzzEndpoint(f, http.MethodPut, mig+"/partners/initech")
}

func FuzzPutCohort(f *testing.F) {
	fuzzEndpoint(f, http.MethodPut, mig+"/cohorts/fuzzed")
}

func FuzzAdvance(f *testing.F) {
	fuzzEndpoint(f, http.MethodPost, mig+"/cohorts/first/advance")
}

func FuzzEvaluate(f *testing.F) {
	fuzzEndpoint(f, http.MethodPost, "/v1/evaluate")
}
