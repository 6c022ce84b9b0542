package flagdsync_test

import (
	"runtime"
	"slices"
	"strconv"
	"testing"
	"time"

	flagdprovider "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/switchbackhq/switchback/internal/bench"
	"github.com/switchbackhq/switchback/internal/domain"
)

// benchEnv is an env with the migration "m" and 1,000 partners p-0…p-999,
// a quarter at each stage (p-2 at new). Seeding runs without fsync; the
// measured changes are durable, as in production.
func benchEnv(b *testing.B) *env {
	b.Helper()
	e := newEnv(b)
	e.migration(b, "m")
	stages := []domain.Stage{domain.StageLegacy, domain.StageShadow, domain.StageNew, domain.StageDone}
	for i := range 1000 {
		id := "p-" + strconv.Itoa(i)
		e.partner(b, id)
		if stages[i%4] != domain.StageLegacy {
			e.stage(b, "m", id, stages[i%4])
		}
	}
	return e
}

// BenchmarkRevertToFlagdProviders measures, for 100 flagd Go providers in
// in-process mode connected to the sync service, the time from the start
// of a revert (durable: stored with fsync, published) to each provider
// answering legacy for a partner at stage new; resumes alternate with
// reverts and are measured the same way (to new), reported apart
// ("resume-"). Everything shares the machine: the control service, the
// sync service and the 100 providers, each decoding and validating every
// configuration; one revert and one resume warm up untimed, and the heap
// is collected between rounds, untimed.
//
//	go test -run '^$' -bench RevertToFlagdProviders -benchtime 40x -count 3 ./internal/flagdsync/
//
// It reports the p50, p99 and maximum of the providers' arrivals over the
// reverts, of the last provider's arrival in each ("all-"), and of the
// revert call alone ("call-": stored with fsync and published).
func BenchmarkRevertToFlagdProviders(b *testing.B) {
	const providers = 100
	e := benchEnv(b)
	e.store.DB().NoSync = false
	type arrival struct {
		value string
		at    time.Time
	}
	arrivals := make(chan arrival, providers*4)
	done := make(chan struct{})
	defer close(done)
	for range providers {
		p, err := flagdprovider.NewProvider(flagdprovider.WithInProcessResolver(),
			flagdprovider.WithHost("127.0.0.1"), flagdprovider.WithPort(uint16(e.addr.Port)))
		if err != nil {
			b.Fatal(err)
		}
		if err := p.Init(openfeature.EvaluationContext{}); err != nil {
			b.Fatal(err)
		}
		b.Cleanup(p.Shutdown)
		go func() {
			ec := openfeature.FlattenedContext{openfeature.TargetingKey: "p-2"}
			for {
				select {
				case ev := <-p.EventChannel():
					if ev.EventType != openfeature.ProviderConfigChange {
						continue
					}
					r := p.StringEvaluation(ctx, "m", "code-default", ec)
					select {
					case arrivals <- arrival{r.Value, time.Now()}:
					case <-done:
						return
					}
				case <-done:
					return
				}
			}
		}()
	}
	// flip reverts (or resumes) and returns, once all the providers have
	// answered, each one's arrival after the start and the call's own time.
	flip := func(round int, revert bool) (arrivedAfter []time.Duration, call time.Duration) {
		want, change := "legacy", e.svc.Revert
		if !revert {
			want, change = "new", e.svc.Resume
		}
		start := time.Now()
		if _, err := change(ctx, admin, "m"); err != nil {
			b.Fatal(err)
		}
		call = time.Since(start)
		for len(arrivedAfter) < providers {
			select {
			case a := <-arrivals:
				if a.value != want || a.at.Before(start) {
					continue
				}
				arrivedAfter = append(arrivedAfter, a.at.Sub(start))
			case <-time.After(10 * time.Second):
				b.Fatalf("round %d: %d of %d providers answered %s within 10 s", round, len(arrivedAfter), providers, want)
			}
		}
		return arrivedAfter, call
	}
	// One revert and one resume untimed first, so that a run measures
	// reverts in a running installation, not the first ones after 100
	// providers connected.
	flip(-2, true)
	flip(-1, false)
	runtime.GC()
	var each, all, resumed, calls []time.Duration
	b.ResetTimer()
	for round := 0; b.Loop(); round++ {
		revert := round%2 == 0
		arrived, call := flip(round, revert)
		if revert {
			each = append(each, arrived...)
			all = append(all, slices.Max(arrived))
			calls = append(calls, call)
		} else {
			resumed = append(resumed, arrived...)
		}
		// The 100 providers share this process's heap: let a round's
		// garbage (a resume's is ~1.5 MB per provider) be collected
		// before the next flip rather than inside it, as each would in
		// its own process.
		b.StopTimer()
		runtime.GC()
		b.StartTimer()
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
	s, a := bench.Summarize(each), bench.Summarize(all)
	b.ReportMetric(ms(s.P50), "p50-ms")
	b.ReportMetric(ms(s.P99), "p99-ms")
	b.ReportMetric(ms(s.Max), "max-ms")
	b.ReportMetric(ms(a.P50), "all-p50-ms")
	b.ReportMetric(ms(a.P99), "all-p99-ms")
	b.ReportMetric(ms(bench.Summarize(resumed).P99), "resume-p99-ms")
	c := bench.Summarize(calls)
	b.ReportMetric(ms(c.P50), "call-p50-ms")
	b.ReportMetric(ms(c.P99), "call-p99-ms")
}

// BenchmarkFlagdProviderEvaluate measures one evaluation of a 1,000-partner
// flag by flagd's Go provider in in-process mode, through an OpenFeature
// client and through the provider alone; flags' BenchmarkProviderEvaluate
// and internal/flagd's BenchmarkTargetingShape give the figures to set
// beside it.
func BenchmarkFlagdProviderEvaluate(b *testing.B) {
	e := benchEnv(b)
	p, err := flagdprovider.NewProvider(flagdprovider.WithInProcessResolver(),
		flagdprovider.WithHost("127.0.0.1"), flagdprovider.WithPort(uint16(e.addr.Port)))
	if err != nil {
		b.Fatal(err)
	}
	api := isolated.NewAPI()
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { api.Shutdown(ctx) })
	client := api.NewClient()
	const n = 1000
	ecs := make([]openfeature.EvaluationContext, n)
	flat := make([]openfeature.FlattenedContext, n)
	for i := range n {
		ecs[i] = openfeature.NewEvaluationContext("p-"+strconv.Itoa(i), map[string]any{"eventType": "ticket"})
		flat[i] = openfeature.FlattenedContext{openfeature.TargetingKey: "p-" + strconv.Itoa(i), "eventType": "ticket"}
	}
	b.Run("OpenFeatureClient", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			if v, _ := client.StringValue(ctx, "m", "code-default", ecs[i%n]); v == "code-default" {
				b.Fatalf("p-%d: the code's default", i%n)
			}
		}
	})
	b.Run("StringEvaluation", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; b.Loop(); i++ {
			p.StringEvaluation(ctx, "m", "code-default", flat[i%n])
		}
	})
}
