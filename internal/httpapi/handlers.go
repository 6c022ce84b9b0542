package httpapi

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// pathID returns the path variable name, checked as an id.
func pathID(r *http.Request, name, what string) (string, error) {
	v := mux.Vars(r)[name]
	return v, domain.CheckID(what, v)
}

// pathIDs returns the path variables named in pairs (variable, what),
// each checked as an id.
func pathIDs(r *http.Request, pairs ...string) ([]string, error) {
	out := make([]string, 0, len(pairs)/2)
	for i := 0; i+1 < len(pairs); i += 2 {
		v, err := pathID(r, pairs[i], pairs[i+1])
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

func putStatus(created bool) int {
	if created {
		return http.StatusCreated
	}
	return http.StatusOK
}

// --- tokens

type tokenView struct {
	Name      string      `json:"name"`
	Role      domain.Role `json:"role"`
	Token     string      `json:"token,omitempty"`
	CreatedAt time.Time   `json:"createdAt"`
}

func (a *API) createToken(w http.ResponseWriter, r *http.Request, p principal) error {
	var req struct {
		Name   string `json:"name"`
		Role   string `json:"role"`
		Reason string `json:"reason"`
	}
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	role, err := domain.ParseRole(req.Role)
	if err != nil {
		return err
	}
	t, secret, err := a.svc.CreateToken(r.Context(), p.change(req.Reason), req.Name, role)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusCreated, tokenView{Name: t.Name, Role: t.Role, Token: secret, CreatedAt: t.CreatedAt})
	return nil
}

func (a *API) listTokens(w http.ResponseWriter, r *http.Request, p principal) error {
	out := []tokenView{}
	for _, t := range a.svc.Tokens() {
		out = append(out, tokenView{Name: t.Name, Role: t.Role, CreatedAt: t.CreatedAt})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) deleteToken(w http.ResponseWriter, r *http.Request, p principal) error {
	name, err := pathID(r, "name", "token")
	if err != nil {
		return err
	}
	if err := a.svc.DeleteToken(r.Context(), p.change(r.URL.Query().Get("reason")), name); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// --- partners

type partnerView struct {
	ID        string     `json:"id"`
	Name      string     `json:"name"`
	PSA       domain.PSA `json:"psa"`
	SecretSet bool       `json:"secretSet"`
	CompanyID string     `json:"companyId,omitempty"`
	// PSAAPISet says whether the partner has PSA API access: the access
	// itself, its URL included, is never returned.
	PSAAPISet bool      `json:"psaApiSet"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

func viewPartner(p *domain.Partner) partnerView {
	return partnerView{ID: p.ID, Name: p.Name, PSA: p.PSA, SecretSet: p.Secret != "", CompanyID: p.CompanyID,
		PSAAPISet: p.PSAAPI != nil, CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt}
}

func (a *API) putPartner(w http.ResponseWriter, r *http.Request, p principal) error {
	id, err := pathID(r, "id", "partner")
	if err != nil {
		return err
	}
	var req struct {
		Name      string  `json:"name"`
		PSA       string  `json:"psa"`
		Secret    *string `json:"secret"`
		CompanyID string  `json:"companyId"`
		// PSAAPI: absent or null keeps the partner's, {} removes it.
		PSAAPI *domain.PSAAPI `json:"psaApi"`
		Reason string         `json:"reason"`
	}
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	out, created, err := a.svc.PutPartner(r.Context(), p.change(req.Reason),
		control.PartnerInput{ID: id, Name: req.Name, PSA: domain.PSA(req.PSA), Secret: req.Secret, CompanyID: req.CompanyID, PSAAPI: req.PSAAPI})
	if err != nil {
		return err
	}
	writeJSON(w, putStatus(created), viewPartner(&out))
	return nil
}

func (a *API) listPartners(w http.ResponseWriter, r *http.Request, _ principal) error {
	st := a.svc.State()
	out := make([]partnerView, 0, len(st.Partners))
	for _, id := range st.PartnerIDs() {
		out = append(out, viewPartner(st.Partners[id]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) getPartner(w http.ResponseWriter, r *http.Request, _ principal) error {
	id, err := pathID(r, "id", "partner")
	if err != nil {
		return err
	}
	p, err := a.svc.State().Partner(id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewPartner(p))
	return nil
}

// --- migrations

// gatesRequest has pointers so that a missing setting takes its default.
type gatesRequest struct {
	MinComparisons  *int           `json:"minComparisons"`
	MaxMismatchRate *float64       `json:"maxMismatchRate"`
	ZeroTolerance   []domain.Class `json:"zeroTolerance"`
	MinBakeSeconds  *int           `json:"minBakeSeconds"`
	MaxErrorRate    *float64       `json:"maxErrorRate"`
	MinCoverage     *float64       `json:"minCoverage"`
	MinPerEventType *int           `json:"minPerEventType"`
	// MinComparisonsPerType is the earlier name of minPerEventType, still
	// accepted so that a client written for it keeps working; the new name
	// wins when both are given.
	MinComparisonsPerType *int `json:"minComparisonsPerType"`
}

// gates returns the default gates with the request's settings applied.
func (g *gatesRequest) gates() domain.Gates { return g.over(domain.DefaultGates()) }

// over returns base with the request's settings applied.
func (g *gatesRequest) over(base domain.Gates) domain.Gates {
	out := base
	out.ZeroTolerance = slices.Clone(base.ZeroTolerance)
	if g == nil {
		return out
	}
	set(&out.MinComparisons, g.MinComparisons)
	set(&out.MaxMismatchRate, g.MaxMismatchRate)
	set(&out.MinBakeSeconds, g.MinBakeSeconds)
	set(&out.MaxErrorRate, g.MaxErrorRate)
	set(&out.MinCoverage, g.MinCoverage)
	set(&out.MinPerEventType, g.MinComparisonsPerType)
	set(&out.MinPerEventType, g.MinPerEventType)
	if g.ZeroTolerance != nil {
		out.ZeroTolerance = g.ZeroTolerance
	}
	return out
}

type guardRequest struct {
	Scope           *domain.GuardScope `json:"scope"`
	Window          *int               `json:"window"`
	MaxMismatchRate *float64           `json:"maxMismatchRate"`
	MaxErrorRate    *float64           `json:"maxErrorRate"`
}

func (g *guardRequest) guard() domain.Guard {
	out := domain.DefaultGuard()
	if g == nil {
		return out
	}
	set(&out.Scope, g.Scope)
	set(&out.Window, g.Window)
	set(&out.MaxMismatchRate, g.MaxMismatchRate)
	set(&out.MaxErrorRate, g.MaxErrorRate)
	return out
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

type migrationView struct {
	domain.Migration
	Stages          map[domain.Stage]int `json:"stages"`
	SnapshotVersion uint64               `json:"snapshotVersion"`
}

func viewMigration(st *control.State, ms *control.MigrationState) migrationView {
	m := ms.Migration
	if m.Compare.Ignore == nil {
		m.Compare.Ignore = []string{}
	}
	if m.Compare.Sets == nil {
		m.Compare.Sets = []string{}
	}
	if m.Compare.NoiseSampleRate == nil {
		rate := m.Compare.NoiseRate() // shown, so that the default is no secret
		m.Compare.NoiseSampleRate = &rate
	}
	if p := m.Reconcile; p != nil {
		shown := *p // a copy: the state's policy is shared
		shown.Window = p.EffectiveWindow()
		m.Reconcile = &shown
	}
	return migrationView{Migration: m, Stages: st.PartnersByStage(ms), SnapshotVersion: st.Version}
}

func (a *API) putMigration(w http.ResponseWriter, r *http.Request, p principal) error {
	key, err := pathID(r, "key", "migration")
	if err != nil {
		return err
	}
	var req struct {
		Description string                  `json:"description"`
		Pipelines   domain.Pipelines        `json:"pipelines"`
		Compare     domain.CompareRules     `json:"compare"`
		Gates       *gatesRequest           `json:"gates"`
		Guard       *guardRequest           `json:"guard"`
		Reconcile   *domain.ReconcilePolicy `json:"reconcile"`
		Approvals   *domain.ApprovalPolicy  `json:"approvals"`
		Autopilot   *domain.AutopilotPolicy `json:"autopilot"`
		Reason      string                  `json:"reason"`
	}
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	m := domain.Migration{Key: key, Description: req.Description, Pipelines: req.Pipelines,
		Compare: req.Compare, Gates: req.Gates.gates(), Guard: req.Guard.guard(), Reconcile: req.Reconcile,
		Approvals: req.Approvals, Autopilot: req.Autopilot}
	_, created, err := a.svc.PutMigration(r.Context(), p.change(req.Reason), m)
	if err != nil {
		return err
	}
	st := a.svc.State()
	writeJSON(w, putStatus(created), viewMigration(st, st.Migrations[key]))
	return nil
}

func (a *API) listMigrations(w http.ResponseWriter, r *http.Request, _ principal) error {
	st := a.svc.State()
	out := make([]migrationView, 0, len(st.Migrations))
	for _, k := range st.MigrationKeys() {
		out = append(out, viewMigration(st, st.Migrations[k]))
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) migration(r *http.Request) (*control.State, *control.MigrationState, error) {
	key, err := pathID(r, "key", "migration")
	if err != nil {
		return nil, nil, err
	}
	st := a.svc.State()
	ms, err := st.Migration(key)
	return st, ms, err
}

func (a *API) getMigration(w http.ResponseWriter, r *http.Request, _ principal) error {
	st, ms, err := a.migration(r)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, viewMigration(st, ms))
	return nil
}

// --- stages

type stageStats struct {
	Compared   uint64                  `json:"compared"`
	Mismatched uint64                  `json:"mismatched"`
	ByClass    map[domain.Class]uint64 `json:"byClass"`
}

type stageView struct {
	Partner string       `json:"partner"`
	Stage   domain.Stage `json:"stage"`
	Cohort  string       `json:"cohort"`
	Since   time.Time    `json:"since"`
	Stats   stageStats   `json:"stats"`
}

func (a *API) putStage(w http.ResponseWriter, r *http.Request, p principal) error {
	ids, err := pathIDs(r, "key", "migration", "id", "partner")
	if err != nil {
		return err
	}
	key, id := ids[0], ids[1]
	var req struct {
		Stage  string `json:"stage"`
		Reason string `json:"reason"`
		Force  bool   `json:"force"`
	}
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	to, err := domain.ParseStage(req.Stage)
	if err != nil {
		return err
	}
	res, err := a.svc.MoveStage(r.Context(), p.change(req.Reason), key, id, to, req.Force)
	if err != nil {
		return err
	}
	if res.Change != nil {
		writeFiled(w, res.Change)
		return nil
	}
	ps := res.Stage
	st := a.svc.State()
	cohort := ""
	if ms, ok := st.Migrations[key]; ok {
		cohort = ms.CohortOf(id)
	}
	writeJSON(w, http.StatusOK, stageView{Partner: id, Stage: ps.Stage, Cohort: cohort, Since: ps.Since, Stats: a.stats(r, key, ps)})
	return nil
}

func (a *API) stats(r *http.Request, key string, ps domain.PartnerStage) stageStats {
	c, err := a.svc.StageCounts(r.Context(), key, ps)
	if err != nil {
		a.log.Warn("comparison counts unavailable", "migration", key, "partner", ps.Partner, "err", err)
	}
	byClass := c.ByClass
	if byClass == nil {
		byClass = map[domain.Class]uint64{}
	}
	return stageStats{Compared: c.Compared(), Mismatched: c.Mismatched(), ByClass: byClass}
}

func (a *API) listStages(w http.ResponseWriter, r *http.Request, _ principal) error {
	st, ms, err := a.migration(r)
	if err != nil {
		return err
	}
	out := make([]stageView, 0, len(st.Partners))
	for _, id := range st.PartnerIDs() {
		ps := ms.StageOf(st.Partners[id])
		out = append(out, stageView{Partner: id, Stage: ps.Stage, Cohort: ms.CohortOf(id), Since: ps.Since, Stats: a.stats(r, ms.Key, ps)})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// --- cohorts

type cohortView struct {
	Name     string        `json:"name"`
	Order    int           `json:"order"`
	Partners []string      `json:"partners"`
	Stage    domain.Stage  `json:"stage"`
	Gates    *domain.Gates `json:"gates,omitempty"`
}

func (a *API) putCohort(w http.ResponseWriter, r *http.Request, p principal) error {
	ids, err := pathIDs(r, "key", "migration", "name", "cohort")
	if err != nil {
		return err
	}
	key, name := ids[0], ids[1]
	var req struct {
		Order    int           `json:"order"`
		Partners []string      `json:"partners"`
		Gates    *gatesRequest `json:"gates"`
		Reason   string        `json:"reason"`
	}
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	c := domain.Cohort{Name: name, Order: req.Order, Partners: req.Partners}
	if c.Partners == nil {
		c.Partners = []string{}
	}
	if req.Gates != nil {
		// A cohort's override starts from its migration's gates, so it
		// need name only what differs.
		_, ms, err := a.migration(r)
		if err != nil {
			return err
		}
		g := req.Gates.over(ms.Gates)
		c.Gates = &g
	}
	out, created, err := a.svc.PutCohort(r.Context(), p.change(req.Reason), key, c)
	if err != nil {
		return err
	}
	st := a.svc.State()
	ms := st.Migrations[key]
	writeJSON(w, putStatus(created), cohortView{Name: out.Name, Order: out.Order, Partners: out.Partners, Stage: st.CohortStage(ms, out), Gates: out.Gates})
	return nil
}

func (a *API) listCohorts(w http.ResponseWriter, r *http.Request, _ principal) error {
	st, ms, err := a.migration(r)
	if err != nil {
		return err
	}
	out := make([]cohortView, 0, len(ms.Cohorts))
	for _, c := range ms.Cohorts {
		out = append(out, cohortView{Name: c.Name, Order: c.Order, Partners: c.Partners, Stage: st.CohortStage(ms, c), Gates: c.Gates})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) gate(w http.ResponseWriter, r *http.Request, _ principal) error {
	ids, err := pathIDs(r, "key", "migration", "name", "cohort")
	if err != nil {
		return err
	}
	key, name := ids[0], ids[1]
	rep, err := a.svc.Gate(r.Context(), key, name)
	if err != nil {
		return err
	}
	if rep.Partners == nil {
		rep.Partners = []gate.PartnerReport{}
	}
	writeJSON(w, http.StatusOK, rep)
	return nil
}

type reasonRequest struct {
	Reason string `json:"reason"`
	Force  bool   `json:"force"`
}

func (a *API) advance(w http.ResponseWriter, r *http.Request, p principal) error {
	ids, err := pathIDs(r, "key", "migration", "name", "cohort")
	if err != nil {
		return err
	}
	key, name := ids[0], ids[1]
	var req reasonRequest
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	res, err := a.svc.Advance(r.Context(), p.change(req.Reason), key, name, req.Force)
	if err != nil {
		return err
	}
	if res.Change != nil {
		writeFiled(w, res.Change)
		return nil
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// --- kill switches

type revertRequest struct {
	Reason string `json:"reason"`
	// Replay asks for the events the new pipeline got wrong (comparison
	// not equal) since each partner entered new to be replayed through
	// legacy, on the router of this process or, without one, by the
	// routers.
	Replay bool `json:"replay"`
}

func (a *API) killSwitch(w http.ResponseWriter, r *http.Request, p principal, on bool) error {
	key, err := pathID(r, "key", "migration")
	if err != nil {
		return err
	}
	return a.setKillSwitch(w, r, p, control.KillSwitch{Migrations: []string{key}, On: on})
}

// setKillSwitch calls the kill switch with the body's reason and replay;
// the control service starts the replays, this only words them.
func (a *API) setKillSwitch(w http.ResponseWriter, r *http.Request, p principal, k control.KillSwitch) error {
	var req revertRequest
	if err := decode(w, r, &req, true); err != nil {
		return err
	}
	k.Replay = req.Replay
	res, err := a.svc.SetKillSwitch(r.Context(), p.change(req.Reason), k)
	if err != nil {
		return err
	}
	out := map[string]any{"snapshotVersion": res.Version}
	if req.Replay {
		var lines []string
		for _, rp := range res.Replays {
			lines = append(lines, fmt.Sprintf("%s: %d partners since %s, replay %s",
				rp.Event.Migration, len(rp.Event.Partners), rp.Event.Since.Format(time.RFC3339), rp.Job.ID))
		}
		out["replay"] = lines
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

func (a *API) revert(w http.ResponseWriter, r *http.Request, p principal) error {
	return a.killSwitch(w, r, p, true)
}

func (a *API) resume(w http.ResponseWriter, r *http.Request, p principal) error {
	return a.killSwitch(w, r, p, false)
}

func (a *API) revertAll(w http.ResponseWriter, r *http.Request, p principal) error {
	return a.setKillSwitch(w, r, p, control.KillSwitch{On: true})
}

// --- evaluation and snapshot

// EvaluationView is the answer of /v1/evaluate.
type EvaluationView struct {
	Value     string             `json:"value"`
	Variant   string             `json:"variant,omitempty"`
	Reason    string             `json:"reason"`
	ErrorCode string             `json:"errorCode,omitempty"`
	Metadata  EvaluationMetadata `json:"metadata"`
}

// EvaluationMetadata is the flag metadata of an evaluation.
type EvaluationMetadata struct {
	Shadow          string `json:"shadow"`
	Stage           string `json:"stage"`
	SnapshotVersion uint64 `json:"snapshotVersion"`
}

func viewResolution(res flags.Resolution) EvaluationView {
	return EvaluationView{Value: res.Value, Variant: res.Variant, Reason: res.Reason, ErrorCode: res.ErrorCode,
		Metadata: EvaluationMetadata{Shadow: res.Shadow, Stage: res.Stage, SnapshotVersion: res.Version}}
}

func (a *API) evaluate(w http.ResponseWriter, r *http.Request, _ principal) error {
	var req struct {
		Flag    string         `json:"flag"`
		Context map[string]any `json:"context"`
	}
	if err := decode(w, r, &req, false); err != nil {
		return err
	}
	if req.Flag == "" {
		return domain.Errorf(domain.CodeInvalid, "flag is required: the migration key")
	}
	key, _ := req.Context["targetingKey"].(string)
	if v, ok := req.Context["targetingKey"]; ok && v != nil {
		if _, isString := v.(string); !isString {
			return domain.Errorf(domain.CodeInvalid, "context.targetingKey must be a string: the partner id")
		}
	}
	writeJSON(w, http.StatusOK, viewResolution(a.svc.State().Flags().Evaluate(req.Flag, key)))
	return nil
}

func (a *API) snapshot(w http.ResponseWriter, r *http.Request, p principal) error {
	st := a.svc.State()
	secrets := p.role == domain.RoleRouter
	etag := `"v` + strconv.FormatUint(st.Version, 10) + `"`
	if secrets {
		etag = `"v` + strconv.FormatUint(st.Version, 10) + `-router"`
	}
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if etagMatch(r.Header.Get("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(st.SnapshotJSON(secrets))
	return nil
}

// --- audit

func (a *API) auditLog(w http.ResponseWriter, r *http.Request, _ principal) error {
	q := r.URL.Query()
	after, limit := uint64(0), 100
	if v := q.Get("after"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return domain.Errorf(domain.CodeInvalid, "after must be a sequence number (a non-negative integer)")
		}
		after = n
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return domain.Errorf(domain.CodeInvalid, "limit must be a positive integer (at most 1000 entries are returned)")
		}
		limit = min(n, 1000)
	}
	entries, err := a.svc.AuditLog(r.Context(), after, limit)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, entries)
	return nil
}

// comparisons serves a partner's comparison counts by event type and class
// in its current stage, and its latest mismatches with both sides.
func (a *API) comparisons(w http.ResponseWriter, r *http.Request, _ principal) error {
	ids, err := pathIDs(r, "key", "migration", "id", "partner")
	if err != nil {
		return err
	}
	key, id := ids[0], ids[1]
	c, err := a.svc.Comparisons(r.Context(), key, id)
	if err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, c)
	return nil
}
