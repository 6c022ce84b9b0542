package httpapi

import (
	"context"
	"net/http"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/wire"
)

// autopilot serves GET /v1/migrations/{key}/autopilot: what the
// migration's autopilot does now and why (wire.AutopilotStatus).
func (a *API) autopilot(w http.ResponseWriter, r *http.Request, _ principal) error {
	st, err := a.svc.AutopilotStatus(r.Context(), mux.Vars(r)["key"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}

// pauseAutopilot serves POST /v1/migrations/{key}/autopilot/pause, body
// {"reason"} (required), answering the status after the pause.
func (a *API) pauseAutopilot(w http.ResponseWriter, r *http.Request, p principal) error {
	return a.autopilotSwitch(w, r, p, a.svc.PauseAutopilot)
}

// resumeAutopilot serves POST /v1/migrations/{key}/autopilot/resume, body
// {"reason"} (required).
func (a *API) resumeAutopilot(w http.ResponseWriter, r *http.Request, p principal) error {
	return a.autopilotSwitch(w, r, p, a.svc.ResumeAutopilot)
}

func (a *API) autopilotSwitch(w http.ResponseWriter, r *http.Request, p principal,
	flip func(ctx context.Context, c control.Change, key string) (wire.AutopilotStatus, error)) error {
	var req struct {
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	st, err := flip(r.Context(), p.change(req.Reason), mux.Vars(r)["key"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, st)
	return nil
}
