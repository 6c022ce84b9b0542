// Package pipeline calls a webhook pipeline over HTTP. The contract every
// pipeline implements is written here, in Event and Response: POST the
// Event as JSON (Content-Type: application/json) with the headers
// Idempotency-Key (the event id, so that a retry or a replay is applied
// once) and Switchback-Mode (apply or dry-run); a 2xx answer is a Response,
// {"effects": [...]}, the effects the pipeline applied (apply) or would
// apply (dry-run). Anything else is an Error.
package pipelineclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/rawjson"
)

// Mode says whether the pipeline applies the event or only says what it
// would do.
type Mode string

const (
	Apply  Mode = "apply"
	DryRun Mode = "dry-run"
)

// Event is the body sent to a pipeline.
type Event struct {
	ID         string          `json:"id"`
	Partner    string          `json:"partner"`
	PSA        string          `json:"psa"`
	Type       string          `json:"type"`
	Action     string          `json:"action"`
	EntityID   string          `json:"entityId"`
	ReceivedAt time.Time       `json:"receivedAt"`
	Payload    json.RawMessage `json:"payload"`
	// Backfill marks an event a reconciliation made from the PSA's change
	// API: its payload is the entity as that API returns it, not a
	// webhook's body. Its ID is derived from the entity and the time of
	// its change, so that a change backfilled twice is applied once.
	Backfill bool `json:"backfill,omitempty"`
	// EntityUpdatedAt is a backfill's change time by the PSA's clock:
	// a pipeline holding a newer state of the entity may keep it.
	EntityUpdatedAt *time.Time `json:"entityUpdatedAt,omitempty"`
}

// Effect is one change a pipeline applied or would apply.
type Effect struct {
	Kind   string         `json:"kind"`
	Op     string         `json:"op"`
	Key    string         `json:"key"`
	Fields map[string]any `json:"fields,omitempty"`
}

// Response is a pipeline's answer.
type Response struct {
	Effects []Effect `json:"effects"`
}

// Result is a successful call: the effects, decoded and as sent.
type Result struct {
	Effects []Effect
	Raw     json.RawMessage // the effects array as the pipeline sent it
}

// Error is a failed call: a transport error, a timeout, a non-2xx status
// or an answer that is not the contract's JSON.
type Error struct {
	Status int // 0 when no answer came
	Msg    string
	Err    error
}

func (e *Error) Error() string {
	if e.Status != 0 {
		return fmt.Sprintf("pipeline answered %d: %s", e.Status, e.Msg)
	}
	return "pipeline call failed: " + e.Msg
}
func (e *Error) Unwrap() error { return e.Err }

// Unavailable reports whether err is a call that got no verdict from the
// pipeline: no answer (connection refused, timeout) or a 429 or 5xx
// status. It is the pipeline being down or overloaded, not its judgement of
// the event; a 4xx or an answer outside the contract is a judgement.
func Unavailable(err error) bool {
	var pe *Error
	if !errors.As(err, &pe) {
		return false
	}
	return pe.Status == 0 || pe.Status == http.StatusTooManyRequests || pe.Status >= 500
}

// maxAnswer caps a pipeline's answer.
const maxAnswer = 4 << 20

// Client calls pipelines.
type Client struct {
	HTTP    *http.Client
	Timeout time.Duration // per call; default 10 s
}

// Call sends ev to the pipeline at url in mode.
func (c *Client) Call(ctx context.Context, url string, mode Mode, ev Event) (Result, error) {
	return c.call(ctx, url, mode, ev, true)
}

// CallRaw is Call for a caller that needs the effects only as sent: the
// answer is checked as Call checks it, and refused for the same reasons,
// but Result.Effects is left nil (decoding every effect's fields into
// maps is most of a call's own CPU).
func (c *Client) CallRaw(ctx context.Context, url string, mode Mode, ev Event) (Result, error) {
	return c.call(ctx, url, mode, ev, false)
}

func (c *Client) call(ctx context.Context, url string, mode Mode, ev Event, decode bool) (Result, error) {
	body, err := encodeEvent(ev)
	if err != nil {
		return Result{}, &Error{Msg: "encode event", Err: err}
	}
	timeout := c.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return Result{}, &Error{Msg: "bad pipeline URL", Err: err}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Idempotency-Key", ev.ID)
	req.Header.Set("Switchback-Mode", string(mode))
	hc := c.HTTP
	if hc == nil {
		hc = http.DefaultClient
	}
	resp, err := hc.Do(req)
	if err != nil {
		msg := "no answer"
		if errors.Is(err, context.DeadlineExceeded) {
			msg = "timed out after " + timeout.String()
		}
		return Result{}, &Error{Msg: msg, Err: err}
	}
	defer resp.Body.Close()
	var buf bytes.Buffer
	if n := resp.ContentLength; n > 0 && n <= maxAnswer {
		buf.Grow(int(n) + bytes.MinRead) // rather than grown from 512 bytes by doubling
	}
	_, err = buf.ReadFrom(io.LimitReader(resp.Body, maxAnswer+1))
	data := buf.Bytes()
	if err != nil {
		return Result{}, &Error{Status: resp.StatusCode, Msg: "answer cut short", Err: err}
	}
	if resp.StatusCode/100 != 2 {
		return Result{}, &Error{Status: resp.StatusCode, Msg: snippet(data)}
	}
	if len(data) > maxAnswer {
		return Result{}, &Error{Status: resp.StatusCode, Msg: "answer larger than 4 MiB"}
	}
	return decodeAnswer(resp.StatusCode, data, decode)
}

// encodeEvent is json.Marshal(ev). A payload that json.Marshal would
// write unchanged (as the journal stores it) is spliced in rather than
// scanned and compacted again.
func encodeEvent(ev Event) ([]byte, error) {
	payload := ev.Payload
	if len(payload) == 0 || !rawjson.Storable(payload) {
		return json.Marshal(ev)
	}
	ev.Payload = rawjson.Sentinel
	v, err := json.Marshal(ev)
	if err != nil {
		return nil, err
	}
	// The members before the payload are strings and a time.
	before, after, ok := rawjson.Cut(v, payloadKey)
	if !ok {
		ev.Payload = payload
		return json.Marshal(ev)
	}
	out := make([]byte, 0, len(v)+len(payload))
	return append(append(append(out, before...), payload...), after...), nil
}

var payloadKey = []byte(`"payload":`)

// decodeAnswer reads a 2xx answer: the effects as sent and, if decode,
// decoded.
func decodeAnswer(status int, data []byte, decode bool) (Result, error) {
	if !decode {
		if raw, ok := quickRaw(data); ok {
			return Result{Raw: raw}, nil
		}
	}
	return readAnswer(status, data, decode)
}

// readAnswer is decodeAnswer by encoding/json.
func readAnswer(status int, data []byte, decode bool) (Result, error) {
	var raw struct {
		Effects json.RawMessage `json:"effects"`
	}
	if err := json.Unmarshal(data, &raw); err != nil {
		return Result{}, &Error{Status: status, Msg: "answer is not the contract's JSON", Err: err}
	}
	var effects []Effect
	if len(raw.Effects) > 0 && string(raw.Effects) != "null" {
		var err error
		if decode {
			err = json.Unmarshal(raw.Effects, &effects)
		} else {
			var shapes []effectShape
			err = json.Unmarshal(raw.Effects, &shapes)
		}
		if err != nil {
			return Result{}, &Error{Status: status, Msg: "effects are not a list of effects", Err: err}
		}
	}
	if raw.Effects == nil || string(raw.Effects) == "null" {
		raw.Effects = json.RawMessage("[]")
	}
	return Result{Effects: effects, Raw: raw.Effects}, nil
}

// quickRaw returns the effects of an answer as decodeAnswer does without
// decoding them, for an answer of the shape most pipelines send, which it
// checks without encoding/json: an object (at most one "effects" member),
// its effects null or a list of objects or nulls, each effect's kind, op
// and key a string or null and its fields an object or null. Any other
// member is only checked to be JSON. False leaves the answer to
// encoding/json, which gives the verdict and the error: quickRaw takes
// no answer that decodeAnswer refuses, and returns the same effects.
//
// encoding/json matches member names without regard to case (Unicode's
// folding: "ſ" is an "s"), and unescapes them first; a name that is not
// plain ASCII, or is one of the contract's in another case, is left to it.
func quickRaw(data []byte) (json.RawMessage, bool) {
	var effects []byte
	i := rawjson.Space(data, 0)
	end, ok := members(data, i, func(name []byte, j int) (int, bool) {
		switch {
		case string(name) == "effects":
			if effects != nil {
				return j, false
			}
			k, ok := effectList(data, j)
			effects = data[j:k]
			return k, ok
		case strings.EqualFold(string(name), "effects"):
			return j, false
		}
		return rawjson.Value(data, j)
	})
	if !ok || rawjson.Space(data, end) != len(data) {
		return nil, false
	}
	if effects == nil || string(effects) == "null" {
		return json.RawMessage("[]"), true
	}
	// data is the caller's own: the effects keep it, no copy.
	return json.RawMessage(effects[:len(effects):len(effects)]), true
}

// effectList returns the index after the effects list (or null) at
// data[i], as quickRaw takes it.
func effectList(data []byte, i int) (int, bool) {
	if i < len(data) && data[i] == 'n' {
		return rawjson.Value(data, i)
	}
	if i >= len(data) || data[i] != '[' {
		return i, false
	}
	i = rawjson.Space(data, i+1)
	if i < len(data) && data[i] == ']' {
		return i + 1, true
	}
	for {
		var ok bool
		if i < len(data) && data[i] == 'n' {
			i, ok = rawjson.Value(data, i)
		} else {
			i, ok = members(data, i, func(name []byte, j int) (int, bool) {
				switch n := string(name); n {
				case "kind", "op", "key":
					if j < len(data) && (data[j] == '"' || data[j] == 'n') {
						return rawjson.Value(data, j)
					}
					return j, false
				case "fields":
					if j < len(data) && (data[j] == '{' || data[j] == 'n') {
						return rawjson.Value(data, j)
					}
					return j, false
				default:
					if strings.EqualFold(n, "kind") || strings.EqualFold(n, "op") || strings.EqualFold(n, "key") || strings.EqualFold(n, "fields") {
						return j, false
					}
				}
				return rawjson.Value(data, j)
			})
		}
		if !ok {
			return i, false
		}
		if i = rawjson.Space(data, i); i >= len(data) {
			return i, false
		}
		switch data[i] {
		case ',':
			i = rawjson.Space(data, i+1)
		case ']':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// members walks the object at data[i], calling value with each member's
// name, unquoted, and the index of its value, which value returns the
// index after; it returns the index after the object. False for an
// object it does not take: a name with an escape or a byte beyond ASCII,
// or value's false.
func members(data []byte, i int, value func(name []byte, at int) (int, bool)) (int, bool) {
	if i >= len(data) || data[i] != '{' {
		return i, false
	}
	i = rawjson.Space(data, i+1)
	if i < len(data) && data[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(data) || data[i] != '"' {
			return i, false
		}
		end, escaped, ok := rawjson.String(data, i)
		if !ok || escaped {
			return i, false
		}
		name := data[i+1 : end-1]
		for _, c := range name {
			if c >= 0x80 {
				return i, false
			}
		}
		if i = rawjson.Space(data, end); i >= len(data) || data[i] != ':' {
			return i, false
		}
		if i, ok = value(name, rawjson.Space(data, i+1)); !ok {
			return i, false
		}
		if i = rawjson.Space(data, i); i >= len(data) {
			return i, false
		}
		switch data[i] {
		case ',':
			i = rawjson.Space(data, i+1)
		case '}':
			return i + 1, true
		default:
			return i, false
		}
	}
}

// effectShape is an Effect as far as decoding one can fail: Fields must
// be an object (any values) or null.
type effectShape struct {
	Kind   string      `json:"kind"`
	Op     string      `json:"op"`
	Key    string      `json:"key"`
	Fields objectShape `json:"fields,omitempty"`
}

// objectShape takes what a map[string]any takes, without building it.
type objectShape struct{}

func (*objectShape) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && (b[0] == '{' || string(b) == "null") {
		return nil
	}
	return &json.UnmarshalTypeError{Value: "non-object", Type: reflect.TypeFor[map[string]any](), Field: "fields"}
}

func snippet(b []byte) string {
	b = bytes.TrimSpace(b)
	if len(b) > 200 {
		b = append(b[:200:200], "…"...)
	}
	return string(b)
}
