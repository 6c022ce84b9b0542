package webui_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/webui"
)

// workingHours are Monday to Thursday, 09:00 to 16:00 in Amsterdam: 08:00
// to 15:00 UTC in early March 2026. The fixture's clock starts on Sunday.
var workingHours = []domain.AutopilotWindow{{Days: []string{"mon", "tue", "wed", "thu"}, From: "09:00", To: "16:00", TimeZone: "Europe/Amsterdam"}}

// longSessions outlast the clock's moves to the next window.
var longSessions = fixtureOptions{ui: webui.Options{SessionTTL: 7 * 24 * time.Hour}}

// setAutopilot gives the fixture's migration an autopilot policy.
func (f *fixture) setAutopilot(t testing.TB, p *domain.AutopilotPolicy) {
	t.Helper()
	m := f.svc.State().Migrations[mig].Migration
	m.Autopilot = p
	if _, _, err := f.svc.PutMigration(ctx, setup, m); err != nil {
		t.Fatal(err)
	}
}

var (
	tagRE   = regexp.MustCompile(`<[^>]*>`)
	spaceRE = regexp.MustCompile(`\s+`)
	punctRE = regexp.MustCompile(` ([,.:;)])`)
)

// autopilotPanel is the text of the migration page's autopilot panel as
// a reader sees it: no tags, one space between words; "" when the page
// has none.
func autopilotPanel(t *testing.T, c *client) string {
	t.Helper()
	body := c.get("/migrations/" + mig).body
	i := strings.Index(body, `<section id="autopilot"`)
	if i < 0 {
		return ""
	}
	s := body[i:]
	s = s[:strings.Index(s, "</section>")]
	s = spaceRE.ReplaceAllString(html.UnescapeString(tagRE.ReplaceAllString(s, " ")), " ")
	return strings.TrimSpace(punctRE.ReplaceAllString(s, "$1"))
}

func wantAll(t *testing.T, what, got string, want ...string) {
	t.Helper()
	for _, w := range want {
		if !strings.Contains(got, w) {
			t.Errorf("%s lacks %q:\n%s", what, w, got)
		}
	}
}

// The panel words what the service says the autopilot does: outside its
// windows it waits for the next, inside one it names its next move, then
// counts its moves against the bound, and links the change request it
// filed where approvals are required.
func TestAutopilotPanel(t *testing.T) {
	f := newFixture(t, longSessions)
	op := f.client(t)
	op.login("operator")
	if got := autopilotPanel(t, op); got != "" {
		t.Fatalf("a migration without an autopilot policy shows the panel:\n%s", got)
	}
	f.setAutopilot(t, &domain.AutopilotPolicy{Enabled: true, Windows: workingHours, MaxAdvancesPerDay: 3})

	// Sunday noon: it waits for Monday 09:00 in Amsterdam.
	wantAll(t, "the panel on Sunday", autopilotPanel(t, op),
		"Waiting for its window Waits outside its windows: the next opens at 2026-03-02T09:00:00+01:00.",
		"Windows mon, tue, wed, thu, 09:00–16:00 Europe/Amsterdam",
		"Now outside its windows: the next opens 2026-03-02 08:00:00 UTC (in 20h)",
		"Moves in the last 24 hours 0 of at most 3",
		"Next move judged once it may move",
		"Pause autopilot…")

	// Monday 09:30 in Amsterdam: the canary moves first.
	f.clock.Advance(20*time.Hour + 30*time.Minute)
	wantAll(t, "the panel in the window", autopilotPanel(t, op),
		"Ready to move Moves cohort canary from legacy to shadow at its next step.",
		"Now in a window, which closes 2026-03-02 15:00:00 UTC (in 6h 30m)",
		"Next move cohort canary from legacy to shadow, 1 partner")
	if _, err := f.svc.AutopilotStep(ctx, mig); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(5 * time.Minute)
	wantAll(t, "the panel after a move", autopilotPanel(t, op),
		"Moves in the last 24 hours 1 of at most 3; the last 5m ago",
		"Next move cohort wave-1 from legacy to shadow, 2 partners")

	// Where approvals are required, it files a change request and waits.
	f.requireApprovals(t, 1, domain.StageShadow)
	if _, err := f.svc.AutopilotStep(ctx, mig); err != nil {
		t.Fatal(err)
	}
	pending := f.svc.Changes(control.ChangeFilter{State: domain.ChangePending})
	if len(pending) != 1 || pending[0].RequestedBy != control.AutopilotActor {
		t.Fatalf("pending changes after the step = %+v, want one of the autopilot", pending)
	}
	id := pending[0].ID
	wantAll(t, "the panel waiting for approvals", autopilotPanel(t, op),
		"Waiting for approvals Waits for the approvals of change "+id,
		"Its next move waits for change request "+id+" to be approved.",
		"Moves in the last 24 hours 2 of at most 3")
	if body := op.get("/migrations/" + mig).body; !strings.Contains(body, `<a href="#change-`+id+`"><code>`+id) || !strings.Contains(body, `id="change-`+id+`"`) {
		t.Errorf("the panel does not link the change request %s on the page", id)
	}

	// A viewer sees the panel without the buttons.
	v := f.client(t)
	v.login("viewer")
	if got := autopilotPanel(t, v); !strings.Contains(got, "Waiting for approvals") || strings.Contains(got, "Pause autopilot") {
		t.Errorf("the viewer's panel:\n%s\nwant the state without the pause button", got)
	}
	if body := v.get("/migrations/" + mig).body; strings.Contains(body, `id="autopilot-pause"`) {
		t.Error("the viewer's page has the pause dialog")
	}

	// A policy that is not enabled shows its windows and says it is off.
	f.setAutopilot(t, &domain.AutopilotPolicy{Windows: workingHours})
	got := autopilotPanel(t, op)
	wantAll(t, "the panel of a disabled autopilot", got, "Off The migration has no enabled autopilot policy", "mon, tue, wed, thu, 09:00–16:00 Europe/Amsterdam")
	if strings.Contains(got, "Pause autopilot") || strings.Contains(got, "Moves in the last 24 hours") {
		t.Errorf("the panel of a disabled autopilot offers a pause or counts moves:\n%s", got)
	}
}

// Pause and resume from the page: operators only, with a reason, audited
// with the token's name; a resume while the kill switch is on is refused
// with the service's message on the page.
func TestAutopilotPauseResume(t *testing.T) {
	f := newFixture(t, longSessions)
	f.setAutopilot(t, &domain.AutopilotPolicy{Enabled: true, Windows: workingHours})
	page := "/migrations/" + mig
	paused := func() bool {
		t.Helper()
		aps := f.svc.State().Migrations[mig].AutopilotState
		return aps != nil && aps.Paused
	}
	audited := func() int {
		n := 0
		for _, e := range f.auditLog(t) {
			if strings.HasPrefix(e.Action, "autopilot.") {
				n++
			}
		}
		return n
	}

	v := f.client(t)
	v.login("viewer")
	for _, action := range []string{"pause", "resume"} {
		if res := v.post(page+"/autopilot/"+action, url.Values{"csrf": {v.csrf(page)}, "reason": {"viewer"}}, nil); res.status != http.StatusForbidden {
			t.Errorf("a viewer's %s: %d, want 403", action, res.status)
		}
	}
	if paused() || audited() != 0 {
		t.Fatalf("a viewer's POSTs paused the autopilot (%v) or were audited (%d)", paused(), audited())
	}

	op := f.client(t)
	op.login("operator")
	// Without the CSRF token: refused before anything happens.
	if res := op.post(page+"/autopilot/pause", url.Values{"reason": {"no token"}}, nil); res.status != http.StatusForbidden || paused() {
		t.Errorf("a pause without the CSRF token: %d, paused %v; want 403, not paused", res.status, paused())
	}
	// Without a reason: refused with a message on the page.
	res := op.post(page+"/autopilot/pause", url.Values{"csrf": {op.csrf(page)}, "reason": {"  "}}, nil)
	if res.status != http.StatusSeeOther || res.header.Get("Location") != page+"#autopilot" || paused() {
		t.Fatalf("a pause without a reason: %d to %q, paused %v", res.status, res.header.Get("Location"), paused())
	}
	if body := op.get(page).body; !strings.Contains(body, "pausing the autopilot needs a reason") {
		t.Error("a pause without a reason is not refused on the page")
	}

	res = op.post(page+"/autopilot/pause", url.Values{"csrf": {op.csrf(page)}, "reason": {"holiday freeze"}}, nil)
	if res.status != http.StatusSeeOther || res.header.Get("Location") != page+"#autopilot" {
		t.Fatalf("pause: %d to %q, want 303 to the panel", res.status, res.header.Get("Location"))
	}
	if !paused() {
		t.Fatal("the autopilot is not paused after the pause")
	}
	body := html.UnescapeString(op.get(page).body)
	wantAll(t, "the page after the pause", body, "Paused the autopilot of "+mig+": it makes no move until an operator resumes it.",
		`id="autopilot-resume-button"`)
	wantAll(t, "the panel after the pause", autopilotPanel(t, op), "Paused Paused by operator just now: “holiday freeze”. It makes no move until an operator resumes it.")
	log := f.auditLog(t)
	if last := log[len(log)-1]; last.Action != "autopilot.pause" || last.Actor != "operator" || last.Reason != "holiday freeze" || last.Target != "migration/"+mig {
		t.Errorf("the pause audited as %s of %s by %s (%q), want autopilot.pause of migration/%s by operator with the reason", last.Action, last.Target, last.Actor, last.Reason, mig)
	}

	// While the kill switch is on, the service refuses the resume.
	if _, err := f.svc.Revert(ctx, control.Change{Actor: "operator", Reason: "incident"}, mig); err != nil {
		t.Fatal(err)
	}
	n := audited()
	res = op.post(page+"/autopilot/resume", url.Values{"csrf": {op.csrf(page)}, "reason": {"back to work"}}, nil)
	if res.status != http.StatusSeeOther || !paused() || audited() != n {
		t.Fatalf("a resume under the kill switch: %d, paused %v, audited %d → %d; want 303, still paused, not audited", res.status, paused(), n, audited())
	}
	if body := html.UnescapeString(op.get(page).body); !strings.Contains(body, "is reverted: resume the migration before its autopilot") {
		t.Error("the refused resume is not shown on the page")
	}

	if _, err := f.svc.Resume(ctx, control.Change{Actor: "operator", Reason: "fixed"}, mig); err != nil {
		t.Fatal(err)
	}
	res = op.post(page+"/autopilot/resume", url.Values{"csrf": {op.csrf(page)}, "reason": {"back to work"}}, nil)
	if res.status != http.StatusSeeOther || paused() {
		t.Fatalf("resume: %d, paused %v", res.status, paused())
	}
	wantAll(t, "the page after the resume", html.UnescapeString(op.get(page).body),
		"Resumed the autopilot of "+mig+". Waits outside its windows", `id="autopilot-pause-button"`)
	log = f.auditLog(t)
	if last := log[len(log)-1]; last.Action != "autopilot.resume" || last.Actor != "operator" || last.Reason != "back to work" {
		t.Errorf("the resume audited as %s by %s (%q), want autopilot.resume by operator with the reason", last.Action, last.Actor, last.Reason)
	}
}

// Pages follow the autopilot: a pause moves the snapshot version, and a
// window that opens moves the key without one, so that the panel's state
// never stays "waiting for its window" on a page left open.
func TestAutopilotMovesLiveKey(t *testing.T) {
	f := newFixture(t, longSessions)
	c := f.client(t)
	c.login("viewer")
	key := func() string {
		t.Helper()
		m := regexp.MustCompile(`"routers":"([^"]+)"`).FindStringSubmatch(c.get("/ui/state.json").body)
		if m == nil {
			t.Fatal("no routers key in /ui/state.json")
		}
		return m[1]
	}
	k0 := key()
	f.clock.Advance(time.Hour)
	if key() != k0 {
		t.Error("the key moved with the clock while no migration has an autopilot")
	}
	f.setAutopilot(t, &domain.AutopilotPolicy{Enabled: true, Windows: workingHours})
	k1 := key()
	if k1 == k0 {
		t.Error("the key did not move with the policy")
	}
	f.clock.Advance(time.Hour)
	if key() != k1 {
		t.Error("the key moved with the clock outside the windows")
	}
	f.clock.Advance(19 * time.Hour) // Monday 09:00 in Amsterdam
	k2 := key()
	if k2 == k1 {
		t.Error("the key did not move when the window opened")
	}
	if _, err := f.svc.PauseAutopilot(ctx, control.Change{Actor: "operator", Reason: "wait"}, mig); err != nil {
		t.Fatal(err)
	}
	if key() == k2 {
		t.Error("the key did not move with a pause")
	}
}
