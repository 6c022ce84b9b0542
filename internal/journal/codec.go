package journal

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/switchbackhq/switchback/internal/rawjson"
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
	if rawjson.Storable(raw) {
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
		e.Payload = rawjson.Sentinel
	}
	if len(effects) > 0 {
		e.Effects = rawjson.Sentinel
	}
	v, err := json.Marshal(e)
	if err != nil {
		return nil, err
	}
	if payload == nil && len(effects) == 0 {
		return v, nil
	}
	// Payload comes before effects in the event, and the members before
	// either are strings, numbers, times and a map of strings: neither
	// key followed by the sentinel can occur before its own place.
	out := make([]byte, 0, len(v)+len(payload)+len(effects))
	rest := v
	if payload != nil {
		before, after, ok := rawjson.Cut(rest, payloadKey)
		if !ok {
			return json.Marshal(withRaw(e, payload, effects))
		}
		out = append(append(out, before...), payload...)
		rest = after
	}
	if len(effects) > 0 {
		before, after, ok := rawjson.Cut(rest, effectsKey)
		if !ok {
			return json.Marshal(withRaw(e, payload, effects))
		}
		out = append(append(out, before...), effects...)
		rest = after
	}
	return append(out, rest...), nil
}

func withRaw(e Event, payload, effects json.RawMessage) Event {
	e.Payload, e.Effects = payload, effects
	return e
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
	r.Effects = rawjson.Sentinel
	v, err := json.Marshal(r)
	if err != nil {
		return nil, err
	}
	before, after, ok := rawjson.Cut(v, effectsKey)
	if !ok {
		r.Effects = effects
		return json.Marshal(r)
	}
	out := make([]byte, 0, len(v)+len(effects))
	return append(append(append(out, before...), effects...), after...), nil
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
			rest = append(append(rest, v[at:s.start]...), rawjson.Sentinel...)
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
