package journal_test

import (
	"context"
	"encoding/json"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/journal"
)

// BenchmarkAppend measures durable appends from about 64 concurrent
// senders, one 1.5 KiB event each, as the ingress makes them: with group
// commit (the default MaxBatch), and with one transaction, so one fsync,
// per event (MaxBatch 1), the baseline group commit is meant to beat.
//
//	go test -run '^$' -bench BenchmarkAppend -benchtime 3s -count 5 ./internal/journal/
func BenchmarkAppend(b *testing.B) {
	payload, _ := json.Marshal(map[string]any{
		"type": "ticket.updated", "timestamp": "2026-03-02T09:00:00Z",
		"data": map[string]any{"id": "T-1", "summary": "printer on fire", "notes": strings.Repeat("x", 1400)},
	})
	if n := len(payload); n < 1400 || n > 1600 {
		b.Fatalf("payload is %d bytes, want about 1.5 KiB", n)
	}
	for _, bc := range []struct {
		name     string
		maxBatch int
	}{
		{"group-commit", 0},
		{"fsync-per-event", 1},
	} {
		b.Run(bc.name, func(b *testing.B) {
			j, err := journal.Open(filepath.Join(b.TempDir(), "journal.db"), journal.Options{MaxBatch: bc.maxBatch})
			if err != nil {
				b.Fatal(err)
			}
			defer j.Close()
			var next atomic.Uint64
			at := time.Now().UTC()
			b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
			b.SetBytes(int64(len(payload)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				ev := []journal.Event{{Partner: "acme", PSA: "generic", Type: "ticket", Action: "updated", EntityID: "T-1",
					ReceivedAt: at, Payload: payload}}
				for pb.Next() {
					ev[0].DeliveryID = "msg-" + strconv.FormatUint(next.Add(1), 10)
					if _, err := j.Append(ctx, ev); err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.StopTimer()
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "events/s")
			if s, err := j.Stats(b.Context()); err == nil && s.Commits > 0 {
				b.ReportMetric(float64(s.Committed)/float64(s.Commits), "events/fsync")
			}
		})
	}
}
