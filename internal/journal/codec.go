package journal

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// An event is stored as its JSON (encoding/json's, field for field), and
// most of it is the two raw documents it carries: the payload (~1-2 KiB)
// and the primary's effects. Recording an outcome reads the event and
// writes it back, and encoding/json scans every byte of a raw document
// twice to read it and once more to write it (it validates and compacts
// a json.RawMessage every time). Each raw document is compacted once,
// where it enters the journal (Append, Complete, CompleteLater: in the
// caller's goroutine, not the committer's); from then on, encodeEvent
// splices it into the event's JSON as it is, and decodeEvent cuts it out
// before encoding/json reads the rest. The bytes stored are the same as
// json.Marshal's.

// sentinel stands for a raw document while the rest of the event is
// encoded: a number, so the key followed by it cannot occur inside a
// string (a quote within a string is escaped).
var sentinel = json.RawMessage("0")

var (
	payloadKey = []byte(`"payload":`)
	effectsKey = []byte(`"effects":`)
)

// compactRaw returns raw compacted and escaped as json.Marshal would store it, or an
// error if it is not JSON. Nil stays nil.
func compactRaw(raw json.RawMessage) (json.RawMessage, error) {
	if raw == nil {
		return nil, nil
	}
	if storable(raw) {
		return bytes.Clone(raw), nil
	}
	var b bytes.Buffer
	b.Grow(len(raw))
	if err := json.Compact(&b, raw); err != nil {
		return nil, fmt.Errorf("json: error calling MarshalJSON for type json.RawMessage: %w", err)
	}
	if bytes.ContainsAny(b.Bytes(), "<>&\u2028\u2029") {
		// json.Marshal escapes these for HTML.
		var e bytes.Buffer
		json.HTMLEscape(&e, b.Bytes())
		return e.Bytes(), nil
	}
	return b.Bytes(), nil
}

// encodeEvent is json.Marshal(e) for an event whose Payload and Effects
// are compact JSON (compactRaw's, or decodeEvent's from stored bytes).
func encodeEvent(e Event) ([]byte, error) {
	payload, effects := e.Payload, e.Effects
	if len(payload) == 0 {
		payload = nil // nil or empty: json.Marshal's own answer
	} else {
		e.Payload = sentinel
	}
	if len(effects) > 0 {
		e.Effects = sentinel
	}
	v, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	if payload == nil && effects == nil {
		return v, nil
	}
	out := make([]byte, 0, len(v)+len(payload)+len(effects))
	rest := v
	if payload != nil {
		i := keyAt(rest, payloadKey)
		if i < 0 {
			return json.Marshal(withRaw(e, payload, effects))
		}
		out = append(append(out, rest[:i+len(payloadKey)]...), payload...)
		rest = rest[i+len(payloadKey)+len(sentinel):]
	}
	if len(effects) > 0 {
		i := keyAt(rest, effectsKey)
		if i < 0 {
			return json.Marshal(withRaw(e, payload, effects))
		}
		out = append(append(out, rest[:i+len(effectsKey)]...), effects...)
		rest = rest[i+len(effectsKey)+len(sentinel):]
	}
	return append(out, rest...), nil
}

func withRaw(e Event, payload, effects json.RawMessage) Event {
	e.Payload, e.Effects = payload, effects
	return e
}

// keyAt is the index in v of key followed by the sentinel and the end of
// a member, or -1.
func keyAt(v, key []byte) int {
	i := bytes.Index(v, key)
	if i < 0 {
		return -1
	}
	end := i + len(key) + len(sentinel)
	if end >= len(v) || !bytes.Equal(v[i+len(key):end], sentinel) || (v[end] != ',' && v[end] != '}') {
		return -1
	}
	return i
}

// decodeEvent is json.Unmarshal(v, &e) for a stored event: the top-level
// payload and effects are cut out (as copies) and the rest is decoded by
// encoding/json. Anything it does not recognize is left to
// json.Unmarshal whole.
func decodeEvent(v []byte) (Event, error) {
	var e Event
	raw, err := decodeCut(v, &e)
	if err != nil {
		return Event{}, err
	}
	if raw[0] != nil {
		e.Payload = raw[0]
	}
	if raw[1] != nil {
		e.Effects = raw[1]
	}
	return e, nil
}

// encodeReplay is json.Marshal(r) for a replay whose Effects are compact
// JSON (compactRaw's), spliced in as encodeEvent splices an event's.
func encodeReplay(r Replay) ([]byte, error) {
	effects := r.Effects
	if len(effects) == 0 {
		return json.Marshal(r)
	}
	r.Effects = sentinel
	v, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	i := keyAt(v, effectsKey)
	if i < 0 {
		r.Effects = effects
		return json.Marshal(r)
	}
	out := make([]byte, 0, len(v)+len(effects))
	out = append(append(out, v[:i+len(effectsKey)]...), effects...)
	return append(out, v[i+len(effectsKey)+len(sentinel):]...), nil
}

// decodeReplay is json.Unmarshal(v, &r) for a stored replay, its effects
// cut out as decodeEvent cuts an event's.
func decodeReplay(v []byte) (Replay, error) {
	var r Replay
	raw, err := decodeCut(v, &r)
	if err != nil {
		return Replay{}, err
	}
	if raw[1] != nil {
		r.Effects = raw[1]
	}
	return r, nil
}

// decodeCut decodes the object v into dst with json.Unmarshal, less the
// values of its top-level "payload" and "effects" members, which it
// returns as copies (nil for a member absent): encoding/json does not
// scan them. An object whose top level rawSpans does not follow is
// decoded whole, and nothing is returned beside it.
func decodeCut(v []byte, dst any) ([2]json.RawMessage, error) {
	var raw [2]json.RawMessage
	spans, ok := rawSpans(v)
	if !ok {
		return raw, json.Unmarshal(v, dst)
	}
	rest := make([]byte, 0, len(v))
	at := 0
	for _, s := range spans {
		if s.end > s.start {
			rest = append(append(rest, v[at:s.start]...), sentinel...)
			at = s.end
		}
	}
	rest = append(rest, v[at:]...)
	if err := json.Unmarshal(rest, dst); err != nil {
		return raw, err
	}
	for i, s := range spans {
		if s.end > s.start {
			raw[i] = bytes.Clone(v[s.start:s.end])
		}
	}
	return raw, nil
}

type span struct{ start, end int }

// rawSpans finds the values of the top-level "payload" and "effects"
// members of the object v, in that order in v (as json.Marshal writes
// them); false if v is not such an object as far as a quick walk of its
// top level sees, or has either member twice.
func rawSpans(v []byte) ([2]span, bool) {
	var out [2]span
	i := skipSpace(v, 0)
	if i >= len(v) || v[i] != '{' {
		return out, false
	}
	i++
	for {
		i = skipSpace(v, i)
		if i >= len(v) {
			return out, false
		}
		if v[i] == '}' {
			return out, skipSpace(v, i+1) == len(v) && (out[1].end == 0 || out[1].start > out[0].end)
		}
		if v[i] == ',' {
			i = skipSpace(v, i+1)
		}
		if i >= len(v) || v[i] != '"' {
			return out, false
		}
		k := i
		i = skipString(v, i)
		if i < 0 {
			return out, false
		}
		key := v[k:i]
		i = skipSpace(v, i)
		if i >= len(v) || v[i] != ':' {
			return out, false
		}
		i = skipSpace(v, i+1)
		start := i
		i = skipValue(v, i)
		if i < 0 {
			return out, false
		}
		var slot *span
		switch string(key) {
		case `"payload"`:
			slot = &out[0]
		case `"effects"`:
			slot = &out[1]
		}
		if slot != nil {
			if slot.end != 0 {
				return out, false
			}
			*slot = span{start, i}
		}
	}
}

func skipSpace(v []byte, i int) int {
	for i < len(v) && (v[i] == ' ' || v[i] == '\t' || v[i] == '\n' || v[i] == '\r') {
		i++
	}
	return i
}

// skipString returns the index after the string starting at v[i], or -1.
func skipString(v []byte, i int) int {
	for i++; i < len(v); i++ {
		switch v[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return -1
}

// skipValue returns the index after the value starting at v[i], or -1:
// strings and nesting are followed, literals and numbers are not checked
// (encoding/json checks the rest of the event; the raw documents were
// checked when they entered the journal).
func skipValue(v []byte, i int) int {
	if i >= len(v) {
		return -1
	}
	switch v[i] {
	case '"':
		return skipString(v, i)
	case '{', '[':
		depth := 0
		for ; i < len(v); i++ {
			switch v[i] {
			case '"':
				j := skipString(v, i)
				if j < 0 {
					return -1
				}
				i = j - 1
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
		}
		return -1
	}
	start := i
	for i < len(v) && v[i] != ',' && v[i] != '}' && v[i] != ']' && v[i] != ' ' && v[i] != '\t' && v[i] != '\n' && v[i] != '\r' {
		i++
	}
	if i == start {
		return -1
	}
	return i
}

// maxFastDepth bounds the nesting storable follows; deeper documents take
// encoding/json's path (which refuses beyond 10,000).
const maxFastDepth = 1000

// storable reports whether raw is one JSON value that json.Marshal would
// store unchanged: no whitespace outside its strings, nothing it escapes
// for HTML. Most payloads and effects are; checking that is several times
// quicker than encoding/json's scanner. False sends raw to json.Compact,
// which compacts it or says why it is not JSON.
func storable(raw []byte) bool {
	i, ok := fastValue(raw, 0, 0)
	return ok && i == len(raw)
}

func fastValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return i, false
	}
	switch c := b[i]; c {
	case '{', '[':
		if depth >= maxFastDepth {
			return i, false
		}
		end := byte('}')
		if c == '[' {
			end = ']'
		}
		i++
		if i < len(b) && b[i] == end {
			return i + 1, true
		}
		for {
			var ok bool
			if c == '{' {
				if i >= len(b) || b[i] != '"' {
					return i, false
				}
				if i, ok = fastString(b, i); !ok || i >= len(b) || b[i] != ':' {
					return i, false
				}
				i++
			}
			if i, ok = fastValue(b, i, depth+1); !ok || i >= len(b) {
				return i, false
			}
			switch b[i] {
			case ',':
				i++
			case end:
				return i + 1, true
			default:
				return i, false
			}
		}
	case '"':
		return fastString(b, i)
	case 't':
		return fastLiteral(b, i, "true")
	case 'f':
		return fastLiteral(b, i, "false")
	case 'n':
		return fastLiteral(b, i, "null")
	}
	return fastNumber(b, i)
}

func fastLiteral(b []byte, i int, lit string) (int, bool) {
	if len(b)-i < len(lit) || string(b[i:i+len(lit)]) != lit {
		return i, false
	}
	return i + len(lit), true
}

// fastString returns the index after the string at b[i]; false for a
// string that is not JSON or that json.Marshal would escape further.
func fastString(b []byte, i int) (int, bool) {
	for i++; i < len(b); {
		switch c := b[i]; {
		case c == '"':
			return i + 1, true
		case c < 0x20, c == '<', c == '>', c == '&':
			return i, false
		case c == 0xE2 && i+2 < len(b) && b[i+1] == 0x80 && b[i+2]&^1 == 0xA8: // U+2028, U+2029
			return i, false
		case c == '\\':
			if i+1 >= len(b) {
				return i, false
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) {
					return i, false
				}
				for _, h := range b[i+2 : i+6] {
					if !('0' <= h && h <= '9' || 'a' <= h && h <= 'f' || 'A' <= h && h <= 'F') {
						return i, false
					}
				}
				i += 6
			default:
				return i, false
			}
		default:
			i++
		}
	}
	return i, false
}

// fastNumber returns the index after the number at b[i]:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func fastNumber(b []byte, i int) (int, bool) {
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
