package httpapi

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// writeFiled answers a move that waits for approvals: 202 Accepted with
// the change request, and where to follow it.
func writeFiled(w http.ResponseWriter, c *domain.ChangeRequest) {
	w.Header().Set("Location", "/v1/changes/"+c.ID)
	writeJSON(w, http.StatusAccepted, c)
}

// changeID returns the path's change request id: an id that is not one
// is unknown, as a 404, like any other that does not exist.
func changeID(r *http.Request) (string, error) {
	id := mux.Vars(r)["id"]
	if !domain.ValidChangeID(id) {
		return "", domain.Errorf(domain.CodeNotFound, "change request %q does not exist: ids look like chg_ and 24 hex digits", id)
	}
	return id, nil
}

// listChanges serves GET /v1/changes?state=pending|applied|rejected|expired|failed|all&migration=K,
// newest first; without state, every state.
func (a *API) listChanges(w http.ResponseWriter, r *http.Request, _ principal) error {
	q := r.URL.Query()
	var f control.ChangeFilter
	if s := q.Get("state"); s != "" && s != "all" {
		st, err := domain.ParseChangeState(s)
		if err != nil {
			return domain.Errorf(domain.CodeInvalid, "%s (or all)", domain.ErrorMessage(err))
		}
		f.State = st
	}
	if m := q.Get("migration"); m != "" {
		if err := domain.CheckID("migration", m); err != nil {
			return err
		}
		f.Migration = m
	}
	writeJSON(w, http.StatusOK, a.svc.Changes(f))
	return nil
}

func (a *API) getChange(w http.ResponseWriter, r *http.Request, _ principal) error {
	id, err := changeID(r)
	if err != nil {
		return err
	}
	c, err := a.svc.ChangeRequest(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}

// approveChange serves POST /v1/changes/{id}/approve, body {"reason"}
// (optional): the change request after the approval, applied or failed
// when it was the last one needed.
func (a *API) approveChange(w http.ResponseWriter, r *http.Request, p principal) error {
	return a.endChange(w, r, p, a.svc.Approve)
}

// rejectChange serves POST /v1/changes/{id}/reject, body {"reason"}
// (required).
func (a *API) rejectChange(w http.ResponseWriter, r *http.Request, p principal) error {
	return a.endChange(w, r, p, a.svc.Reject)
}

func (a *API) endChange(w http.ResponseWriter, r *http.Request, p principal,
	act func(ctx context.Context, c control.Change, id string) (domain.ChangeRequest, error)) error {
	id, err := changeID(r)
	if err != nil {
		return err
	}
	return withReason(w, r, p, id, act)
}

// withReason serves a POST whose body is an optional {"reason"} (act
// checks whether it must be there): act's answer on target, as 200.
func withReason[T any](w http.ResponseWriter, r *http.Request, p principal, target string,
	act func(ctx context.Context, c control.Change, target string) (T, error)) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	out, err := act(r.Context(), p.change(req.Reason), target)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
