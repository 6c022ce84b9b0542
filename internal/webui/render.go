package webui

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// base is what every page's template needs.
type base struct {
	User       *user
	CSRF       string
	Nav        string // the section of the navigation that is current
	Flashes    []flash
	Live       string // "" (no live updates), "version" or "routers": what the page follows
	LiveKey    string // the state the page was rendered from, in /ui/state.json's terms
	PollMillis int64
	Version    uint64
	// Stale is set while this replica cannot reach its shared store
	// (etcd), since StaleSince: the page shows the last state it had.
	Stale      bool
	StaleSince time.Time
	// PendingChanges counts the change requests waiting for approvals,
	// in every migration: the header's badge.
	PendingChanges int
}

// user is the signed-in token.
type user struct {
	Name       string
	Role       domain.Role
	CanOperate bool // may revert, resume and advance
}

// base builds the common page data; s is nil when there is no session.
// live names what the page follows for live updates.
func (u *UI) base(w http.ResponseWriter, r *http.Request, s *session, nav, live string) base {
	st := u.svc.State()
	b := base{Nav: nav, PollMillis: u.opts.PollInterval.Milliseconds(), Version: st.Version}
	b.StaleSince, b.Stale = u.svc.Stale()
	if s != nil {
		b.User = &user{Name: s.name, Role: s.role, CanOperate: s.role.Allows(domain.RoleOperator)}
		b.CSRF = s.csrf
		// A live update re-renders the page in the background: it must
		// not take the messages meant for the page the browser loads next.
		if r.Header.Get(liveHeader) == "" {
			b.Flashes = u.sessions.takeFlashes(s.id)
		}
		b.Live = live
		b.LiveKey = u.liveKeys(st)[live]
		b.PendingChanges = u.pendingChanges()
	}
	return b
}

// render executes a page template into a buffer first, so that a template
// error never leaves half a page.
func (u *UI) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := u.pages[name].ExecuteTemplate(&buf, "layout", data); err != nil {
		u.log.Error("ui render failed", "page", name, "path", r.URL.Path, "err", err)
		http.Error(w, "internal error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}

func (u *UI) funcs() template.FuncMap {
	return template.FuncMap{
		"asset": u.assetURL,
		"count": formatCount,
		"rate":  formatRate,
		"seconds": func(v any) string {
			switch x := v.(type) {
			case int:
				return formatSeconds(float64(x))
			case float64:
				return formatSeconds(x)
			}
			return fmt.Sprint(v)
		},
		"when":  formatTime,
		"iso":   func(t time.Time) string { return t.UTC().Format(time.RFC3339) },
		"ago":   func(t time.Time) string { return formatAgo(u.opts.Now().Sub(t)) },
		"until": func(t time.Time) string { return formatUntil(t.Sub(u.opts.Now())) },
		"check": checkLabel,
		"pad":   pad,
		"pathName": func(p string) string {
			if p == "" {
				return "(the whole value)"
			}
			return p
		},
		"plural": pluralize,
		"list":   func(v ...string) []string { return v },
		"int":    func(n uint64) int { return int(min(n, 1<<31)) },
		"dict": func(kv ...any) (map[string]any, error) {
			if len(kv)%2 != 0 {
				return nil, errors.New("dict needs key, value pairs")
			}
			m := make(map[string]any, len(kv)/2)
			for i := 0; i < len(kv); i += 2 {
				k, ok := kv[i].(string)
				if !ok {
					return nil, errors.New("dict keys are strings")
				}
				m[k] = kv[i+1]
			}
			return m, nil
		},
		// The text areas' maxlength is the API's limit on reasons.
		"maxReason": func() int { return domain.MaxReason },
		// A reconciliation's skew and settle, as Go writes durations; the
		// runner resolves nil to its default before a job is shown.
		"duration": func(d *wire.Duration) string {
			if d == nil {
				return "default"
			}
			return time.Duration(*d).String()
		},
	}
}

// formatCount writes n with thousands separators: 12,345.
func formatCount(n any) string {
	var s string
	switch v := n.(type) {
	case int:
		s = strconv.Itoa(v)
	case uint64:
		s = strconv.FormatUint(v, 10)
	case int64:
		s = strconv.FormatInt(v, 10)
	default:
		return fmt.Sprint(n)
	}
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}

// formatRate writes a ratio as a percentage with three significant digits,
// never rounding a small non-zero rate to 0%.
func formatRate(v float64) string {
	p := v * 100
	switch {
	case p == 0:
		return "0%"
	case p >= 10:
		return strconv.FormatFloat(p, 'f', 1, 64) + "%"
	case p >= 1:
		return strconv.FormatFloat(p, 'f', 2, 64) + "%"
	}
	decimals := int(math.Ceil(-math.Log10(p))) + 2
	if decimals > 6 {
		decimals = 6
	}
	s := strconv.FormatFloat(p, 'f', decimals, 64)
	if strings.Trim(s, "0.") == "" {
		return "<0.000001%"
	}
	return s + "%"
}

// formatSeconds writes a duration in seconds the way people read it:
// 45s, 12m 5s, 1h 12m, 3d 4h.
func formatSeconds(sec float64) string {
	d := time.Duration(sec) * time.Second
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return trimZero(fmt.Sprintf("%dm %ds", int(d.Minutes()), int(d.Seconds())%60))
	case d < 24*time.Hour:
		return trimZero(fmt.Sprintf("%dh %dm", int(d.Hours()), int(d.Minutes())%60))
	}
	return trimZero(fmt.Sprintf("%dd %dh", int(d.Hours())/24, int(d.Hours())%24))
}

// formatReconcile writes a migration's reconcile setting in one line:
// "after revert; every 1h over 2h", or "off" when it starts nothing.
func formatReconcile(p *domain.ReconcilePolicy) string {
	if p == nil || (!p.AfterRevert && p.Every == 0) {
		return "off"
	}
	var parts []string
	if p.AfterRevert {
		parts = append(parts, "after revert")
	}
	if p.Every > 0 {
		parts = append(parts, "every "+formatSeconds(p.Every.Seconds())+" over "+formatSeconds(p.EffectiveWindow().Seconds()))
	}
	return strings.Join(parts, "; ")
}

func trimZero(s string) string {
	if i := strings.LastIndexByte(s, ' '); i > 0 && s[i+1] == '0' && len(s)-i == 3 {
		return s[:i]
	}
	return s
}

// formatAgo writes how long ago something happened.
func formatAgo(d time.Duration) string {
	if d < time.Second {
		return "just now"
	}
	return formatSeconds(d.Seconds()) + " ago"
}

// formatTime writes a time in UTC, to the second.
func formatTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04:05") + " UTC"
}
