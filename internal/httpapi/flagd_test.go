package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/open-feature/flagd/core/pkg/logger"
	flagdsync "github.com/open-feature/flagd/core/pkg/sync"
	flagdhttp "github.com/open-feature/flagd/core/pkg/sync/http"
	"go.uber.org/zap"

	"github.com/switchbackhq/switchback/internal/flagd"
	"github.com/switchbackhq/switchback/internal/flagd/flagdtest"
)

// flagd's own HTTP source (flagd core's http sync, with a viewer token as
// its Bearer authHeader) fetches GET /v1/flagd/flags.json; flagd's
// evaluator loads it under its schemas and answers KEY and KEY:shadow as
// POST /v1/evaluate does, for a partner at each stage, one unknown and a
// reverted migration. No webhook secret is in the document.
func TestFlagdFlagsJSON(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/partners/umbrella", obj{"name": "Umbrella", "psa": "generic", "reason": "seed"}, nil)
	f.moveTo(t, "tickets", "acme", "done")
	f.moveTo(t, "tickets", "globex", "new")
	f.moveTo(t, "tickets", "initech", "shadow")
	f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/migrations/billing", migrationBody("billing"), nil)
	f.moveTo(t, "billing", "acme", "new")
	f.moveTo(t, "billing", "globex", "shadow")
	f.must(t, http.StatusOK, "operator", http.MethodPost, "/v1/migrations/billing/revert", obj{"reason": "test"}, nil)

	source := flagdhttp.NewHTTP(flagdsync.SourceConfig{URI: f.srv.URL + "/v1/flagd/flags.json", Provider: "http",
		AuthHeader: "Bearer " + f.tok["viewer"]}, logger.NewLogger(zap.NewNop(), false), nil, 5)
	doc, err := source.Fetch(context.Background())
	if err != nil {
		t.Fatalf("flagd's HTTP source: %v", err)
	}
	for _, secret := range []string{acmeSecret, "globex-secret-value"} {
		if strings.Contains(doc, secret) {
			t.Fatalf("flags.json holds a partner's webhook secret")
		}
	}
	ev := flagdtest.New(t)
	ev.Load(t, []byte(doc))
	for _, key := range []string{"tickets", "billing"} {
		for _, p := range []string{"acme", "globex", "initech", "umbrella", "unknown"} {
			want := f.evaluate(t, key, p)
			shadow := want.Metadata.Shadow
			if shadow == "" {
				shadow = flagd.None
			}
			if got, _, err := ev.String(key, p); got != want.Value || err != nil {
				t.Errorf("flagd %s for %s: %q, %v; /v1/evaluate: %q", key, p, got, err, want.Value)
			}
			if got, _, err := ev.String(key+flagd.ShadowSuffix, p); got != shadow || err != nil {
				t.Errorf("flagd %s:shadow for %s: %q, %v; /v1/evaluate's shadow: %q", key, p, got, err, shadow)
			}
		}
	}

	// The source polls with the ETag it was given: nothing new until a
	// change, then the new document.
	if again, err := source.Fetch(context.Background()); again != "" || err != nil {
		t.Errorf("a poll without a change: %d bytes, %v; want 304 (nothing)", len(again), err)
	}
	f.must(t, http.StatusOK, "operator", http.MethodPost, "/v1/migrations/billing/resume", obj{"reason": "test"}, nil)
	next, err := source.Fetch(context.Background())
	if err != nil || next == "" || next == doc {
		t.Fatalf("a poll after a change: %d bytes, %v; want the new document", len(next), err)
	}
	ev.Load(t, []byte(next))
	if got, _, _ := ev.String("billing", "acme"); got != "new" {
		t.Errorf("billing for acme after the resume: %q, want new", got)
	}
}

func TestFlagdFlagsJSONETagAndSelector(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	first := f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/flagd/flags.json", nil, nil)
	etag := first.header.Get("ETag")
	if etag == "" || first.header.Get("Content-Type") != "application/json" {
		t.Fatalf("GET /v1/flagd/flags.json: ETag %q, Content-Type %q", etag, first.header.Get("Content-Type"))
	}
	res := f.do(t, request{method: http.MethodGet, path: "/v1/flagd/flags.json", as: "router", header: map[string]string{"If-None-Match": etag}})
	if res.status != http.StatusNotModified || len(res.body) != 0 {
		t.Errorf("with its ETag: got %s, want 304 without a body", res)
	}
	f.setStage(t, "tickets", "acme", "shadow", false)
	res = f.do(t, request{method: http.MethodGet, path: "/v1/flagd/flags.json", as: "viewer", header: map[string]string{"If-None-Match": etag}})
	if res.status != http.StatusOK || res.header.Get("ETag") == etag {
		t.Errorf("the old ETag after a change: got %s with ETag %q, want 200 and a new ETag", res, res.header.Get("ETag"))
	}

	one := f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/flagd/flags.json?selector=tickets", nil, nil)
	flagdtest.Validate(t, one.body)
	if !strings.Contains(string(one.body), `"tickets:shadow"`) {
		t.Errorf("selector tickets: %s", one.body)
	}
	none := f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/flagd/flags.json?selector=later", nil, nil)
	if strings.Contains(string(none.body), "tickets") {
		t.Errorf("selector later (no such migration yet): %s, want no flags", none.body)
	}
	checkError(t, f.call(t, "viewer", http.MethodGet, "/v1/flagd/flags.json?selector=flagSetId%3Dx", nil), http.StatusBadRequest, "invalid_argument")
}
