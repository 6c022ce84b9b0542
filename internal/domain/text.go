package domain

import (
	"fmt"
	"strings"
	"unicode"
	"unicode/utf8"
)

// MaxReason is the most characters a change's reason may hold, through the
// API as through the UI.
const MaxReason = 1000

// CheckText returns an invalid_argument error naming field when s is not
// valid UTF-8, holds a control character (C0, DEL or C1: an escape sequence
// in a name can rewrite an operator's terminal), or is longer than max
// characters. Every free-text field goes through it or CheckReason.
func CheckText(field, s string, max int) error {
	return checkText(field, s, max, false)
}

// CheckReason returns an invalid_argument error when reason, the why of a
// change written to the audit log, is not text CheckText would accept, or
// is longer than MaxReason characters. Unlike names, a reason may span
// lines, as typed in the UI's text areas: it may hold line breaks (LF or
// CRLF, a CRLF counting as one character, as a browser counts it) and tabs.
func CheckReason(reason string) error {
	return checkText("reason", reason, MaxReason, true)
}

func checkText(field, s string, max int, multiline bool) error {
	if !utf8.ValidString(s) {
		return Errorf(CodeInvalid, "%s is not valid UTF-8 text", field)
	}
	n := 0
	for i, r := range s {
		switch {
		case multiline && (r == '\n' || r == '\t'):
		case multiline && r == '\r' && strings.HasPrefix(s[i+1:], "\n"):
			continue // counted with its LF
		case unicode.IsControl(r):
			allowed := "printable characters only"
			if multiline {
				allowed = "printable characters, line breaks and tabs only"
			}
			return Errorf(CodeInvalid, "%s holds the control character U+%04X at character %d: use %s", field, r, n+1, allowed)
		}
		n++
		if n > max {
			return Errorf(CodeInvalid, "%s is longer than %d characters", field, max)
		}
	}
	return nil
}

// SanitizeReason returns s made into a reason CheckReason accepts: invalid
// bytes and control characters escaped as in a Go string literal (\x1b),
// and the result cut to MaxReason characters. It is for reasons switchback
// writes itself from parts it does not control, such as the guard's
// evidence naming a router's event id: a revert must never be refused for
// its reason.
func SanitizeReason(s string) string {
	var b strings.Builder
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		piece := s[i : i+size]
		switch {
		case r == utf8.RuneError && size == 1:
			piece = fmt.Sprintf(`\x%02x`, s[i])
		case r == '\n' || r == '\t':
		case unicode.IsControl(r) && r < utf8.RuneSelf:
			piece = fmt.Sprintf(`\x%02x`, r)
		case unicode.IsControl(r):
			piece = fmt.Sprintf(`\u%04x`, r)
		}
		if n+utf8.RuneCountInString(piece) > MaxReason {
			break
		}
		b.WriteString(piece)
		n += utf8.RuneCountInString(piece)
		i += size
	}
	return b.String()
}
