package journal

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

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

// decodeEvent is json.Unmarshal(v, &e) for a stored event. A record as
// encodeEvent writes it is read by quickEvent; otherwise the top-level
// payload and effects are cut out (as copies) and the rest is decoded by
// encoding/json. Anything it does not recognize is left to
// json.Unmarshal whole.
func decodeEvent(v []byte) (Event, error) {
	if e, ok := quickEvent(v); ok {
		return e, nil
	}
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
	for i++; i < len(v); {
		// Most of a payload is long strings: find the next quote at
		// once, and see whether an odd run of backslashes escapes it.
		q := bytes.IndexByte(v[i:], '"')
		if q < 0 {
			return -1
		}
		i += q
		n := 0
		for n < q && v[i-1-n] == '\\' {
			n++
		}
		if n%2 == 0 {
			return i + 1
		}
		i++
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

// quickEvent is decodeEvent for a record as json.Marshal writes an Event:
// an object of the Event's members, each named as its tag spells it and
// at most once, each value of its field's JSON type or null. It reads
// the members itself, where encoding/json would find every field by
// reflection and parse every number and time through its scanner. The
// payload and effects are copied as they are, unchecked, as decodeCut
// copies them. False, for anything else (a name in another case or
// unknown, a value of another type), leaves the record to encoding/json,
// which gives the same event or the error.
func quickEvent(v []byte) (Event, bool) {
	var e Event
	i := rawjson.Space(v, 0)
	if i >= len(v) || v[i] != '{' {
		return e, false
	}
	var seen uint32 // a bit per member: a name twice is left to encoding/json
	i = rawjson.Space(v, i+1)
	if i < len(v) && v[i] == '}' {
		return e, rawjson.Space(v, i+1) == len(v)
	}
	for {
		if i >= len(v) || v[i] != '"' {
			return e, false
		}
		end, escaped, ok := rawjson.String(v, i)
		if !ok || escaped {
			return e, false
		}
		name := v[i+1 : end-1]
		if i = rawjson.Space(v, end); i >= len(v) || v[i] != ':' {
			return e, false
		}
		start := rawjson.Space(v, i+1)
		m, ok := eventMembers[string(name)]
		if !ok || seen&(1<<m) != 0 {
			return e, false
		}
		seen |= 1 << m
		if m == memberPayload || m == memberEffects {
			i = skipValue(v, start)
			if i < 0 {
				return e, false
			}
			raw := json.RawMessage(bytes.Clone(v[start:i]))
			if m == memberPayload {
				e.Payload = raw
			} else {
				e.Effects = raw
			}
		} else {
			if i, ok = rawjson.Value(v, start); !ok || !e.set(m, v[start:i]) {
				return e, false
			}
		}
		if i = rawjson.Space(v, i); i >= len(v) {
			return e, false
		}
		switch v[i] {
		case ',':
			i = rawjson.Space(v, i+1)
		case '}':
			return e, rawjson.Space(v, i+1) == len(v)
		default:
			return e, false
		}
	}
}

// The members of a stored event, as quickEvent reads them.
const (
	memberSeq = iota
	memberID
	memberPartner
	memberPSA
	memberType
	memberSourceType
	memberAction
	memberEntityID
	memberDeliveryID
	memberReceivedAt
	memberEntityUpdatedAt
	memberHeaders
	memberPayload
	memberState
	memberAttempts
	memberPipeline
	memberSnapshotVersion
	memberEffects
	memberLastError
	memberLastStatus
	memberDoneAt
	memberDuplicates
	memberShadow
	memberComparison
	memberReplays
	memberBackfill
)

// eventMembers are Event's JSON names; TestQuickEventKnowsEveryMember
// holds them to its tags.
var eventMembers = map[string]int{
	"seq": memberSeq, "id": memberID, "partner": memberPartner, "psa": memberPSA, "type": memberType,
	"sourceType": memberSourceType, "action": memberAction, "entityId": memberEntityID, "deliveryId": memberDeliveryID,
	"receivedAt": memberReceivedAt, "entityUpdatedAt": memberEntityUpdatedAt, "headers": memberHeaders, "payload": memberPayload,
	"state": memberState, "attempts": memberAttempts, "pipeline": memberPipeline, "snapshotVersion": memberSnapshotVersion,
	"effects": memberEffects, "lastError": memberLastError, "lastStatus": memberLastStatus, "doneAt": memberDoneAt,
	"duplicates": memberDuplicates, "shadow": memberShadow, "comparison": memberComparison, "replays": memberReplays,
	"backfill": memberBackfill,
}

// set sets member m of e from its JSON value, as encoding/json would;
// false if encoding/json would refuse it. null leaves a field as it is,
// as encoding/json does.
func (e *Event) set(m int, val []byte) bool {
	if string(val) == "null" {
		// encoding/json: a map or a slice set to nil, the rest unchanged;
		// both are nil here already.
		return true
	}
	switch m {
	case memberSeq:
		return setUint(&e.Seq, val)
	case memberSnapshotVersion:
		return setUint(&e.SnapshotVersion, val)
	case memberAttempts:
		return setInt(&e.Attempts, val)
	case memberLastStatus:
		return setInt(&e.LastStatus, val)
	case memberDuplicates:
		return setInt(&e.Duplicates, val)
	case memberReceivedAt:
		return val[0] == '"' && e.ReceivedAt.UnmarshalJSON(val) == nil
	case memberEntityUpdatedAt:
		return val[0] == '"' && e.EntityUpdatedAt.UnmarshalJSON(val) == nil
	case memberDoneAt:
		return val[0] == '"' && e.DoneAt.UnmarshalJSON(val) == nil
	case memberHeaders:
		return val[0] == '{' && json.Unmarshal(val, &e.Headers) == nil
	case memberReplays:
		return val[0] == '[' && json.Unmarshal(val, &e.Replays) == nil
	case memberBackfill:
		switch string(val) {
		case "true":
			e.Backfill = true
		case "false":
			e.Backfill = false
		default:
			return false
		}
		return true
	case memberState:
		var s string
		if !setString(&s, val) {
			return false
		}
		e.State = State(s)
		return true
	}
	if dst := e.stringField(m); dst != nil {
		return setString(dst, val)
	}
	return false
}

func (e *Event) stringField(m int) *string {
	switch m {
	case memberID:
		return &e.ID
	case memberPartner:
		return &e.Partner
	case memberPSA:
		return &e.PSA
	case memberType:
		return &e.Type
	case memberSourceType:
		return &e.SourceType
	case memberAction:
		return &e.Action
	case memberEntityID:
		return &e.EntityID
	case memberDeliveryID:
		return &e.DeliveryID
	case memberPipeline:
		return &e.Pipeline
	case memberLastError:
		return &e.LastError
	case memberShadow:
		return &e.Shadow
	case memberComparison:
		return &e.Comparison
	}
	return nil
}

// setString sets *dst from a JSON string (checked by rawjson.Value): its
// bytes if plain, else as encoding/json unescapes it (and replaces bytes
// that are not UTF-8).
func setString(dst *string, val []byte) bool {
	if val[0] != '"' {
		return false
	}
	s := val[1 : len(val)-1]
	if bytes.IndexByte(s, '\\') < 0 && utf8.Valid(s) {
		*dst = string(s)
		return true
	}
	return json.Unmarshal(val, dst) == nil
}

// setInt and setUint set *dst from a JSON number (checked by
// rawjson.Value) as encoding/json does: an integer in range, nothing else.
func setInt(dst *int, val []byte) bool {
	n, err := strconv.ParseInt(string(val), 10, 0)
	if err != nil {
		return false
	}
	*dst = int(n)
	return true
}

func setUint(dst *uint64, val []byte) bool {
	n, err := strconv.ParseUint(string(val), 10, 64)
	if err != nil {
		return false
	}
	*dst = n
	return true
}
