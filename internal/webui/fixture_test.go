package webui_test

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/webui"
)

const (
	mig         = "psa-webhooks-v2"
	adminSecret = "sbk_admin-secret-for-ui-tests"
)

var ctx = context.Background()

// clock is an injected clock that moves only when told to.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// fakeStats is a hand-written ComparisonStats: counts answers each call;
// nil counts answer zero.
type fakeStats struct {
	counts func(migration, partner string, stage domain.Stage) gate.Counts
}

func (f fakeStats) StageCounts(_ context.Context, migration, partner string, stage domain.Stage, _ time.Time) (gate.Counts, error) {
	if f.counts == nil {
		return gate.Counts{}, nil
	}
	return f.counts(migration, partner, stage), nil
}

// fixture is a control service on a real bbolt store (or the one given)
// with the API and the UI mounted on one router behind a real HTTP server,
// one token per role and a migration with three partners in two cohorts.
type fixture struct {
	svc   *control.Service
	ui    *webui.UI
	srv   *httptest.Server
	clock *clock
	// tok holds token secrets by name; each token is named after its
	// role: admin, operator, viewer.
	tok map[string]string
}

type fixtureOptions struct {
	tls   bool
	stats control.ComparisonStats
	ui    webui.Options
	// store is the control service's store; nil for a new bbolt file.
	store control.Store
}

func discard() *slog.Logger {
	if os.Getenv("WEBUI_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	return slog.New(slog.DiscardHandler)
}

func newFixture(t testing.TB, fo fixtureOptions) *fixture {
	t.Helper()
	c := &clock{t: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)}
	store := fo.store
	if store == nil {
		store = bolttest.Open(t)
	}
	svc, err := control.New(ctx, store, control.Options{Now: c.Now, Stats: fo.stats, Logger: discard()})
	if err != nil {
		t.Fatalf("control.New: %v", err)
	}
	if _, created, err := svc.Bootstrap(ctx, adminSecret); err != nil || !created {
		t.Fatalf("Bootstrap: created %v, err %v", created, err)
	}
	f := &fixture{svc: svc, clock: c, tok: map[string]string{"admin": adminSecret}}
	for _, role := range []domain.Role{domain.RoleOperator, domain.RoleViewer} {
		_, secret, err := svc.CreateToken(ctx, control.Change{Actor: "test", Reason: "fixture"}, string(role), role)
		if err != nil {
			t.Fatalf("CreateToken(%s): %v", role, err)
		}
		f.tok[string(role)] = secret
	}
	f.seed(t)

	api := httpapi.New(svc, discard(), prometheus.NewRegistry())
	t.Cleanup(api.Close)
	opts := fo.ui
	if opts.Now == nil {
		opts.Now = c.Now
	}
	f.ui, err = webui.New(svc, discard(), opts)
	if err != nil {
		t.Fatalf("webui.New: %v", err)
	}
	f.ui.Mount(api.Router())
	if fo.tls {
		f.srv = httptest.NewTLSServer(api)
	} else {
		f.srv = httptest.NewServer(api)
	}
	t.Cleanup(f.srv.Close)
	return f
}

var setup = control.Change{Actor: "setup", Reason: "fixture"}

// seed makes partners acme, globex and initech, the migration, and the
// cohorts canary (acme) and wave-1 (globex, initech).
func (f *fixture) seed(t testing.TB) {
	t.Helper()
	for _, p := range []struct{ id, name string }{{"acme", "Acme MSP"}, {"globex", "Globex IT"}, {"initech", "Initech Services"}} {
		secret := "whsec_c2VjcmV0LW9mLQ" + p.id
		if _, _, err := f.svc.PutPartner(ctx, setup, control.PartnerInput{ID: p.id, Name: p.name, PSA: domain.PSAConnectWise, Secret: &secret}); err != nil {
			t.Fatalf("PutPartner(%s): %v", p.id, err)
		}
	}
	m := domain.Migration{Key: mig, Description: "ConnectWise webhooks on the rewritten pipeline",
		Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://legacy.internal/apply"}, New: domain.Pipeline{URL: "http://new.internal/apply"}},
		Gates:     domain.DefaultGates(), Guard: domain.DefaultGuard()}
	if _, _, err := f.svc.PutMigration(ctx, setup, m); err != nil {
		t.Fatalf("PutMigration: %v", err)
	}
	for i, co := range []domain.Cohort{{Name: "canary", Order: 1, Partners: []string{"acme"}}, {Name: "wave-1", Order: 2, Partners: []string{"globex", "initech"}}} {
		if _, _, err := f.svc.PutCohort(ctx, setup, mig, co); err != nil {
			t.Fatalf("PutCohort(%d): %v", i, err)
		}
	}
}

// client is a browser-like HTTP client: it keeps cookies and does not
// follow redirects, so that tests see them.
type client struct {
	t   testing.TB
	f   *fixture
	hc  *http.Client
	jar *cookiejar.Jar
}

func (f *fixture) client(t testing.TB) *client {
	jar, _ := cookiejar.New(nil)
	hc := f.srv.Client()
	hc.Jar = jar
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &client{t: t, f: f, hc: hc, jar: jar}
}

type response struct {
	status int
	header http.Header
	body   string
}

func (c *client) do(req *http.Request) response {
	c.t.Helper()
	res, err := c.hc.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return response{status: res.StatusCode, header: res.Header, body: string(b)}
}

func (c *client) get(path string) response {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, c.f.srv.URL+path, nil)
	return c.do(req)
}

// post sends a form as the UI's own pages would (Sec-Fetch-Site and Origin
// of the same origin) unless header overrides them.
func (c *client) post(path string, form url.Values, header map[string]string) response {
	c.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, c.f.srv.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Sec-Fetch-Site", "same-origin")
	req.Header.Set("Origin", c.f.srv.URL)
	for k, v := range header {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	return c.do(req)
}

// login signs the client in with the named token through the link that
// serve prints.
func (c *client) login(name string) {
	c.t.Helper()
	res := c.get("/login?token=" + url.QueryEscape(c.f.tok[name]))
	if res.status != http.StatusSeeOther || res.header.Get("Location") != "/" {
		c.t.Fatalf("login as %s: %d to %q, want 303 to /", name, res.status, res.header.Get("Location"))
	}
}

var csrfRE = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf returns the CSRF token in the forms of the page at path.
func (c *client) csrf(path string) string {
	c.t.Helper()
	res := c.get(path)
	m := csrfRE.FindStringSubmatch(res.body)
	if m == nil {
		c.t.Fatalf("no CSRF token in %s (%d)", path, res.status)
	}
	return m[1]
}

// sessionCookie returns the session cookie the client holds, or nil.
func (c *client) sessionCookie() *http.Cookie {
	u, _ := url.Parse(c.f.srv.URL)
	for _, ck := range c.jar.Cookies(u) {
		if ck.Name == "switchback_session" {
			return ck
		}
	}
	return nil
}

// reverted reports whether the migration's kill switch is on.
func (f *fixture) reverted(t testing.TB) bool {
	t.Helper()
	ms, err := f.svc.State().Migration(mig)
	if err != nil {
		t.Fatal(err)
	}
	return ms.Reverted
}

// auditLog returns the first 1000 entries of the audit log, in order.
func (f *fixture) auditLog(t testing.TB) []domain.AuditEntry {
	t.Helper()
	entries, err := f.svc.AuditLog(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return entries
}

func (f *fixture) stage(t testing.TB, partner string) domain.Stage {
	t.Helper()
	st := f.svc.State()
	ms, err := st.Migration(mig)
	if err != nil {
		t.Fatal(err)
	}
	return ms.StageOf(st.Partners[partner]).Stage
}
