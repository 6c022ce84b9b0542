package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Entries written before reasons were checked, or by a control service
// that does not check them, must not act on the operator's terminal.
func TestAuditEscapesControlCharacters(t *testing.T) {
	entries := []domain.AuditEntry{
		{Seq: 1, At: time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC), Actor: "ops", Action: "migration.revert", Target: "migration/tickets",
			Reason: "all good\x1b[2J\x1b[H\x1b]0;owned\x07", Before: json.RawMessage("null"), After: json.RawMessage("null")},
		{Seq: 2, At: time.Date(2026, 3, 1, 12, 1, 0, 0, time.UTC), Actor: "ops\x1b[31m", Action: "stage.set\r", Target: "partner/acme\u009b2J",
			Reason: "line one\nline two\tand \u202eright-to-left", Before: json.RawMessage("null"), After: json.RawMessage("null")},
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/audit" {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(entries)
	}))
	defer srv.Close()

	audit := func(t *testing.T, args ...string) string {
		t.Helper()
		var out, errOut bytes.Buffer
		env := map[string]string{"SWITCHBACK_TOKEN": "sbk_test", "SWITCHBACK_SERVER": srv.URL}
		if err := run(context.Background(), append([]string{"audit"}, args...), func(k string) string { return env[k] }, &out, &errOut); err != nil {
			t.Fatalf("audit %v: %v (%s)", args, err, errOut.String())
		}
		got := out.String()
		if !utf8.ValidString(got) {
			t.Fatalf("audit %v printed bytes that are not UTF-8: %q", args, got)
		}
		for i, r := range got {
			if r != '\n' && (unicode.IsControl(r) || unicode.Is(unicode.Cf, r)) {
				t.Fatalf("audit %v printed the control character %U at byte %d: %q", args, r, i, got)
			}
		}
		return got
	}

	t.Run("--json", func(t *testing.T) {
		var back []domain.AuditEntry
		if err := json.Unmarshal([]byte(audit(t, "--json")), &back); err != nil {
			t.Fatalf("audit --json does not decode: %v", err)
		}
		for i := range entries {
			if back[i].Reason != entries[i].Reason || back[i].Actor != entries[i].Actor || back[i].Target != entries[i].Target {
				t.Errorf("audit --json entry %d: got %q by %q on %q, want %q by %q on %q", i,
					back[i].Reason, back[i].Actor, back[i].Target, entries[i].Reason, entries[i].Actor, entries[i].Target)
			}
		}
	})

	got := audit(t)
	for _, want := range []string{`"all good\x1b[2J\x1b[H\x1b]0;owned\a"`, `"ops\x1b[31m"`, `"stage.set\r"`, `"partner/acme\u009b2J"`,
		`"line one\nline two\tand \u202eright-to-left"`, "migration.revert", "migration/tickets"} {
		if !strings.Contains(got, want) {
			t.Errorf("audit output lacks %s:\n%s", want, got)
		}
	}
	if lines := strings.Count(got, "\n"); lines != 3 {
		t.Errorf("audit printed %d lines, want 3 (a header and one per entry):\n%s", lines, got)
	}
}
