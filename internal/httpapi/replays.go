package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
)

// Ingress is what the API needs from an ingress router running in the same
// process: its replays and its stuck events.
type Ingress interface {
	StartReplay(ctx context.Context, req domain.ReplayRequest) (domain.ReplayJob, error)
	Replay(id string) (domain.ReplayJob, error)
	Replays() []domain.ReplayJob
	Stuck() ([]journal.Event, error)
}

// WithIngress serves replays and events from an ingress router in the same
// process.
func WithIngress(in Ingress) Option { return func(o *options) { o.Ingress = in } }

func (a *API) ingress() (Ingress, error) {
	if a.opts.Ingress == nil {
		return nil, domain.Errorf(domain.CodeConflict, "no ingress router runs in this process: replays and events live with the routers' journals; start serve without --no-ingress")
	}
	return a.opts.Ingress, nil
}

func (a *API) startReplay(w http.ResponseWriter, r *http.Request, p principal) error {
	in, err := a.ingress()
	if err != nil {
		return err
	}
	var req struct {
		domain.ReplayRequest
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	job, err := in.StartReplay(r.Context(), req.ReplayRequest)
	if err != nil {
		return err
	}
	if err := a.svc.RecordAction(r.Context(), p.change(req.Reason), "replay.start", "replay/"+job.ID, job.Request); err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, replayView(job))
	return nil
}

type replayProgress struct {
	ID         string               `json:"id"`
	Status     string               `json:"status"`
	Total      int                  `json:"total"`
	Done       int                  `json:"done"`
	Failed     int                  `json:"failed"`
	Error      string               `json:"error,omitempty"`
	Request    domain.ReplayRequest `json:"request"`
	CreatedAt  time.Time            `json:"createdAt"`
	FinishedAt time.Time            `json:"finishedAt,omitzero"`
}

func replayView(j domain.ReplayJob) replayProgress {
	return replayProgress{ID: j.ID, Status: j.Status, Total: j.Total, Done: j.Done, Failed: j.Failed, Error: j.Error,
		Request: j.Request, CreatedAt: j.CreatedAt, FinishedAt: j.FinishedAt}
}

func (a *API) getReplay(w http.ResponseWriter, r *http.Request, _ principal) error {
	in, err := a.ingress()
	if err != nil {
		return err
	}
	job, err := in.Replay(mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, replayView(job))
	return nil
}

func (a *API) listReplays(w http.ResponseWriter, r *http.Request, _ principal) error {
	in, err := a.ingress()
	if err != nil {
		return err
	}
	out := []replayProgress{}
	for _, j := range in.Replays() {
		out = append(out, replayView(j))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// listEvents serves GET /v1/events?state=stuck: the journaled events
// without an outcome past the router's threshold.
func (a *API) listEvents(w http.ResponseWriter, r *http.Request, _ principal) error {
	if st := r.URL.Query().Get("state"); st != "stuck" {
		return domain.Errorf(domain.CodeInvalid, "state=%q is not supported: use state=stuck", st)
	}
	in, err := a.ingress()
	if err != nil {
		return err
	}
	evs, err := in.Stuck()
	if err != nil {
		return domain.Internal("read stuck events", err)
	}
	out := make([]journal.Event, 0, len(evs))
	for _, e := range evs {
		e.Payload = nil // the list is for finding events, not reading them
		out = append(out, e)
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
