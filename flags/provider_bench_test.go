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
// with 10,000 partners: through the provider's own Resolve and its
// StringEvaluation (what the SDK calls; target: at most 100 ns and no
// allocation), and through OpenFeature go-sdk clients in the same run:
// with the flags provider, with the SDK's NoopProvider (the SDK alone),
// and with a stub that answers the flags provider's answer at once. The
// provider routes from its snapshot file with the control service down,
// as a router restarted during an outage does, so no network is in the
// measurement. BenchmarkProviderShare takes the differences.
func BenchmarkProviderEvaluate(b *testing.B) {
	const partners = 10000
	bp := newBenchProviders(b, partners)
	ctx := context.Background()

	b.Run("Resolve", func(b *testing.B) {
		b.ReportAllocs()
		var r flags.Resolution
		i := 0
		for b.Loop() {
			r = bp.provider.Resolve("psa-webhooks-v2", bp.keys[i%partners])
			i++
		}
		if r.Reason != flags.ReasonTargetingMatch {
			b.Fatalf("Resolve: got %+v", r)
		}
	})

	b.Run("StringEvaluation", func(b *testing.B) {
		// The provider's method as the SDK calls it, with the flattened
		// context the SDK builds: the provider's whole part of a client
		// evaluation.
		flats := make([]openfeature.FlattenedContext, partners)
		for i := range flats {
			flats[i] = openfeature.FlattenedContext{openfeature.TargetingKey: bp.keys[i], "eventType": "ticket"}
		}
		b.ReportAllocs()
		var d openfeature.StringResolutionDetail
		i := 0
		for b.Loop() {
			d = bp.provider.StringEvaluation(ctx, "psa-webhooks-v2", flags.Legacy, flats[i%partners])
			i++
		}
		if d.Reason != openfeature.TargetingMatchReason {
			b.Fatalf("StringEvaluation: got %+v", d)
		}
	})

	for _, c := range []struct {
		name   string
		client *openfeature.Client
		reason openfeature.Reason
	}{
		{"OpenFeatureClient", bp.flags, openfeature.TargetingMatchReason},
		{"OpenFeatureClientNoop", bp.noop, openfeature.DefaultReason},
		{"OpenFeatureClientStub", bp.stub, openfeature.TargetingMatchReason},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			var d openfeature.StringEvaluationDetails
			i := 0
			for b.Loop() {
				d, _ = c.client.StringValueDetails(ctx, "psa-webhooks-v2", flags.Legacy, bp.evalCtxs[i%partners])
				i++
			}
			if d.Reason != c.reason {
				b.Fatalf("StringValueDetails: got %+v", d)
			}
		})
	}
}

// BenchmarkProviderShare runs the three OpenFeature clients of
// BenchmarkProviderEvaluate (NoopProvider, stub, flags provider) in turns
// of 256 calls each, so that the machine's drift is the same for all
// three, for 100 and for 10,000 partners, and reports each one's ns per
// call and the differences:
//
//   - share: the flags provider minus the NoopProvider, the issue's
//     measure of the provider's share (target: at most 100 ns and no
//     allocation);
//   - sdk: the stub minus the NoopProvider, what the SDK charges any
//     provider that is not its NoopProvider and returns flag metadata (it
//     checks the provider's state, and clones the metadata for the
//     caller: two allocations);
//   - own: the flags provider minus the stub, the provider's lookup of
//     the partner, with the caches the SDK's allocations leave it.
//
// ns/op is the three calls together; allocations per call come from
// testing.AllocsPerRun.
func BenchmarkProviderShare(b *testing.B) {
	for _, partners := range []int{100, 10000} {
		b.Run("partners="+strconv.Itoa(partners), func(b *testing.B) {
			bp := newBenchProviders(b, partners)
			ctx := context.Background()
			clients := []*openfeature.Client{bp.noop, bp.stub, bp.flags}
			var allocs [3]float64
			for c, cl := range clients {
				allocs[c] = testing.AllocsPerRun(200, func() {
					_, _ = cl.StringValueDetails(ctx, "psa-webhooks-v2", flags.Legacy, bp.evalCtxs[1])
				})
			}
			b.ResetTimer()
			const turn = 256
			var spent [3]time.Duration
			i := 0
			for done := 0; done < b.N; done += turn {
				n := min(turn, b.N-done)
				for c, cl := range clients {
					t0 := time.Now()
					for j := range n {
						_, _ = cl.StringValueDetails(ctx, "psa-webhooks-v2", flags.Legacy, bp.evalCtxs[(i+j)%partners])
					}
					spent[c] += time.Since(t0)
				}
				i += n
			}
			per := func(c int) float64 { return float64(spent[c]) / float64(b.N) }
			b.ReportMetric(per(0), "noop-ns/call")
			b.ReportMetric(per(1), "stub-ns/call")
			b.ReportMetric(per(2), "flags-ns/call")
			b.ReportMetric(per(2)-per(0), "share-ns/call")
			b.ReportMetric(per(1)-per(0), "sdk-ns/call")
			b.ReportMetric(per(2)-per(1), "own-ns/call")
			b.ReportMetric(allocs[2]-allocs[0], "share-allocs/call")
			b.ReportMetric(allocs[2]-allocs[1], "own-allocs/call")
		})
	}
}

// benchProviders is a flags provider holding a snapshot of n partners
// p-0…p-(n-1), and OpenFeature clients of it, of the SDK's NoopProvider
// and of a stub answering the flags provider's answer for p-1; keys and
// evalCtxs are the partners' targeting keys and evaluation contexts.
type benchProviders struct {
	provider          *flags.Provider
	flags, noop, stub *openfeature.Client
	keys              []string
	evalCtxs          []openfeature.EvaluationContext
}

func newBenchProviders(b *testing.B, n int) *benchProviders {
	b.Helper()
	file := filepath.Join(b.TempDir(), "snapshot.json")
	if err := os.WriteFile(file, benchSnapshotFile(b, n), 0o600); err != nil {
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
	bp := &benchProviders{provider: provider}
	answer := openfeature.StringResolutionDetail{}
	for i, p := range []openfeature.FeatureProvider{provider, openfeature.NoopProvider{}, nil} {
		if p == nil {
			// The stub answers what the flags provider, ready now, does.
			answer = provider.StringEvaluation(ctx, "psa-webhooks-v2", flags.Legacy, openfeature.FlattenedContext{openfeature.TargetingKey: "p-1"})
			p = stubProvider{answer}
		}
		api := isolated.NewAPI()
		b.Cleanup(func() { _ = api.Shutdown(ctx) })
		if err := api.SetProviderAndWait(ctx, p); err != nil {
			b.Fatal(err)
		}
		*[]**openfeature.Client{&bp.flags, &bp.noop, &bp.stub}[i] = api.NewClient()
	}
	if answer.Reason != openfeature.TargetingMatchReason || answer.FlagMetadata == nil {
		b.Fatalf("the flags provider's answer for p-1: %+v", answer)
	}
	bp.keys = make([]string, n)
	bp.evalCtxs = make([]openfeature.EvaluationContext, n)
	for i := range bp.keys {
		bp.keys[i] = "p-" + strconv.Itoa(i)
		bp.evalCtxs[i] = openfeature.NewEvaluationContext(bp.keys[i], map[string]any{"eventType": "ticket"})
	}
	return bp
}

// stubProvider answers every string evaluation with one fixed answer, at
// once: a provider that is not the SDK's NoopProvider and does no work.
type stubProvider struct {
	answer openfeature.StringResolutionDetail
}

var _ openfeature.FeatureProvider = stubProvider{}

func (stubProvider) Metadata() openfeature.Metadata { return openfeature.Metadata{Name: "stub"} }
func (stubProvider) Hooks() []openfeature.Hook      { return nil }

func (s stubProvider) StringEvaluation(context.Context, string, string, openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	return s.answer
}

func (stubProvider) BooleanEvaluation(_ context.Context, _ string, def bool, _ openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	return openfeature.BoolResolutionDetail{Value: def}
}

func (stubProvider) FloatEvaluation(_ context.Context, _ string, def float64, _ openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	return openfeature.FloatResolutionDetail{Value: def}
}

func (stubProvider) IntEvaluation(_ context.Context, _ string, def int64, _ openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	return openfeature.IntResolutionDetail{Value: def}
}

func (stubProvider) ObjectEvaluation(_ context.Context, _ string, def any, _ openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	return openfeature.InterfaceResolutionDetail{Value: def}
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
