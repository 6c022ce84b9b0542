package httpapi_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
)

// benchAPI is an API over a control service with n partners, half of them
// in shadow, and the viewer token to call it with.
func benchAPI(b *testing.B, n int) (*httpapi.API, string) {
	b.Helper()
	ctx := context.Background()
	svc, err := control.New(ctx, bolttest.Open(b), control.Options{Logger: discardLogger()})
	if err != nil {
		b.Fatal(err)
	}
	c := control.Change{Actor: "bench"}
	m := domain.Migration{Key: "psa-webhooks-v2", Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(),
		Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://127.0.0.1:9/l"}, New: domain.Pipeline{URL: "http://127.0.0.1:9/n"}}}
	if _, _, err := svc.PutMigration(ctx, c, m); err != nil {
		b.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("partner-%05d", i)
		if _, _, err := svc.PutPartner(ctx, c, control.PartnerInput{ID: id, Name: id, PSA: domain.PSAGeneric}); err != nil {
			b.Fatal(err)
		}
		if i%2 == 0 {
			if _, err := svc.SetStage(ctx, c, m.Key, id, domain.StageShadow, false); err != nil {
				b.Fatal(err)
			}
		}
	}
	_, viewer, err := svc.CreateToken(ctx, c, "viewer", domain.RoleViewer)
	if err != nil {
		b.Fatal(err)
	}
	return httpapi.New(svc, discardLogger(), prometheus.NewRegistry()), viewer
}

// BenchmarkEvaluateHandler measures POST /v1/evaluate through the whole
// handler stack (routing, auth, JSON in and out, metrics), without a network.
func BenchmarkEvaluateHandler(b *testing.B) {
	for _, n := range []int{10, 1000} {
		b.Run(fmt.Sprintf("partners=%d", n), func(b *testing.B) {
			api, token := benchAPI(b, n)
			body := `{"flag":"psa-webhooks-v2","context":{"targetingKey":"partner-00002","eventType":"ticket"}}`
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/evaluate", strings.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+token)
				req.Header.Set("Content-Type", "application/json")
				w := httptest.NewRecorder()
				api.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

// BenchmarkOFREPHandler is the same for the OFREP single evaluation.
func BenchmarkOFREPHandler(b *testing.B) {
	api, token := benchAPI(b, 1000)
	body := `{"context":{"targetingKey":"partner-00002","eventType":"ticket"}}`
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest(http.MethodPost, "/ofrep/v1/evaluate/flags/psa-webhooks-v2", strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		w := httptest.NewRecorder()
		api.ServeHTTP(w, req)
		if w.Code != http.StatusOK {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
