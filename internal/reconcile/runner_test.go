package reconcile

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/wire"
)

// newCheckRunner is a runner whose requests are checked against two
// partners: acme with PSA API access, beta without.
func newCheckRunner(t *testing.T, now time.Time, others []string) (*Runner, *[]string) {
	t.Helper()
	// acme's PSA changed ticket 1 a second into every window, and no
	// webhook ever said so: a gap.
	psa := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		since, _ := time.Parse(time.RFC3339Nano, r.URL.Query().Get("since"))
		fmt.Fprintf(w, `{"changes": [{"type": "ticket", "id": "1", "updatedAt": %q, "data": {"id": 1}}], "next": null}`,
			since.Add(time.Second).Format(time.RFC3339Nano))
	}))
	t.Cleanup(psa.Close)
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	partners := map[string]domain.Partner{
		"acme": {ID: "acme", Name: "Acme", PSA: domain.PSAGeneric, PSAAPI: &domain.PSAAPI{BaseURL: psa.URL + "/changes", Token: "t0ken"}},
		"beta": {ID: "beta", Name: "Beta", PSA: domain.PSAGeneric},
	}
	var audited []string
	r := NewRunner(Options{
		Journal: j,
		Partner: func(id string) (domain.Partner, bool) { p, ok := partners[id]; return p, ok },
		Audit: func(_ context.Context, by By, action, target string, _ any) error {
			audited = append(audited, by.Actor+" "+action)
			return nil
		},
		OtherJournals: func(context.Context, time.Time) ([]string, error) { return others, nil },
		Now:           func() time.Time { return now },
	})
	return r, &audited
}

func TestRequestsAreCheckedWhole(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	d := func(v time.Duration) *wire.Duration { x := wire.Duration(v); return &x }
	many := make([]string, MaxPartners+1)
	for i := range many {
		many[i] = "p" + strings.Repeat("x", i%3) + string(rune('a'+i%26)) + string(rune('a'+i/26))
	}
	for _, tc := range []struct {
		name string
		req  wire.ReconcileRequest
		code string
		says string
	}{
		{"no partners", wire.ReconcileRequest{From: now.Add(-time.Hour)}, domain.CodeInvalid, "at least one"},
		{"too many partners", wire.ReconcileRequest{Partners: many, From: now.Add(-time.Hour)}, domain.CodeInvalid, "at most 100"},
		{"a partner twice", wire.ReconcileRequest{Partners: []string{"acme", "acme"}, From: now.Add(-time.Hour)}, domain.CodeInvalid, "named twice"},
		{"an unknown partner", wire.ReconcileRequest{Partners: []string{"nobody"}, From: now.Add(-time.Hour)}, domain.CodeNotFound, "nobody"},
		{"a partner without psaApi", wire.ReconcileRequest{Partners: []string{"beta"}, From: now.Add(-time.Hour)}, domain.CodeInvalid, "has no psaApi"},
		{"no from", wire.ReconcileRequest{Partners: []string{"acme"}}, domain.CodeInvalid, "from: required"},
		{"to in the future", wire.ReconcileRequest{Partners: []string{"acme"}, From: now.Add(-time.Hour), To: now.Add(time.Minute)}, domain.CodeInvalid, "in the future"},
		{"from after to", wire.ReconcileRequest{Partners: []string{"acme"}, From: now.Add(-time.Hour), To: now.Add(-2 * time.Hour)}, domain.CodeInvalid, "before to"},
		{"from too long ago", wire.ReconcileRequest{Partners: []string{"acme"}, From: now.Add(-MaxWindow - time.Hour)}, domain.CodeInvalid, "31 days"},
		{"negative skew", wire.ReconcileRequest{Partners: []string{"acme"}, From: now.Add(-time.Hour), Skew: d(-time.Second)}, domain.CodeInvalid, "skew"},
		{"settle over an hour", wire.ReconcileRequest{Partners: []string{"acme"}, From: now.Add(-time.Hour), Settle: d(61 * time.Minute)}, domain.CodeInvalid, "settle"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, audited := newCheckRunner(t, now, nil)
			_, err := r.Start(context.Background(), tc.req, "ops", "")
			var de *domain.Error
			if !errors.As(err, &de) || de.Code != tc.code || !strings.Contains(de.Message, tc.says) {
				t.Fatalf("Start = %v, want %s saying %q", err, tc.code, tc.says)
			}
			if len(*audited) != 0 || len(r.Jobs()) != 0 {
				t.Errorf("a refused request was audited (%v) or kept (%d jobs)", *audited, len(r.Jobs()))
			}
		})
	}
}

// A journal the runner cannot read may hold the window's events: a gap
// said without it could be invented, so the reconciliation is refused.
func TestOtherJournalsRefuseAReconciliation(t *testing.T) {
	now := time.Date(2026, 12, 3, 12, 0, 0, 0, time.UTC)
	r, _ := newCheckRunner(t, now, []string{"router-b"})
	_, err := r.Start(context.Background(), wire.ReconcileRequest{Partners: []string{"acme"}, From: now.Add(-time.Hour)}, "ops", "")
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeConflict || !strings.Contains(de.Message, "router-b") {
		t.Fatalf("Start = %v, want a conflict naming router-b", err)
	}
}

// The scheduler's reconciliations leave out partners without PSA API
// access and those unknown, are started by "reconciler" without an audit
// entry (they change nothing), and start nothing when no partner is left.
func TestScheduledReconciliationsTakeThePartnersWithAccess(t *testing.T) {
	now := time.Now().UTC()
	r, audited := newCheckRunner(t, now, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	if err := r.Reconcile(ctx, []string{"beta", "nobody"}, now.Add(-time.Hour), now, wire.TriggerSchedule); err != nil || len(r.Jobs()) != 0 {
		t.Fatalf("Reconcile without a partner with access = %v, %d jobs; want nothing started", err, len(r.Jobs()))
	}
	if err := r.Reconcile(ctx, []string{"acme", "beta"}, now.Add(-60*24*time.Hour), now, wire.TriggerRevert); err != nil {
		t.Fatal(err)
	}
	var jobs []wire.Reconciliation
	for jobs = r.Jobs(); jobs[0].State == wire.ReconcileRunning; jobs = r.Jobs() {
		time.Sleep(5 * time.Millisecond)
	}
	if jobs[0].State != wire.ReconcileDone {
		t.Errorf("the job ended %s (%s)", jobs[0].State, jobs[0].Error)
	}
	if len(jobs) != 1 || jobs[0].Trigger != wire.TriggerRevert || jobs[0].Actor != "reconciler" || strings.Join(jobs[0].Request.Partners, ",") != "acme" {
		t.Fatalf("jobs = %+v, want one revert-triggered job of acme by reconciler", jobs)
	}
	if from := jobs[0].Request.From; from.Before(now.Add(-MaxWindow)) {
		t.Errorf("from = %s, more than 31 days before %s", from, now)
	}
	if len(*audited) != 0 {
		t.Errorf("audited %v, want nothing for an automatic reconciliation", *audited)
	}
}

// Only the newest BackfillableJobs keep the entities a backfill sends: an
// older job's backfill is refused with what to do, not sent half-empty.
func TestOldJobsLetTheirGapsGo(t *testing.T) {
	now := time.Now().UTC()
	r, _ := newCheckRunner(t, now, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	var ids []string
	for range BackfillableJobs + 1 {
		job, err := r.Start(ctx, wire.ReconcileRequest{Partners: []string{"acme"}, From: now.Add(-time.Hour), To: now.Add(-10 * time.Minute)}, "ops", "")
		if err != nil {
			t.Fatal(err)
		}
		for !job.Ended() {
			time.Sleep(time.Millisecond)
			job, _ = r.Job(job.ID)
		}
		if job.GapCount != 1 {
			t.Fatalf("job %s: %d gaps (%s), want ticket 1", job.ID, job.GapCount, job.Error)
		}
		ids = append(ids, job.ID)
	}
	_, err := r.Backfill(ctx, ids[0], "ops", "")
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeConflict || !strings.Contains(de.Message, "reconcile again") {
		t.Errorf("backfill of the oldest = %v, want a conflict saying to reconcile again", err)
	}
	if _, err := r.Backfill(ctx, "rec_nope", "ops", ""); !errors.As(err, &de) || de.Code != domain.CodeNotFound {
		t.Errorf("backfill of an unknown job = %v, want not_found", err)
	}
}
