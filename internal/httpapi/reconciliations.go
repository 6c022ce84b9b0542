package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// Reconciler runs reconciliations against the journal of the router in
// the same process: reconcile.Runner.
type Reconciler interface {
	Start(ctx context.Context, req wire.ReconcileRequest, actor, reason string) (wire.Reconciliation, error)
	Backfill(ctx context.Context, id, actor, reason string) (wire.Reconciliation, error)
	Job(id string) (wire.Reconciliation, error)
	Jobs() []wire.Reconciliation
}

// WithReconciler serves reconciliations from rec.
func WithReconciler(rec Reconciler) Option { return func(o *options) { o.Reconciler = rec } }

func (a *API) reconciler() (Reconciler, error) {
	if a.opts.Reconciler == nil {
		return nil, domain.Errorf(domain.CodeConflict, "no ingress router runs in this process: a reconciliation reads the router's journal; start serve without --no-ingress")
	}
	return a.opts.Reconciler, nil
}

func (a *API) startReconciliation(w http.ResponseWriter, r *http.Request, p principal) error {
	rec, err := a.reconciler()
	if err != nil {
		return err
	}
	var req struct {
		Partners []string       `json:"partners"`
		From     string         `json:"from"`
		To       *time.Time     `json:"to"`
		Backfill bool           `json:"backfill"`
		Skew     *wire.Duration `json:"skew"`
		Settle   *wire.Duration `json:"settle"`
		Reason   string         `json:"reason"`
	}
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if err := p.change(req.Reason).Validate(); err != nil {
		return err
	}
	if req.From == "" {
		return domain.Errorf(domain.CodeInvalid, "from: required, RFC 3339 or a duration ago such as 2h")
	}
	from, err := wire.ParseFrom(req.From, time.Now())
	if err != nil {
		return err
	}
	in := wire.ReconcileRequest{Partners: req.Partners, From: from, Backfill: req.Backfill, Skew: req.Skew, Settle: req.Settle}
	if req.To != nil {
		in.To = *req.To
	}
	job, err := rec.Start(r.Context(), in, p.name, req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, job)
	return nil
}

func (a *API) listReconciliations(w http.ResponseWriter, r *http.Request, _ principal) error {
	rec, err := a.reconciler()
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, rec.Jobs())
	return nil
}

func (a *API) getReconciliation(w http.ResponseWriter, r *http.Request, _ principal) error {
	rec, err := a.reconciler()
	if err != nil {
		return err
	}
	job, err := rec.Job(mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, job)
	return nil
}

func (a *API) backfill(w http.ResponseWriter, r *http.Request, p principal) error {
	rec, err := a.reconciler()
	if err != nil {
		return err
	}
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	if err := p.change(req.Reason).Validate(); err != nil {
		return err
	}
	job, err := rec.Backfill(r.Context(), mux.Vars(r)["id"], p.name, req.Reason)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusAccepted, job)
	return nil
}
