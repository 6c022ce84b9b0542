package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk-contrib/providers/ofrep"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// rolloutEnv holds partners at every stage of one migration and a second,
// reverted migration.
func rolloutEnv(t *testing.T) *streamEnv {
	t.Helper()
	e := newStreamEnv(t)
	ctx := context.Background()
	c := control.Change{Actor: "test", Reason: "setup"}
	for _, key := range []string{"psa-webhooks-v2", "psa-webhooks-v3"} {
		m := domain.Migration{Key: key, Pipelines: domain.Pipelines{
			Legacy: domain.Pipeline{URL: "http://127.0.0.1:9/legacy"}, New: domain.Pipeline{URL: "http://127.0.0.1:9/new"}},
			Gates: domain.DefaultGates(), Guard: domain.DefaultGuard()}
		if _, _, err := e.svc.PutMigration(ctx, c, m); err != nil {
			t.Fatal(err)
		}
	}
	stages := map[string]domain.Stage{"p-legacy": domain.StageLegacy, "p-shadow": domain.StageShadow, "p-new": domain.StageNew, "p-done": domain.StageDone}
	for id, target := range stages {
		e.addPartner(t, id, "secret-"+id)
		for st := domain.StageLegacy; st != target; {
			st, _ = st.Next()
			for _, key := range []string{"psa-webhooks-v2", "psa-webhooks-v3"} {
				if _, err := e.svc.SetStage(ctx, c, key, id, st, true); err != nil {
					t.Fatal(err)
				}
			}
		}
	}
	if _, err := e.svc.Revert(ctx, c, "psa-webhooks-v3"); err != nil {
		t.Fatal(err)
	}
	return e
}

// answer is what every evaluation path must agree on.
type answer struct {
	Value, Variant, Reason, ErrorCode, Stage, Shadow string
}

// evaluateAPI asks POST /v1/evaluate.
func evaluateAPI(t *testing.T, e *streamEnv, flag, partner string) answer {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"flag": flag, "context": map[string]any{"targetingKey": partner, "eventType": "ticket"}})
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+"/v1/evaluate", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+e.viewer)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out struct {
		Value, Variant, Reason, ErrorCode string
		Metadata                          struct{ Shadow, Stage string }
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return answer{out.Value, out.Variant, out.Reason, out.ErrorCode, out.Metadata.Stage, out.Metadata.Shadow}
}

// fromDetails turns an OpenFeature evaluation into an answer.
func fromDetails(d openfeature.StringEvaluationDetails) answer {
	a := answer{Value: d.Value, Variant: d.Variant, Reason: string(d.Reason), ErrorCode: string(d.ErrorCode)}
	if d.FlagMetadata != nil {
		a.Stage, _ = d.FlagMetadata["stage"].(string)
		a.Shadow, _ = d.FlagMetadata["shadow"].(string)
	}
	return a
}

// asOFREP is answer a as OFREP gives it: the OFREP document has no
// DEFAULT reason, and OFREP says STATIC instead.
func asOFREP(a answer) answer {
	if a.Reason == "DEFAULT" {
		a.Reason = "STATIC"
	}
	return a
}

// ofrepClient is the official OpenFeature OFREP provider, registered in an
// isolated OpenFeature API.
func ofrepClient(t *testing.T, e *streamEnv, auth ofrep.Option) *openfeature.Client {
	t.Helper()
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(context.Background(), ofrep.NewProvider(e.srv.URL, auth)); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { api.Shutdown(context.Background()) })
	return api.NewClient()
}

// The official OFREP provider, a client nobody here wrote, gets the same
// answers as /v1/evaluate on every reason and error path, but for the one
// reason OFREP names otherwise.
func TestOFREPProviderAgreesWithEvaluate(t *testing.T) {
	e := rolloutEnv(t)
	bearer := ofrepClient(t, e, ofrep.WithBearerToken(e.viewer))
	apiKey := ofrepClient(t, e, ofrep.WithApiKeyAuth(e.viewer))
	tests := []struct {
		name, flag, partner string
		want                answer
	}{
		{"legacy", "psa-webhooks-v2", "p-legacy", answer{"legacy", "legacy", "TARGETING_MATCH", "", "legacy", ""}},
		{"shadow", "psa-webhooks-v2", "p-shadow", answer{"legacy", "shadow", "TARGETING_MATCH", "", "shadow", "new"}},
		{"new", "psa-webhooks-v2", "p-new", answer{"new", "new", "TARGETING_MATCH", "", "new", "legacy"}},
		{"done", "psa-webhooks-v2", "p-done", answer{"new", "done", "TARGETING_MATCH", "", "done", ""}},
		{"reverted", "psa-webhooks-v3", "p-new", answer{"legacy", "legacy", "DISABLED", "", "new", ""}},
		{"unknown partner", "psa-webhooks-v2", "nobody", answer{"legacy", "legacy", "DEFAULT", "", "", ""}},
		{"unknown flag", "no-such-migration", "p-new", answer{"legacy", "", "ERROR", "FLAG_NOT_FOUND", "", ""}},
		{"no targeting key", "psa-webhooks-v2", "", answer{"legacy", "", "ERROR", "TARGETING_KEY_MISSING", "", ""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := evaluateAPI(t, e, tt.flag, tt.partner); got != tt.want {
				t.Errorf("/v1/evaluate = %+v, want %+v", got, tt.want)
			}
			want := asOFREP(tt.want)
			for name, client := range map[string]*openfeature.Client{"bearer": bearer, "X-API-Key": apiKey} {
				ec := openfeature.NewEvaluationContext(tt.partner, map[string]any{"eventType": "ticket"})
				d, _ := client.StringValueDetails(context.Background(), tt.flag, "legacy", ec)
				got := fromDetails(d)
				if tt.want.ErrorCode != "" {
					// The OFREP provider carries no metadata on errors.
					got.Stage, got.Shadow = "", ""
				}
				if got != want {
					t.Errorf("OFREP provider (%s) = %+v, want %+v", name, got, want)
				}
			}
		})
	}
}

func postOFREP(t *testing.T, e *streamEnv, path, body string, header map[string]string) (*http.Response, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.srv.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+e.viewer)
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	if len(data) > 0 {
		if err := json.Unmarshal(data, &out); err != nil {
			t.Fatalf("%s: body %q is not JSON", path, data)
		}
	}
	return resp, out
}

func TestOFREPBadRequests(t *testing.T) {
	e := rolloutEnv(t)
	huge := `{"context":{"targetingKey":"p-new","blob":"` + strings.Repeat("x", 2<<20) + `"}}`
	tests := []struct {
		name, path, body string
		status           int
		code             string
	}{
		{"not JSON", "/ofrep/v1/evaluate/flags/psa-webhooks-v2", `{"context":`, 400, "PARSE_ERROR"},
		{"no context", "/ofrep/v1/evaluate/flags/psa-webhooks-v2", `{}`, 400, "TARGETING_KEY_MISSING"},
		{"empty body", "/ofrep/v1/evaluate/flags/psa-webhooks-v2", ``, 400, "TARGETING_KEY_MISSING"},
		{"no targeting key", "/ofrep/v1/evaluate/flags/psa-webhooks-v2", `{"context":{"eventType":"ticket"}}`, 400, "TARGETING_KEY_MISSING"},
		{"context not an object", "/ofrep/v1/evaluate/flags/psa-webhooks-v2", `{"context":[1,2]}`, 400, "INVALID_CONTEXT"},
		{"targeting key not a string", "/ofrep/v1/evaluate/flags/psa-webhooks-v2", `{"context":{"targetingKey":42}}`, 400, "INVALID_CONTEXT"},
		{"unknown flag", "/ofrep/v1/evaluate/flags/nope", `{"context":{"targetingKey":"p-new"}}`, 404, "FLAG_NOT_FOUND"},
		{"unknown flag without a targeting key", "/ofrep/v1/evaluate/flags/nope", `{"context":{}}`, 404, "FLAG_NOT_FOUND"},
		{"huge context", "/ofrep/v1/evaluate/flags/psa-webhooks-v2", huge, 400, "PARSE_ERROR"},
		{"bulk huge context", "/ofrep/v1/evaluate/flags", huge, 400, "PARSE_ERROR"},
		{"bulk without targeting key", "/ofrep/v1/evaluate/flags", `{"context":{}}`, 400, "TARGETING_KEY_MISSING"},
		{"bulk not JSON", "/ofrep/v1/evaluate/flags", `nope`, 400, "PARSE_ERROR"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, body := postOFREP(t, e, tt.path, tt.body, nil)
			if resp.StatusCode != tt.status || body["errorCode"] != tt.code {
				t.Errorf("got %d %v, want %d %s", resp.StatusCode, body["errorCode"], tt.status, tt.code)
			}
			if body["value"] != "legacy" {
				t.Errorf("value = %v, want the safe legacy even on errors", body["value"])
			}
			if d, _ := body["errorDetails"].(string); d == "" {
				t.Errorf("no errorDetails")
			}
		})
	}
	resp, _ := postOFREP(t, e, "/ofrep/v1/evaluate/flags/psa-webhooks-v2", `{"context":{"targetingKey":"p-new"}}`, map[string]string{"Authorization": "Bearer wrong"})
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("bad token = %d, want 401", resp.StatusCode)
	}
}

func TestOFREPBulkETag(t *testing.T) {
	e := rolloutEnv(t)
	const body = `{"context":{"targetingKey":"p-shadow"}}`
	resp, out := postOFREP(t, e, "/ofrep/v1/evaluate/flags", body, nil)
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != 200 || etag == "" || strings.HasPrefix(etag, "W/") {
		t.Fatalf("bulk = %d with ETag %q, want 200 and a strong ETag", resp.StatusCode, etag)
	}
	flags, _ := out["flags"].([]any)
	if len(flags) != 2 {
		t.Fatalf("bulk returned %d flags, want 2: %v", len(flags), out)
	}
	if resp, _ := postOFREP(t, e, "/ofrep/v1/evaluate/flags", body, map[string]string{"If-None-Match": etag}); resp.StatusCode != http.StatusNotModified {
		t.Errorf("same ETag = %d, want 304", resp.StatusCode)
	}
	// The answer carries the snapshot version in its metadata, so any new
	// version changes the ETag; a revert must.
	if _, err := e.svc.Revert(context.Background(), control.Change{Actor: "test"}, "psa-webhooks-v2"); err != nil {
		t.Fatal(err)
	}
	resp, out = postOFREP(t, e, "/ofrep/v1/evaluate/flags", body, map[string]string{"If-None-Match": etag})
	if resp.StatusCode != 200 || resp.Header.Get("ETag") == etag {
		t.Errorf("after a revert = %d with ETag %q, want 200 and a new ETag", resp.StatusCode, resp.Header.Get("ETag"))
	}
	if got := fmt.Sprint(out["flags"]); !strings.Contains(got, "DISABLED") {
		t.Errorf("bulk after revert = %s, want DISABLED", got)
	}
}
