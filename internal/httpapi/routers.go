package httpapi

import (
	"net/http"
	"strconv"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// report takes a router's report: the snapshot version it holds and, from
// ingress routers, its journal figures and counts. The service validates
// the report whole; a report whose reportId was applied before is answered
// 200 instead of 202, its counts not counted again.
func (a *API) report(w http.ResponseWriter, r *http.Request, p principal) error {
	var req wire.Report
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if err := domain.CheckID("router", req.Router); err != nil {
		return err
	}
	if len(req.Journal) > 0 && req.Journal[0] != '{' {
		return domain.Errorf(domain.CodeInvalid, "journal must be a JSON object")
	}
	if string(req.Journal) == "null" {
		req.Journal = nil
	}
	duplicate, err := a.svc.IngestReport(r.Context(), req)
	if err != nil {
		return err
	}
	status := http.StatusAccepted
	if duplicate {
		status = http.StatusOK
	}
	writeJSON(w, status, map[string]uint64{"snapshotVersion": a.svc.State().Version})
	return nil
}

type routerView struct {
	control.RouterStatus
	// Confirmed is true when the router holds the current snapshot version.
	Confirmed bool `json:"confirmed"`
}

func (a *API) listRouters(w http.ResponseWriter, r *http.Request, _ principal) error {
	cur := a.svc.State().Version
	out := []routerView{}
	for _, rt := range a.svc.Routers() {
		out = append(out, routerView{RouterStatus: rt, Confirmed: rt.SnapshotVersion == cur && rt.Conflict == ""})
	}
	w.Header().Set("X-Snapshot-Version", strconv.FormatUint(cur, 10))
	writeJSON(w, http.StatusOK, out)
	return nil
}
