package controlclient

import (
	"context"
	"net/http"
	"time"

	"github.com/switchbackhq/switchback/internal/wire"
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
func (c *Client) StartReconciliation(ctx context.Context, req ReconcileRequest) (wire.Reconciliation, error) {
	var job wire.Reconciliation
	err := c.Do(ctx, http.MethodPost, "/v1/reconciliations", req, &job)
	return job, err
}

// Reconciliation returns one job whole, gaps and uncertain changes
// included; an unknown id is an *APIError of code not_found.
func (c *Client) Reconciliation(ctx context.Context, id string) (wire.Reconciliation, error) {
	var job wire.Reconciliation
	err := c.Do(ctx, http.MethodGet, Path("v1", "reconciliations", id), nil, &job)
	return job, err
}

// Reconciliations returns the jobs the service keeps, newest first,
// without their gaps and uncertain changes.
func (c *Client) Reconciliations(ctx context.Context) ([]wire.Reconciliation, error) {
	var jobs []wire.Reconciliation
	err := c.Do(ctx, http.MethodGet, "/v1/reconciliations", nil, &jobs)
	return jobs, err
}

// Backfill sends the gaps of job id through their partners' current
// primary pipelines and returns the job, its backfill started. Errors are
// *APIError: conflict while the job or a backfill of it runs, or when it
// found no gaps; not_found for an unknown id.
func (c *Client) Backfill(ctx context.Context, id, reason string) (wire.Reconciliation, error) {
	var job wire.Reconciliation
	var body struct {
		Reason string `json:"reason,omitempty"`
	}
	body.Reason = reason
	err := c.Do(ctx, http.MethodPost, Path("v1", "reconciliations", id, "backfill"), body, &job)
	return job, err
}

// FollowReconciliation asks for job's progress every poll until it ends
// (wire.Reconciliation.Ended), calling progress with each answer, the first included.
// It returns the last answer, whole (gaps included), and ctx's error when
// ctx ends first.
func (c *Client) FollowReconciliation(ctx context.Context, job wire.Reconciliation, poll time.Duration, progress func(wire.Reconciliation)) (wire.Reconciliation, error) {
	for {
		progress(job)
		if job.Ended() {
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
