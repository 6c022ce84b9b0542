package reconcile

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/wire"
)

// deliveringRouter journals a backfill into a real journal and applies
// each new event at once, as delivery would.
type deliveringRouter struct{ j *journal.Journal }

func (d deliveringRouter) Backfill(ctx context.Context, events []journal.Event) ([]journal.Appended, error) {
	res, err := d.j.Append(ctx, events)
	for _, a := range res {
		if !a.Duplicate && err == nil {
			err = d.j.Complete(ctx, a.Seq, journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", At: time.Now().UTC()})
		}
	}
	return res, err
}

// busyRouter is a router whose journal is always busy.
type busyRouter struct{}

func (busyRouter) Backfill(context.Context, []journal.Event) ([]journal.Appended, error) {
	return nil, &domain.Error{Code: domain.CodeJournalBusy, RetryAfter: 10 * time.Millisecond, Message: "busy"}
}

// auditLog holds the audit entries a runner wrote.
type auditLog struct {
	mu      sync.Mutex
	entries []auditEntry
}

type auditEntry struct {
	by             By
	action, target string
	detail         any
}

func (a *auditLog) write(_ context.Context, by By, action, target string, detail any) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.entries = append(a.entries, auditEntry{by, action, target, detail})
	return nil
}

// find returns the one entry of action, failing t unless there is one.
func (a *auditLog) find(t *testing.T, action string) auditEntry {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	var found []auditEntry
	for _, e := range a.entries {
		if e.action == action {
			found = append(found, e)
		}
	}
	if len(found) != 1 {
		t.Fatalf("%d audit entries %s in %+v, want 1", len(found), action, a.entries)
	}
	return found[0]
}

// backfillRunner is a runner over a real journal whose partner acme's PSA
// changed tickets 1, 2 and 3 at changedAt, an hour ago; audit holds the
// entries it writes.
func backfillRunner(t *testing.T, router func(*journal.Journal) Router) (r *Runner, j *journal.Journal, changedAt time.Time, audit *auditLog) {
	t.Helper()
	changedAt = time.Now().UTC().Add(-time.Hour).Truncate(time.Millisecond)
	audit = &auditLog{}
	psa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var items []string
		for _, id := range []string{"1", "2", "3"} {
			items = append(items, fmt.Sprintf(`{"type": "ticket", "id": %q, "updatedAt": %q, "data": {"id": %s}}`, id, changedAt.Format(time.RFC3339Nano), id))
		}
		fmt.Fprintf(w, `{"changes": [%s], "next": null}`, strings.Join(items, ","))
	}))
	t.Cleanup(psa.Close)
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	acme := domain.Partner{ID: "acme", Name: "Acme", PSA: domain.PSAGeneric, PSAAPI: &domain.PSAAPI{BaseURL: psa.URL, Token: "t0ken"}}
	r = NewRunner(Options{
		Journal:    j,
		Router:     router(j),
		Partner:    func(id string) (domain.Partner, bool) { return acme, id == "acme" },
		Audit:      audit.write,
		Registerer: prometheus.NewRegistry(),
		PollEvery:  time.Millisecond,
	})
	return r, j, changedAt, audit
}

func waitEnded(t *testing.T, r *Runner, id string) wire.Reconciliation {
	t.Helper()
	for {
		job, err := r.Job(id)
		if err != nil {
			t.Fatal(err)
		}
		if job.Ended() {
			return job
		}
		time.Sleep(time.Millisecond)
	}
}

// Between a reconciliation and its backfill, ticket 1's webhook came and
// was applied, and an earlier backfill of ticket 2 was dead-lettered. The
// backfill judges every gap again: ticket 1 is not sent (it would
// overwrite what was applied), ticket 2's event is a duplicate whose
// outcome is the dead-lettered one's, not a success, and ticket 3 is
// applied. The gauge shows the one gap still open.
func TestBackfillJudgesAgainAndFollowsDuplicates(t *testing.T) {
	r, j, changedAt, audit := backfillRunner(t, func(j *journal.Journal) Router { return deliveringRouter{j} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()

	job, err := r.Start(ctx, wire.ReconcileRequest{Partners: []string{"acme"}, From: changedAt.Add(-time.Minute)}, "ops", "INC-7")
	if err != nil {
		t.Fatal(err)
	}
	if job = waitEnded(t, r, job.ID); job.GapCount != 3 {
		t.Fatalf("reconciliation: %d gaps (%s), want tickets 1, 2 and 3", job.GapCount, job.Error)
	}
	if got := testutil.ToFloat64(r.gauge.WithLabelValues("acme")); got != 3 {
		t.Errorf("open gaps before the backfill = %v, want 3", got)
	}

	webhook := journal.Event{Partner: "acme", PSA: "generic", Type: "ticket", SourceType: "ticket", Action: "updated", EntityID: "1",
		DeliveryID: "msg-1", ReceivedAt: time.Now().UTC(), EntityUpdatedAt: changedAt}
	earlier := BackfillID("acme", "ticket", "2", changedAt)
	failed := journal.Event{ID: earlier, DeliveryID: earlier, Partner: "acme", PSA: "generic", Type: "ticket", SourceType: "ticket",
		Action: "updated", EntityID: "2", ReceivedAt: time.Now().UTC(), EntityUpdatedAt: changedAt, Backfill: true}
	res, err := j.Append(ctx, []journal.Event{webhook, failed})
	if err != nil {
		t.Fatal(err)
	}
	for i, state := range []journal.State{journal.StateApplied, journal.StateDeadLettered} {
		if err := j.Complete(ctx, res[i].Seq, journal.Outcome{State: state, Pipeline: "legacy", At: time.Now().UTC()}); err != nil {
			t.Fatal(err)
		}
	}

	if _, err := r.Backfill(ctx, job.ID, "ops", "INC-7"); err != nil {
		t.Fatal(err)
	}
	b := *waitEnded(t, r, job.ID).Backfill
	want := wire.BackfillProgress{State: wire.ReconcileDone, Skipped: 1, Events: 2, Journaled: 1, Duplicates: 1, Applied: 1, DeadLettered: 1}
	b.StartedAt, b.FinishedAt = time.Time{}, time.Time{}
	if b != want {
		t.Errorf("backfill = %+v\nwant       %+v", b, want)
	}
	if got := testutil.ToFloat64(r.gauge.WithLabelValues("acme")); got != 1 {
		t.Errorf("open gaps after the backfill = %v, want 1 (ticket 2, dead-lettered)", got)
	}
	// The counts outlive the job: audited at its end, in the name of who
	// asked for the backfill.
	e := audit.find(t, "reconcile.backfill.done")
	wantDetail := map[string]any{"reconciliation": job.ID, "partners": []string{"acme"}, "state": wire.ReconcileDone,
		"gaps": 3, "events": 2, "journaled": 1, "duplicates": 1, "skipped": 1, "applied": 1, "deadLettered": 1, "pending": 0}
	if e.by.Actor != "ops" || e.by.Reason != "INC-7" || e.target != "reconciliation/"+job.ID || !reflect.DeepEqual(e.detail, wantDetail) {
		t.Errorf("audited %+v\nwant by ops for INC-7, target reconciliation/%s, detail %v", e, job.ID, wantDetail)
	}
}

// A backfill that switchback's stopping cuts off ends failed, saying so,
// never done.
func TestABackfillCutOffEndsFailed(t *testing.T) {
	r, _, changedAt, audit := backfillRunner(t, func(*journal.Journal) Router { return busyRouter{} })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	job, err := r.Start(ctx, wire.ReconcileRequest{Partners: []string{"acme"}, From: changedAt.Add(-time.Minute), Backfill: true}, "ops", "")
	if err != nil {
		t.Fatal(err)
	}
	for job.Backfill == nil || job.Backfill.State != wire.ReconcileRunning {
		time.Sleep(time.Millisecond)
		job, _ = r.Job(job.ID)
	}
	cancel()
	<-done
	job, _ = r.Job(job.ID)
	if b := job.Backfill; b.State != wire.ReconcileFailed || !strings.Contains(b.Error, "stopped") {
		t.Errorf("backfill cut off = %s %q, want failed, saying switchback stopped", b.State, b.Error)
	}
	// Audited although the runner's context had ended: what was sent
	// before the cut is what an operator needs to know.
	e := audit.find(t, "reconcile.backfill.done")
	if d, _ := e.detail.(map[string]any); d["state"] != wire.ReconcileFailed || !strings.Contains(fmt.Sprint(d["error"]), "stopped") ||
		d["journaled"] != 0 || d["pending"] != 0 || d["gaps"] != 3 {
		t.Errorf("audited %+v, want the failure and its counts", e)
	}
	if _, err := r.Start(context.Background(), wire.ReconcileRequest{Partners: []string{"acme"}, From: changedAt.Add(-time.Minute)}, "ops", ""); err == nil {
		t.Errorf("a reconciliation started after the runner stopped")
	}
}
