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
	"github.com/switchbackhq/switchback/internal/psa"
)

// BenchmarkAppend measures durable appends from about 64 concurrent
// senders, one 1.5 KiB event each, as the ingress makes them: with group
// commit (the default MaxBatch), and with one transaction, so one fsync,
// per event (MaxBatch 1), the baseline group commit is meant to beat; and
// with group commit and the stamp for the entity index read by each sender.
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
		stamp    func(string, []byte) (time.Time, bool)
	}{
		{"group-commit", 0, nil},
		{"fsync-per-event", 1, nil},
		// As the router opens its journal: each sender reads its event's
		// stamp for the entity index before it queues the event.
		{"group-commit-psa-stamp", 0, psa.UpdatedAt},
	} {
		b.Run(bc.name, func(b *testing.B) {
			j, err := journal.Open(filepath.Join(b.TempDir(), "journal.db"), journal.Options{MaxBatch: bc.maxBatch, UpdatedAt: bc.stamp})
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

// BenchmarkComplete measures durable outcomes from about 64 concurrent
// delivery workers, each the applied outcome of a journaled 1.5 KiB event
// about one of 10,000 tickets, as delivery records them: the write path
// that the entity index rides on, without and with the PSA's stamp of
// each entity (psa.UpdatedAt, as the router opens its journal; read at
// Append, before the timer starts, so only the committer's share counts).
//
//	go test -run '^$' -bench BenchmarkComplete -benchtime 3s -count 5 ./internal/journal/
func BenchmarkComplete(b *testing.B) {
	b.Run("no-stamp", func(b *testing.B) { benchmarkComplete(b, journal.Options{}) })
	b.Run("psa-stamp", func(b *testing.B) { benchmarkComplete(b, journal.Options{UpdatedAt: psa.UpdatedAt}) })
}

func benchmarkComplete(b *testing.B, opts journal.Options) {
	j, err := journal.Open(filepath.Join(b.TempDir(), "journal.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	at := time.Now().UTC()
	notes := strings.Repeat("x", 1400)
	seqs := make([]uint64, 0, b.N)
	for len(seqs) < b.N {
		batch := make([]journal.Event, 0, min(4096, b.N-len(seqs)))
		for range cap(batch) {
			n := len(seqs) + len(batch)
			id := "T-" + strconv.Itoa(n%10000)
			payload, _ := json.Marshal(map[string]any{
				"type": "ticket.updated", "timestamp": at.Format(time.RFC3339Nano),
				"data": map[string]any{"id": id, "summary": "printer on fire", "notes": notes, "updatedAt": at.Format(time.RFC3339)},
			})
			batch = append(batch, journal.Event{Partner: "acme", PSA: "generic", Type: "ticket", Action: "updated", EntityID: id,
				DeliveryID: "msg-" + strconv.Itoa(n), ReceivedAt: at, Payload: payload})
		}
		res, err := j.Append(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			seqs = append(seqs, r.Seq)
		}
	}
	var next atomic.Int64
	b.SetParallelism(max(1, 64/runtime.GOMAXPROCS(0)))
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			seq := seqs[next.Add(1)-1]
			out := journal.Outcome{State: journal.StateApplied, Attempts: 1, Pipeline: "legacy", SnapshotVersion: 7, At: at,
				Effects: json.RawMessage(`[{"type":"ticket.upsert","id":"T-1"}]`)}
			if err := j.Complete(ctx, seq, out); err != nil {
				b.Error(err)
				return
			}
		}
	})
	b.StopTimer()
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "outcomes/s")
}
