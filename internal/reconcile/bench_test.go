package reconcile

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/psa"
)

// BenchmarkCheck100k reconciles 100,000 changed tickets of one partner
// against a journal that holds an applied event for each of them (stamped
// by the PSA, as ConnectWise's and the generic bodies are), a gap every
// tenth (an older event only), and the same tickets of another partner:
// one op is the whole reconciliation, lookups and the rule.
//
//	go test -run '^$' -bench Check100k -benchtime 5x -count 3 ./internal/reconcile/
func BenchmarkCheck100k(b *testing.B) {
	const n = 100_000
	j, err := journal.Open(filepath.Join(b.TempDir(), "journal.db"), journal.Options{UpdatedAt: psa.UpdatedAt})
	if err != nil {
		b.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	u := time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)
	changes := make([]Change, n)
	for _, partner := range []string{"acme", "globex"} {
		var seqs []uint64
		for start := 0; start < n; start += 4096 {
			batch := make([]journal.Event, 0, 4096)
			for i := start; i < min(start+4096, n); i++ {
				id := strconv.Itoa(100000 + i)
				stamp := u
				if i%10 == 0 {
					stamp = u.Add(-time.Hour) // an older change: this one never arrived
				}
				body, _ := json.Marshal(map[string]any{"type": "ticket.updated", "timestamp": stamp.Add(time.Second).Format(time.RFC3339Nano),
					"data": map[string]any{"id": id, "summary": "printer on fire", "status": "In Progress", "updatedAt": stamp.Format(time.RFC3339)}})
				batch = append(batch, journal.Event{Partner: partner, PSA: "generic", Type: "ticket", SourceType: "ticket", Action: "updated",
					EntityID: id, DeliveryID: partner + id, ReceivedAt: stamp.Add(2 * time.Second), Payload: body})
				changes[i] = Change{Type: "ticket", ID: id, UpdatedAt: u}
			}
			res, err := j.Append(ctx, batch)
			if err != nil {
				b.Fatal(err)
			}
			for _, r := range res {
				seqs = append(seqs, r.Seq)
			}
		}
		// Outcomes from many workers at once, so that group commit
		// batches them, as delivery's do.
		var wg sync.WaitGroup
		work := make(chan uint64)
		for range 256 {
			wg.Go(func() {
				for seq := range work {
					if err := j.Complete(ctx, seq, journal.Outcome{State: journal.StateApplied, Attempts: 1, Pipeline: "legacy", At: u.Add(time.Minute)}); err != nil {
						b.Error(err)
					}
				}
			})
		}
		for _, s := range seqs {
			work <- s
		}
		close(work)
		wg.Wait()
	}
	b.ResetTimer()
	for b.Loop() {
		verdicts, err := Check(ctx, j, "acme", changes, Rule{Skew: time.Minute})
		if err != nil {
			b.Fatal(err)
		}
		gaps := 0
		for _, v := range verdicts {
			if v.IsGap() {
				gaps++
			}
		}
		if gaps != n/10 {
			b.Fatalf("%d gaps, want %d", gaps, n/10)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/100k")
}
