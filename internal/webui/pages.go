package webui

import (
	"cmp"
	"maps"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// --- dashboard

type dashboardPage struct {
	base
	Migrations  []migrationCard
	Routers     routerSummary
	Partners    int
	AllReverted bool
	Keys        []string // the migrations' keys, for their dialogs
}

func (u *UI) dashboard(w http.ResponseWriter, r *http.Request, s session) error {
	st := u.svc.State()
	data := dashboardPage{Migrations: u.migrationCards(st), Routers: u.routerSummary(st.Version), Partners: len(st.Partners)}
	data.AllReverted = len(data.Migrations) > 0
	for _, m := range data.Migrations {
		data.AllReverted = data.AllReverted && m.Reverted
		data.Keys = append(data.Keys, m.Key)
	}
	data.base = u.base(w, r, &s, "dashboard", "routers")
	u.render(w, r, http.StatusOK, "dashboard", &data)
	return nil
}

// --- one migration: cohorts with their gate reports, and the partners

type migrationPage struct {
	base
	M          migrationCard
	Pipelines  domain.Pipelines
	Gates      domain.Gates
	Reconcile  string // formatReconcile of the migration's setting
	Cohorts    []cohortView
	Uncohorted int
	Partners   partnersTable
	Routers    routerSummary
	Changes    changeLists
	// Autopilot is nil when the migration has no autopilot policy.
	Autopilot *autopilotView
}

// cohortView is a cohort with what advancing it now would do.
type cohortView struct {
	Name     string
	Order    int
	Partners []string
	Stage    domain.Stage // the lowest stage of its partners
	Next     domain.Stage // "" when done
	Movers   int          // partners that an advance moves
	Gated    bool         // the move needs the gates to pass
	Gate     *gateTable
	GateErr  string
	// CanAdvance is true when an unforced advance would be accepted now;
	// Blocked says why not.
	CanAdvance bool
	Blocked    string
	// CanForce is true when the move is gated, refused, and may be forced.
	CanForce bool
	// Waiting is true when the refusal is for want of data (the report is
	// inconclusive), not a failed check.
	Waiting bool
	// ConfirmPattern is the pattern the forced advance's confirmation
	// field must match: the cohort's name.
	ConfirmPattern string
	// Approvals is how many approvals its next move waits for, 0 when it
	// needs none; Pending is the change request of that move that waits
	// now, if any.
	Approvals int
	Pending   *changeView
}

func (u *UI) migration(w http.ResponseWriter, r *http.Request, s session) error {
	st, ms, err := u.migrationOf(r)
	if err != nil {
		return err
	}
	data := migrationPage{M: card(st, ms), Pipelines: ms.Pipelines, Gates: ms.Gates, Reconcile: formatReconcile(ms.Reconcile),
		Routers: u.routerSummary(st.Version)}
	for _, co := range ms.Cohorts {
		data.Cohorts = append(data.Cohorts, u.cohortView(r, st, ms, co))
	}
	for id := range st.Partners {
		if ms.CohortOf(id) == "" {
			data.Uncohorted++
		}
	}
	data.Partners = u.partnersTable(r, st, ms)
	data.Changes = u.changeLists(ms.Key, s.name, recentEnded)
	data.Changes.Policy = formatApprovals(ms.Approvals)
	data.Autopilot = u.autopilotView(r, ms)
	for i := range data.Cohorts {
		co := &data.Cohorts[i]
		if co.Next != "" && ms.Approvals.Requires(co.Next) {
			co.Approvals = ms.Approvals.Required
		}
		for j, c := range data.Changes.Pending {
			if c.Kind == domain.ChangeAdvance && c.Cohort == co.Name && c.To == co.Next {
				co.Pending = &data.Changes.Pending[j]
			}
		}
	}
	data.base = u.base(w, r, &s, "dashboard", "routers")
	u.render(w, r, http.StatusOK, "migration", &data)
	return nil
}

func (u *UI) migrationOf(r *http.Request) (*control.State, *control.MigrationState, error) {
	key := mux.Vars(r)["key"]
	if err := domain.CheckID("migration", key); err != nil {
		return nil, nil, domain.Errorf(domain.CodeNotFound, "migration %q does not exist", key)
	}
	st := u.svc.State()
	ms, err := st.Migration(key)
	return st, ms, err
}

func (u *UI) cohortView(r *http.Request, st *control.State, ms *control.MigrationState, co domain.Cohort) cohortView {
	v := cohortView{Name: co.Name, Order: co.Order, Partners: co.Partners, Stage: st.CohortStage(ms, co),
		ConfirmPattern: regexp.QuoteMeta(co.Name)}
	v.Next, _ = v.Stage.Next()
	for _, id := range co.Partners {
		if p, ok := st.Partners[id]; ok && ms.StageOf(p).Stage == v.Stage {
			v.Movers++
		}
	}
	v.Gated = v.Stage.Gated()
	switch {
	case len(co.Partners) == 0:
		v.Blocked = "This cohort has no partners."
		return v
	case v.Next == "":
		v.Blocked = "Every partner of this cohort is done: on the new pipeline for good."
		return v
	}
	rep, err := u.svc.Gate(r.Context(), ms.Key, co.Name)
	if err != nil {
		if domain.ErrorCode(err) == domain.CodeInternal {
			u.log.Error("ui gate report failed", "migration", ms.Key, "cohort", co.Name, "err", err)
		}
		v.GateErr = domain.ErrorMessage(err)
		v.Blocked = "The gate report is unavailable: " + v.GateErr
		return v
	}
	if v.Gated {
		t := newGateTable(rep)
		v.Gate = &t
	}
	switch {
	case ms.Reverted:
		v.Blocked = "The kill switch is on: resume the migration before moving partners forward."
	case rep.Verdict == gate.Inconclusive:
		// Refused like a fail, but said as what to wait for: nothing is
		// known to be wrong, and an operator should not go hunting.
		v.Blocked = "Waiting for data: " + rep.Missing() + "."
		v.Waiting, v.CanForce = true, true
	case !rep.Pass:
		v.Blocked = "The gates refuse this advance: see the failing checks."
		v.CanForce = true
	default:
		v.CanAdvance = true
	}
	return v
}

// partnersTable is the partners of a migration, with a filter and a sort
// that work without script (links and a form) and faster with it.
type partnersTable struct {
	Query   string
	Sort    string
	Desc    bool
	Columns []column
	Rows    []partnerRow
	Shown   int
	Total   int
	Classes []domain.Class // the mismatch and coverage-gap classes, for the legend
}

// column is a sortable column heading.
type column struct {
	Key, Label string
	Href       string
	AriaSort   string // "ascending", "descending" or ""
	Numeric    bool
}

// partnerRow is one partner of a migration and its comparisons in its
// current stage.
type partnerRow struct {
	ID, Name    string
	PSA         domain.PSA
	Stage       domain.PartnerStage
	Cohort      string
	Primary     string // the pipeline applied now
	Shadow      string // the pipeline in dry-run now, or ""
	Compared    uint64
	Mismatched  uint64
	Rate        float64 // mismatched / compared
	Upper       float64 // the 95% Wilson upper bound of Rate
	Classes     []classCount
	StatsFailed bool
	Hidden      bool   // filtered out
	Search      string // what the filter matches, lower case
}

type classCount struct {
	Class         domain.Class
	N             uint64
	ZeroTolerance bool
	Gap           bool // a coverage gap (skipped, shadow_error, primary_error), not a comparison
}

// sortColumn is a column of the partners table that sorts it.
type sortColumn struct {
	key, label string
	numeric    bool
}

var partnerColumns = []sortColumn{
	{"partner", "Partner", false},
	{"stage", "Stage", false},
	{"primary", "Applied by", false},
	{"cohort", "Cohort", false},
	{"since", "In stage", false},
	{"compared", "Compared", true},
	{"mismatched", "Mismatched", true},
	{"rate", "Mismatch rate", true},
	{"upper", "95% upper bound", true},
}

func (u *UI) partnersTable(r *http.Request, st *control.State, ms *control.MigrationState) partnersTable {
	q := r.URL.Query()
	t := partnersTable{Query: strings.TrimSpace(q.Get("q")), Sort: q.Get("sort"), Desc: q.Get("dir") == "desc", Total: len(st.Partners)}
	if !slices.ContainsFunc(partnerColumns, func(c sortColumn) bool { return c.key == t.Sort }) {
		t.Sort = "partner"
	}
	for _, c := range domain.Classes {
		if c != domain.ClassEqual {
			t.Classes = append(t.Classes, c)
		}
	}
	snap := st.Flags()
	needle := strings.ToLower(t.Query)
	for _, id := range st.PartnerIDs() {
		p := st.Partners[id]
		ps := ms.StageOf(p)
		res := snap.Evaluate(ms.Key, id)
		row := partnerRow{ID: id, Name: p.Name, PSA: p.PSA, Stage: ps, Cohort: ms.CohortOf(id), Primary: res.Value, Shadow: res.Shadow}
		counts, err := u.svc.StageCounts(r.Context(), ms.Key, ps)
		if err != nil {
			u.log.Warn("ui comparison counts unavailable", "migration", ms.Key, "partner", id, "err", err)
			row.StatsFailed = true
		}
		row.Compared, row.Mismatched = counts.Compared(), counts.Mismatched()
		if row.Compared > 0 {
			row.Rate = float64(row.Mismatched) / float64(row.Compared)
		}
		row.Upper = gate.WilsonUpper(row.Mismatched, row.Compared)
		zero := ms.GatesOf(id).ZeroTolerance
		for _, c := range t.Classes {
			if n := counts.ByClass[c]; n > 0 {
				row.Classes = append(row.Classes, classCount{Class: c, N: n, ZeroTolerance: slices.Contains(zero, c), Gap: !c.Compared()})
			}
		}
		row.Search = strings.ToLower(strings.Join([]string{id, p.Name, string(p.PSA), string(ps.Stage), row.Cohort, row.Primary}, " "))
		row.Hidden = needle != "" && !strings.Contains(row.Search, needle)
		if !row.Hidden {
			t.Shown++
		}
		t.Rows = append(t.Rows, row)
	}
	sortPartners(t.Rows, t.Sort, t.Desc)
	for _, c := range partnerColumns {
		col := column{Key: c.key, Label: c.label, Numeric: c.numeric}
		v := url.Values{}
		if t.Query != "" {
			v.Set("q", t.Query)
		}
		v.Set("sort", c.key)
		if c.key == t.Sort {
			col.AriaSort = "ascending"
			if t.Desc {
				col.AriaSort = "descending"
			} else {
				v.Set("dir", "desc")
			}
		}
		col.Href = "?" + v.Encode() + "#partners"
		t.Columns = append(t.Columns, col)
	}
	return t
}

func sortPartners(rows []partnerRow, by string, desc bool) {
	key := func(a, b partnerRow) int {
		switch by {
		case "stage":
			return cmp.Compare(a.Stage.Stage.Index(), b.Stage.Stage.Index())
		case "primary":
			return cmp.Compare(a.Primary, b.Primary)
		case "cohort":
			return cmp.Compare(a.Cohort, b.Cohort)
		case "since":
			return a.Stage.Since.Compare(b.Stage.Since)
		case "compared":
			return cmp.Compare(a.Compared, b.Compared)
		case "mismatched":
			return cmp.Compare(a.Mismatched, b.Mismatched)
		case "rate":
			return cmp.Compare(a.Rate, b.Rate)
		case "upper":
			return cmp.Compare(a.Upper, b.Upper)
		}
		return 0
	}
	slices.SortStableFunc(rows, func(a, b partnerRow) int {
		c := key(a, b)
		if desc {
			c = -c
		}
		if c == 0 {
			c = cmp.Compare(a.ID, b.ID)
		}
		return c
	})
}

// --- one partner of a migration

type partnerPage struct {
	base
	MigrationKey string
	Reverted     bool
	ID, Name     string
	PSA          domain.PSA
	Stage        domain.PartnerStage
	Cohort       string
	Eval         flags.Resolution
	Counts       gate.Counts
	Compared     uint64
	Mismatched   uint64
	Upper        float64
	Classes      []classCount
	Types        []typeCount
	StatsFailed  bool
	// PSAAPIHost is the host of the partner's PSA API, "" when it has
	// none: all the UI shows of that access.
	PSAAPIHost string
	PSAAPISet  bool
	// Gate judges the partner's next forward move; nil when that move
	// needs no gate (legacy → shadow) or there is none (done).
	Gate   *gateTable
	NoGate string
	// Recording is false until shadow comparisons are recorded at all.
	Recording      bool
	Comparisons    []comparisonRow
	ComparisonErr  string
	Mismatches     []Mismatch
	CompareClasses []domain.Class
	// Timeline is the chart of comparisons per minute; nil when there is
	// nothing to draw.
	Timeline    *timelineChart
	TimelineErr string
	// Noise is the field paths seen to differ between two legacy runs of
	// the partner's events, and the pinned ones, by event type and path.
	Noise           []domain.NoisePath
	NoiseErr        string
	NoiseSampleRate float64
	LearnedAfter    int
	LearnedShare    float64
}

type typeCount struct {
	Type string
	N    uint64
}

// comparisonRow is one event type's comparisons by class.
type comparisonRow struct {
	Type   string
	Counts []uint64 // in CompareClasses order
	Total  uint64
}

func (u *UI) partner(w http.ResponseWriter, r *http.Request, s session) error {
	st, ms, err := u.migrationOf(r)
	if err != nil {
		return err
	}
	id := mux.Vars(r)["id"]
	p, ok := st.Partners[id]
	if !ok {
		return domain.Errorf(domain.CodeNotFound, "partner %q does not exist", id)
	}
	ps := ms.StageOf(p)
	data := partnerPage{MigrationKey: ms.Key, Reverted: ms.Reverted, ID: p.ID, Name: p.Name, PSA: p.PSA, Stage: ps,
		PSAAPISet: p.PSAAPI != nil, PSAAPIHost: p.PSAAPI.Host(),
		Cohort: ms.CohortOf(id), Eval: st.Flags().Evaluate(ms.Key, id), CompareClasses: domain.Classes}
	counts, err := u.svc.StageCounts(r.Context(), ms.Key, ps)
	if err != nil {
		u.log.Warn("ui comparison counts unavailable", "migration", ms.Key, "partner", id, "err", err)
		data.StatsFailed = true
	}
	data.Counts, data.Compared, data.Mismatched = counts, counts.Compared(), counts.Mismatched()
	data.Upper = gate.WilsonUpper(data.Mismatched, data.Compared)
	zero := ms.GatesOf(id).ZeroTolerance
	for _, c := range domain.Classes {
		data.Classes = append(data.Classes, classCount{Class: c, N: counts.ByClass[c], ZeroTolerance: slices.Contains(zero, c), Gap: !c.Compared()})
	}
	for t, n := range counts.ByType {
		data.Types = append(data.Types, typeCount{Type: t, N: n})
	}
	slices.SortFunc(data.Types, func(a, b typeCount) int { return cmp.Compare(a.Type, b.Type) })

	switch {
	case ps.Stage == domain.StageDone:
		data.NoGate = "This partner is done: there is no further stage."
	case !ps.Stage.Gated():
		data.NoGate = "Moving from legacy to shadow needs no gate: it changes nothing the partner sees."
	default:
		rep, err := u.svc.PartnerGate(r.Context(), ms.Key, id)
		if err != nil {
			u.log.Warn("ui gate report unavailable", "migration", ms.Key, "partner", id, "err", err)
			data.NoGate = "The gates cannot be judged right now: " + domain.ErrorMessage(err) + "."
			break
		}
		t := newGateTable(rep)
		data.Gate = &t
	}

	if u.opts.Comparisons != nil {
		data.Recording = true
		pc, err := u.opts.Comparisons.PartnerComparisons(r.Context(), ms.Key, id)
		if err != nil {
			if domain.ErrorCode(err) == domain.CodeInternal {
				u.log.Error("ui comparisons unavailable", "migration", ms.Key, "partner", id, "err", err)
			}
			data.ComparisonErr = domain.ErrorMessage(err)
		}
		for _, t := range slices.Sorted(maps.Keys(pc.Counts)) {
			row := comparisonRow{Type: t}
			for _, c := range domain.Classes {
				n := pc.Counts[t][c]
				row.Counts = append(row.Counts, n)
				row.Total += n
			}
			data.Comparisons = append(data.Comparisons, row)
		}
		data.Mismatches = pc.Mismatches
		tl, err := u.opts.Comparisons.Timeline(r.Context(), ms.Key, id)
		if err != nil {
			if domain.ErrorCode(err) == domain.CodeInternal {
				u.log.Error("ui comparison timeline unavailable", "migration", ms.Key, "partner", id, "err", err)
			}
			data.TimelineErr = domain.ErrorMessage(err)
		}
		data.Timeline = buildTimeline(tl, ps.Since)
	}
	data.NoiseSampleRate, data.LearnedAfter, data.LearnedShare = ms.Compare.NoiseRate(), domain.NoiseLearnedAfter, domain.NoiseMinShare
	if data.Noise, err = u.svc.Noise(r.Context(), ms.Key, id); err != nil {
		if domain.ErrorCode(err) == domain.CodeInternal {
			u.log.Error("ui noise unavailable", "migration", ms.Key, "partner", id, "err", err)
		}
		data.NoiseErr = domain.ErrorMessage(err)
	}
	data.base = u.base(w, r, &s, "dashboard", "version")
	u.render(w, r, http.StatusOK, "partner", &data)
	return nil
}

// --- one mismatch: the diff viewer

type mismatchPage struct {
	base
	MigrationKey string
	PartnerID    string
	PartnerName  string
	EventID      string
	Recording    bool
	Found        bool
	M            Mismatch
	Meaning      string
	Paths        []string
	Primary      []jsonLine
	Shadow       []jsonLine
	Event        []jsonLine // M.Event's body, indented when it is JSON
}

// eventIDPattern bounds what a mismatch URL may name.
var eventIDPattern = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

func (u *UI) mismatch(w http.ResponseWriter, r *http.Request, s session) error {
	st, ms, err := u.migrationOf(r)
	if err != nil {
		return err
	}
	id, event := mux.Vars(r)["id"], mux.Vars(r)["event"]
	p, ok := st.Partners[id]
	if !ok {
		return domain.Errorf(domain.CodeNotFound, "partner %q does not exist", id)
	}
	if !eventIDPattern.MatchString(event) {
		return domain.Errorf(domain.CodeNotFound, "no event %q", event)
	}
	data := mismatchPage{MigrationKey: ms.Key, PartnerID: id, PartnerName: p.Name, EventID: event, Recording: u.opts.Comparisons != nil}
	status := http.StatusNotFound
	if data.Recording {
		m, err := u.opts.Comparisons.Mismatch(r.Context(), ms.Key, id, event)
		switch {
		case err == nil:
			status, data.Found, data.M, data.Meaning = http.StatusOK, true, m, classMeaning[m.Class]
			d := diffJSON(m.Primary, m.Shadow)
			data.Paths, data.Primary, data.Shadow = d.Paths, d.Left, d.Right
			if m.Event != nil {
				// A body cut short is not JSON any more: jsonLines shows
				// it as the text it is.
				data.Event = jsonLines([]byte(m.Event.Body), nil)
			}
		case domain.ErrorCode(err) != domain.CodeNotFound:
			return err
		}
	}
	data.base = u.base(w, r, &s, "dashboard", "")
	u.render(w, r, status, "mismatch", &data)
	return nil
}

// --- routers

type routersPage struct {
	base
	Routers routerSummary
	// Regressions counts the times since start a router held a later
	// version of this store than the store had; Regression is the last.
	Regressions uint64
	Regression  control.Regression
}

func (u *UI) routers(w http.ResponseWriter, r *http.Request, s session) error {
	data := routersPage{Routers: u.routerSummary(u.svc.State().Version)}
	data.Regressions, data.Regression = u.svc.Regressions()
	data.base = u.base(w, r, &s, "routers", "routers")
	u.render(w, r, http.StatusOK, "routers", &data)
	return nil
}

// --- replays

type replaysPage struct {
	base
	Jobs []domain.ReplayJob
}

// replays shows the jobs of the router in this process, or, without one,
// those asked of the routers with their reported progress, as GET
// /v1/replays does.
func (u *UI) replays(w http.ResponseWriter, r *http.Request, s session) error {
	var data replaysPage
	data.base = u.base(w, r, &s, "replays", "")
	list := u.svc.AskedReplayList
	if u.opts.Replays != nil {
		list = u.opts.Replays
	}
	data.Jobs = list()
	u.render(w, r, http.StatusOK, "replays", &data)
	return nil
}
