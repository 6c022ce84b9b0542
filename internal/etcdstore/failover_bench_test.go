package etcdstore_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/etcdstore"
	"github.com/switchbackhq/switchback/internal/httpapi"
)

const (
	benchProviders = 100
	benchPartners  = 100
)

// BenchmarkRevertToProviders measures, for each revert or resume (they
// alternate), the time from the call through one control service until
// every one of 100 flags providers holds the version it returned.
// Arrival is the moment a provider's OnSnapshot runs, just before its
// evaluations see the snapshot, so the figure carries no polling skew.
//
//   - etcd: the change goes through replica A, the providers stream from
//     replica B, which learns of it by Follow (an etcd watch, then a
//     load); follow-p50-ms and follow-p99-ms are until B publishes it.
//     put-p50-ms and put-p99-ms are a plain Put round trip on the same
//     etcd, one after each iteration, for etcd's own commit latency.
//   - bbolt: one control service on a bbolt file, with its providers.
//
// call-p50-ms and call-p99-ms are the revert or resume call alone.
func BenchmarkRevertToProviders(b *testing.B) {
	b.Run("etcd", func(b *testing.B) {
		prefix := newPrefix()
		a := benchReplica(b, prefix)
		r := benchReplica(b, prefix)
		seed(b, a)
		waitPublished(b, r, a.State().Version)
		got := newArrivals(benchProviders)
		connect(b, r, got)
		published := watchPublished(b, r)
		var puts []time.Duration
		measure(b, a, got, published, func() {
			start := time.Now()
			if _, err := client.Put(b.Context(), prefix+"bench/put", "x"); err != nil {
				b.Fatalf("Put: %v", err)
			}
			puts = append(puts, time.Since(start))
		})
		reportPercentiles(b, puts, "put")
	})
	b.Run("bbolt", func(b *testing.B) {
		svc, err := control.New(b.Context(), bolttest.Open(b), control.Options{Logger: discard()})
		if err != nil {
			b.Fatalf("control.New: %v", err)
		}
		seed(b, svc)
		got := newArrivals(benchProviders)
		connect(b, svc, got)
		measure(b, svc, got, nil, nil)
	})
}

// measure reverts and resumes "m" through svc b.N times, each time
// waiting until every provider holds the version the call returned, and
// reports the percentiles of that wait (from the call) and of the call.
// published, if set, tells when the providers' service published a
// version, reported as follow-p50-ms and follow-p99-ms (from the call).
// between, if set, runs after each iteration, untimed.
func measure(b *testing.B, svc *control.Service, got *arrivals, published func(uint64) time.Time, between func()) {
	c := control.Change{Actor: "bench", Reason: "propagation"}
	var spread, calls, follows []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		change := svc.Revert
		if i%2 == 1 {
			change = svc.Resume
		}
		start := time.Now()
		v, err := change(b.Context(), c, "m")
		if err != nil {
			b.Fatalf("change %d: %v", i, err)
		}
		calls = append(calls, time.Since(start))
		select {
		case <-got.expect(v):
		case <-time.After(30 * time.Second):
			b.Fatalf("change %d: version %d not held by every provider after 30 s", i, v)
		}
		spread = append(spread, got.last().Sub(start))
		if published != nil {
			follows = append(follows, published(v).Sub(start))
		}
		if between != nil {
			b.StopTimer()
			between()
			b.StartTimer()
		}
	}
	b.StopTimer()
	reportPercentiles(b, spread, "")
	reportPercentiles(b, calls, "call")
	reportPercentiles(b, follows, "follow")
}

// watchPublished records when svc publishes each version, until the
// benchmark ends, and returns a function that tells when it published v
// or the first version past it.
func watchPublished(b *testing.B, svc *control.Service) func(v uint64) time.Time {
	var mu sync.Mutex
	at := map[uint64]time.Time{}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			st, changed := svc.Changed()
			now := time.Now()
			mu.Lock()
			if _, ok := at[st.Version]; !ok {
				at[st.Version] = now
			}
			mu.Unlock()
			select {
			case <-changed:
			case <-ctx.Done():
				return
			}
		}
	})
	b.Cleanup(func() { cancel(); wg.Wait() })
	return func(v uint64) time.Time {
		mu.Lock()
		defer mu.Unlock()
		first := time.Time{}
		for w, t := range at {
			if w >= v && (first.IsZero() || t.Before(first)) {
				first = t
			}
		}
		return first
	}
}

// reportPercentiles adds the p50 and p99 of ds, in milliseconds, as name-p50-ms and
// name-p99-ms (p50-ms and p99-ms for an empty name).
func reportPercentiles(b *testing.B, ds []time.Duration, name string) {
	if len(ds) == 0 {
		return
	}
	if name != "" {
		name += "-"
	}
	slices.Sort(ds)
	at := func(q float64) float64 {
		i := int(q*float64(len(ds))+0.5) - 1
		return float64(ds[max(0, min(i, len(ds)-1))]) / float64(time.Millisecond)
	}
	b.ReportMetric(at(0.50), name+"p50-ms")
	b.ReportMetric(at(0.99), name+"p99-ms")
}

// arrivals records when each provider took each version.
type arrivals struct {
	mu      sync.Mutex
	held    []uint64
	at      []time.Time
	want    uint64
	pending int
	latest  time.Time
	done    chan struct{}
}

func newArrivals(n int) *arrivals {
	return &arrivals{held: make([]uint64, n), at: make([]time.Time, n)}
}

// onSnapshot is provider i's OnSnapshot.
func (a *arrivals) onSnapshot(i int) func(uint64, []byte) {
	return func(v uint64, _ []byte) {
		now := time.Now()
		a.mu.Lock()
		defer a.mu.Unlock()
		prev := a.held[i]
		a.held[i], a.at[i] = v, now
		if a.done != nil && prev < a.want && v >= a.want {
			a.latest = now
			if a.pending--; a.pending == 0 {
				close(a.done)
			}
		}
	}
}

// expect returns a channel closed once every provider holds v or later;
// providers may already hold it, since the stream can beat the call's
// answer.
func (a *arrivals) expect(v uint64) <-chan struct{} {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.want, a.pending, a.latest, a.done = v, 0, time.Time{}, make(chan struct{})
	for i, h := range a.held {
		if h < v {
			a.pending++
		} else if a.at[i].After(a.latest) {
			a.latest = a.at[i]
		}
	}
	if a.pending == 0 {
		close(a.done)
	}
	return a.done
}

// last is when the last provider took the version expected.
func (a *arrivals) last() time.Time {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.latest
}

func discard() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// benchReplica is a control replica on prefix with an etcd client of its
// own, as a replica in another process has, following the others.
func benchReplica(b *testing.B, prefix string) *control.Service {
	b.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: client.Endpoints(), DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { cli.Close() })
	s, err := etcdstore.Open(b.Context(), cli, prefix)
	if err != nil {
		b.Fatalf("Open: %v", err)
	}
	b.Cleanup(func() { s.Close() })
	svc, err := control.New(b.Context(), s, control.Options{Logger: discard()})
	if err != nil {
		b.Fatalf("control.New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { svc.Follow(ctx) })
	b.Cleanup(func() { cancel(); wg.Wait() })
	return svc
}

// seed writes migration "m" and benchPartners partners through svc.
func seed(b *testing.B, svc *control.Service) {
	b.Helper()
	if _, _, err := svc.PutMigration(b.Context(), setup, replicaMigration("m")); err != nil {
		b.Fatal(err)
	}
	for i := range benchPartners {
		id := fmt.Sprintf("p-%03d", i)
		secret := "whsec_" + id
		if _, _, err := svc.PutPartner(b.Context(), setup, control.PartnerInput{ID: id, Name: id, PSA: domain.PSAGeneric, Secret: &secret}); err != nil {
			b.Fatalf("PutPartner(%s): %v", id, err)
		}
	}
}

// waitPublished waits until svc publishes version v or later.
func waitPublished(b *testing.B, svc *control.Service, v uint64) {
	b.Helper()
	deadline := time.After(10 * time.Second)
	for {
		st, changed := svc.Changed()
		if st.Version >= v {
			return
		}
		select {
		case <-changed:
		case <-deadline:
			b.Fatalf("version %d never published; at %d", v, st.Version)
		}
	}
}

// connect serves svc's API over HTTP and starts len(got.held) flags
// providers on it, each reporting to got.
func connect(b *testing.B, svc *control.Service, got *arrivals) {
	b.Helper()
	api := httpapi.New(svc, discard(), prometheus.NewRegistry())
	srv := httptest.NewServer(api)
	b.Cleanup(func() { api.Close(); srv.Close() })
	for i := range got.held {
		p, err := flags.NewProvider(flags.Options{URL: srv.URL, Token: svc.AddEphemeralToken(fmt.Sprintf("provider-%d", i), domain.RoleViewer),
			Logger: discard(), OnSnapshot: got.onSnapshot(i)})
		if err != nil {
			b.Fatal(err)
		}
		if err := p.InitWithContext(b.Context(), openfeature.EvaluationContext{}); err != nil {
			b.Fatalf("provider %d: %v", i, err)
		}
		b.Cleanup(p.Shutdown)
	}
}
