package webui_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// These tests drive a real headless Chromium through the DevTools protocol.
// They skip when no Chromium is found, unless SWITCHBACK_REQUIRE_BROWSER is
// set (CI sets it), in which case a missing browser fails them. With
// SWITCHBACK_SCREENSHOTS=1 they also write the screenshots of docs/img.

// chromiumPath returns the browser to drive: $CHROME_PATH, else the first
// of the usual Debian paths that exists.
func chromiumPath(t *testing.T) string {
	t.Helper()
	candidates := []string{os.Getenv("CHROME_PATH"), "/usr/bin/chromium", "/usr/bin/chromium-browser"}
	for _, p := range candidates {
		if p == "" {
			continue
		}
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	const how = "install it with `apt-get install -y chromium` or point $CHROME_PATH at a Chromium binary"
	if os.Getenv("SWITCHBACK_REQUIRE_BROWSER") != "" {
		t.Fatalf("SWITCHBACK_REQUIRE_BROWSER is set but no Chromium was found at $CHROME_PATH or /usr/bin/chromium: %s", how)
	}
	t.Skipf("browser test skipped: no Chromium found at $CHROME_PATH or /usr/bin/chromium (%s; set SWITCHBACK_REQUIRE_BROWSER=1 to make this a failure)", how)
	return ""
}

// browser is one headless Chromium with one tab.
type browser struct {
	t   *testing.T
	ctx context.Context
}

func newBrowser(t *testing.T) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(1280, 900),
	)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc() // waits for the browser process to end
	})
	// The first Do starts the browser, bound to ctx, with no deadline.
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 900)); err != nil {
		t.Fatalf("start Chromium %s: %v", path, err)
	}
	return &browser{t: t, ctx: ctx}
}

// do runs actions with a deadline.
func (b *browser) do(actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("browser: %v\npage text:\n%s", err, b.text())
	}
}

func (b *browser) navigate(u string) { b.t.Helper(); b.do(chromedp.Navigate(u)) }

// eval evaluates a JavaScript expression in the page.
func eval[T any](b *browser, expr string) (T, error) {
	ctx, cancel := context.WithTimeout(b.ctx, 5*time.Second)
	defer cancel()
	return chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// text returns the page's visible text, for failure messages.
func (b *browser) text() string {
	s, err := eval[string](b, `document.body ? document.body.innerText : ""`)
	if err != nil {
		return "(unreadable: " + err.Error() + ")"
	}
	return s
}

// waitFor polls a JavaScript condition until it holds: across page loads,
// and across live updates that happen without one.
func (b *browser) waitFor(what, cond string) {
	b.t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		ok, err := eval[bool](b, "(function(){ try { return !!("+cond+"); } catch (e) { return false; } })()")
		if err == nil && ok {
			return
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("waited 15s for %s (%s): last error %v\npage text:\n%s", what, cond, err, b.text())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// screenshot saves the viewport (selector "") or one element, such as the
// whole body, to docs/img when SWITCHBACK_SCREENSHOTS=1.
func (b *browser) screenshot(name, selector string) {
	b.t.Helper()
	if os.Getenv("SWITCHBACK_SCREENSHOTS") != "1" {
		return
	}
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	var png []byte
	var err error
	if selector == "" {
		png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	} else {
		png, err = chromedp.Run(ctx, chromedp.Screenshot(chromedp.CSS(selector)))
	}
	if err != nil {
		b.t.Fatalf("screenshot %s: %v", name, err)
	}
	path := filepath.Join("..", "..", "docs", "img", name)
	if err := os.WriteFile(path, png, 0o644); err != nil {
		b.t.Fatalf("write %s: %v", path, err)
	}
	b.t.Logf("wrote %s", path)
}

// rolloutStats are the comparison counts of the browser tests' rollout:
// partners with a shadow have compared events, and initech has the
// incident's class, a type_mismatch.
func rolloutStats() fakeStats {
	return fakeStats{counts: func(_, partner string, stage domain.Stage) gate.Counts {
		if stage == domain.StageLegacy || stage == domain.StageDone {
			return gate.Counts{}
		}
		c := gate.Counts{ByClass: map[domain.Class]uint64{}, ByType: map[string]uint64{}}
		switch partner {
		case "acme":
			c.ByClass[domain.ClassEqual], c.ByClass[domain.ClassValueDiff] = 12480, 2
			c.ByType["ticket"], c.ByType["schedule"], c.ByType["time"] = 8210, 3102, 1170
		case "globex":
			c.ByClass[domain.ClassEqual] = 5890
			c.ByType["ticket"], c.ByType["company"] = 5102, 788
		case "initech":
			c.ByClass[domain.ClassEqual], c.ByClass[domain.ClassTypeMismatch], c.ByClass[domain.ClassSkipped] = 4311, 1, 6
			c.ByType["ticket"], c.ByType["contact"] = 3900, 412
		default:
			c.ByClass[domain.ClassEqual] = 140
			c.ByType["ticket"] = 140
		}
		c.Eligible = c.Compared() + c.ByClass[domain.ClassSkipped]
		c.CandidateCalls = c.Eligible
		return c
	}}
}

// rolloutFixture is the fixture with a rollout under way: eight partners;
// canary (acme) at new, wave-1 (globex, initech) in shadow with initech
// failing its gates, wave-2 (hooli, umbrella, stark) at legacy, two
// partners in no cohort; two routers that hold the current version.
func rolloutFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, fixtureOptions{stats: rolloutStats()})
	for _, p := range []struct{ id, name string }{{"hooli", "Hooli Managed IT"}, {"umbrella", "Umbrella Networks"}, {"stark", "Stark Support"}, {"wayne", "Wayne Tech Care"}, {"soylent", "Soylent Systems"}} {
		if _, _, err := f.svc.PutPartner(ctx, setup, control.PartnerInput{ID: p.id, Name: p.name, PSA: domain.PSAAutotask}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.svc.PutCohort(ctx, setup, mig, domain.Cohort{Name: "wave-2", Order: 3, Partners: []string{"hooli", "umbrella", "stark"}}); err != nil {
		t.Fatal(err)
	}
	halo := domain.Migration{Key: "halo-tickets-v3", Description: "HaloPSA tickets through the new normalizer",
		Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://legacy.internal/halo"}, New: domain.Pipeline{URL: "http://new.internal/halo"}},
		Gates:     domain.DefaultGates(), Guard: domain.DefaultGuard()}
	if _, _, err := f.svc.PutMigration(ctx, setup, halo); err != nil {
		t.Fatal(err)
	}
	if _, _, err := f.svc.PutCohort(ctx, setup, halo.Key, domain.Cohort{Name: "pilot", Order: 1, Partners: []string{"wayne", "soylent"}}); err != nil {
		t.Fatal(err)
	}
	ops := control.Change{Actor: "setup", Reason: "rollout so far"}
	if _, err := f.svc.Advance(ctx, ops, halo.Key, "pilot", false); err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		cohort string
		force  bool
	}{{"canary", false}, {"canary", true}, {"wave-1", false}} {
		if _, err := f.svc.Advance(ctx, ops, mig, step.cohort, step.force); err != nil {
			t.Fatalf("Advance(%s): %v", step.cohort, err)
		}
		f.clock.Advance(40 * time.Minute)
	}
	f.clock.Advance(2 * time.Hour)
	v := f.svc.State().Version
	f.svc.ReportRouter(control.RouterStatus{ID: "ingress-1", SnapshotVersion: v, Journal: json.RawMessage(`{"journaled":18234,"pending":2,"deadLettered":0}`)})
	f.svc.ReportRouter(control.RouterStatus{ID: "ingress-2", SnapshotVersion: v, Journal: json.RawMessage(`{"journaled":17991,"pending":0,"deadLettered":0}`)})
	return f
}

// evaluate asks the API, with a bearer token, what a partner evaluates to.
func (f *fixture) evaluate(t *testing.T, flag, partner string) (value, reason string) {
	t.Helper()
	body := fmt.Sprintf(`{"flag":%q,"context":{"targetingKey":%q}}`, flag, partner)
	req, _ := http.NewRequest(http.MethodPost, f.srv.URL+"/v1/evaluate", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+f.tok["viewer"])
	req.Header.Set("Content-Type", "application/json")
	res, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out struct{ Value, Reason string }
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil || res.StatusCode != 200 {
		t.Fatalf("POST /v1/evaluate: %d %v", res.StatusCode, err)
	}
	return out.Value, out.Reason
}

func TestBrowserRolloutAndRevertAll(t *testing.T) {
	b := newBrowser(t) // first: it skips when there is no browser
	f := rolloutFixture(t)

	// Sign in with the link that serve prints.
	b.navigate(f.srv.URL + "/login?token=" + url.QueryEscape(f.tok["operator"]))
	b.waitFor("the dashboard", `location.pathname === "/" && document.querySelector("#revert-all-button")`)
	b.waitFor("the migration and its partners", `document.querySelector("[data-migration='`+mig+`']").innerText.includes("new 1")`+
		` && document.body.innerText.includes("8 partners")`)
	b.waitFor("both routers confirmed", `document.querySelector("#overview").innerText.includes("all 2 routers have confirmed")`)
	b.screenshot("dashboard.png", "body")

	// The migration page: cohorts with their gate reports, and partners.
	b.navigate(f.srv.URL + "/migrations/" + mig)
	b.waitFor("the cohorts", `document.querySelectorAll("li.cohort").length === 3`)
	b.waitFor("wave-1's refusing gate", `document.querySelector("#cohort-wave-1").innerText.includes("refuses")`+
		` && document.querySelector("#advance-button-wave-1").disabled`+
		` && document.querySelector("#force-button-wave-1")`)
	b.waitFor("canary's passing gate", `document.querySelector("#cohort-canary caption").innerText.includes("passes")`+
		` && !document.querySelector("#advance-button-canary").disabled`)
	b.waitFor("all partners listed", `document.querySelectorAll("#partners-table tbody tr").length === 8`)
	b.screenshot("migration.png", "body")
	b.screenshot("partners.png", "#partners")

	// Filter and sort the partners table.
	b.do(chromedp.SendKeys(chromedp.ID("partner-filter"), "wave-2"))
	b.waitFor("the filter", `document.querySelectorAll("#partners-table tbody tr:not([hidden])").length === 3`+
		` && document.querySelector("[data-shown]").textContent === "3"`)
	b.do(chromedp.Click(chromedp.CSS(`#partners-table thead th:nth-child(6) a`)))
	b.waitFor("the sort by compared", `document.querySelector("#partners-table thead th:nth-child(6)").getAttribute("aria-sort") === "ascending"`+
		` && document.querySelector("#partner-filter").value === "wave-2"`)

	// Advance wave-2 from legacy to shadow: no gate, one confirmation.
	b.do(chromedp.Click(chromedp.ID("advance-button-wave-2")))
	b.waitFor("the advance dialog", `document.querySelector("#advance-wave-2").open`)
	b.do(chromedp.SendKeys(chromedp.ID("advance-wave-2-reason"), "start shadowing wave 2"),
		chromedp.Click(chromedp.ID("advance-confirm-wave-2")))
	b.waitFor("the advance to land", `document.body.innerText.includes("Advanced cohort wave-2, 3 partners from legacy to shadow")`)
	b.waitFor("hooli in shadow", `document.querySelector("tr[data-partner='hooli'] .stage").innerText === "shadow"`)
	for _, p := range []string{"hooli", "umbrella", "stark"} {
		if got := f.stage(t, p); got != domain.StageShadow {
			t.Errorf("after the advance the service has %s at %s, want shadow", p, got)
		}
	}

	// Revert all: one button, one confirmation with a reason.
	b.navigate(f.srv.URL + "/")
	b.waitFor("the dashboard", `document.querySelector("#revert-all-button")`)
	b.do(chromedp.Click(chromedp.ID("revert-all-button")))
	b.waitFor("the revert dialog", `document.querySelector("#revert-all-dialog").open`)
	b.screenshot("revert-all-dialog.png", "")
	b.do(chromedp.SendKeys(chromedp.ID("revert-all-reason"), "type_mismatch on initech tickets"),
		chromedp.Click(chromedp.ID("revert-all-confirm")))
	b.waitFor("the revert to land", `document.querySelector("#all-reverted")`+
		` && [...document.querySelectorAll("[data-migration]")].length === 2`+
		` && [...document.querySelectorAll("[data-migration] [data-applied='new']")].every(e => e.innerText === "0")`+
		` && [...document.querySelectorAll("[data-migration] [data-applied='legacy']")].every(e => e.innerText === "8")`)
	v := f.svc.State().Version
	b.waitFor("the routers not yet confirming", `document.querySelector("#overview").innerText.includes("0 of 2 routers confirmed version `+fmt.Sprint(v)+`")`)

	// The routers confirm the new version: the page follows, no reload.
	b.do(chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`))
	f.svc.ReportRouter(control.RouterStatus{ID: "ingress-1", SnapshotVersion: v})
	b.waitFor("one router confirming", `document.querySelector("#overview").innerText.includes("1 of 2 routers confirmed version `+fmt.Sprint(v)+`")`)
	f.svc.ReportRouter(control.RouterStatus{ID: "ingress-2", SnapshotVersion: v})
	b.waitFor("both routers confirming", `document.querySelector("#overview").innerText.includes("all 2 routers have confirmed version `+fmt.Sprint(v)+`")`+
		` && window.__sameDocument === true`)
	b.screenshot("dashboard-reverted.png", "body")

	// The API agrees: every partner evaluates to legacy, reason DISABLED,
	// and the revert is audited with the operator's name and reason.
	st := f.svc.State()
	for _, key := range st.MigrationKeys() {
		if !st.Migrations[key].Reverted {
			t.Errorf("the service has %s not reverted", key)
		}
		for _, p := range st.PartnerIDs() {
			if value, reason := f.evaluate(t, key, p); value != "legacy" || reason != "DISABLED" {
				t.Errorf("POST /v1/evaluate %s for %s = %s, %s; want legacy, DISABLED", key, p, value, reason)
			}
		}
	}
	log := f.auditLog(t)
	if last := log[len(log)-1]; last.Action != "revert.all" || last.Actor != "operator" || last.Reason != "type_mismatch on initech tickets" {
		t.Errorf("last audit entry = %s by %s (%q), want revert.all by operator with the reason", last.Action, last.Actor, last.Reason)
	}

	// The partners table shows every partner on legacy, stages kept.
	b.navigate(f.srv.URL + "/migrations/" + mig)
	b.waitFor("every partner on legacy", `[...document.querySelectorAll("#partners-table tbody tr")].every(tr => tr.querySelector("[data-primary]").dataset.primary === "legacy")`+
		` && document.querySelector("tr[data-partner='acme'] .stage").innerText === "new"`)

	b.navigate(f.srv.URL + "/audit")
	b.waitFor("the verified chain", `document.querySelector("#audit-chain").innerText.includes("Chain verified")`+
		` && document.querySelector("#audit-entries tbody tr").innerText.includes("revert.all")`)
	b.do(chromedp.Evaluate[chromedp.Void](`document.querySelector("#audit-entries details").open = true`))
	b.screenshot("audit.png", "body")

	b.navigate(f.srv.URL + "/routers")
	b.waitFor("the routers", `document.querySelectorAll("tr[data-router]").length === 2`)
	b.screenshot("routers.png", "body")
}

func TestBrowserViewerCannotRevert(t *testing.T) {
	b := newBrowser(t) // first: it skips when there is no browser
	f := rolloutFixture(t)
	b.navigate(f.srv.URL + "/login?token=" + url.QueryEscape(f.tok["viewer"]))
	b.waitFor("the dashboard", `location.pathname === "/" && document.querySelector("[data-migration]")`)
	b.waitFor("no button that would be refused", `!document.querySelector("#revert-all-button") && !document.querySelector("form[action$='/revert']")`+
		` && !document.querySelector("[id^='revert-button-']")`)
	b.navigate(f.srv.URL + "/migrations/" + mig)
	b.waitFor("the cohorts without advance buttons", `document.querySelectorAll("li.cohort").length === 3 && !document.querySelector("[id^='advance-button-']")`)

	// A POST made by hand, with the session and its CSRF token, is refused.
	status, err := eval[int](b, `fetch("/revert", {method: "POST", body: new URLSearchParams({csrf: document.querySelector("input[name=csrf]").value, reason: "viewer"})}).then(r => r.status)`)
	if err != nil || status != http.StatusForbidden {
		t.Errorf("a viewer's POST /revert from the page: %d, %v; want 403", status, err)
	}
	if f.reverted(t) {
		t.Errorf("a viewer reverted the migration")
	}
}

func TestBrowserCrossSitePostRefused(t *testing.T) {
	b := newBrowser(t) // first: it skips when there is no browser
	f := rolloutFixture(t)
	b.navigate(f.srv.URL + "/login?token=" + url.QueryEscape(f.tok["operator"]))
	b.waitFor("the dashboard", `document.querySelector("#revert-all-button")`)

	// An attacker's page auto-submits a form to /revert, without the CSRF
	// token, which it cannot read.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/revert"><input name="reason" value="pwned"></form><script>document.getElementById("f").submit()</script>`, f.srv.URL)
	}))
	defer evil.Close()
	sameSite := evil.URL // 127.0.0.1, another port: same site, another origin
	crossSite := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	for _, tt := range []struct{ name, url string }{{"cross-site", crossSite}, {"same-site, other origin", sameSite}} {
		t.Run(tt.name, func(t *testing.T) {
			b.navigate(tt.url)
			b.waitFor("the refused POST", `location.href === "`+f.srv.URL+`/revert" && document.body.innerText.length > 0`)
			if txt := b.text(); !strings.Contains(txt, "403") {
				t.Errorf("the forged POST was answered with:\n%s\nwant a 403 page", txt)
			}
			if f.reverted(t) {
				t.Fatalf("a cross-origin form reverted the migration")
			}
		})
	}
	log := f.auditLog(t)
	for _, e := range log {
		if e.Reason == "pwned" {
			t.Errorf("the forged POST was audited: %+v", e)
		}
	}
	if errors.Is(context.Cause(b.ctx), context.Canceled) {
		t.Errorf("the browser died")
	}
}

// Four eyes in the browser: an operator asks to move the canary to done,
// which files a change request; a second operator signs in, sees it
// counted in the header and on the migration page, approves it in its
// dialog, and the partner moves.
func TestBrowserApproveChangeRequest(t *testing.T) {
	b := newBrowser(t) // first: it skips when there is no browser
	f := rolloutFixture(t)
	f.requireApprovals(t, 1, domain.StageNew, domain.StageDone)

	b.navigate(f.srv.URL + "/login?token=" + url.QueryEscape(f.tok["operator"]))
	b.waitFor("the dashboard", `location.pathname === "/"`)
	b.navigate(f.srv.URL + "/migrations/" + mig)
	b.waitFor("the canary's button asking to advance", `document.querySelector("#advance-button-canary").innerText.includes("Ask to advance 1 partner to done")`+
		` && !document.querySelector("#advance-button-canary").disabled`)
	b.do(chromedp.Click(chromedp.ID("advance-button-canary")))
	b.waitFor("the advance dialog", `document.querySelector("#advance-canary").open`+
		` && document.querySelector("#advance-canary").innerText.includes("confirming files a change request")`)
	b.do(chromedp.SendKeys(chromedp.ID("advance-canary-reason"), "canary is clean"),
		chromedp.Click(chromedp.ID("advance-confirm-canary")))
	b.waitFor("the filed change", `document.body.innerText.includes("is waiting for 1 approval from other operators")`+
		` && document.querySelector("#changes-badge").innerText.includes("1")`)
	pending := f.svc.Changes(control.ChangeFilter{State: domain.ChangePending})
	if len(pending) != 1 {
		t.Fatalf("pending changes after the advance = %d, want 1", len(pending))
	}
	id := pending[0].ID
	b.waitFor("no approve button for the requester", `document.querySelector("#change-`+id+`").innerText.includes("You asked for it")`+
		` && !document.querySelector("#approve-button-`+id+`")`)
	if got := f.stage(t, "acme"); got != domain.StageNew {
		t.Fatalf("acme at %s before the approval, want new", got)
	}
	b.screenshot("change-pending.png", "#changes")

	// The second operator, in the same browser.
	b.navigate(f.srv.URL + "/login?token=" + url.QueryEscape(f.tok["operator2"]))
	b.waitFor("the dashboard with the pending count", `location.pathname === "/" && document.querySelector("#changes-badge [data-pending='1']")`)
	b.do(chromedp.Click(chromedp.ID("changes-badge")))
	b.waitFor("the changes page", `location.pathname === "/changes" && document.querySelector("#change-`+id+`")`)
	b.navigate(f.srv.URL + "/migrations/" + mig)
	b.waitFor("the approve button", `document.querySelector("#approve-button-`+id+`")`)
	b.do(chromedp.Click(chromedp.ID("approve-button-" + id)))
	b.waitFor("the approve dialog", `document.querySelector("#approve-`+id+`").open`)
	b.do(chromedp.SendKeys(chromedp.ID("approve-"+id+"-reason"), "dashboards are clean"),
		chromedp.Click(chromedp.ID("approve-confirm-"+id)))
	b.waitFor("the applied change", `document.body.innerText.includes("Approved change `+id+`")`+
		` && document.querySelector("tr[data-partner='acme'] .stage").innerText === "done"`+
		` && document.querySelector("#change-`+id+`").dataset.state === "applied"`+
		` && !document.querySelector("#changes-badge [data-pending]")`)
	if got := f.stage(t, "acme"); got != domain.StageDone {
		t.Errorf("the service has acme at %s after the approval, want done", got)
	}
	log := f.auditLog(t)
	if last := log[len(log)-1]; last.Action != "cohort.advance" || last.Actor != "operator" || !strings.Contains(last.Reason, "approved by operator2") {
		t.Errorf("the move audited as %s by %s (%q), want cohort.advance by operator, approved by operator2", last.Action, last.Actor, last.Reason)
	}
}

// The autopilot in the browser: an operator pauses it through its dialog,
// which will not send without a reason, sees it paused with the reason,
// resumes it through the other dialog, and the panel follows a pause made
// elsewhere (the guard's, another replica's) without a reload.
func TestBrowserAutopilotPauseResume(t *testing.T) {
	b := newBrowser(t) // first: it skips when there is no browser
	f := rolloutFixture(t)
	allDay := []domain.AutopilotWindow{{Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, From: "00:00", To: "24:00"}}
	f.setAutopilot(t, &domain.AutopilotPolicy{Enabled: true, Windows: allDay, MaxAdvancesPerDay: 2})
	state := `document.querySelector("#autopilot [data-autopilot-state]").dataset.autopilotState`

	b.navigate(f.srv.URL + "/login?token=" + url.QueryEscape(f.tok["operator"]))
	b.waitFor("the dashboard", `location.pathname === "/"`)
	b.navigate(f.srv.URL + "/migrations/" + mig)
	b.waitFor("the autopilot ready to move wave-2", state+` === "ready"`+
		` && document.querySelector("#autopilot").innerText.includes("Moves cohort wave-2 from legacy to shadow")`)

	b.do(chromedp.Click(chromedp.ID("autopilot-pause-button")))
	b.waitFor("the pause dialog", `document.querySelector("#autopilot-pause").open`)
	// Without a reason the form does not send.
	b.do(chromedp.Click(chromedp.ID("autopilot-pause-confirm")))
	b.waitFor("the dialog still open", `document.querySelector("#autopilot-pause").open && document.querySelector("#autopilot-pause-reason").matches(":invalid")`)
	if aps := f.svc.State().Migrations[mig].AutopilotState; aps != nil && aps.Paused {
		t.Fatal("the pause was sent without a reason")
	}
	b.do(chromedp.SendKeys(chromedp.ID("autopilot-pause-reason"), "quarter-end freeze"),
		chromedp.Click(chromedp.ID("autopilot-pause-confirm")))
	b.waitFor("the paused autopilot", state+` === "paused"`+
		` && document.body.innerText.includes("Paused the autopilot of `+mig+`")`+
		` && document.querySelector("#autopilot-paused").innerText.includes("by operator")`+
		` && document.querySelector("#autopilot-paused").innerText.includes("quarter-end freeze")`+
		` && document.querySelector("#autopilot-resume-button") && !document.querySelector("#autopilot-pause-button")`)
	b.screenshot("autopilot-paused.png", "#autopilot")

	b.do(chromedp.Click(chromedp.ID("autopilot-resume-button")))
	b.waitFor("the resume dialog", `document.querySelector("#autopilot-resume").open`)
	b.do(chromedp.SendKeys(chromedp.ID("autopilot-resume-reason"), "freeze over"),
		chromedp.Click(chromedp.ID("autopilot-resume-confirm")))
	b.waitFor("the resumed autopilot", state+` === "ready"`+
		` && document.body.innerText.includes("Resumed the autopilot of `+mig+`")`+
		` && !document.querySelector("#autopilot-paused") && document.querySelector("#autopilot-pause-button")`)
	var actions []string
	for _, e := range f.auditLog(t) {
		if strings.HasPrefix(e.Action, "autopilot.") {
			actions = append(actions, e.Action+" by "+e.Actor+": "+e.Reason)
		}
	}
	if want := []string{"autopilot.pause by operator: quarter-end freeze", "autopilot.resume by operator: freeze over"}; strings.Join(actions, "\n") != strings.Join(want, "\n") {
		t.Errorf("audited %q, want %q", actions, want)
	}

	// A pause made elsewhere shows without a reload.
	b.do(chromedp.Evaluate[chromedp.Void](`window.__sameDocument = true`))
	if _, err := f.svc.PauseAutopilot(ctx, control.Change{Actor: "operator2", Reason: "elsewhere"}, mig); err != nil {
		t.Fatal(err)
	}
	b.waitFor("the pause made elsewhere", state+` === "paused"`+
		` && document.querySelector("#autopilot-paused").innerText.includes("elsewhere")`+
		` && window.__sameDocument === true`)
}
