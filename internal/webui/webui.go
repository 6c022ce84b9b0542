package webui

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/netip"
	"net/url"
	"path"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httperr"
	"github.com/switchbackhq/switchback/web"
)

// Options configure the UI. The zero value is ready to use.
type Options struct {
	// SessionTTL is how long a session lasts after sign-in; default 12 h.
	SessionTTL time.Duration
	// Now is the clock, for session expiry, bake times and "seen ago";
	// pass the control service's clock. Defaults to time.Now.
	Now func() time.Time
	// SecureCookies marks the session cookie Secure on every response,
	// not only on TLS requests: set it behind a TLS-terminating proxy.
	SecureCookies bool
	// TrustedProxies are the networks of proxies whose X-Forwarded-Proto
	// is believed: a request from one of them with X-Forwarded-Proto
	// https gets a Secure cookie. From anybody else the header is ignored.
	TrustedProxies []netip.Prefix
	// TrustedOrigins are origins ("https://ops.example.com") whose POSTs
	// are accepted besides the request's own, for a proxy that rewrites
	// Host.
	TrustedOrigins []string
	// Comparisons reads shadow comparisons.
	Comparisons Comparisons
	// Replays lists the replays of a router in the same process, newest
	// first; nil when none runs here, and the page shows the replays asked
	// of the routers.
	Replays func() []domain.ReplayJob
	// Reconciler runs the reconciliations of the router in the same
	// process; nil when none runs here, and the reconciliation pages say
	// they need serve's embedded router.
	Reconciler Reconciler
	// Notifications keeps the notification targets' deliveries (given by
	// serve); nil lists the targets without deliveries.
	Notifications Notifications
	// PollInterval is how often a page checks the state for changes;
	// default 1 s.
	PollInterval time.Duration
	// MaxSessions bounds the session table; default 10000.
	MaxSessions int
}

// UI is the web UI of a control service.
type UI struct {
	svc      *control.Service
	log      *slog.Logger
	opts     Options
	pages    map[string]*template.Template
	assets   map[string]asset
	sessions *sessions
	origins  *http.CrossOriginProtection
	cache    summaries
}

// asset is one embedded static file.
type asset struct {
	data  []byte
	ctype string
	etag  string
}

// Cookie and form names.
const (
	cookieName = "switchback_session"
	csrfField  = "csrf"
	csrfHeader = "X-CSRF-Token"
	liveHeader = "X-Switchback-Live" // set by the script's background re-renders
	maxForm    = 64 << 10
)

// pageNames are the templates under web/templates, one per page.
var pageNames = []string{"login", "dashboard", "migration", "partner", "mismatch", "routers", "audit", "replays", "reconciliations", "reconciliation", "changes", "notifications", "error"}

// New returns the UI of svc. It fails only if the embedded templates or
// the trusted origins are invalid.
func New(svc *control.Service, log *slog.Logger, opts Options) (*UI, error) {
	if opts.SessionTTL <= 0 {
		opts.SessionTTL = 12 * time.Hour
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.MaxSessions <= 0 {
		opts.MaxSessions = 10000
	}
	if log == nil {
		log = slog.Default()
	}
	u := &UI{svc: svc, log: log, opts: opts, sessions: newSessions(opts.MaxSessions),
		origins: http.NewCrossOriginProtection()}
	for _, o := range opts.TrustedOrigins {
		if err := u.origins.AddTrustedOrigin(o); err != nil {
			return nil, fmt.Errorf("webui: trusted origin %q: %w", o, err)
		}
	}
	if err := u.loadAssets(); err != nil {
		return nil, err
	}
	if err := u.parseTemplates(); err != nil {
		return nil, err
	}
	return u, nil
}

func (u *UI) loadAssets() error {
	u.assets = map[string]asset{}
	return fs.WalkDir(web.FS, "static", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(web.FS, p)
		if err != nil {
			return fmt.Errorf("webui: read %s: %w", p, err)
		}
		h := sha256.Sum256(b)
		ctype := mime.TypeByExtension(path.Ext(p))
		if ctype == "" {
			ctype = "application/octet-stream"
		}
		u.assets[strings.TrimPrefix(p, "static/")] = asset{data: b, ctype: ctype, etag: `"` + hex.EncodeToString(h[:8]) + `"`}
		return nil
	})
}

func (u *UI) parseTemplates() error {
	u.pages = map[string]*template.Template{}
	for _, name := range pageNames {
		t, err := template.New(name).Funcs(u.funcs()).ParseFS(web.FS,
			"templates/layout.html", "templates/partials.html", "templates/"+name+".html")
		if err != nil {
			return fmt.Errorf("webui: parse template %s: %w", name, err)
		}
		u.pages[name] = t
	}
	return nil
}

// Mount adds the UI's routes to r. They sit beside the API's (/v1/…):
// / and /login, /logout, /migrations/…, /routers, /audit, /replays,
// /reconciliations, /changes, and
// /ui/… for the live state and the static files.
func (u *UI) Mount(r *mux.Router) {
	const get, post = http.MethodGet, http.MethodPost
	mig := "/migrations/{key}"
	r.HandleFunc("/login", u.loginPage).Methods(get)
	r.HandleFunc("/login", u.loginPost).Methods(post)
	r.Handle("/logout", u.action("", u.logout)).Methods(post)

	r.Handle("/", u.page(u.dashboard)).Methods(get)
	r.Handle(mig, u.page(u.migration)).Methods(get)
	r.Handle(mig+"/partners/{id}", u.page(u.partner)).Methods(get)
	r.Handle(mig+"/partners/{id}/mismatches/{event}", u.page(u.mismatch)).Methods(get)
	r.Handle("/routers", u.page(u.routers)).Methods(get)
	r.Handle("/audit", u.page(u.audit)).Methods(get)
	r.Handle("/replays", u.page(u.replays)).Methods(get)
	r.Handle("/reconciliations", u.page(u.reconciliations)).Methods(get)
	r.Handle("/reconciliations/{id}", u.page(u.reconciliation)).Methods(get)
	r.Handle("/changes", u.page(u.changes)).Methods(get)
	r.Handle("/notifications", u.page(u.notifications)).Methods(get)
	r.Handle("/ui/state.json", u.page(u.state)).Methods(get)
	r.PathPrefix("/ui/static/").HandlerFunc(u.static).Methods(get, http.MethodHead)

	// The same roles as the API endpoints that make the same changes.
	r.Handle("/revert", u.action(domain.RoleOperator, u.revertAll)).Methods(post)
	r.Handle(mig+"/revert", u.action(domain.RoleOperator, u.revert)).Methods(post)
	r.Handle(mig+"/resume", u.action(domain.RoleOperator, u.resume)).Methods(post)
	r.Handle(mig+"/autopilot/pause", u.action(domain.RoleOperator, u.pauseAutopilot)).Methods(post)
	r.Handle(mig+"/autopilot/resume", u.action(domain.RoleOperator, u.resumeAutopilot)).Methods(post)
	r.Handle(mig+"/cohorts/{name}/advance", u.action(domain.RoleOperator, u.advance)).Methods(post)
	r.Handle(mig+"/partners/{id}/noise", u.action(domain.RoleOperator, u.pinNoise)).Methods(post)
	r.Handle("/reconciliations", u.action(domain.RoleOperator, u.startReconciliation)).Methods(post)
	r.Handle("/reconciliations/{id}/backfill", u.action(domain.RoleOperator, u.backfillReconciliation)).Methods(post)
	r.Handle("/changes/{id}/approve", u.action(domain.RoleOperator, u.approveChange)).Methods(post)
	r.Handle("/changes/{id}/reject", u.action(domain.RoleOperator, u.rejectChange)).Methods(post)
}

// pageFunc renders a page for a signed-in session.
type pageFunc func(w http.ResponseWriter, r *http.Request, s session) error

// actionFunc makes a change and returns where to go next.
type actionFunc func(w http.ResponseWriter, r *http.Request, s session) (string, error)

// page wraps a GET handler: no session sends the browser to the login page
// (a script gets 401).
func (u *UI) page(h pageFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.headers(w)
		s, ok := u.session(w, r)
		if !ok {
			if strings.HasPrefix(r.URL.Path, "/ui/") {
				httperr.Write(w, domain.Errorf(domain.CodeUnauthenticated, "the session has ended: sign in again"))
				return
			}
			http.Redirect(w, r, "/login?next="+url.QueryEscape(r.URL.RequestURI()), http.StatusSeeOther)
			return
		}
		if err := h(w, r, s); err != nil {
			u.fail(w, r, &s, err)
		}
	})
}

// action wraps a POST handler: the request must come from the UI's own
// origin, carry a live session and its CSRF token, and the session's token
// must have role need ("" for any). A refused or failed change is shown on
// the next page.
func (u *UI) action(need domain.Role, h actionFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u.headers(w)
		if err := u.origins.Check(r); err != nil {
			u.fail(w, r, nil, domain.Errorf(domain.CodePermissionDenied, "cross-origin request refused: changes can only be made from switchback's own pages"))
			return
		}
		s, ok := u.session(w, r)
		if !ok {
			u.fail(w, r, nil, domain.Errorf(domain.CodeUnauthenticated, "your session has ended: sign in again, then retry"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxForm)
		if err := r.ParseForm(); err != nil {
			u.fail(w, r, &s, domain.Errorf(domain.CodeInvalid, "the form could not be read"))
			return
		}
		if !validCSRF(r, s.csrf) {
			u.fail(w, r, &s, domain.Errorf(domain.CodePermissionDenied, "the form's security token is missing or wrong: reload the page and try again"))
			return
		}
		if need != "" && !s.role.Allows(need) {
			u.fail(w, r, &s, domain.Errorf(domain.CodePermissionDenied, "this needs the %s role; the token %q has %s", need, s.name, s.role))
			return
		}
		next, err := h(w, r, s)
		if err != nil {
			switch domain.ErrorCode(err) {
			case domain.CodeInternal, domain.CodePermissionDenied, domain.CodeUnauthenticated:
				u.fail(w, r, &s, err)
				return
			}
			u.sessions.addFlash(s.id, flash{Kind: "error", Text: domain.ErrorMessage(err)})
		}
		if next == "" {
			next = "/"
		}
		http.Redirect(w, r, next, http.StatusSeeOther)
	})
}

// validCSRF compares the request's CSRF token with the session's in
// constant time.
func validCSRF(r *http.Request, want string) bool {
	got := r.PostForm.Get(csrfField)
	if got == "" {
		got = r.Header.Get(csrfHeader)
	}
	return got != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// session returns the request's live session. A session whose token was
// revoked, or replaced by another of the same name, ends here.
func (u *UI) session(w http.ResponseWriter, r *http.Request) (session, bool) {
	c, err := r.Cookie(cookieName)
	if err != nil {
		return session{}, false
	}
	s, ok := u.sessions.get(c.Value, u.opts.Now())
	if !ok {
		return session{}, false
	}
	tok, ok := u.token(s.name)
	if !ok || !tok.CreatedAt.Equal(s.issued) || !tok.Role.Allows(domain.RoleViewer) {
		u.sessions.delete(c.Value)
		u.clearCookie(w, r)
		return session{}, false
	}
	s.role = tok.Role
	return s, true
}

// token returns the token named name, if it still exists.
func (u *UI) token(name string) (domain.Token, bool) {
	for _, t := range u.svc.Tokens() {
		if t.Name == name {
			return t, true
		}
	}
	return domain.Token{}, false
}

func (u *UI) secure(r *http.Request) bool {
	return r.TLS != nil || u.opts.SecureCookies || u.viaTrustedHTTPS(r)
}

// viaTrustedHTTPS reports whether r came through a trusted proxy that says
// its client spoke HTTPS.
func (u *UI) viaTrustedHTTPS(r *http.Request) bool {
	if len(u.opts.TrustedProxies) == 0 || !strings.EqualFold(r.Header.Get("X-Forwarded-Proto"), "https") {
		return false
	}
	ap, err := netip.ParseAddrPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	addr := ap.Addr().Unmap()
	for _, p := range u.opts.TrustedProxies {
		if p.Contains(addr) {
			return true
		}
	}
	return false
}

// ParseProxies parses CIDRs ("10.0.0.0/8") or single addresses for
// Options.TrustedProxies.
func ParseProxies(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		s = strings.TrimSpace(s)
		if s == "" {
			continue
		}
		if p, err := netip.ParsePrefix(s); err == nil {
			out = append(out, p.Masked())
			continue
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return nil, fmt.Errorf("%q is neither a CIDR nor an address", s)
		}
		out = append(out, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
	}
	return out, nil
}

func (u *UI) setCookie(w http.ResponseWriter, r *http.Request, s session) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: s.id, Path: "/", HttpOnly: true, Secure: u.secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: int(u.opts.SessionTTL / time.Second)})
}

func (u *UI) clearCookie(w http.ResponseWriter, r *http.Request) {
	http.SetCookie(w, &http.Cookie{Name: cookieName, Value: "", Path: "/", HttpOnly: true, Secure: u.secure(r),
		SameSite: http.SameSiteStrictMode, MaxAge: -1})
}

// headers sets the headers of every UI response but the static files'.
func (u *UI) headers(w http.ResponseWriter) {
	securityHeaders(w)
	u.markStale(w)
}

// markStale tells the client, as the API does, that the answer comes from
// the last state this replica had before it lost its shared store: other
// replicas may have changed it since.
func (u *UI) markStale(w http.ResponseWriter) {
	if since, stale := u.svc.Stale(); stale {
		w.Header().Set("Switchback-Stale-Since", since.Format(time.RFC3339))
	}
}

// securityHeaders are set on every UI response: no framing, no inline
// script or style, no referrer (a login link carries a token), no caching
// of pages that show state.
func securityHeaders(w http.ResponseWriter) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Frame-Options", "DENY")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("Cache-Control", "no-store")
}

// fail renders err as an error page; s is nil when there is no session.
// Internal causes are logged here, once, and never shown.
func (u *UI) fail(w http.ResponseWriter, r *http.Request, s *session, err error) {
	code := domain.ErrorCode(err)
	status := httperr.Status(err)
	if status >= 500 {
		u.log.Error("ui request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if strings.HasPrefix(r.URL.Path, "/ui/") {
		httperr.Write(w, err)
		return
	}
	data := errorPage{Status: status, StatusText: http.StatusText(status), Message: domain.ErrorMessage(err),
		SignIn: code == domain.CodeUnauthenticated}
	data.base = u.base(w, r, s, "", "")
	u.render(w, r, status, "error", &data)
}

type errorPage struct {
	base
	Status     int
	StatusText string
	Message    string
	SignIn     bool
}

// static serves the embedded files under /ui/static/.
func (u *UI) static(w http.ResponseWriter, r *http.Request) {
	a, ok := u.assets[strings.TrimPrefix(r.URL.Path, "/ui/static/")]
	if !ok {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", a.ctype)
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("ETag", a.etag)
	// Pages link assets with ?v=ETAG, so a cached copy is never stale.
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	if r.URL.Query().Get("v") == "" {
		w.Header().Set("Cache-Control", "no-cache")
	}
	if match := r.Header.Get("If-None-Match"); match != "" && match == a.etag {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	if r.Method == http.MethodHead {
		return
	}
	w.Write(a.data)
}

// assetURL is the URL of a static file, with its version.
func (u *UI) assetURL(name string) (string, error) {
	a, ok := u.assets[name]
	if !ok {
		return "", errors.New("webui: no static file " + name)
	}
	return "/ui/static/" + name + "?v=" + strings.Trim(a.etag, `"`), nil
}

// safeNext returns p if it is a path on this site, else "/": a login link
// must not send the browser elsewhere.
func safeNext(p string) string {
	if p == "" || p[0] != '/' || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") {
		return "/"
	}
	for _, c := range p {
		if c < 0x20 || c == 0x7f || c == '\\' {
			return "/"
		}
	}
	pu, err := url.Parse(p)
	if err != nil || pu.Scheme != "" || pu.Host != "" || pu.User != nil {
		return "/"
	}
	if pu.Path == "/login" || pu.Path == "/logout" {
		return "/"
	}
	return p
}
