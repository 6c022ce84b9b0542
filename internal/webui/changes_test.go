package webui_test

import (
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// requireApprovals makes the fixture's migration need required approvals
// for moves into stages, and adds a second operator token, operator2.
func (f *fixture) requireApprovals(t testing.TB, required int, stages ...domain.Stage) {
	t.Helper()
	m := f.svc.State().Migrations[mig].Migration
	m.Approvals = &domain.ApprovalPolicy{Required: required, Stages: stages}
	if _, _, err := f.svc.PutMigration(ctx, setup, m); err != nil {
		t.Fatal(err)
	}
	_, secret, err := f.svc.CreateToken(ctx, setup, "operator2", domain.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	f.tok["operator2"] = secret
}

var changeIDRE = regexp.MustCompile(`chg_[0-9a-f]{24}`)

// A move into a stage that needs approvals files a change request from
// the advance button; the page shows it, the header counts it, its
// requester cannot approve it and another operator can, which moves the
// cohort.
func TestChangeRequestPages(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.requireApprovals(t, 1, domain.StageShadow)
	page := "/migrations/" + mig

	op := f.client(t)
	op.login("operator")
	if body := op.get(page).body; !strings.Contains(body, "Ask to advance 1 partner to shadow") || !strings.Contains(body, "moves into shadow wait for 1 approval from other operators, for 1d at most") {
		t.Errorf("the migration page does not say that moves into shadow wait for approvals:\n%s", body)
	}
	res := op.post(page+"/cohorts/canary/advance", url.Values{"csrf": {op.csrf(page)}, "reason": {"canary to shadow"}}, nil)
	if res.status != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), page+"#change-chg_") {
		t.Fatalf("advance: %d to %q, want 303 to the change request", res.status, res.header.Get("Location"))
	}
	body := html.UnescapeString(op.get(page).body)
	id := changeIDRE.FindString(res.header.Get("Location"))
	for _, want := range []string{"Change request " + id + " filed: cohort canary from legacy to shadow in " + mig + " is waiting for 1 approval",
		`id="change-` + id + `"`, "You asked for it", `data-pending="1"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the page after the advance lacks %q", want)
		}
	}
	if strings.Contains(body, `id="approve-button-`+id+`"`) {
		t.Error("the requester is offered the approve button")
	}
	if got := f.stage(t, "acme"); got != domain.StageLegacy {
		t.Fatalf("acme at %s before any approval, want legacy", got)
	}

	// The requester's approval, posted by hand, is refused on the page.
	res = op.post("/changes/"+id+"/approve", url.Values{"csrf": {op.csrf(page)}, "back": {page}}, nil)
	if res.status != http.StatusSeeOther {
		t.Fatalf("the requester's approve: %d, want 303 back with a message", res.status)
	}
	if body := html.UnescapeString(op.get(page).body); !strings.Contains(body, "another operator's token must approve it") {
		t.Errorf("the requester's refusal is not shown")
	}
	// A reject needs a reason.
	op.post("/changes/"+id+"/reject", url.Values{"csrf": {op.csrf(page)}, "back": {page}}, nil)
	if body := op.get(page).body; !strings.Contains(body, "needs a reason") {
		t.Errorf("a reject without a reason is not refused on the page")
	}

	// A viewer sees it and the badge, and may not approve.
	v := f.client(t)
	v.login("viewer")
	body = v.get("/changes").body
	if !strings.Contains(body, id) || strings.Contains(body, `id="approve-button-`) || !strings.Contains(body, `data-pending="1"`) {
		t.Errorf("the viewer's /changes page: change listed %v, approve offered %v, badge %v",
			strings.Contains(body, id), strings.Contains(body, `id="approve-button-`), strings.Contains(body, `data-pending="1"`))
	}
	if res := v.post("/changes/"+id+"/approve", url.Values{"csrf": {v.csrf("/changes")}}, nil); res.status != http.StatusForbidden {
		t.Errorf("a viewer's approve: %d, want 403", res.status)
	}

	op2 := f.client(t)
	op2.login("operator2")
	if body := op2.get(page).body; !strings.Contains(body, `id="approve-button-`+id+`"`) {
		t.Fatalf("operator2 is not offered the approve button")
	}
	res = op2.post("/changes/"+id+"/approve", url.Values{"csrf": {op2.csrf(page)}, "reason": {"fine by me"}, "back": {page + "#changes"}}, nil)
	if res.status != http.StatusSeeOther || res.header.Get("Location") != page+"#changes" {
		t.Fatalf("operator2's approve: %d to %q", res.status, res.header.Get("Location"))
	}
	if got := f.stage(t, "acme"); got != domain.StageShadow {
		t.Errorf("acme at %s after the approval, want shadow", got)
	}
	body = html.UnescapeString(op2.get(page).body)
	for _, want := range []string{"Approved change " + id + ": cohort canary from legacy to shadow in " + mig + " is applied.",
		"No change request waits for approvals.", "Ended recently", "moved 1 partner: acme"} {
		if !strings.Contains(body, want) {
			t.Errorf("the page after the approval lacks %q", want)
		}
	}
	if strings.Contains(body, `data-pending=`) {
		t.Error("the header still counts a pending change")
	}
	log := f.auditLog(t)
	if last := log[len(log)-1]; last.Action != "cohort.advance" || last.Actor != "operator" || !strings.Contains(last.Reason, "approved by operator2") {
		t.Errorf("the move audited as %s by %s (%q), want cohort.advance by operator naming operator2", last.Action, last.Actor, last.Reason)
	}
}

// The live key moves when a change request is filed or approved, so
// that open pages (and the header's count) follow.
func TestChangeRequestMovesLiveKey(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	f.requireApprovals(t, 2, domain.StageShadow)
	c := f.client(t)
	c.login("viewer")
	key := func() string {
		t.Helper()
		m := regexp.MustCompile(`"version":"([^"]+)"`).FindStringSubmatch(c.get("/ui/state.json").body)
		if m == nil {
			t.Fatal("no version key in /ui/state.json")
		}
		return m[1]
	}
	k0 := key()
	res, err := f.svc.Advance(ctx, control.Change{Actor: "operator"}, mig, "canary", false)
	if err != nil || res.Change == nil {
		t.Fatal(err)
	}
	k1 := key()
	if k1 == k0 {
		t.Error("the key did not move with a filed change request")
	}
	if _, err := f.svc.Approve(ctx, control.Change{Actor: "operator2"}, res.Change.ID); err != nil {
		t.Fatal(err)
	}
	if key() == k1 {
		t.Error("the key did not move with an approval")
	}
}
