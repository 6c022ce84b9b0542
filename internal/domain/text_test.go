package domain

import (
	"strings"
	"testing"
)

func TestCheckText(t *testing.T) {
	tests := []struct {
		name    string
		s       string
		max     int
		wantErr string // substring of the message; "" for no error
	}{
		{"plain", "Acme Corp", 200, ""},
		{"empty", "", 200, ""},
		{"accents and scripts", "Café Ünïcødé 株式会社", 200, ""},
		{"emoji", "ops 🚀", 200, ""},
		{"max characters, more bytes", strings.Repeat("é", 10), 10, ""},
		{"one character over", strings.Repeat("é", 11), 10, "longer than 10 characters"},
		{"escape sequence", "a\x1b[2Jb", 200, "U+001B at character 2"},
		{"NUL", "a\x00", 200, "U+0000"},
		{"DEL", "a\x7f", 200, "U+007F"},
		{"C1 CSI", "a\u009b2J", 200, "U+009B"},
		{"newline", "a\nb", 200, "U+000A"},
		{"tab", "a\tb", 200, "U+0009"},
		{"carriage return", "approved\rdenied", 200, "U+000D"},
		{"invalid byte", "caf\xe9", 200, "not valid UTF-8"},
		{"truncated sequence", "\xe2\x82", 200, "not valid UTF-8"},
		{"encoded surrogate", "\xed\xa0\x80", 200, "not valid UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckText("partner name", tt.s, tt.max)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckText(%q) = %v, want nil", tt.s, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("CheckText(%q) = nil, want an error mentioning %q", tt.s, tt.wantErr)
			}
			if got, want := ErrorCode(err), CodeInvalid; got != want {
				t.Errorf("CheckText(%q) code = %q, want %q", tt.s, got, want)
			}
			msg := err.Error()
			if !strings.Contains(msg, tt.wantErr) || !strings.HasPrefix(msg, "partner name ") {
				t.Errorf("CheckText(%q) = %q, want it to name the field and mention %q", tt.s, msg, tt.wantErr)
			}
		})
	}
}

func TestCheckReason(t *testing.T) {
	tests := []struct {
		name   string
		reason string
		ok     bool
	}{
		{"empty", "", true},
		{"one line", "type_mismatch on tickets", true},
		{"lines typed in a text area", "first line\r\nsecond line\nthird\twith a tab", true},
		{"MaxReason characters", strings.Repeat("é", MaxReason), true},
		{"MaxReason characters in CRLF lines", strings.Repeat("abcd\r\n", MaxReason/5), true},
		{"one character over", strings.Repeat("a", MaxReason+1), false},
		{"escape sequence that clears a terminal", "ok\x1b[2J\x1b[H", false},
		{"bare carriage return", "approved\rdenied", false},
		{"CR at the end", "approved\r", false},
		{"NUL", "a\x00b", false},
		{"C1 control", "a\u0085b", false},
		{"invalid UTF-8", "a\xffb", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckReason(tt.reason)
			if got := err == nil; got != tt.ok {
				t.Fatalf("CheckReason(%q) = %v, want ok=%v", tt.reason, err, tt.ok)
			}
			if err != nil {
				if got, want := ErrorCode(err), CodeInvalid; got != want {
					t.Errorf("code = %q, want %q", got, want)
				}
				if !strings.Contains(err.Error(), "reason") {
					t.Errorf("CheckReason(%q) = %q, want it to name the reason", tt.reason, err)
				}
			}
		})
	}
}

func TestSanitizeReason(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"clean text unchanged", "zero-tolerance class missing: sample event evt-1", "zero-tolerance class missing: sample event evt-1"},
		{"lines and tabs kept", "a\nb\tc", "a\nb\tc"},
		{"C0 escaped", "evt\x1b[2J", `evt\x1b[2J`},
		{"bare CR escaped", "a\rb", `a\x0db`},
		{"C1 escaped as a rune", "evt\u009b", `evt\u009b`},
		{"invalid byte escaped", "evt\xff", `evt\xff`},
		{"non-ASCII kept", "Café ✓", "Café ✓"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := SanitizeReason(tt.in)
			if got != tt.want {
				t.Errorf("SanitizeReason(%q) = %q, want %q", tt.in, got, tt.want)
			}
			if err := CheckReason(got); err != nil {
				t.Errorf("CheckReason(SanitizeReason(%q)) = %v, want nil", tt.in, err)
			}
		})
	}
	t.Run("long evidence is cut to MaxReason", func(t *testing.T) {
		in := "sample event " + strings.Repeat("\x1b", 2*MaxReason)
		got := SanitizeReason(in)
		if err := CheckReason(got); err != nil {
			t.Fatalf("CheckReason(SanitizeReason(long)) = %v, want nil", err)
		}
		rest, kept := strings.CutPrefix(got, "sample event ")
		if !kept || rest == "" || strings.ReplaceAll(rest, `\x1b`, "") != "" {
			t.Errorf("SanitizeReason(long) = %q, want the start kept and whole escapes only", got)
		}
	})
}
