package flags_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/switchbackhq/switchback/flags"
)

// BenchmarkProviderEvaluate measures one evaluation of a migration flag
// with 10,000 partners: through the provider's own Resolve (target: at most
// 100 ns and no allocation) and through an OpenFeature client (target: at
// most 1 µs). The provider routes from its snapshot file with the control
// service down, as a router restarted during an outage does, so no network
// is in the measurement.
func BenchmarkProviderEvaluate(b *testing.B) {
	const partners = 10000
	file := filepath.Join(b.TempDir(), "snapshot.json")
	if err := os.WriteFile(file, benchSnapshotFile(b, partners), 0o600); err != nil {
		b.Fatal(err)
	}
	down := httptest.NewServer(nil)
	down.Close()
	provider, err := flags.NewProvider(flags.Options{
		URL: down.URL, Token: "router-token", SnapshotFile: file,
		Logger:     slog.New(slog.DiscardHandler),
		MinBackoff: time.Second, MaxBackoff: time.Minute, StaleGrace: time.Hour,
	})
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	api := isolated.NewAPI()
	defer func() { _ = api.Shutdown(ctx) }()
	if err := api.SetProviderAndWait(ctx, provider); err != nil {
		b.Fatal(err)
	}
	client := api.NewClient()

	keys := make([]string, partners)
	evalCtxs := make([]openfeature.EvaluationContext, partners)
	for i := range keys {
		keys[i] = "p-" + strconv.Itoa(i)
		evalCtxs[i] = openfeature.NewEvaluationContext(keys[i], map[string]any{"eventType": "ticket"})
	}

	b.Run("Resolve", func(b *testing.B) {
		b.ReportAllocs()
		var r flags.Resolution
		i := 0
		for b.Loop() {
			r = provider.Resolve("psa-webhooks-v2", keys[i%partners])
			i++
		}
		if r.Reason != flags.ReasonTargetingMatch {
			b.Fatalf("Resolve: got %+v", r)
		}
	})

	b.Run("OpenFeatureClient", func(b *testing.B) {
		b.ReportAllocs()
		var d openfeature.StringEvaluationDetails
		i := 0
		for b.Loop() {
			d, _ = client.StringValueDetails(ctx, "psa-webhooks-v2", flags.Legacy, evalCtxs[i%partners])
			i++
		}
		if d.Reason != openfeature.TargetingMatchReason {
			b.Fatalf("StringValueDetails: got %+v", d)
		}
	})
}

// benchSnapshotFile is a snapshot file of schema 1 with n partners
// p-0…p-(n-1) spread over the four stages of psa-webhooks-v2.
func benchSnapshotFile(b *testing.B, n int) []byte {
	b.Helper()
	type migration struct {
		Seq      int               `json:"seq"`
		Reverted bool              `json:"reverted"`
		Stages   map[string]string `json:"stages"`
	}
	type partner struct {
		Name string `json:"name"`
		PSA  string `json:"psa"`
	}
	stages := []string{flags.StageLegacy, flags.StageShadow, flags.StageNew, flags.StageDone}
	m := migration{Seq: 1, Stages: make(map[string]string, n)}
	ps := make(map[string]partner, n)
	for i := range n {
		id := "p-" + strconv.Itoa(i)
		ps[id] = partner{Name: id, PSA: "connectwise"}
		if st := stages[i%len(stages)]; st != flags.StageLegacy {
			m.Stages[id] = st
		}
	}
	out, err := json.Marshal(map[string]any{
		"schema": 1,
		"snapshot": map[string]any{
			"version":    1,
			"builtAt":    "2026-03-01T12:00:00Z",
			"migrations": map[string]migration{"psa-webhooks-v2": m},
			"partners":   ps,
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	return out
}
