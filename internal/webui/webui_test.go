package webui_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
	"github.com/switchbackhq/switchback/internal/webui"
)

func TestLoginLinkSetsSessionCookie(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.client(t)
	res := c.get("/login?token=" + url.QueryEscape(f.tok["operator"]))
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" {
		t.Fatalf("GET /login?token=: %d to %q, want 303 to /", res.status, res.header.Get("Location"))
	}
	raw := res.header.Get("Set-Cookie")
	for _, want := range []string{"switchback_session=", "HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"} {
		if !strings.Contains(raw, want) {
			t.Errorf("Set-Cookie %q lacks %q", raw, want)
		}
	}
	if strings.Contains(raw, "Secure") {
		t.Errorf("Set-Cookie %q is Secure on a plain-HTTP request", raw)
	}
	if strings.Contains(raw, f.tok["operator"]) || strings.Contains(raw, strings.TrimPrefix(f.tok["operator"], "sbk_")) {
		t.Errorf("Set-Cookie %q carries the token", raw)
	}
	if got := res.header.Get("Referrer-Policy"); got != "no-referrer" {
		t.Errorf("Referrer-Policy = %q, want no-referrer: the login URL holds a token", got)
	}

	page := c.get("/")
	if page.status != http.StatusOK {
		t.Fatalf("GET / after login: %d, want 200", page.status)
	}
	for _, want := range []string{"Signed in as <strong>operator</strong>", mig, "Revert all"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("dashboard lacks %q", want)
		}
	}
}

func TestCookieIsSecureOverTLS(t *testing.T) {
	f := newFixture(t, fixtureOptions{tls: true})
	res := f.client(t).get("/login?token=" + url.QueryEscape(f.tok["viewer"]))
	if raw := res.header.Get("Set-Cookie"); !strings.Contains(raw, "Secure") || !strings.Contains(raw, "HttpOnly") {
		t.Errorf("Set-Cookie over TLS = %q, want Secure and HttpOnly", raw)
	}
}

func TestSecureCookiesOption(t *testing.T) {
	f := newFixture(t, fixtureOptions{ui: webui.Options{SecureCookies: true}})
	res := f.client(t).get("/login?token=" + url.QueryEscape(f.tok["viewer"]))
	if raw := res.header.Get("Set-Cookie"); !strings.Contains(raw, "Secure") {
		t.Errorf("Set-Cookie with SecureCookies = %q, want Secure", raw)
	}
}

func TestCookieSecureBehindATrustedProxy(t *testing.T) {
	tests := []struct {
		name       string
		proxies    []string
		proto      string
		wantSecure bool
	}{
		// The test client connects from 127.0.0.1.
		{"trusted proxy says https", []string{"127.0.0.0/8"}, "https", true},
		{"trusted proxy by address says https", []string{"127.0.0.1"}, "HTTPS", true},
		{"trusted proxy says http", []string{"127.0.0.0/8"}, "http", false},
		{"untrusted sender says https", []string{"10.0.0.0/8"}, "https", false},
		{"no trusted proxies", nil, "https", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proxies, err := webui.ParseProxies(tt.proxies)
			if err != nil {
				t.Fatal(err)
			}
			f := newFixture(t, fixtureOptions{ui: webui.Options{TrustedProxies: proxies}})
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/login?token="+url.QueryEscape(f.tok["viewer"]), nil)
			req.Header.Set("X-Forwarded-Proto", tt.proto)
			res := f.client(t).do(req)
			raw := res.header.Get("Set-Cookie")
			if raw == "" {
				t.Fatalf("no Set-Cookie; status %d", res.status)
			}
			if got := strings.Contains(raw, "Secure"); got != tt.wantSecure {
				t.Errorf("Set-Cookie = %q: Secure %v, want %v", raw, got, tt.wantSecure)
			}
		})
	}
}

func TestParseProxies(t *testing.T) {
	tests := []struct {
		name    string
		in      []string
		want    string
		wantErr bool
	}{
		{"CIDRs and addresses", []string{"10.1.2.3/8", " 192.168.0.7 ", "::1"}, "[10.0.0.0/8 192.168.0.7/32 ::1/128]", false},
		{"empty entries skipped", []string{"", "127.0.0.0/8"}, "[127.0.0.0/8]", false},
		{"a host name", []string{"proxy.internal"}, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := webui.ParseProxies(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseProxies(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if err == nil && fmt.Sprint(got) != tt.want {
				t.Errorf("ParseProxies(%q) = %v, want %s", tt.in, got, tt.want)
			}
		})
	}
}

func TestLogin(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	tests := []struct {
		name       string
		do         func(c *client) response
		wantStatus int
		wantTo     string // Location on success
		wantCookie bool
	}{
		{"form with a token", func(c *client) response {
			return c.post("/login", url.Values{"token": {f.tok["viewer"]}}, nil)
		}, http.StatusSeeOther, "/", true},
		{"form with spaces around the token", func(c *client) response {
			return c.post("/login", url.Values{"token": {"  " + f.tok["viewer"] + "\n"}}, nil)
		}, http.StatusSeeOther, "/", true},
		{"form keeps a local next", func(c *client) response {
			return c.post("/login", url.Values{"token": {f.tok["viewer"]}, "next": {"/routers"}}, nil)
		}, http.StatusSeeOther, "/routers", true},
		{"link keeps a local next", func(c *client) response {
			return c.get("/login?next=%2Fmigrations%2F" + mig + "&token=" + url.QueryEscape(f.tok["viewer"]))
		}, http.StatusSeeOther, "/migrations/" + mig, true},
		{"next to another site goes home", func(c *client) response {
			return c.get("/login?next=%2F%2Fevil.example%2F&token=" + url.QueryEscape(f.tok["viewer"]))
		}, http.StatusSeeOther, "/", true},
		{"next with a scheme goes home", func(c *client) response {
			return c.get("/login?next=https%3A%2F%2Fevil.example&token=" + url.QueryEscape(f.tok["viewer"]))
		}, http.StatusSeeOther, "/", true},
		{"form with a wrong token", func(c *client) response {
			return c.post("/login", url.Values{"token": {"sbk_not-a-real-token"}}, nil)
		}, http.StatusUnauthorized, "", false},
		{"form with no token", func(c *client) response {
			return c.post("/login", url.Values{}, nil)
		}, http.StatusUnauthorized, "", false},
		{"link with a wrong token", func(c *client) response {
			return c.get("/login?token=sbk_nope")
		}, http.StatusUnauthorized, "", false},
		{"cross-site form post", func(c *client) response {
			return c.post("/login", url.Values{"token": {f.tok["viewer"]}}, map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"})
		}, http.StatusForbidden, "", false},
		{"link followed from another site", func(c *client) response {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/login?token="+url.QueryEscape(f.tok["viewer"]), nil)
			req.Header.Set("Sec-Fetch-Site", "cross-site")
			return c.do(req)
		}, http.StatusForbidden, "", false},
		{"link with a foreign Origin and no Sec-Fetch-Site", func(c *client) response {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/login?token="+url.QueryEscape(f.tok["viewer"]), nil)
			req.Header.Set("Origin", "http://evil.example")
			return c.do(req)
		}, http.StatusForbidden, "", false},
		{"link with an opaque Origin and no Sec-Fetch-Site", func(c *client) response {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/login?token="+url.QueryEscape(f.tok["viewer"]), nil)
			req.Header.Set("Origin", "null")
			return c.do(req)
		}, http.StatusForbidden, "", false},
		{"link with its own Origin and no Sec-Fetch-Site", func(c *client) response {
			req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/login?token="+url.QueryEscape(f.tok["viewer"]), nil)
			req.Header.Set("Origin", f.srv.URL)
			return c.do(req)
		}, http.StatusSeeOther, "/", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.client(t)
			res := tt.do(c)
			if res.status != tt.wantStatus {
				t.Fatalf("status = %d, want %d; body:\n%s", res.status, tt.wantStatus, res.body)
			}
			if tt.wantTo != "" && res.header.Get("Location") != tt.wantTo {
				t.Errorf("Location = %q, want %q", res.header.Get("Location"), tt.wantTo)
			}
			if got := c.sessionCookie() != nil; got != tt.wantCookie {
				t.Errorf("has a session cookie = %v, want %v", got, tt.wantCookie)
			}
			if !tt.wantCookie && !strings.Contains(res.body, `name="token"`) {
				t.Errorf("a refused sign-in shows no login form")
			}
		})
	}
}

func TestPagesNeedASession(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.client(t)
	for _, path := range []string{"/", "/migrations/" + mig, "/migrations/" + mig + "/partners/acme", "/routers", "/audit", "/replays"} {
		res := c.get(path)
		if want := "/login?next=" + url.QueryEscape(path); res.status != http.StatusSeeOther || res.header.Get("Location") != want {
			t.Errorf("GET %s without a session: %d to %q, want 303 to %q", path, res.status, res.header.Get("Location"), want)
		}
	}
	res := c.get("/ui/state.json")
	if res.status != http.StatusUnauthorized || !strings.Contains(res.body, `"unauthenticated"`) {
		t.Errorf("GET /ui/state.json without a session: %s, want 401 unauthenticated", res.body)
	}
	c.jar.SetCookies(mustURL(f.srv.URL), []*http.Cookie{{Name: "switchback_session", Value: "forged-session-id"}})
	if res := c.get("/"); res.status != http.StatusSeeOther {
		t.Errorf("GET / with a forged cookie: %d, want 303 to the login page", res.status)
	}
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func TestLogout(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.client(t)
	c.login("viewer")
	old := c.sessionCookie()
	token := c.csrf("/")
	res := c.post("/logout", url.Values{"csrf": {token}}, nil)
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/login?out=1" {
		t.Fatalf("POST /logout: %d to %q, want 303 to /login?out=1", res.status, res.header.Get("Location"))
	}
	if raw := res.header.Get("Set-Cookie"); !strings.Contains(raw, "Max-Age=0") {
		t.Errorf("logout Set-Cookie = %q, want the cookie cleared", raw)
	}
	// The old cookie is dead on the server too, not only in this browser.
	c2 := f.client(t)
	c2.jar.SetCookies(mustURL(f.srv.URL), []*http.Cookie{old})
	if res := c2.get("/"); res.status != http.StatusSeeOther {
		t.Errorf("GET / with the signed-out cookie: %d, want 303 to the login page", res.status)
	}
}

func TestCSRF(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	other := f.client(t)
	other.login("operator")
	otherToken := other.csrf("/")

	c := f.client(t)
	c.login("operator")
	good := c.csrf("/")
	if good == otherToken {
		t.Fatalf("two sessions share a CSRF token")
	}
	// One character off: the first, since the last base64 character of
	// 32 bytes holds only 4 bits and may not change the token at all.
	wrong := "x" + good[1:]
	if good[0] == 'x' {
		wrong = "y" + good[1:]
	}
	entries := len(f.auditLog(t))
	tests := []struct {
		name   string
		form   url.Values
		header map[string]string
	}{
		{"missing", url.Values{"reason": {"x"}}, nil},
		{"empty", url.Values{"csrf": {""}}, nil},
		{"wrong", url.Values{"csrf": {wrong}}, nil},
		{"another session's", url.Values{"csrf": {otherToken}}, nil},
		{"wrong in the header", url.Values{}, map[string]string{"X-CSRF-Token": "nope"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/revert", "/migrations/" + mig + "/revert", "/migrations/" + mig + "/cohorts/canary/advance", "/logout"} {
				res := c.post(path, tt.form, tt.header)
				if res.status != http.StatusForbidden {
					t.Errorf("POST %s: %d, want 403", path, res.status)
				}
			}
			if f.reverted(t) || f.stage(t, "acme") != domain.StageLegacy {
				t.Fatalf("a refused POST changed the state")
			}
			if got := len(f.auditLog(t)); got != entries {
				t.Errorf("audit entries = %d, want %d: a refused POST was audited", got, entries)
			}
		})
	}
	t.Run("right token in the header", func(t *testing.T) {
		res := c.post("/migrations/"+mig+"/revert", url.Values{}, map[string]string{"X-CSRF-Token": good})
		if res.status != http.StatusSeeOther || !f.reverted(t) {
			t.Errorf("POST with the CSRF header: %d, reverted %v; want 303, true", res.status, f.reverted(t))
		}
	})
}

func TestCrossOriginPostRefused(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.client(t)
	c.login("admin")
	token := c.csrf("/")
	tests := []struct {
		name   string
		header map[string]string
	}{
		{"cross-site", map[string]string{"Sec-Fetch-Site": "cross-site", "Origin": "http://evil.example"}},
		{"same-site, other origin", map[string]string{"Sec-Fetch-Site": "same-site", "Origin": "http://127.0.0.1:1"}},
		{"foreign Origin, no Sec-Fetch-Site", map[string]string{"Sec-Fetch-Site": "", "Origin": "http://evil.example"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.post("/revert", url.Values{"csrf": {token}, "reason": {"csrf attack"}}, tt.header)
			if res.status != http.StatusForbidden {
				t.Errorf("POST /revert: %d, want 403", res.status)
			}
			if f.reverted(t) {
				t.Fatalf("a cross-origin POST reverted the migration")
			}
		})
	}
	t.Run("a client that sends neither header", func(t *testing.T) {
		// Non-browser clients send neither; the CSRF token still guards them.
		res := c.post("/revert", url.Values{"csrf": {token}}, map[string]string{"Sec-Fetch-Site": "", "Origin": ""})
		if res.status != http.StatusSeeOther || !f.reverted(t) {
			t.Errorf("POST /revert: %d, reverted %v; want 303, true", res.status, f.reverted(t))
		}
	})
}

func TestViewerCannotChangeAnything(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.client(t)
	c.login("viewer")
	for _, path := range []string{"/", "/migrations/" + mig} {
		page := c.get(path)
		if page.status != http.StatusOK {
			t.Fatalf("GET %s: %d", path, page.status)
		}
		for _, refused := range []string{"revert-all-button", `action="/revert"`, "/revert\"", "/resume\"", "/advance\"", "Revert all", "Advance "} {
			if strings.Contains(page.body, refused) {
				t.Errorf("a viewer's %s shows %q", path, refused)
			}
		}
	}
	token := c.csrf("/")
	entries := len(f.auditLog(t))
	for _, path := range []string{"/revert", "/migrations/" + mig + "/revert", "/migrations/" + mig + "/resume", "/migrations/" + mig + "/cohorts/canary/advance"} {
		res := c.post(path, url.Values{"csrf": {token}, "reason": {"viewer tries"}}, nil)
		if res.status != http.StatusForbidden || !strings.Contains(res.body, "operator role") {
			t.Errorf("viewer POST %s: %d, want 403 naming the operator role", path, res.status)
		}
	}
	if f.reverted(t) || f.stage(t, "acme") != domain.StageLegacy || len(f.auditLog(t)) != entries {
		t.Errorf("a viewer's POST changed the state or the audit log")
	}
	// The viewer may still sign out.
	if res := c.post("/logout", url.Values{"csrf": {token}}, nil); res.status != http.StatusSeeOther {
		t.Errorf("viewer POST /logout: %d, want 303", res.status)
	}
}

func TestRevokedTokenEndsSession(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.client(t)
	c.login("operator")
	token := c.csrf("/")
	if err := f.svc.DeleteToken(ctx, control.Change{Actor: "admin", Reason: "leaked"}, "operator"); err != nil {
		t.Fatal(err)
	}
	if res := c.get("/"); res.status != http.StatusSeeOther {
		t.Errorf("GET / after the token was revoked: %d, want 303 to the login page", res.status)
	}
	if res := c.post("/revert", url.Values{"csrf": {token}}, nil); res.status != http.StatusUnauthorized || f.reverted(t) {
		t.Errorf("POST /revert after the token was revoked: %d (reverted %v), want 401 and nothing reverted", res.status, f.reverted(t))
	}

	// A new token under the same name does not revive the old session.
	c2 := f.client(t)
	c2.login("viewer")
	ck := c2.sessionCookie()
	if err := f.svc.DeleteToken(ctx, control.Change{Actor: "admin"}, "viewer"); err != nil {
		t.Fatal(err)
	}
	f.clock.Advance(time.Second)
	if _, _, err := f.svc.CreateToken(ctx, control.Change{Actor: "admin"}, "viewer", domain.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	c3 := f.client(t)
	c3.jar.SetCookies(mustURL(f.srv.URL), []*http.Cookie{ck})
	if res := c3.get("/"); res.status != http.StatusSeeOther {
		t.Errorf("GET / with a session of a revoked token whose name was reused: %d, want 303", res.status)
	}
}

func TestSessionExpires(t *testing.T) {
	f := newFixture(t, fixtureOptions{ui: webui.Options{SessionTTL: time.Hour}})
	c := f.client(t)
	c.login("viewer")
	f.clock.Advance(59 * time.Minute)
	if res := c.get("/"); res.status != http.StatusOK {
		t.Fatalf("GET / within the TTL: %d, want 200", res.status)
	}
	f.clock.Advance(time.Minute)
	if res := c.get("/"); res.status != http.StatusSeeOther {
		t.Errorf("GET / after the TTL: %d, want 303 to the login page", res.status)
	}
}

func TestRevertAllIsAudited(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.client(t)
	c.login("operator")
	res := c.post("/revert", url.Values{"csrf": {c.csrf("/")}, "reason": {"type_mismatch on tickets"}}, nil)
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" {
		t.Fatalf("POST /revert: %d to %q, want 303 to /", res.status, res.header.Get("Location"))
	}
	if !f.reverted(t) {
		t.Fatalf("the migration is not reverted")
	}
	log := f.auditLog(t)
	last := log[len(log)-1]
	if last.Action != "revert.all" || last.Actor != "operator" || last.Reason != "type_mismatch on tickets" {
		t.Errorf("last audit entry = %s by %s (%q), want revert.all by operator with the reason", last.Action, last.Actor, last.Reason)
	}
	// A live update's background re-render leaves the message for the
	// page the browser loads.
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/", nil)
	req.Header.Set("X-Switchback-Live", "1")
	if live := c.do(req); strings.Contains(live.body, "kill switch is on in snapshot version") {
		t.Errorf("a live re-render took the message")
	}
	page := c.get("/")
	for _, want := range []string{"every migration&#39;s kill switch is on in snapshot version", "Everything is reverted", "Kill switch ON"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("dashboard after the revert lacks %q", want)
		}
	}
	if strings.Contains(c.get("/").body, "kill switch is on in snapshot version") {
		t.Errorf("the message is shown twice")
	}
	if r := f.svc.State().Flags().Evaluate(mig, "acme"); r.Reason != "DISABLED" || r.Value != "legacy" {
		t.Errorf("evaluation after the revert = %+v, want legacy, DISABLED", r)
	}

	res = c.post("/migrations/"+mig+"/resume", url.Values{"csrf": {c.csrf("/")}, "back": {"/"}}, nil)
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" || f.reverted(t) {
		t.Errorf("POST resume: %d to %q, reverted %v; want 303 to /, false", res.status, res.header.Get("Location"), f.reverted(t))
	}
	res = c.post("/migrations/"+mig+"/revert", url.Values{"csrf": {c.csrf("/")}, "back": {"//evil.example"}}, nil)
	if want := "/migrations/" + mig; res.header.Get("Location") != want {
		t.Errorf("revert with a foreign back: to %q, want %q", res.header.Get("Location"), want)
	}
}

// The UI holds a reason to the API's rule: as many characters as the text
// area allows (not bytes), lines allowed, control characters refused.
func TestRevertReasonFollowsTheAPIRule(t *testing.T) {
	tests := []struct {
		name, reason string
		ok           bool
		wantMsg      string // on the page after a refusal
	}{
		{"MaxReason accented characters", strings.Repeat("é", domain.MaxReason), true, ""},
		{"lines as a text area sends them", "incident 42\r\nrolling back", true, ""},
		{"one character over", strings.Repeat("r", domain.MaxReason+1), false, "reason is longer than 1000 characters"},
		{"an escape sequence", "ok\x1b[2J", false, "reason holds the control character U&#43;001B"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{})
			c := f.client(t)
			c.login("operator")
			before := len(f.auditLog(t))
			page := c.get("/")
			if want := fmt.Sprintf(`name="reason" rows="2" maxlength="%d"`, domain.MaxReason); !strings.Contains(page.body, want) {
				t.Errorf("the dashboard's reason field lacks %s", want)
			}
			c.post("/revert", url.Values{"csrf": {c.csrf("/")}, "reason": {tt.reason}}, nil)
			if got := f.reverted(t); got != tt.ok {
				t.Fatalf("reverted: got %v, want %v", got, tt.ok)
			}
			log := f.auditLog(t)
			if !tt.ok {
				if len(log) != before {
					t.Errorf("audit log: got %d entries after a refused revert, want %d", len(log), before)
				}
				if page := c.get("/"); !strings.Contains(page.body, tt.wantMsg) {
					t.Errorf("the page after the refusal lacks %q", tt.wantMsg)
				}
				return
			}
			if last := log[len(log)-1]; last.Reason != tt.reason {
				t.Errorf("audit reason: got %q, want %q", last.Reason, tt.reason)
			}
		})
	}
}

func TestAdvance(t *testing.T) {
	good := func(_, _ string, _ domain.Stage) gate.Counts {
		return gate.Counts{Eligible: 5000, ByClass: map[domain.Class]uint64{domain.ClassEqual: 5000},
			ByType: map[string]uint64{"ticket": 5000}, CandidateCalls: 5000}
	}
	f := newFixture(t, fixtureOptions{stats: fakeStats{counts: good}})
	c := f.client(t)
	c.login("operator")
	path := "/migrations/" + mig + "/cohorts/canary/advance"

	// legacy → shadow needs no gate.
	res := c.post(path, url.Values{"csrf": {c.csrf("/")}, "reason": {"start shadowing"}}, nil)
	if res.status != http.StatusSeeOther || f.stage(t, "acme") != domain.StageShadow {
		t.Fatalf("advance canary: %d, acme at %s; want 303, shadow", res.status, f.stage(t, "acme"))
	}
	// shadow → new: the bake time has not passed, so the gates wait for
	// data; they refuse like a fail, and may be forced like one.
	page := c.get("/migrations/" + mig)
	if !strings.Contains(page.body, "Waiting for data: acme: baked 0s of 1h0m0s.") || !strings.Contains(page.body, "Force advance") {
		t.Errorf("the migration page does not show the waiting gate and the force button")
	}
	if !strings.Contains(page.body, `id="advance-button-canary" commandfor="advance-canary" command="show-modal" disabled`) {
		t.Errorf("the Advance button of a refused cohort is not disabled")
	}
	res = c.post(path, url.Values{"csrf": {c.csrf("/")}}, nil)
	if res.status != http.StatusSeeOther || f.stage(t, "acme") != domain.StageShadow {
		t.Fatalf("unforced advance past a refusing gate: %d, acme at %s; want 303 and shadow", res.status, f.stage(t, "acme"))
	}
	if page := c.get("/migrations/" + mig); !strings.Contains(page.body, "waiting for data: acme: baked 0s of 1h0m0s") {
		t.Errorf("the refusal is not shown on the next page")
	}

	forced := []struct {
		name string
		form url.Values
	}{
		{"no reason", url.Values{"force": {"yes"}, "confirm": {"canary"}}},
		{"blank reason", url.Values{"force": {"yes"}, "confirm": {"canary"}, "reason": {"   "}}},
		{"no confirmation", url.Values{"force": {"yes"}, "reason": {"hotfix"}}},
		{"wrong confirmation", url.Values{"force": {"yes"}, "reason": {"hotfix"}, "confirm": {"wave-1"}}},
	}
	for _, tt := range forced {
		t.Run("force refused: "+tt.name, func(t *testing.T) {
			tt.form.Set("csrf", c.csrf("/"))
			c.post(path, tt.form, nil)
			if got := f.stage(t, "acme"); got != domain.StageShadow {
				t.Errorf("acme at %s, want shadow", got)
			}
		})
	}
	res = c.post(path, url.Values{"csrf": {c.csrf("/")}, "force": {"yes"}, "reason": {"bake waived by release lead"}, "confirm": {"canary"}}, nil)
	if res.status != http.StatusSeeOther || f.stage(t, "acme") != domain.StageNew {
		t.Fatalf("forced advance: %d, acme at %s; want 303, new", res.status, f.stage(t, "acme"))
	}
	log := f.auditLog(t)
	last := log[len(log)-1]
	var after map[string]any
	json.Unmarshal(last.After, &after)
	if last.Action != "cohort.advance" || last.Actor != "operator" || after["forced"] != true || last.Reason != "bake waived by release lead" {
		t.Errorf("last audit entry = %s by %s, after %s, reason %q; want a forced cohort.advance by operator", last.Action, last.Actor, last.After, last.Reason)
	}

	// While reverted, nothing moves forward and the page says why.
	if _, err := f.svc.Revert(ctx, control.Change{Actor: "ops"}, mig); err != nil {
		t.Fatal(err)
	}
	if page := c.get("/migrations/" + mig); !strings.Contains(page.body, "The kill switch is on: resume the migration") {
		t.Errorf("the migration page of a reverted migration does not say why advancing is blocked")
	}
	c.post("/migrations/"+mig+"/cohorts/wave-1/advance", url.Values{"csrf": {c.csrf("/")}}, nil)
	if got := f.stage(t, "globex"); got != domain.StageLegacy {
		t.Errorf("advance while reverted moved globex to %s", got)
	}
}

func TestStateJSON(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.client(t)
	c.login("viewer")
	f.svc.ReportRouter(control.RouterStatus{ID: "ingress-1", SnapshotVersion: f.svc.State().Version})
	f.svc.ReportRouter(control.RouterStatus{ID: "ingress-2", SnapshotVersion: 1})
	type state struct {
		Version    uint64 `json:"version"`
		Migrations []struct {
			Key      string         `json:"key"`
			Reverted bool           `json:"reverted"`
			Stages   map[string]int `json:"stages"`
			Primary  map[string]int `json:"primary"`
		} `json:"migrations"`
		Routers struct {
			Total     int `json:"total"`
			Confirmed int `json:"confirmed"`
		} `json:"routers"`
		Keys map[string]string `json:"keys"`
	}
	read := func() state {
		t.Helper()
		res := c.get("/ui/state.json")
		var s state
		if err := json.Unmarshal([]byte(res.body), &s); err != nil || res.status != http.StatusOK {
			t.Fatalf("GET /ui/state.json: %d %v\n%s", res.status, err, res.body)
		}
		return s
	}
	s := read()
	if s.Version != f.svc.State().Version || len(s.Migrations) != 1 || s.Migrations[0].Stages["legacy"] != 3 || s.Migrations[0].Primary["legacy"] != 3 {
		t.Errorf("state = %+v", s)
	}
	if s.Routers.Total != 2 || s.Routers.Confirmed != 1 {
		t.Errorf("routers = %+v, want 2 with 1 confirmed", s.Routers)
	}
	before := s.Keys
	f.svc.ReportRouter(control.RouterStatus{ID: "ingress-2", SnapshotVersion: f.svc.State().Version})
	s = read()
	if s.Keys["version"] != before["version"] || s.Keys["routers"] == before["routers"] {
		t.Errorf("after a router report, keys %v → %v: want only routers to change", before, s.Keys)
	}
	if _, err := f.svc.RevertAll(ctx, control.Change{Actor: "ops"}); err != nil {
		t.Fatal(err)
	}
	s = read()
	if s.Keys["version"] == before["version"] || !s.Migrations[0].Reverted || s.Routers.Confirmed != 0 {
		t.Errorf("after a revert: %+v", s)
	}
}

func TestPages(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	m := f.svc.State().Migrations[mig].Migration
	m.Reconcile = &domain.ReconcilePolicy{AfterRevert: true, Every: time.Hour, Window: 2 * time.Hour}
	if _, _, err := f.svc.PutMigration(ctx, setup, m); err != nil {
		t.Fatalf("PutMigration: %v", err)
	}
	f.svc.ReportRouter(control.RouterStatus{ID: "ingress-1", SnapshotVersion: f.svc.State().Version, Journal: json.RawMessage(`{"pending":3,"deadLettered":0}`)})
	c := f.client(t)
	c.login("admin")
	tests := []struct {
		path   string
		status int
		want   []string
	}{
		{"/", 200, []string{mig, "ConnectWise webhooks on the rewritten pipeline", "legacy <strong>3</strong>", "all 1 router has confirmed version"}},
		{"/migrations/" + mig, 200, []string{"canary", "wave-1", "No gate: moving from legacy to shadow", `<th scope="col" aria-sort="ascending"><a href="?dir=desc&amp;sort=partner#partners">Partner`, "Initech Services", "<dt>Reconcile</dt><dd>after revert; every 1h over 2h</dd>"}},
		{"/migrations/" + mig + "?q=globex&sort=partner&dir=desc", 200, []string{`Showing <span data-shown>1</span> of 3 partners`, `data-partner="acme" hidden`}},
		{"/migrations/" + mig + "/partners/acme", 200, []string{"Acme MSP", "This UI reads no comparisons", "Moving from legacy to shadow needs no gate"}},
		{"/migrations/" + mig + "/partners/acme/mismatches/evt_1", 404, []string{"This UI reads no comparisons"}},
		{"/routers", 200, []string{"ingress-1", "pending: 3", "✓ current"}},
		{"/audit", 200, []string{"Chain verified", "partner.create", "migration.create"}},
		{"/audit?actor=setup&action=cohort.create", 200, []string{"2 of", "cohort.create"}},
		{"/replays", 200, []string{"No replay yet"}},
		{"/migrations/nope", 404, []string{"migration &#34;nope&#34; does not exist"}},
		{"/migrations/" + mig + "/partners/nope", 404, []string{"partner &#34;nope&#34; does not exist"}},
		{"/audit?before=x", 400, []string{"before must be a sequence number"}},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			res := c.get(tt.path)
			if res.status != tt.status {
				t.Fatalf("status = %d, want %d\n%s", res.status, tt.status, res.body)
			}
			for _, want := range tt.want {
				if !strings.Contains(res.body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
			if csp := res.header.Get("Content-Security-Policy"); !strings.Contains(csp, "script-src 'self'") || !strings.Contains(csp, "frame-ancestors 'none'") {
				t.Errorf("Content-Security-Policy = %q", csp)
			}
			if strings.Contains(res.body, "whsec_") {
				t.Errorf("the page shows a webhook secret")
			}
		})
	}
}

func TestStaticFiles(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	c := f.client(t)
	res := c.get("/ui/static/app.js")
	if res.status != 200 || !strings.Contains(res.header.Get("Content-Type"), "javascript") || res.header.Get("ETag") == "" {
		t.Fatalf("GET app.js: %d %q etag %q", res.status, res.header.Get("Content-Type"), res.header.Get("ETag"))
	}
	req, _ := http.NewRequest(http.MethodGet, f.srv.URL+"/ui/static/app.js", nil)
	req.Header.Set("If-None-Match", res.header.Get("ETag"))
	if res := c.do(req); res.status != http.StatusNotModified {
		t.Errorf("conditional GET: %d, want 304", res.status)
	}
	if res := c.get("/ui/static/nope.js"); res.status != http.StatusNotFound {
		t.Errorf("GET a missing file: %d, want 404", res.status)
	}
}

// fakeComparisons is a hand-written Comparisons with one recorded mismatch.
type fakeComparisons struct{ m webui.Mismatch }

func (f fakeComparisons) PartnerComparisons(_ context.Context, _, partner string) (webui.PartnerComparisons, error) {
	return webui.PartnerComparisons{Partner: partner,
		Counts:     map[string]map[domain.Class]uint64{"ticket": {domain.ClassEqual: 41, domain.ClassTypeMismatch: 1}},
		Mismatches: []webui.Mismatch{f.m}}, nil
}

func (f fakeComparisons) Mismatch(_ context.Context, _, _, eventID string) (webui.Mismatch, error) {
	if eventID != f.m.EventID {
		return webui.Mismatch{}, domain.Errorf(domain.CodeNotFound, "no mismatch %q", eventID)
	}
	return f.m, nil
}

// A sample's body cut at the bound is shown as the text it is, said to be
// cut; a sample from a router that predates events shows the two sides
// alone.
func TestDiffViewerEventCutOrAbsent(t *testing.T) {
	base := webui.Mismatch{EventID: "evt_7", EventType: "ticket", Class: domain.ClassValueDiff, Diff: "fields.status",
		Primary: json.RawMessage(`[{"kind":"ticket","op":"upsert","key":"1"}]`), Shadow: json.RawMessage(`[]`), At: time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)}
	cut := base
	cut.Event = &domain.SampleEvent{Type: "ticket", Action: "updated", EntityID: "1", Body: `{"data":{"notes":"<b>` + strings.Repeat("n", 40), BodyBytes: 9000, Truncated: true}
	tests := []struct {
		name          string
		m             webui.Mismatch
		want, notWant []string
	}{
		{"cut body", cut, []string{`<div class="diff with-event">`, `{&#34;data&#34;:{&#34;notes&#34;:&#34;&lt;b&gt;nnn`, "The body is cut: the first 61 of 9000 bytes are kept with the sample."}, []string{"<b>"}},
		{"no event", base, []string{`<div class="diff">`}, []string{"Event (as both pipelines received it)", "The body is cut"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, fixtureOptions{ui: webui.Options{Comparisons: fakeComparisons{tt.m}}})
			c := f.client(t)
			c.login("viewer")
			res := c.get("/migrations/" + mig + "/partners/acme/mismatches/evt_7")
			if res.status != 200 {
				t.Fatalf("diff viewer: %d", res.status)
			}
			for _, want := range tt.want {
				if !strings.Contains(res.body, want) {
					t.Errorf("diff viewer lacks %q", want)
				}
			}
			for _, not := range tt.notWant {
				if strings.Contains(res.body, not) {
					t.Errorf("diff viewer shows %q", not)
				}
			}
		})
	}
}

func TestDiffViewerWithRecordedComparisons(t *testing.T) {
	m := webui.Mismatch{EventID: "evt_42", EventType: "ticket", Class: domain.ClassTypeMismatch, Diff: "effects[0].kind: ticket != schedule",
		Primary: json.RawMessage(`[{"kind":"ticket","op":"upsert","key":"12345","fields":{"summary":"Printer <jammed>"}}]`),
		Shadow:  json.RawMessage(`[{"kind":"schedule","op":"upsert","key":"12345","fields":{"summary":"Printer <jammed>"}}]`),
		Event: &domain.SampleEvent{Type: "ticket", Action: "updated", EntityID: "12345<i>",
			Body: `{"type":"ticket.updated","data":{"id":"12345","summary":"</pre><script>alert(1)</script>"}}`, BodyBytes: 88},
		At: time.Date(2026, 3, 1, 11, 0, 0, 0, time.UTC)}
	f := newFixture(t, fixtureOptions{ui: webui.Options{Comparisons: fakeComparisons{m}}})
	c := f.client(t)
	c.login("viewer")
	page := c.get("/migrations/" + mig + "/partners/acme")
	for _, want := range []string{`href="/migrations/` + mig + `/partners/acme/mismatches/evt_42"`, "Comparisons by event type and class"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("partner page lacks %q", want)
		}
	}
	res := c.get("/migrations/" + mig + "/partners/acme/mismatches/evt_42")
	if res.status != 200 {
		t.Fatalf("diff viewer: %d", res.status)
	}
	for _, want := range []string{`<code class="changed">[0].kind</code>`, `<span class="line changed">    &#34;kind&#34;: &#34;schedule&#34;,`, "Printer &lt;jammed&gt;", "the class of the incident",
		// The event, beside the two sides, its body indented and escaped.
		`<div class="diff with-event">`, "Event (as both pipelines received it)", "entity <code>12345&lt;i&gt;</code>",
		`    &#34;summary&#34;: &#34;&lt;/pre&gt;&lt;script&gt;alert(1)&lt;/script&gt;&#34;`} {
		if !strings.Contains(res.body, want) {
			t.Errorf("diff viewer lacks %q", want)
		}
	}
	for _, raw := range []string{"<jammed>", "<script>alert", "12345<i>"} {
		if strings.Contains(res.body, raw) {
			t.Errorf("the diff viewer does not escape %q", raw)
		}
	}
	if strings.Contains(res.body, "The body is cut") {
		t.Errorf("a whole body is said to be cut")
	}
	if res := c.get("/migrations/" + mig + "/partners/acme/mismatches/evt_43"); res.status != 404 || !strings.Contains(res.body, "No comparison is recorded for event evt_43") {
		t.Errorf("unknown mismatch: %d", res.status)
	}
	if res := c.get("/migrations/" + mig + "/partners/acme/mismatches/" + url.PathEscape("<script>")); res.status != 404 {
		t.Errorf("bad event id: %d, want 404", res.status)
	}
}
