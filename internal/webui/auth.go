package webui

import (
	"net/http"
	"net/url"
	"strings"

	"github.com/switchbackhq/switchback/internal/domain"
)

type loginPage struct {
	base
	Next   string
	Error  string
	Notice string
	TTL    string
}

// loginPage serves GET /login: the form, or with ?token=T the exchange of
// the token for a session.
func (u *UI) loginPage(w http.ResponseWriter, r *http.Request) {
	u.headers(w)
	q := r.URL.Query()
	next := safeNext(q.Get("next"))
	if tok := q.Get("token"); tok != "" {
		// A sign-in link followed from another site could sign the
		// browser in as somebody else's token (login CSRF); links printed
		// by serve are opened from a terminal or typed, which browsers
		// mark "none".
		if u.crossSite(r) {
			u.showLogin(w, r, http.StatusForbidden, next, "This sign-in link was opened from another site, so it was not used: paste the token below instead.", "")
			return
		}
		u.signIn(w, r, tok, next)
		return
	}
	notice := ""
	if q.Get("out") == "1" {
		notice = "You are signed out."
	}
	u.showLogin(w, r, http.StatusOK, next, "", notice)
}

// crossSite reports whether r was sent from another site: by
// Sec-Fetch-Site, or, from a browser that does not send it, by an Origin
// that is neither this host nor a trusted origin. A request with neither
// header was typed or opened from outside a browser page.
func (u *UI) crossSite(r *http.Request) bool {
	if site := r.Header.Get("Sec-Fetch-Site"); site != "" {
		return site == "cross-site"
	}
	origin := r.Header.Get("Origin")
	if origin == "" {
		return false
	}
	o, err := url.Parse(origin)
	if err != nil || o.Host == "" {
		return true // "null" and other opaque origins: a sandboxed or private page
	}
	if strings.EqualFold(o.Host, r.Host) {
		return false
	}
	for _, t := range u.opts.TrustedOrigins {
		if strings.EqualFold(strings.TrimSuffix(t, "/"), origin) {
			return false
		}
	}
	return true
}

// loginPost serves POST /login: the form with a pasted token.
func (u *UI) loginPost(w http.ResponseWriter, r *http.Request) {
	u.headers(w)
	if err := u.origins.Check(r); err != nil {
		u.showLogin(w, r, http.StatusForbidden, "/", "Cross-origin sign-in refused: use the form on this page.", "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		u.showLogin(w, r, http.StatusBadRequest, "/", "The form could not be read.", "")
		return
	}
	u.signIn(w, r, r.PostForm.Get("token"), safeNext(r.PostForm.Get("next")))
}

// signIn exchanges a token for a new session and sends the browser to next.
func (u *UI) signIn(w http.ResponseWriter, r *http.Request, secret, next string) {
	secret = strings.TrimSpace(secret)
	tok, err := u.svc.Authenticate(secret)
	if secret == "" || err != nil || !tok.Role.Allows(domain.RoleViewer) {
		u.showLogin(w, r, http.StatusUnauthorized, next, "That token is not valid: check it, or ask an admin whether it was revoked.", "")
		return
	}
	if c, err := r.Cookie(cookieName); err == nil {
		u.sessions.delete(c.Value) // a fresh id at every sign-in: no session fixation
	}
	s := u.sessions.create(tok, u.opts.Now(), u.opts.SessionTTL)
	u.setCookie(w, r, s)
	u.log.Info("ui sign-in", "token", tok.Name, "role", string(tok.Role))
	http.Redirect(w, r, next, http.StatusSeeOther)
}

func (u *UI) showLogin(w http.ResponseWriter, r *http.Request, status int, next, errMsg, notice string) {
	data := loginPage{Next: next, Error: errMsg, Notice: notice, TTL: formatSeconds(u.opts.SessionTTL.Seconds())}
	data.base = u.base(w, r, nil, "", "")
	u.render(w, r, status, "login", &data)
}

// logout serves POST /logout.
func (u *UI) logout(w http.ResponseWriter, r *http.Request, s session) (string, error) {
	u.sessions.delete(s.id)
	u.clearCookie(w, r)
	return "/login?out=1", nil
}
