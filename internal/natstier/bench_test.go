package natstier_test

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstest"
	"github.com/switchbackhq/switchback/internal/natstier"
)

// publishers is the concurrent webhooks a router has in flight: as many
// as bench ingress's senders.
const publishers = 64

// benchTiers are the clusters the benchmarks run on: one node and a
// replica, or three nodes and three replicas (a quorum of two per write).
var benchTiers = []struct {
	name            string
	nodes, replicas int
}{
	{"nodes=1/replicas=1", 1, 1},
	{"nodes=3/replicas=3", 3, 3},
}

// payload is about 1 KiB of a PSA's ticket update, as a webhook carries.
var payload = func() []byte {
	var notes strings.Builder
	for notes.Len() < 700 {
		notes.WriteString("Customer reports the VPN drops every few minutes since the firmware update. ")
	}
	return fmt.Appendf(nil, `{"id":%d,"title":"VPN drops","status":"In Progress","priority":"High","board":"Service Desk",`+
		`"company":{"id":1207,"name":"Acme Dental"},"contact":{"id":88231,"name":"Pat Smith"},"owner":"jdoe",`+
		`"notes":%q,"lastUpdated":"2025-03-04T10:11:12Z"}`, 48213, notes.String())
}()

func benchEvent(n int) journal.Event {
	ev := event("acme", n%1000, n)
	ev.Payload = payload
	return ev
}

// benchCluster starts a cluster for a sub-benchmark once: b.Run calls
// its function again for every b.N, and a cluster takes seconds to elect
// its leaders. The cluster lives as long as parent.
type benchCluster struct {
	parent          *testing.B
	nodes, replicas int
	cluster         *natstest.Cluster
}

func (c *benchCluster) get() *natstest.Cluster {
	if c.cluster == nil {
		c.cluster = natstest.Start(c.parent, c.nodes)
	}
	return c.cluster
}

// fresh deletes the stream and the outcome bucket the last run left and
// opens a tier on new ones: each run starts on an empty stream.
func (c *benchCluster) fresh(b *testing.B) *natstier.Tier {
	b.Helper()
	urls := c.get().URLs()
	nc, err := nats.Connect(urls)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	js.DeleteStream(ctx, natstier.DefaultStream)
	js.DeleteKeyValue(ctx, natstier.DefaultOutcomes)
	tr, err := natstier.Open(ctx, natstier.Options{URLs: urls, Name: "bench", Replicas: c.replicas,
		Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tr.Close() })
	return tr
}

// publishAll publishes events n0..n0+count-1, one per Publish call, from
// 64 goroutines, and returns each call's latency.
func publishAll(b *testing.B, tr *natstier.Tier, n0, count int) []time.Duration {
	b.Helper()
	lat := make([]time.Duration, count)
	var next atomic.Int64
	var failed atomic.Pointer[error]
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= count {
					return
				}
				ev := benchEvent(n0 + i)
				start := time.Now()
				if _, err := tr.Publish(context.Background(), []journal.Event{ev}); err != nil {
					failed.CompareAndSwap(nil, &err)
					return
				}
				lat[i] = time.Since(start)
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		b.Fatalf("publishing: %v", *err)
	}
	return lat
}

// BenchmarkPublish is a router's webhook acknowledgement on the tier:
// 64 concurrent Publish calls of one ~1 KiB event each, every node
// fsyncing each write (natstest's SyncAlways), the servers in this
// process. acks/s is Publish calls answered per second; p99-ms their
// latency's 99th percentile.
func BenchmarkPublish(b *testing.B) {
	for _, bt := range benchTiers {
		bc := &benchCluster{parent: b, nodes: bt.nodes, replicas: bt.replicas}
		b.Run(bt.name, func(b *testing.B) {
			tr := bc.fresh(b)
			// The connections and the stream's leader warm up off the clock.
			publishAll(b, tr, -publishers, publishers)
			b.ReportAllocs()
			b.ResetTimer()
			start := time.Now()
			lat := publishAll(b, tr, 0, b.N)
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "acks/s")
			b.ReportMetric(p99(lat).Seconds()*1000, "p99-ms")
		})
	}
}

// BenchmarkDeliver is one router taking what the tier hands it and
// recording each outcome at once (Done, no pipeline behind it): events
// published beforehand, off the clock; the clock stops once every one is
// acknowledged, its outcome in the bucket. events/s is those per second.
func BenchmarkDeliver(b *testing.B) {
	for _, bt := range benchTiers {
		bc := &benchCluster{parent: b, nodes: bt.nodes, replicas: bt.replicas}
		b.Run(bt.name, func(b *testing.B) {
			tr := bc.fresh(b)
			publishAll(b, tr, 0, b.N)
			nc, err := nats.Connect(bc.get().URLs())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			js, _ := jetstream.New(nc)
			stream, err := js.Stream(context.Background(), natstier.DefaultStream)
			if err != nil {
				b.Fatal(err)
			}
			var taken atomic.Int64
			take := func(_ context.Context, events []journal.Event) error {
				for _, ev := range events {
					tr.Done(ev, journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", Attempts: 1, At: time.Now()})
				}
				taken.Add(int64(len(events)))
				return nil
			}
			ctx, cancel := context.WithCancel(context.Background())
			var wg sync.WaitGroup
			defer wg.Wait()
			defer cancel()
			b.ResetTimer()
			start := time.Now()
			wg.Go(func() { tr.Run(ctx, take) })
			deadline := start.Add(5 * time.Minute)
			for !allAcked(ctx, b, stream, tr.Shards(), int(taken.Load()) >= b.N) {
				if time.Now().After(deadline) {
					b.Fatalf("after 5 minutes, %d of %d events taken, not all acknowledged", taken.Load(), b.N)
				}
				time.Sleep(5 * time.Millisecond)
			}
			elapsed := time.Since(start)
			b.StopTimer()
			b.ReportMetric(float64(b.N)/elapsed.Seconds(), "events/s")
		})
	}
}

// allAcked tells whether every shard's consumer has every message
// acknowledged; it asks the servers only once the router took them all.
func allAcked(ctx context.Context, b *testing.B, s jetstream.Stream, shards int, tookAll bool) bool {
	if !tookAll {
		return false
	}
	for i := range shards {
		c, err := s.Consumer(ctx, fmt.Sprintf("shard-%02d", i))
		if err != nil {
			b.Fatal(err)
		}
		info := c.CachedInfo()
		if info.NumPending+uint64(info.NumAckPending) > 0 {
			return false
		}
	}
	return true
}

func p99(lat []time.Duration) time.Duration {
	if len(lat) == 0 {
		return 0
	}
	s := slices.Clone(lat)
	slices.Sort(s)
	return s[(len(s)*99)/100]
}
