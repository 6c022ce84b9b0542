package httpapi

import (
	"context"
	"net/http"
	"time"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// Ingress is what the API needs from an ingress router running in the same
// process: its replays and its stuck events.
type Ingress interface {
	StartReplay(ctx context.Context, req domain.ReplayRequest) (domain.ReplayJob, error)
	Replay(id string) (domain.ReplayJob, error)
	Replays() []domain.ReplayJob
	StuckEvents(ctx context.Context) ([]wire.Event, error)
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

// startReplay runs a replay on the router of this process, or, without
// one, asks it of the routers, which poll for it and report progress.
func (a *API) startReplay(w http.ResponseWriter, r *http.Request, p principal) error {
	var req struct {
		domain.ReplayRequest
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	// The replay starts before its audit entry is written: refuse a bad
	// reason first, or the replay would run and the answer be an error.
	if err := p.change(req.Reason).Validate(); err != nil {
		return err
	}
	in := a.opts.Ingress
	if in == nil {
		job, err := a.svc.AskReplay(r.Context(), p.change(req.Reason), req.ReplayRequest)
		if err != nil {
			return err
		}
		writeJSON(w, http.StatusCreated, replayView(job))
		return nil
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
	// Set for a job that awaits comparisons (a revert's replay).
	AwaitUntil         time.Time `json:"awaitUntil,omitzero"`
	AwaitingComparison int       `json:"awaitingComparison"`
	Unknown            int       `json:"unknown"`
	UnknownEvents      []string  `json:"unknownEvents,omitempty"`
}

func replayView(j domain.ReplayJob) replayProgress {
	return replayProgress{ID: j.ID, Status: j.Status, Total: j.Total, Done: j.Done, Failed: j.Failed, Error: j.Error,
		Request: j.Request, CreatedAt: j.CreatedAt, FinishedAt: j.FinishedAt,
		AwaitUntil: j.AwaitUntil, AwaitingComparison: j.AwaitingComparison, Unknown: j.Unknown, UnknownEvents: j.UnknownEvents}
}

func (a *API) getReplay(w http.ResponseWriter, r *http.Request, _ principal) error {
	get := a.svc.AskedReplay
	if a.opts.Ingress != nil {
		get = a.opts.Ingress.Replay
	}
	job, err := get(mux.Vars(r)["id"])
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, replayView(job))
	return nil
}

func (a *API) listReplays(w http.ResponseWriter, r *http.Request, _ principal) error {
	list := a.svc.AskedReplayList
	if a.opts.Ingress != nil {
		list = a.opts.Ingress.Replays
	}
	out := []replayProgress{}
	for _, j := range list() {
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
	evs, err := in.StuckEvents(r.Context())
	if err != nil {
		return domain.Internal("read stuck events", err)
	}
	if evs == nil {
		evs = []wire.Event{} // [] when none, not null
	}
	writeJSON(w, http.StatusOK, evs)
	return nil
}

// askedReplays serves routers the replays asked of them.
func (a *API) askedReplays(w http.ResponseWriter, r *http.Request, _ principal) error {
	writeJSON(w, http.StatusOK, a.svc.AskedReplays())
	return nil
}
