package console

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"
)

// TerminalSafe returns s ready to print to a terminal: unchanged when it is
// valid UTF-8 of printable characters, else quoted as a Go string literal,
// so that control characters (an escape sequence can clear the screen or
// rewrite what an operator reads), tabs that would break a table, Unicode
// format characters that reorder text, and invalid bytes show as escapes.
// A string that begins with a quote is quoted too, so that a quoted field
// always means escapes.
func TerminalSafe(s string) string {
	if !utf8.ValidString(s) || strings.HasPrefix(s, `"`) {
		return strconv.Quote(s)
	}
	for _, r := range s {
		if !strconv.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

// JSON prints v as indented JSON; it returns the writer's error.
func JSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// TerminalSafeJSON prints v as JSON does, with the characters
// encoding/json leaves raw that can still act on a terminal (DEL, C1
// controls, Unicode format characters) written as \u escapes: the same
// JSON to a program, inert on a screen.
func TerminalSafeJSON(w io.Writer, v any) error {
	var b bytes.Buffer
	if err := JSON(&b, v); err != nil {
		return err
	}
	var out bytes.Buffer
	for _, r := range b.String() { // encoding/json wrote valid UTF-8
		if r == '\n' || (!unicode.IsControl(r) && !unicode.Is(unicode.Cf, r)) {
			out.WriteRune(r)
			continue
		}
		if r1, r2 := utf16.EncodeRune(r); r1 != utf8.RuneError {
			fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
			continue
		}
		fmt.Fprintf(&out, `\u%04x`, r)
	}
	_, err := w.Write(out.Bytes())
	return err
}
