package webui_test

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/reconcile"
	"github.com/switchbackhq/switchback/internal/webui"
	"github.com/switchbackhq/switchback/internal/wire"
)

// fakeReconciler is a hand-written webui.Reconciler: it keeps jobs as the
// runner would show them, records what it was asked, and refuses what
// the runner refuses (an unknown id; a backfill while one runs or of a job
// without gaps).
type fakeReconciler struct {
	mu      sync.Mutex
	jobs    []wire.Reconciliation // newest first
	started []startCall
	backs   []startCall
}

type startCall struct {
	req wire.ReconcileRequest
	id  string
	by  reconcile.By
}

var _ webui.Reconciler = (*fakeReconciler)(nil)

func (f *fakeReconciler) Start(_ context.Context, req wire.ReconcileRequest, actor, reason string) (wire.Reconciliation, error) {
	by := reconcile.By{Actor: actor, Reason: reason, Trigger: wire.TriggerManual}
	f.mu.Lock()
	defer f.mu.Unlock()
	// Resolved as the runner resolves them, on the fixture's clock.
	skew, settle := wire.Duration(reconcile.DefaultSkew), wire.Duration(reconcile.DefaultSettle)
	shown := req
	shown.Skew, shown.Settle = cmp.Or(req.Skew, &skew), cmp.Or(req.Settle, &settle)
	job := wire.Reconciliation{ID: fmt.Sprintf("rec_%016x", len(f.jobs)+1), State: wire.ReconcileRunning, Trigger: by.Trigger, Actor: by.Actor,
		Request: shown, CreatedAt: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	for _, p := range req.Partners {
		job.Partners = append(job.Partners, wire.ReconcilePartner{Partner: p, State: wire.PartnerPending})
	}
	f.started = append(f.started, startCall{req: req, by: by})
	f.jobs = append([]wire.Reconciliation{job}, f.jobs...)
	return job, nil
}

func (f *fakeReconciler) Backfill(_ context.Context, id, actor, reason string) (wire.Reconciliation, error) {
	by := reconcile.By{Actor: actor, Reason: reason, Trigger: wire.TriggerManual}
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, j := range f.jobs {
		if j.ID != id {
			continue
		}
		if j.State == wire.ReconcileRunning || (j.Backfill != nil && j.Backfill.State == wire.ReconcileRunning) {
			return wire.Reconciliation{}, domain.Errorf(domain.CodeConflict, "reconciliation %s is still running", id)
		}
		if j.GapCount == 0 {
			return wire.Reconciliation{}, domain.Errorf(domain.CodeConflict, "reconciliation %s found no gaps", id)
		}
		f.backs = append(f.backs, startCall{id: id, by: by})
		f.jobs[i].Backfill = &wire.BackfillProgress{State: wire.ReconcileRunning, Events: j.GapCount}
		return f.jobs[i], nil
	}
	return wire.Reconciliation{}, domain.Errorf(domain.CodeNotFound, "no reconciliation %s", id)
}

func (f *fakeReconciler) Job(id string) (wire.Reconciliation, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.ID == id {
			// The runner's answer, the fake's way: its refusals below.
			j.Backfillable = j.State != wire.ReconcileRunning && j.GapCount > 0 && (j.Backfill == nil || j.Backfill.State != wire.ReconcileRunning)
			return j, nil
		}
	}
	return wire.Reconciliation{}, domain.Errorf(domain.CodeNotFound, "no reconciliation %s", id)
}

func (f *fakeReconciler) Jobs() []wire.Reconciliation {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := make([]wire.Reconciliation, len(f.jobs))
	for i, j := range f.jobs {
		j.Gaps, j.Unsure = nil, nil
		out[i] = j
	}
	return out
}

// update changes job id as the runner would while it runs.
func (f *fakeReconciler) update(id string, fn func(*wire.Reconciliation)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i := range f.jobs {
		if f.jobs[i].ID == id {
			fn(&f.jobs[i])
		}
	}
}

// foundGaps is what a finished reconciliation of acme shows: two gaps
// (one whose PSA id is hostile markup), one uncertain change.
func foundGaps(at time.Time) func(*wire.Reconciliation) {
	applied := at.Add(-time.Hour)
	return func(j *wire.Reconciliation) {
		j.State, j.FinishedAt = wire.ReconcileDone, at
		j.Partners = []wire.ReconcilePartner{{Partner: "acme", State: wire.ReconcileDone, Changes: 4, Checked: 4, Reflected: 1, Uncertain: 1, Gaps: 2}}
		j.Checked, j.GapCount, j.Uncertain = 4, 2, 1
		j.Gaps = []wire.Finding{
			{Partner: "acme", Type: "ticket", ID: "101", UpdatedAt: at.Add(-30 * time.Minute), Reason: "no_event"},
			{Partner: "acme", Type: "ticket", ID: `<script>alert(1)</script>`, UpdatedAt: at.Add(-20 * time.Minute), LastAppliedAt: &applied, Reason: "older_only"},
		}
		j.Unsure = []wire.Finding{{Partner: "acme", Type: "ticket", ID: "103", UpdatedAt: at.Add(-time.Minute), Reason: "recent"}}
	}
}

// withPSAAPI gives acme a PSA API, so that the start form offers it.
func withPSAAPI(t *testing.T, f *fixture) {
	t.Helper()
	api := domain.PSAAPI{BaseURL: "https://psa.example.com/feed", Token: "CRED-token"}
	if _, _, err := f.svc.PutPartner(ctx, setup, control.PartnerInput{ID: "acme", Name: "Acme MSP", PSA: domain.PSAGeneric, PSAAPI: &api}); err != nil {
		t.Fatal(err)
	}
}

// An operator starts a reconciliation from the form: the runner gets the
// partners ticked, the window resolved by the service's clock, the
// documented skew and settle, and who asked; the browser goes to the job's
// page, which follows its progress.
func TestReconciliationStartedFromTheForm(t *testing.T) {
	rec := &fakeReconciler{}
	f := newFixture(t, fixtureOptions{ui: webui.Options{Reconciler: rec}})
	withPSAAPI(t, f)
	c := f.client(t)
	c.login("operator")

	page := c.get("/reconciliations")
	for _, want := range []string{"No reconciliation yet.", `name="partner" value="acme">`, "PSA API at psa.example.com",
		`name="partner" value="globex" disabled>`, "no PSA API: an admin sets its psaApi first", `aria-current="page">Reconciliations</a>`} {
		if !strings.Contains(page.body, want) {
			t.Errorf("list page lacks %q", want)
		}
	}
	if strings.Contains(page.body, "CRED-") {
		t.Error("the list page shows a PSA API credential")
	}

	form := url.Values{"csrf": {c.csrf("/reconciliations")}, "partner": {"acme"}, "from": {"2h"}, "to": {"2026-03-01T11:30:00Z"},
		"backfill": {"yes"}, "reason": {"INC-1234"}}
	res := c.post("/reconciliations", form, nil)
	if res.status != 303 || res.header.Get("Location") != "/reconciliations/rec_0000000000000001" {
		t.Fatalf("start: %d to %q, want 303 to the job's page", res.status, res.header.Get("Location"))
	}
	now := f.clock.Now()
	want := startCall{
		req: wire.ReconcileRequest{Partners: []string{"acme"}, From: now.Add(-2 * time.Hour), To: time.Date(2026, 3, 1, 11, 30, 0, 0, time.UTC), Backfill: true},
		by:  reconcile.By{Actor: "operator", Reason: "INC-1234", Trigger: wire.TriggerManual},
	}
	if len(rec.started) != 1 || !slices.Equal(rec.started[0].req.Partners, want.req.Partners) || !rec.started[0].req.From.Equal(want.req.From) ||
		!rec.started[0].req.To.Equal(want.req.To) || rec.started[0].req.Backfill != want.req.Backfill || rec.started[0].req.Skew != nil ||
		rec.started[0].req.Settle != nil || rec.started[0].by != want.by {
		t.Fatalf("started %+v, want %+v", rec.started, want)
	}

	job := c.get("/reconciliations/rec_0000000000000001")
	for _, want := range []string{"Reconciliation rec_0000000000000001 started for acme", `data-live="reconciliations"`,
		`<span class="rec-state rec-running">running</span>`, `<tr data-partner="acme">`, "2m0s, 1m0s", "The gaps are not known yet."} {
		if !strings.Contains(job.body, want) {
			t.Errorf("job page lacks %q", want)
		}
	}
	if strings.Contains(job.body, `id="backfill-button"`) {
		t.Error("a running job offers a backfill")
	}
}

// The form's mistakes come back as messages, the runner never asked; a
// viewer cannot start one, nor can a post without the form's token.
func TestReconciliationStartRefused(t *testing.T) {
	tests := []struct {
		name   string
		role   string
		form   url.Values
		noCSRF bool
		want   string // in the next page
	}{
		{"no partner", "operator", url.Values{"from": {"2h"}}, false, "tick at least one partner"},
		{"a from that is no time", "operator", url.Values{"partner": {"acme"}, "from": {"yesterday"}}, false, `from: &#34;yesterday&#34; is neither RFC 3339 nor a duration ago`},
		{"a viewer", "viewer", url.Values{"partner": {"acme"}, "from": {"2h"}}, false, "this needs the operator role"},
		{"no CSRF token", "operator", url.Values{"partner": {"acme"}, "from": {"2h"}}, true, "security token is missing or wrong"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &fakeReconciler{}
			f := newFixture(t, fixtureOptions{ui: webui.Options{Reconciler: rec}})
			c := f.client(t)
			c.login(tt.role)
			if !tt.noCSRF {
				tt.form.Set("csrf", c.csrf("/reconciliations"))
			}
			res := c.post("/reconciliations", tt.form, nil)
			body := res.body
			if res.status == 303 {
				body = c.get(res.header.Get("Location")).body
			}
			if !strings.Contains(body, tt.want) {
				t.Errorf("after the post (%d), no %q in:\n%s", res.status, tt.want, body)
			}
			if len(rec.started) != 0 {
				t.Errorf("the runner was asked %+v", rec.started)
			}
		})
	}
}

// A finished job shows its gaps (last applied or never, the reason),
// the uncertain changes apart, every text escaped; an operator's
// Backfill button sends the gaps, a viewer has none; the counts show.
func TestReconciliationGapsAndBackfill(t *testing.T) {
	rec := &fakeReconciler{}
	f := newFixture(t, fixtureOptions{ui: webui.Options{Reconciler: rec}})
	at := f.clock.Now()
	job, _ := rec.Start(ctx, wire.ReconcileRequest{Partners: []string{"acme"}, From: at.Add(-2 * time.Hour), To: at}, "ops", "")
	rec.update(job.ID, foundGaps(at))
	path := "/reconciliations/" + job.ID

	viewer := f.client(t)
	viewer.login("viewer")
	page := viewer.get(path)
	for _, want := range []string{
		"<td><code>101</code></td>", `<span class="muted">never</span>`, `title="no event about the entity was applied">no_event</span>`,
		"<td><code>&lt;script&gt;alert(1)&lt;/script&gt;</code></td>", `<time datetime="2026-03-01T11:00:00Z">2026-03-01 11:00:00 UTC</time>`,
		`id="uncertain-table"`, "<td><code>103</code></td>", ">recent</span>", "Not backfilled yet.",
	} {
		if !strings.Contains(page.body, want) {
			t.Errorf("job page lacks %q", want)
		}
	}
	if strings.Contains(page.body, "<script>alert") {
		t.Error("a PSA's entity id reached the page unescaped")
	}
	if strings.Contains(page.body, `id="backfill-button"`) || strings.Contains(page.body, `action="/reconciliations/`+job.ID+`/backfill"`) {
		t.Error("a viewer is offered the backfill")
	}
	if res := viewer.get("/reconciliations/rec_ffffffffffffffff"); res.status != 404 || !strings.Contains(res.body, "no reconciliation rec_ffffffffffffffff") {
		t.Errorf("an unknown job: %d, want 404 saying so", res.status)
	}
	list := viewer.get("/reconciliations")
	if !strings.Contains(list.body, `<a href="/reconciliations/`+job.ID+`">`) || !strings.Contains(list.body, `<strong class="bad">2</strong>`) {
		t.Errorf("the list lacks the job with its 2 gaps:\n%s", list.body)
	}
	if strings.Contains(list.body, "Start a reconciliation") {
		t.Error("a viewer is offered the start form")
	}

	op := f.client(t)
	op.login("operator")
	page = op.get(path)
	if !strings.Contains(page.body, `id="backfill-button" commandfor="backfill-dialog" command="show-modal">Backfill 2 gaps…</button>`) {
		t.Fatalf("the operator's page lacks the Backfill 2 gaps button:\n%s", page.body)
	}
	res := op.post(path+"/backfill", url.Values{"csrf": {op.csrf(path)}, "reason": {"close INC-1234"}}, nil)
	if res.status != 303 || res.header.Get("Location") != path+"#backfill" {
		t.Fatalf("backfill: %d to %q, want 303 to %s#backfill", res.status, res.header.Get("Location"), path)
	}
	wantBy := reconcile.By{Actor: "operator", Reason: "close INC-1234", Trigger: wire.TriggerManual}
	if len(rec.backs) != 1 || rec.backs[0].id != job.ID || rec.backs[0].by != wantBy {
		t.Fatalf("backfills %+v, want one of %s by %+v", rec.backs, job.ID, wantBy)
	}
	page = op.get(path)
	if !strings.Contains(page.body, "Backfill of 2 gaps started") || strings.Contains(page.body, `id="backfill-button"`) {
		t.Errorf("while the backfill runs the page should say it started and offer no second one:\n%s", page.body)
	}
	// Pressed again from a page loaded before, the runner's refusal shows.
	res = op.post(path+"/backfill", url.Values{"csrf": {op.csrf(path)}}, nil)
	if next := op.get(res.header.Get("Location")); !strings.Contains(next.body, "is still running") {
		t.Errorf("a second backfill while one runs: no refusal shown")
	}

	rec.update(job.ID, func(j *wire.Reconciliation) {
		j.Backfill = &wire.BackfillProgress{State: wire.ReconcileDone, Events: 2, Journaled: 2, Applied: 1, DeadLettered: 1, StartedAt: at, FinishedAt: at.Add(time.Minute)}
	})
	page = op.get(path)
	for _, want := range []string{"2 events: 2 journaled, 0 duplicates (already backfilled, sent nowhere), <strong>1 applied</strong>, <span class=\"bad\">1 dead-lettered</span>, 0 pending",
		"Backfill 2 gaps again…"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("job page after the backfill lacks %q", want)
		}
	}
}

// The reconciliation pages follow the jobs: /ui/state.json's key for them
// moves with a partner's counts and with the backfill, and only then.
func TestReconciliationLiveKey(t *testing.T) {
	rec := &fakeReconciler{}
	f := newFixture(t, fixtureOptions{ui: webui.Options{Reconciler: rec}})
	c := f.client(t)
	c.login("viewer")
	key := func() string {
		t.Helper()
		var st struct {
			Keys map[string]string `json:"keys"`
		}
		if err := json.Unmarshal([]byte(c.get("/ui/state.json").body), &st); err != nil {
			t.Fatal(err)
		}
		return st.Keys["reconciliations"]
	}
	k0 := key()
	job, _ := rec.Start(ctx, wire.ReconcileRequest{Partners: []string{"acme"}}, "ops", "")
	k1 := key()
	if k1 == k0 {
		t.Error("the key did not move with a new job")
	}
	if key() != k1 {
		t.Error("the key moved with nothing changed")
	}
	rec.update(job.ID, func(j *wire.Reconciliation) { j.Partners[0].State, j.Partners[0].Changes = wire.PartnerReading, 500 })
	k2 := key()
	if k2 == k1 {
		t.Error("the key did not move with a partner's progress")
	}
	rec.update(job.ID, func(j *wire.Reconciliation) {
		j.Backfill = &wire.BackfillProgress{State: wire.ReconcileRunning, Applied: 3}
	})
	if key() == k2 {
		t.Error("the key did not move with the backfill")
	}
}

// Without a router in the process, the pages say what reconciliations
// need, and a post is refused with the same words.
func TestReconciliationsNeedTheEmbeddedRouter(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.client(t)
	c.login("operator")
	page := c.get("/reconciliations")
	if page.status != 200 || !strings.Contains(page.body, "Reconciliations need serve's embedded router.") || strings.Contains(page.body, "Start a reconciliation") {
		t.Errorf("list page (%d) without a runner:\n%s", page.status, page.body)
	}
	if res := c.get("/reconciliations/rec_0000000000000001"); res.status != 409 || !strings.Contains(res.body, "need serve&#39;s embedded router") {
		t.Errorf("job page without a runner: %d\n%s", res.status, res.body)
	}
	res := c.post("/reconciliations", url.Values{"csrf": {c.csrf("/reconciliations")}, "partner": {"acme"}, "from": {"2h"}}, nil)
	if next := c.get(res.header.Get("Location")); !strings.Contains(next.body, "need serve&#39;s embedded router") {
		t.Errorf("a start without a runner: no refusal shown\n%s", next.body)
	}
}

// An operator watches a reconciliation run in a real browser: the page
// follows the partner's progress without a reload, offers the backfill
// once the gaps are known, sends it with the form's token after a
// confirmation, and shows the counts as the backfill moves.
func TestBrowserReconciliationBackfill(t *testing.T) {
	b := newBrowser(t) // first: it skips when there is no browser
	rec := &fakeReconciler{}
	f := newFixture(t, fixtureOptions{ui: webui.Options{Reconciler: rec, PollInterval: 100 * time.Millisecond}})
	at := f.clock.Now()
	job, _ := rec.Start(ctx, wire.ReconcileRequest{Partners: []string{"acme"}, From: at.Add(-2 * time.Hour), To: at}, "ops", "")
	rec.update(job.ID, func(j *wire.Reconciliation) { j.Partners[0].State, j.Partners[0].Changes = wire.PartnerReading, 4 })

	b.navigate(f.srv.URL + "/login?token=" + url.QueryEscape(f.tok["operator"]))
	b.waitFor("the dashboard", `location.pathname === "/"`)
	b.navigate(f.srv.URL + "/reconciliations")
	b.do(chromedp.Click(chromedp.CSS(`a[href="/reconciliations/` + job.ID + `"]`)))
	b.waitFor("the job's page, reading", `document.querySelector("tr[data-partner='acme']").innerText.includes("reading")`+
		` && !document.querySelector("#backfill-button")`)

	rec.update(job.ID, foundGaps(at))
	b.waitFor("the gaps, live", `document.querySelector("#job-state").innerText === "done"`+
		` && document.querySelectorAll("#gaps-table tbody tr").length === 2`+
		` && document.querySelector("#backfill-button").innerText.includes("Backfill 2 gaps")`)
	if got, _ := eval[string](b, `document.querySelectorAll("#gaps-table code")[1].textContent`); got != `<script>alert(1)</script>` {
		t.Errorf("the hostile id shows as %q, want its text", got)
	}
	b.screenshot("reconciliation.png", "body")

	b.do(chromedp.Click(chromedp.ID("backfill-button")))
	b.waitFor("the backfill dialog", `document.querySelector("#backfill-dialog").open`)
	b.do(chromedp.SendKeys(chromedp.ID("backfill-reason"), "close the gaps of INC-1234"),
		chromedp.Click(chromedp.ID("backfill-confirm")))
	b.waitFor("the backfill to start", `document.body.innerText.includes("Backfill of 2 gaps started")`)
	if len(rec.backs) != 1 || rec.backs[0].by.Reason != "close the gaps of INC-1234" || rec.backs[0].by.Actor != "operator" {
		t.Fatalf("backfills = %+v, want one by operator with the reason typed", rec.backs)
	}

	rec.update(job.ID, func(j *wire.Reconciliation) {
		j.Backfill = &wire.BackfillProgress{State: wire.ReconcileDone, Events: 2, Journaled: 2, Applied: 2, StartedAt: at, FinishedAt: at}
	})
	b.waitFor("the backfill's counts, live", `document.querySelector("#backfill-counts").innerText.includes("2 applied")`+
		` && document.querySelector("#backfill-counts").innerText.includes("done")`)
}
