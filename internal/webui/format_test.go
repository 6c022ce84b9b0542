package webui

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

func TestFormatRate(t *testing.T) {
	tests := []struct {
		v    float64
		want string
	}{
		{0, "0%"},
		{1, "100.0%"},
		{0.5, "50.0%"},
		{0.0123, "1.23%"},
		{0.001, "0.100%"},
		{0.00077, "0.0770%"},
		{0.99, "99.0%"},
		{1e-8, "0.000001%"},
		{1e-9, "<0.000001%"},
	}
	for _, tt := range tests {
		if got := formatRate(tt.v); got != tt.want {
			t.Errorf("formatRate(%g) = %q, want %q", tt.v, got, tt.want)
		}
	}
}

func TestFormatSecondsAndCount(t *testing.T) {
	seconds := []struct {
		s    float64
		want string
	}{
		{0, "0s"}, {45, "45s"}, {60, "1m"}, {725, "12m 5s"}, {3600, "1h"}, {4320, "1h 12m"}, {86400, "1d"}, {3*86400 + 4*3600, "3d 4h"},
	}
	for _, tt := range seconds {
		if got := formatSeconds(tt.s); got != tt.want {
			t.Errorf("formatSeconds(%g) = %q, want %q", tt.s, got, tt.want)
		}
	}
	counts := []struct {
		n    any
		want string
	}{
		{0, "0"}, {999, "999"}, {1000, "1,000"}, {uint64(1234567), "1,234,567"}, {int64(-12345), "-12,345"},
	}
	for _, tt := range counts {
		if got := formatCount(tt.n); got != tt.want {
			t.Errorf("formatCount(%v) = %q, want %q", tt.n, got, tt.want)
		}
	}
}

func TestSafeNext(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", "/"},
		{"/", "/"},
		{"/routers", "/routers"},
		{"/migrations/m1?q=acme#partners", "/migrations/m1?q=acme#partners"},
		{"//evil.example/", "/"},
		{"/\\evil.example", "/"},
		{"https://evil.example/", "/"},
		{"javascript:alert(1)", "/"},
		{"routers", "/"},
		{"/login?token=x", "/"},
		{"/logout", "/"},
		{"/a\nb", "/"},
	}
	for _, tt := range tests {
		if got := safeNext(tt.in); got != tt.want {
			t.Errorf("safeNext(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestDiffJSON(t *testing.T) {
	tests := []struct {
		name        string
		left, right string
		paths       []string
	}{
		{"equal", `{"a":1,"b":[1,2]}`, `{"b":[1,2],"a":1}`, nil},
		{"kind changed", `[{"kind":"ticket","key":"1"}]`, `[{"kind":"schedule","key":"1"}]`, []string{"[0].kind"}},
		{"field missing", `{"fields":{"a":1,"b":2}}`, `{"fields":{"a":1}}`, []string{"fields.b"}},
		{"extra element", `[1]`, `[1,2]`, []string{"[1]"}},
		{"type differs", `{"a":{"x":1}}`, `{"a":[1]}`, []string{"a"}},
		{"number text differs", `{"n":1}`, `{"n":2}`, []string{"n"}},
		{"not json", `nope`, `{}`, []string{""}},
		{"empty side", ``, `[]`, []string{""}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := diffJSON(json.RawMessage(tt.left), json.RawMessage(tt.right))
			if !slices.Equal(d.Paths, tt.paths) {
				t.Errorf("paths = %q, want %q", d.Paths, tt.paths)
			}
		})
	}
	t.Run("marked lines", func(t *testing.T) {
		d := diffJSON(json.RawMessage(`[{"kind":"ticket","fields":{"s":"<b>"}}]`), json.RawMessage(`[{"kind":"schedule","fields":{"s":"<b>"}}]`))
		var changed []string
		for _, l := range d.Right {
			if l.Changed {
				changed = append(changed, pad(l.Indent)+l.Text)
			}
		}
		if want := []string{`    "kind": "schedule"`}; !slices.Equal(changed, want) {
			t.Errorf("changed lines = %q, want %q", changed, want)
		}
		var all []string
		for _, l := range d.Left {
			all = append(all, pad(l.Indent)+l.Text)
		}
		want := []string{"[", "  {", `    "fields": {`, `      "s": "<b>"`, "    },", `    "kind": "ticket"`, "  }", "]"}
		if !slices.Equal(all, want) {
			t.Errorf("left lines =\n%q\nwant\n%q", all, want)
		}
	})
}

func TestSessionsBoundedAndExpiring(t *testing.T) {
	now := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	ss := newSessions(2)
	tok := domain.Token{Name: "ops", Role: domain.RoleOperator, CreatedAt: now}
	a := ss.create(tok, now, time.Hour)
	b := ss.create(tok, now.Add(time.Minute), time.Hour)
	if a.id == b.id || a.csrf == b.csrf || len(a.id) < 40 {
		t.Fatalf("session ids or CSRF tokens are not fresh and long: %q %q", a.id, b.id)
	}
	ss.addFlash(a.id, flash{Kind: "ok", Text: "hi"})
	c := ss.create(tok, now.Add(2*time.Minute), time.Hour) // full: a, the oldest, goes
	if _, ok := ss.get(a.id, now.Add(3*time.Minute)); ok {
		t.Errorf("the session closest to expiry was not evicted when the table was full")
	}
	if f := ss.takeFlashes(a.id); f != nil {
		t.Errorf("an evicted session kept its messages: %v", f)
	}
	if _, ok := ss.get(c.id, now.Add(3*time.Minute)); !ok {
		t.Errorf("the new session is missing")
	}
	if _, ok := ss.get(b.id, now.Add(time.Minute+time.Hour)); ok {
		t.Errorf("a session is live at its expiry")
	}
	if n := ss.len(); n != 1 {
		t.Errorf("sessions held = %d, want 1: an expired session was not dropped on lookup", n)
	}
	if _, ok := ss.get("", now); ok {
		t.Errorf("an empty id found a session")
	}
}

func TestFormatReconcile(t *testing.T) {
	tests := []struct {
		name string
		p    *domain.ReconcilePolicy
		want string
	}{
		{"none", nil, "off"},
		{"all off", &domain.ReconcilePolicy{Window: time.Hour}, "off"},
		{"after revert", &domain.ReconcilePolicy{AfterRevert: true}, "after revert"},
		{"scheduled, window left at every", &domain.ReconcilePolicy{Every: 90 * time.Minute}, "every 1h 30m over 1h 30m"},
		{"both", &domain.ReconcilePolicy{AfterRevert: true, Every: time.Hour, Window: 2 * time.Hour}, "after revert; every 1h over 2h"},
		{"days", &domain.ReconcilePolicy{Every: 24 * time.Hour, Window: 31 * 24 * time.Hour}, "every 1d over 31d"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := formatReconcile(tt.p); got != tt.want {
				t.Errorf("formatReconcile(%+v) = %q, want %q", tt.p, got, tt.want)
			}
		})
	}
}
