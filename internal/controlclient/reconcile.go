package controlclient

import (
	"context"
	"net/http"
	"time"

	"github.com/switchbackhq/switchback/internal/reconcile"
)

// ReconcileRequest is the body of POST /v1/reconciliations. From and To
// are passed as written, for the service to resolve by its own clock: an
// RFC 3339 time, or for From a duration ago such as "2h". Skew and Settle
// are durations such as "2m"; "" leaves the service's default.
type ReconcileRequest struct {
	Partners []string `json:"partners"`
	From     string   `json:"from"`
	To       string   `json:"to,omitempty"`
	Backfill bool     `json:"backfill,omitempty"`
	Skew     string   `json:"skew,omitempty"`
	Settle   string   `json:"settle,omitempty"`
	Reason   string   `json:"reason,omitempty"`
}

// StartReconciliation starts a reconciliation and returns the job as it
// started (state running). Errors are *APIError: invalid_argument for a bad
// window or a partner without a psaApi, not_found for an unknown partner,
// conflict when the service runs no router (--no-ingress).
func (c *Client) StartReconciliation(ctx context.Context, req ReconcileRequest) (reconcile.Job, error) {
	var job reconcile.Job
	err := c.Do(ctx, http.MethodPost, "/v1/reconciliations", req, &job)
	return job, err
}

// Reconciliation returns one job whole, gaps and uncertain changes
// included; an unknown id is an *APIError of code not_found.
func (c *Client) Reconciliation(ctx context.Context, id string) (reconcile.Job, error) {
	var job reconcile.Job
	err := c.Do(ctx, http.MethodGet, Path("v1", "reconciliations", id), nil, &job)
	return job, err
}

// Reconciliations returns the jobs the service keeps, newest first,
// without their gaps and uncertain changes.
func (c *Client) Reconciliations(ctx context.Context) ([]reconcile.Job, error) {
	var jobs []reconcile.Job
	err := c.Do(ctx, http.MethodGet, "/v1/reconciliations", nil, &jobs)
	return jobs, err
}

// Backfill sends the gaps of job id through their partners' current
// primary pipelines and returns the job, its backfill started. Errors are
// *APIError: conflict while the job or a backfill of it runs, or when it
// found no gaps; not_found for an unknown id.
func (c *Client) Backfill(ctx context.Context, id, reason string) (reconcile.Job, error) {
	var job reconcile.Job
	var body struct {
		Reason string `json:"reason,omitempty"`
	}
	body.Reason = reason
	err := c.Do(ctx, http.MethodPost, Path("v1", "reconciliations", id, "backfill"), body, &job)
	return job, err
}

// ReconcileEnded reports whether nothing more will change in job: the
// reconciliation has ended and so has any backfill of it. A job started
// with backfill that found gaps has not ended until its backfill has, even
// in the moment between the gaps being known and the backfill starting.
func ReconcileEnded(job reconcile.Job) bool {
	if job.State == reconcile.StateRunning {
		return false
	}
	if job.Backfill != nil {
		return job.Backfill.State != reconcile.StateRunning
	}
	return !(job.Request.Backfill && job.State == reconcile.StateDone && job.GapCount > 0)
}

// FollowReconciliation asks for job's progress every poll until it ends
// (ReconcileEnded), calling progress with each answer, the first included.
// It returns the last answer, whole (gaps included), and ctx's error when
// ctx ends first.
func (c *Client) FollowReconciliation(ctx context.Context, job reconcile.Job, poll time.Duration, progress func(reconcile.Job)) (reconcile.Job, error) {
	for {
		progress(job)
		if ReconcileEnded(job) {
			return job, nil
		}
		select {
		case <-ctx.Done():
			return job, ctx.Err()
		case <-time.After(poll):
		}
		next, err := c.Reconciliation(ctx, job.ID)
		if err != nil {
			return job, err
		}
		job = next
	}
}
