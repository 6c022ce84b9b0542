package httpapi

import (
	"net/http"

	"github.com/gorilla/mux"
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
	return withReason(w, r, p, mux.Vars(r)["key"], a.svc.PauseAutopilot)
}

// resumeAutopilot serves POST /v1/migrations/{key}/autopilot/resume, body
// {"reason"} (optional).
func (a *API) resumeAutopilot(w http.ResponseWriter, r *http.Request, p principal) error {
	return withReason(w, r, p, mux.Vars(r)["key"], a.svc.ResumeAutopilot)
}
