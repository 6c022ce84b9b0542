package console

import "testing"

func TestTerminalSafe(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"plain", "type_mismatch on tickets", "type_mismatch on tickets"},
		{"empty", "", ""},
		{"non-ASCII printable", "Café ✓ 切り戻し", "Café ✓ 切り戻し"},
		{"escape sequence", "ok\x1b[2J\x1b[H", `"ok\x1b[2J\x1b[H"`},
		{"newline", "two\nlines", `"two\nlines"`},
		{"tab", "a\tb", `"a\tb"`},
		{"carriage return", "approved\rdenied", `"approved\rdenied"`},
		{"C1 CSI", "a\u009b2J", `"a\u009b2J"`},
		{"right-to-left override", "abc\u202edef", `"abc\u202edef"`},
		{"invalid byte", "caf\xe9", `"caf\xe9"`},
		{"starts with a quote", `"quoted"`, `"\"quoted\""`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TerminalSafe(tt.in); got != tt.want {
				t.Errorf("TerminalSafe(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}
