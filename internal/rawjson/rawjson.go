// Package rawjson checks and splices raw JSON documents (a webhook's
// payload, a pipeline's effects) without encoding/json's scanner, which
// reads every byte of a json.RawMessage several times over: to check it,
// to find its end, and to compact it when it is written. The journal
// stores events with such documents inside, and a router sends and
// receives them on every pipeline call; most of them are JSON already in
// the form json.Marshal writes, which is quick to see.
//
// Every check here is an underestimate: true is certain, false means
// "not that I can tell quickly" (the document is not JSON, or is nested
// deeper than 1,000 levels), and the caller then asks encoding/json, which
// gives the verdict and the error.
package rawjson

import (
	"bytes"
	"encoding/json"
)

// maxDepth bounds the nesting the checks follow; deeper documents are
// left to encoding/json (which refuses beyond 10,000).
const maxDepth = 1000

// Storable reports whether raw is one JSON value that json.Marshal would
// write unchanged: no white space outside its strings, nothing it escapes
// for HTML (<, >, &, U+2028, U+2029).
func Storable(raw []byte) bool {
	i, ok := value(raw, 0, 0, true)
	return ok && i == len(raw)
}

// Valid reports whether raw is one JSON value, with white space around it
// and between its tokens as JSON allows, as json.Valid does.
func Valid(raw []byte) bool {
	i, ok := Value(raw, Space(raw, 0))
	return ok && Space(raw, i) == len(raw)
}

// Value returns the index just after the JSON value that starts at
// raw[i], checked as Valid checks; false if there is none.
func Value(raw []byte, i int) (int, bool) { return value(raw, i, 0, false) }

// Space returns the index of the first byte of b at or after i that is not
// JSON white space.
func Space(b []byte, i int) int {
	for i < len(b) && (b[i] == ' ' || b[i] == '\t' || b[i] == '\n' || b[i] == '\r') {
		i++
	}
	return i
}

// String returns the index just after the JSON string that starts at
// b[i] (its opening quote), and whether it holds an escape; false if it is
// not a JSON string.
func String(b []byte, i int) (end int, escaped, ok bool) {
	return str(b, i, false)
}

// space skips white space, which a storable document has none of.
func space(b []byte, i int, storable bool) int {
	if storable {
		return i
	}
	return Space(b, i)
}

func value(b []byte, i, depth int, storable bool) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; c {
	case '{', '[':
		if depth >= maxDepth {
			return i, false
		}
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		i = space(b, i+1, storable)
		if i < len(b) && b[i] == end {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return i, false
				}
				if i, _, ok = str(b, i, storable); !ok {
					return i, false
				}
				if i = space(b, i, storable); i >= len(b) || b[i] != ':' {
					return i, false
				}
				i = space(b, i+1, storable)
			}
			if i, ok = value(b, i, depth+1, storable); !ok {
				return i, false
			}
			if i = space(b, i, storable); i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ',':
				i = space(b, i+1, storable)
			case end:
				return i + 1, true
			default:
				return i, false
			}
		}
	case '"':
		i, _, ok := str(b, i, storable)
		return i, ok
	case 't':
		return literal(b, i, "true")
	case 'f':
		return literal(b, i, "false")
	case 'n':
		return literal(b, i, "null")
	}
	return number(b, i)
}

func literal(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// str returns the index after the string at b[i]; false for a string that
// is not JSON or, if storable, that json.Marshal would escape further.
// Bytes that are not UTF-8 are JSON to encoding/json, which takes them.
func str(b []byte, i int, storable bool) (int, bool, bool) {
	escaped := false
	plain := &plainValid
	if storable {
		plain = &plainStorable
	}
	for i++; i < len(b); {
		// Most of a document is long runs of plain bytes.
		for i < len(b) && plain[b[i]] {
			i++
		}
		if i >= len(b) {
			break
		}
		switch c := b[i]; {
		case c == '"':
			return i + 1, escaped, true
		case c < 0x20:
			return i, escaped, false
		case storable && (c == '<' || c == '>' || c == '&'):
			return i, escaped, false
		case storable && c == 0xE2 && i+2 < len(b) && b[i+1] == 0x80 && b[i+2]&^1 == 0xA8: // U+2028, U+2029
			return i, escaped, false
		case c == '\\':
			escaped = true
			if i+1 >= len(b) {
				return i, escaped, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return i, escaped, false
				}
				for _, h := range b[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return i, escaped, false
					}
				}
				i += 6
			default:
				return i, escaped, false
			}
		default:
			i++
		}
	}
	return i, escaped, false
}

// plainValid and plainStorable are the bytes a string may hold as they
// are, in a valid and in a storable document: not a quote, a backslash
// or a control character, nor, in a storable one, a byte json.Marshal
// escapes for HTML or the first byte of U+2028 and U+2029.
var plainValid, plainStorable = plainBytes(""), plainBytes("<>&\xE2")

func plainBytes(also string) (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	for _, c := range []byte(also) {
		t[c] = false
	}
	return t
}

// number returns the index after the number at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func number(b []byte, i int) (int, bool) {
	digits := func(i int) (int, bool) {
		start := i
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i, i > start
	}
	if i < len(b) && b[i] == '-' {
		i++
	}
	switch {
	case i >= len(b):
		return i, false
	case b[i] == '0':
		i++
	case '1' <= b[i] && b[i] <= '9':
		i, _ = digits(i)
	default:
		return i, false
	}
	var ok bool
	if i < len(b) && b[i] == '.' {
		if i, ok = digits(i + 1); !ok {
			return i, false
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i, ok = digits(i); !ok {
			return i, false
		}
	}
	return i, true
}

// Sentinel stands for a raw document while the object around it is
// encoded by json.Marshal, so that the document is not scanned: a number,
// so that a key followed by it cannot occur inside a string (a quote
// within a string is escaped). Cut finds it again.
var Sentinel = json.RawMessage("0")

// Cut finds in v, an object json.Marshal encoded with Sentinel as the
// value of the member key (its quoted name and colon, `"payload":`), the
// first such member, and returns what comes before the sentinel and what
// comes after it; false if there is none. The raw document goes between.
// A member with that name and value encoded earlier in v (within a
// nested object) would be found first: keep such members after it.
func Cut(v, key []byte) (before, after []byte, ok bool) {
	i := bytes.Index(v, key)
	if i < 0 {
		return nil, nil, false
	}
	end := i + len(key) + len(Sentinel)
	if end >= len(v) || !bytes.Equal(v[i+len(key):end], Sentinel) || (v[end] != ',' && v[end] != '}') {
		return nil, nil, false
	}
	return v[:i+len(key)], v[end:], true
}
