package reconcile

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/psa"
	"github.com/switchbackhq/switchback/internal/wire"
)

// BenchmarkCheck100k judges 100,000 changed tickets of one partner against
// benchJournal, a gap every tenth: one op is the lookups and the rule.
//
//	go test -run '^$' -bench Check100k -benchtime 5x -count 3 ./internal/reconcile/
func BenchmarkCheck100k(b *testing.B) {
	j, changes := benchJournal(b)
	ctx := context.Background()
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
		if gaps != benchN/10 {
			b.Fatalf("%d gaps, want %d", gaps, benchN/10)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/100k")
}

// BenchmarkReconcile100k is a whole reconciliation of those 100,000
// tickets through a Runner: the PSA's change feed read over HTTP (the
// generic contract, 1,000 changes a page, through psaapi's client), then
// the journal checked, gaps and progress kept.
//
//	go test -run '^$' -bench Reconcile100k -benchtime 3x -count 3 ./internal/reconcile/
func BenchmarkReconcile100k(b *testing.B) {
	j, changes := benchJournal(b)
	pages := make([][]byte, 0, benchN/1000)
	for start := 0; start < benchN; start += 1000 {
		var page struct {
			Changes []map[string]any `json:"changes"`
			Next    *string          `json:"next"`
		}
		for _, c := range changes[start : start+1000] {
			page.Changes = append(page.Changes, map[string]any{"type": c.Type, "id": c.ID, "updatedAt": c.UpdatedAt,
				"data": map[string]any{"id": c.ID, "summary": "printer on fire", "status": "In Progress"}})
		}
		if start+1000 < benchN {
			next := strconv.Itoa(start/1000 + 1)
			page.Next = &next
		}
		body, _ := json.Marshal(page)
		pages = append(pages, body)
	}
	feed := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		i, _ := strconv.Atoi(r.URL.Query().Get("cursor"))
		w.Write(pages[i])
	}))
	defer feed.Close()
	acme := domain.Partner{ID: "acme", Name: "Acme", PSA: domain.PSAGeneric, PSAAPI: &domain.PSAAPI{BaseURL: feed.URL, Token: "t"}}
	from := time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)
	r := NewRunner(Options{Journal: j, Partner: func(string) (domain.Partner, bool) { return acme, true },
		Audit: func(context.Context, By, string, string, any) error { return nil },
		Now:   func() time.Time { return from.Add(25 * time.Hour) }})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	b.ResetTimer()
	for b.Loop() {
		job, err := r.Start(ctx, wire.ReconcileRequest{Partners: []string{"acme"}, From: from, To: from.Add(24 * time.Hour)}, "bench", "")
		if err != nil {
			b.Fatal(err)
		}
		for job.State == wire.ReconcileRunning {
			time.Sleep(time.Millisecond)
			job, _ = r.Job(job.ID)
		}
		if job.State != wire.ReconcileDone || job.GapCount != benchN/10 || job.Checked != benchN {
			b.Fatalf("job %s (%s): %d checked, %d gaps; want done, %d, %d", job.State, job.Error, job.Checked, job.GapCount, benchN, benchN/10)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N), "ms/100k")
}

const benchN = 100_000

// benchJournal is a journal that holds an applied event for each of
// 100,000 tickets of acme (stamped by the PSA, as ConnectWise's and the
// generic bodies are), older than its change every tenth, and the same
// tickets of globex; and the changes the PSA reports for acme.
func benchJournal(b *testing.B) (*journal.Journal, []Change) {
	b.Helper()
	const n = benchN
	j, err := journal.Open(filepath.Join(b.TempDir(), "journal.db"), journal.Options{UpdatedAt: psa.UpdatedAt})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { j.Close() })
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
	return j, changes
}
