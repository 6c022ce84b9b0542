package reconcile

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// A reconciliation that ends with gaps is noticed once, as
// reconcile.gaps, with its id, the partners and the count.
func TestGapsAreNoticed(t *testing.T) {
	now := time.Now().UTC()
	r, _ := newCheckRunner(t, now, nil)
	heard := make(chan domain.Notice, 4)
	r.opts.Notify = func(n domain.Notice) { heard <- n }
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	job, err := r.Start(ctx, wire.ReconcileRequest{Partners: []string{"acme"}, From: now.Add(-time.Hour), To: now.Add(-10 * time.Minute)}, "ops", "")
	if err != nil {
		t.Fatal(err)
	}
	var n domain.Notice
	select {
	case n = <-heard:
	case <-time.After(30 * time.Second):
		t.Fatal("no notice of the reconciliation's gap")
	}
	d, ok := n.Detail.(GapsDetail)
	if n.Event != domain.NoticeReconcileGaps || n.ID == "" || n.Actor != "ops" || n.Target != "reconciliation/"+job.ID || !ok ||
		d.Reconciliation != job.ID || d.Gaps != 1 || d.Partners["acme"] != 1 || !strings.Contains(n.Text, job.ID) {
		t.Errorf("notice = %+v", n)
	}
	if got, _ := r.Job(job.ID); got.GapCount != 1 {
		t.Errorf("job = %+v, want 1 gap", got)
	}
	select {
	case extra := <-heard:
		t.Errorf("a second notice: %+v", extra)
	default:
	}
}
