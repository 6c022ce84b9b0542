package compare

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

// ticket is what a pipeline answers for a ConnectWise ticket update, decoded
// as pipelineclient.Client decodes it (numbers as float64).
func ticket() pipelineclient.Effect {
	return pipelineclient.Effect{Kind: "ticket", Op: "upsert", Key: "12345", Fields: map[string]any{
		"summary":    "Printer on 3rd floor jams",
		"status":     "open",
		"priority":   "P2 - High",
		"board.name": "Service Desk",
		"company":    map[string]any{"id": float64(250), "identifier": "acme"},
		"contact":    "Jane Roe",
		"updatedAt":  "2026-03-02T09:14:00Z",
		"tags":       []any{"printer", "hardware", "floor-3"},
	}}
}

// schedule is what the cached schedule handler of the incident makes of the
// same ticket event.
func schedule() pipelineclient.Effect {
	return pipelineclient.Effect{Kind: "schedule_entry", Op: "upsert", Key: "12345", Fields: map[string]any{
		"member":    "jroe",
		"dateStart": "2026-03-02T09:00:00Z",
		"dateEnd":   "2026-03-02T10:00:00Z",
		"type":      "S",
		"status":    "open",
		"updatedAt": "2026-03-02T09:14:00Z",
	}}
}

// with returns a deep copy of e with its fields changed by set; a nil value
// deletes the field.
func with(e pipelineclient.Effect, set map[string]any) pipelineclient.Effect {
	e.Fields = deepCopy(e.Fields).(map[string]any)
	for k, v := range set {
		if v == nil {
			delete(e.Fields, k)
			continue
		}
		e.Fields[k] = v
	}
	return e
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		s := make([]any, len(x))
		for i, e := range x {
			s[i] = deepCopy(e)
		}
		return s
	}
	return v
}

func key(e pipelineclient.Effect, k, op string) pipelineclient.Effect {
	e = with(e, nil)
	e.Key, e.Op = k, op
	return e
}

func kind(e pipelineclient.Effect, kind string) pipelineclient.Effect {
	e = with(e, nil)
	e.Kind = kind
	return e
}

func effects(es ...pipelineclient.Effect) Side { return Side{Effects: es} }

var errTimeout = &pipelineclient.Error{Msg: "timed out after 10s"}

func rules(ignore []string, sets ...string) *Rules {
	r, err := Compile(domain.CompareRules{Ignore: ignore, Sets: sets})
	if err != nil {
		panic(err)
	}
	return r
}

func TestCompareClasses(t *testing.T) {
	ignoreAll := rules([]string{"fields"})
	updatedAt := rules([]string{"fields.updatedAt"})
	tests := []struct {
		name      string
		eventType string
		primary   Side
		shadow    Side
		rules     *Rules
		want      domain.Class
	}{
		{"identical ticket", "ticket", effects(ticket()), effects(ticket()), nil, domain.ClassEqual},
		{"neither side has an effect", "ticket", effects(), effects(), nil, domain.ClassEqual},
		{"nil and empty fields", "ticket", effects(pipelineclient.Effect{Kind: "ticket", Op: "delete", Key: "1"}),
			effects(pipelineclient.Effect{Kind: "ticket", Op: "delete", Key: "1", Fields: map[string]any{}}), nil, domain.ClassEqual},

		{"shadow failed", "ticket", effects(ticket()), Side{Err: errTimeout}, nil, domain.ClassShadowError},
		{"shadow failed, primary empty", "ticket", effects(), Side{Err: errTimeout}, nil, domain.ClassShadowError},
		{"both failed", "ticket", Side{Err: errors.New("pipeline answered 500")}, Side{Err: errTimeout}, nil, domain.ClassShadowError},
		{"primary timed out", "ticket", Side{Err: errTimeout}, effects(ticket()), nil, domain.ClassPrimaryError},
		{"primary timed out, shadow empty", "ticket", Side{Err: errTimeout}, effects(), ignoreAll, domain.ClassPrimaryError},
		{"primary refused the connection", "ticket", Side{Err: &pipelineclient.Error{Msg: "no answer", Err: errors.New("connection refused")}}, effects(ticket()), nil, domain.ClassPrimaryError},
		{"primary answered 503", "ticket", Side{Err: &pipelineclient.Error{Status: 503, Msg: "down"}}, effects(ticket()), nil, domain.ClassPrimaryError},
		{"primary answered 429", "ticket", Side{Err: &pipelineclient.Error{Status: 429, Msg: "slow down"}}, effects(ticket()), nil, domain.ClassPrimaryError},
		{"primary answered 503, wrapped", "ticket", Side{Err: fmt.Errorf("attempt 8: %w", &pipelineclient.Error{Status: 503})}, effects(ticket()), nil, domain.ClassPrimaryError},
		{"primary refused the event (422)", "ticket", Side{Err: &pipelineclient.Error{Status: 422, Msg: "bad ticket"}}, effects(ticket()), nil, domain.ClassErrorAsymmetry},
		{"primary answered outside the contract", "ticket", Side{Err: &pipelineclient.Error{Status: 200, Msg: "answer is not the contract's JSON"}}, effects(), nil, domain.ClassErrorAsymmetry},
		{"primary failed with another error", "ticket", Side{Err: errors.New("no route")}, effects(ticket()), nil, domain.ClassErrorAsymmetry},

		{"seed incident: ticket event, schedule effect", "ticket", effects(ticket()), effects(schedule()), nil, domain.ClassTypeMismatch},
		{"seed incident under rules ignoring every field", "ticket", effects(ticket()), effects(kind(ticket(), "schedule_entry")), ignoreAll, domain.ClassTypeMismatch},
		{"seed incident with every field listed as ignored", "ticket", effects(ticket()), effects(schedule()),
			rules([]string{"summary", "status", "priority", "board.name", "company", "contact", "updatedAt", "tags", "member", "dateStart", "dateEnd", "type"}), domain.ClassTypeMismatch},
		{"wrong kind on the primary (stage new)", "ticket", effects(schedule()), effects(ticket()), nil, domain.ClassTypeMismatch},
		{"wrong kind on both sides alike", "ticket", effects(schedule()), effects(schedule()), nil, domain.ClassTypeMismatch},
		{"one wrong kind among right ones", "ticket", effects(ticket(), key(ticket(), "12346", "upsert")),
			effects(ticket(), kind(key(ticket(), "12346", "upsert"), "schedule_entry")), nil, domain.ClassTypeMismatch},
		{"wrong kind beats empty", "ticket", effects(), effects(schedule()), nil, domain.ClassTypeMismatch},
		{"unknown event, kinds differ", "unknown", effects(kind(ticket(), "contact")), effects(kind(ticket(), "company")), nil, domain.ClassTypeMismatch},
		{"unknown event, a primary kind the shadow lacks", "unknown", effects(kind(ticket(), "contact"), kind(ticket(), "company")),
			effects(kind(ticket(), "contact")), nil, domain.ClassTypeMismatch},
		{"unknown event, same kinds", "unknown", effects(kind(ticket(), "contact")), effects(kind(ticket(), "contact")), nil, domain.ClassEqual},
		{"unknown event, shadow empty", "unknown", effects(kind(ticket(), "contact")), effects(), nil, domain.ClassEmpty},

		{"shadow processed it with no effect", "ticket", effects(ticket()), effects(), nil, domain.ClassEmpty},
		{"primary processed it with no effect", "ticket", effects(), effects(ticket()), nil, domain.ClassEmpty},
		{"empty is not ignored away", "ticket", effects(ticket()), effects(), ignoreAll, domain.ClassEmpty},

		{"missing effect", "ticket", effects(ticket(), key(ticket(), "12346", "upsert")), effects(ticket()), nil, domain.ClassMissing},
		{"missing is not ignored away", "ticket", effects(ticket(), key(ticket(), "12346", "upsert")), effects(ticket()), ignoreAll, domain.ClassMissing},
		{"other op is missing (and extra)", "ticket", effects(ticket()), effects(key(ticket(), "12345", "delete")), nil, domain.ClassMissing},
		{"other key is missing (and extra)", "ticket", effects(ticket()), effects(key(ticket(), "54321", "upsert")), ignoreAll, domain.ClassMissing},
		{"missing one of two repeats", "ticket", effects(ticket(), ticket()), effects(ticket()), nil, domain.ClassMissing},
		{"extra effect", "ticket", effects(ticket()), effects(ticket(), key(ticket(), "12346", "upsert")), nil, domain.ClassExtra},
		{"extra is not ignored away", "ticket", effects(ticket()), effects(ticket(), key(ticket(), "12346", "upsert")), ignoreAll, domain.ClassExtra},

		{"status differs", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"status": "closed"})), nil, domain.ClassValueDiff},
		{"field dropped by the shadow", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"contact": nil})), nil, domain.ClassValueDiff},
		{"updatedAt differs", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"updatedAt": "2026-03-02T09:14:01Z"})), nil, domain.ClassValueDiff},
		{"ignore rule hides updatedAt", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"updatedAt": "2026-03-02T09:14:01Z"})), updatedAt, domain.ClassEqual},
		{"ignore rule relative to fields", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"updatedAt": "2026-03-02T09:14:01Z"})), rules([]string{"updatedAt"}), domain.ClassEqual},
		{"ignore rule hides only its field", "ticket", effects(ticket()),
			effects(with(ticket(), map[string]any{"updatedAt": "2026-03-02T09:14:01Z", "status": "closed"})), updatedAt, domain.ClassValueDiff},
		{"ignore rule hides a field missing on one side", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"updatedAt": nil})), updatedAt, domain.ClassEqual},
		{"scoped ignore rule on its event type", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"updatedAt": "2026-03-02T09:14:01Z"})),
			rules([]string{"ticket:fields.updatedAt"}), domain.ClassEqual},
		{"scoped ignore rule on another event type", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"updatedAt": "2026-03-02T09:14:01Z"})),
			rules([]string{"schedule_entry:fields.updatedAt"}), domain.ClassValueDiff},
		{"scoped ignore rule, its type's events", "schedule_entry", effects(schedule()), effects(with(schedule(), map[string]any{"updatedAt": "2026-03-02T09:14:01Z"})),
			rules([]string{"schedule_entry:fields.updatedAt"}), domain.ClassEqual},
		{"scoped and unscoped rules together", "ticket", effects(ticket()),
			effects(with(ticket(), map[string]any{"updatedAt": "2026-03-02T09:14:01Z", "contact": "J. Roe"})),
			rules([]string{"contact", "ticket:fields.updatedAt"}), domain.ClassEqual},
		{"ignore a nested field", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"company": map[string]any{"id": float64(250), "identifier": "ACME"}})),
			rules([]string{"fields.company.identifier"}), domain.ClassEqual},
		{"ignore a flattened field by its nested path", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"board.name": "Triage"})),
			rules([]string{"fields.board.name"}), domain.ClassEqual},
		{"ignore a flattened field under an ignored object", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"board.name": "Triage"})),
			rules([]string{"fields.board"}), domain.ClassEqual},
		{"ignore through a list", "ticket",
			effects(with(ticket(), map[string]any{"notes": []any{map[string]any{"text": "called", "at": "2026-03-02T09:00:00Z"}}})),
			effects(with(ticket(), map[string]any{"notes": []any{map[string]any{"text": "called", "at": "2026-03-02T09:00:05Z"}}})),
			rules([]string{"fields.notes.at"}), domain.ClassEqual},

		{"list order matters without a set rule", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"tags": []any{"hardware", "floor-3", "printer"}})), nil, domain.ClassValueDiff},
		{"set ignores order", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"tags": []any{"hardware", "floor-3", "printer"}})),
			rules(nil, "fields.tags"), domain.ClassEqual},
		{"set still sees a changed member", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"tags": []any{"hardware", "floor-4", "printer"}})),
			rules(nil, "fields.tags"), domain.ClassValueDiff},
		{"set counts repeats", "ticket", effects(with(ticket(), map[string]any{"tags": []any{"a", "a", "b"}})), effects(with(ticket(), map[string]any{"tags": []any{"a", "b", "b"}})),
			rules(nil, "tags"), domain.ClassValueDiff},
		{"set of objects", "ticket",
			effects(with(ticket(), map[string]any{"resources": []any{map[string]any{"id": float64(1), "name": "jroe"}, map[string]any{"id": float64(2), "name": "asmith"}}})),
			effects(with(ticket(), map[string]any{"resources": []any{map[string]any{"name": "asmith", "id": json.Number("2")}, map[string]any{"name": "jroe", "id": 1}}})),
			rules(nil, "resources"), domain.ClassEqual},
		{"scoped set on another type", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"tags": []any{"hardware", "floor-3", "printer"}})),
			rules(nil, "schedule_entry:fields.tags"), domain.ClassValueDiff},

		{"numbers by value", "ticket",
			effects(with(ticket(), map[string]any{"a": float64(1), "b": json.Number("2.50"), "c": int64(-3), "d": float64(1e3)})),
			effects(with(ticket(), map[string]any{"a": json.Number("1.0"), "b": float64(2.5), "c": int(-3), "d": json.Number("1000")})), nil, domain.ClassEqual},
		{"numbers that differ", "ticket", effects(with(ticket(), map[string]any{"budgetHours": float64(1)})), effects(with(ticket(), map[string]any{"budgetHours": json.Number("1.5")})), nil, domain.ClassValueDiff},
		{"a number is not its text", "ticket", effects(with(ticket(), map[string]any{"id": float64(1)})), effects(with(ticket(), map[string]any{"id": "1"})), nil, domain.ClassValueDiff},
		{"times as instants", "ticket",
			effects(with(ticket(), map[string]any{"updatedAt": "2026-03-02T09:14:00Z", "due": "2026-03-05T17:00:00.000-05:00"})),
			effects(with(ticket(), map[string]any{"updatedAt": "2026-03-02T10:14:00+01:00", "due": "2026-03-05T22:00:00Z"})), nil, domain.ClassEqual},
		{"a time.Time and its text", "ticket", effects(ticket()),
			effects(with(ticket(), map[string]any{"updatedAt": time.Date(2026, 3, 2, 4, 14, 0, 0, time.FixedZone("EST", -5*3600))})), nil, domain.ClassEqual},
		{"times that differ", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"updatedAt": "2026-03-02T09:14:00+01:00"})), nil, domain.ClassValueDiff},
		{"text that is not a time", "ticket", effects(with(ticket(), map[string]any{"x": "2026-03-02 09:14:00Z"})), effects(with(ticket(), map[string]any{"x": "2026-03-02 09:14:00+00:00"})), nil, domain.ClassValueDiff},
		{"Go-built fields", "ticket",
			effects(with(ticket(), map[string]any{"tags": []string{"printer", "hardware", "floor-3"}, "company": map[string]any{"id": uint16(250), "identifier": "acme"}})),
			effects(ticket()), nil, domain.ClassEqual},

		{"order of effects is irrelevant", "ticket", effects(ticket(), key(ticket(), "12346", "upsert"), key(ticket(), "12345", "delete")),
			effects(key(ticket(), "12345", "delete"), ticket(), key(ticket(), "12346", "upsert")), nil, domain.ClassEqual},
		{"repeats match in any order", "ticket",
			effects(ticket(), with(ticket(), map[string]any{"status": "closed"})),
			effects(with(ticket(), map[string]any{"status": "closed"}), ticket()), nil, domain.ClassEqual},
		{"repeats that differ", "ticket",
			effects(ticket(), with(ticket(), map[string]any{"status": "closed"})),
			effects(ticket(), ticket()), nil, domain.ClassValueDiff},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(tt.eventType, tt.primary, tt.shadow, tt.rules)
			if got.Class != tt.want {
				t.Errorf("class = %s, want %s; diff:\n%s", got.Class, tt.want, got.Diff)
			}
			if empty, want := got.Diff == "", got.Class == domain.ClassEqual; empty != want {
				t.Errorf("diff empty = %v, want %v (class %s); diff:\n%s", empty, want, got.Class, got.Diff)
			}
		})
	}
}

// contact is the contact a rewritten ticket handler also updates.
func contact() pipelineclient.Effect {
	return pipelineclient.Effect{Kind: "contact", Op: "upsert", Key: "88", Fields: map[string]any{"name": "Jane Roe", "lastTicket": "12345"}}
}

// newSide marks a side as the new pipeline's.
func newSide(s Side) Side {
	s.New = true
	return s
}

func TestCompareAllowExtraKinds(t *testing.T) {
	allow := func(kinds ...string) *Rules {
		return NewRules(domain.CompareRules{Ignore: []string{"fields.updatedAt"}, AllowExtraKinds: kinds})
	}
	tests := []struct {
		name            string
		eventType       string
		primary, shadow Side
		rules           *Rules
		want            domain.Class
	}{
		// Stage shadow: legacy applies, new is the shadow.
		{"shadow stage: ticket and contact on new, contact allowed", "ticket", effects(ticket()), newSide(effects(ticket(), contact())), allow("contact"), domain.ClassEqual},
		{"shadow stage: the ticket differs, the contact allowed", "ticket", effects(ticket()),
			newSide(effects(with(ticket(), map[string]any{"status": "closed"}), contact())), allow("contact"), domain.ClassValueDiff},
		{"shadow stage: contact not allowed", "ticket", effects(ticket()), newSide(effects(ticket(), contact())), allow("company"), domain.ClassTypeMismatch},
		{"shadow stage: no allowance", "ticket", effects(ticket()), newSide(effects(ticket(), contact())), nil, domain.ClassTypeMismatch},
		{"shadow stage: several contacts allowed", "ticket", effects(ticket()),
			newSide(effects(ticket(), contact(), key(contact(), "89", "upsert"))), allow("contact"), domain.ClassEqual},
		{"shadow stage: ticket missing on new, contact allowed", "ticket", effects(ticket(), key(ticket(), "2", "upsert")),
			newSide(effects(ticket(), contact())), allow("contact"), domain.ClassMissing},
		{"shadow stage: new's ticket only, legacy none", "ticket", effects(), newSide(effects(ticket(), contact())), allow("contact"), domain.ClassEmpty},

		// The seed's bug stays a type_mismatch whatever is allowed.
		{"seed incident, schedule_entry allowed", "ticket", effects(ticket()), newSide(effects(schedule())), allow("schedule_entry"), domain.ClassTypeMismatch},
		{"seed incident, contact added, schedule_entry allowed", "ticket", effects(ticket()),
			newSide(effects(schedule(), contact())), allow("schedule_entry", "contact"), domain.ClassTypeMismatch},
		{"seed incident on an event legacy ignored", "ticket", effects(), newSide(effects(schedule())), allow("schedule_entry"), domain.ClassTypeMismatch},
		{"seed incident in stage new", "ticket", newSide(effects(schedule())), effects(ticket()), allow("schedule_entry"), domain.ClassTypeMismatch},

		// Stage new: new applies, legacy is the shadow.
		{"new stage: ticket and contact on new, contact allowed", "ticket", newSide(effects(ticket(), contact())), effects(ticket()), allow("contact"), domain.ClassEqual},
		{"new stage: the ticket differs, the contact allowed", "ticket", newSide(effects(ticket(), contact())),
			effects(with(ticket(), map[string]any{"status": "closed"})), allow("contact"), domain.ClassValueDiff},

		// Only the new side is excused.
		{"legacy's contact is not excused (shadow stage)", "ticket", effects(ticket(), contact()), newSide(effects(ticket())), allow("contact"), domain.ClassTypeMismatch},
		{"legacy's contact is not excused (new stage)", "ticket", newSide(effects(ticket())), effects(ticket(), contact()), allow("contact"), domain.ClassTypeMismatch},
		{"neither side new (legacy against itself)", "ticket", effects(ticket()), effects(ticket(), contact()), allow("contact"), domain.ClassTypeMismatch},
		{"allowing the event's own kind excuses nothing", "ticket", effects(ticket()),
			newSide(effects(ticket(), key(ticket(), "2", "upsert"))), allow("ticket"), domain.ClassExtra},

		// Unknown events: the kinds must agree, except those new may add.
		{"unknown event, contact added", "unknown", effects(kind(ticket(), "company")), newSide(effects(kind(ticket(), "company"), contact())), allow("contact"), domain.ClassEqual},
		{"unknown event, contact instead", "unknown", effects(kind(ticket(), "company")), newSide(effects(contact())), allow("contact"), domain.ClassTypeMismatch},
		{"unknown event, both sides' contacts compared", "unknown", effects(with(contact(), map[string]any{"name": "J. Roe"})),
			newSide(effects(contact())), allow("contact"), domain.ClassValueDiff},

		{"errors are untouched", "ticket", Side{Err: errTimeout}, newSide(effects(ticket(), contact())), allow("contact"), domain.ClassPrimaryError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Compare(tt.eventType, tt.primary, tt.shadow, tt.rules)
			if got.Class != tt.want {
				t.Errorf("class = %s, want %s; diff:\n%s", got.Class, tt.want, got.Diff)
			}
			checkResult(t, got)
		})
	}
}

func TestCompareDiff(t *testing.T) {
	tests := []struct {
		name      string
		eventType string
		primary   Side
		shadow    Side
		rules     *Rules
		want      []string // lines of the diff, in order
	}{
		{"a changed status", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"status": "closed"})), nil,
			[]string{`ticket/12345 upsert fields.status: primary "open" → shadow "closed"`}},
		{"several fields", "ticket", effects(ticket()),
			effects(with(ticket(), map[string]any{"contact": nil, "priority": "P3 - Normal", "budget": json.Number("1.5"), "updatedAt": "2026-03-02T09:15:00Z"})),
			rules([]string{"fields.updatedAt"}),
			[]string{
				`ticket/12345 upsert fields.budget: primary (absent) → shadow 1.5`,
				`ticket/12345 upsert fields.contact: primary "Jane Roe" → shadow (absent)`,
				`ticket/12345 upsert fields.priority: primary "P2 - High" → shadow "P3 - Normal"`,
			}},
		{"nested, flattened and listed fields", "ticket", effects(ticket()),
			effects(with(ticket(), map[string]any{"company": map[string]any{"id": float64(251), "identifier": "acme"}, "board.name": "Triage", "tags": []any{"printer", "hardware", "floor-4"}})), nil,
			[]string{
				`ticket/12345 upsert fields.board.name: primary "Service Desk" → shadow "Triage"`,
				`ticket/12345 upsert fields.company.id: primary 250 → shadow 251`,
				`ticket/12345 upsert fields.tags[2]: primary "floor-3" → shadow "floor-4"`,
			}},
		{"a number turned text", "ticket", effects(with(ticket(), map[string]any{"id": float64(7)})), effects(with(ticket(), map[string]any{"id": "7"})), rules([]string{"company", "tags"}),
			[]string{`ticket/12345 upsert fields.id: primary 7 → shadow "7"`}},
		{"a time as sent", "ticket", effects(ticket()), effects(with(ticket(), map[string]any{"updatedAt": "2026-03-02T10:14:00+02:00"})), nil,
			[]string{`ticket/12345 upsert fields.updatedAt: primary "2026-03-02T09:14:00Z" → shadow "2026-03-02T10:14:00+02:00"`}},
		{"seed incident", "ticket", effects(ticket()), effects(schedule()), rules([]string{"fields"}),
			[]string{
				`type: event ticket, shadow effect schedule_entry/12345 upsert`,
				`missing: ticket/12345 upsert {}`,
				`extra: schedule_entry/12345 upsert {}`,
			}},
		{"unknown event, other kinds", "unknown", effects(kind(ticket(), "contact")), effects(kind(ticket(), "company")), rules([]string{"fields"}),
			[]string{
				`type: event unknown, shadow effects of kind company, the primary's are of kind contact`,
				`type: event unknown, primary effects of kind contact, the shadow's are of kind company`,
				`missing: contact/12345 upsert {}`,
				`extra: company/12345 upsert {}`,
			}},
		{"empty shadow", "ticket", effects(pipelineclient.Effect{Kind: "ticket", Op: "delete", Key: "12345"}), effects(), nil,
			[]string{`empty: the primary applied 1 effect, the shadow none`, `missing: ticket/12345 delete {}`}},
		{"empty primary", "ticket", effects(), effects(ticket(), key(ticket(), "2", "upsert")), rules([]string{"fields"}),
			[]string{`empty: the primary applied none, the shadow would apply 2 effects`, `extra: ticket/12345 upsert {}`, `extra: ticket/2 upsert {}`}},
		{"missing with fields", "ticket", effects(ticket(), pipelineclient.Effect{Kind: "ticket", Op: "upsert", Key: "12346", Fields: map[string]any{"status": "open", "n": float64(2)}}), effects(ticket()), nil,
			[]string{`missing: ticket/12346 upsert {"n":2,"status":"open"}`}},
		{"missing and a value", "ticket", effects(ticket(), key(ticket(), "2", "upsert")), effects(with(ticket(), map[string]any{"status": "closed"})), rules([]string{"company", "tags", "summary", "priority", "board", "contact", "updatedAt"}),
			[]string{`missing: ticket/2 upsert {"status":"open"}`, `ticket/12345 upsert fields.status: primary "open" → shadow "closed"`}},
		{"an allowed contact is not in the diff", "ticket", effects(ticket()),
			newSide(effects(with(ticket(), map[string]any{"status": "closed"}), contact())), NewRules(domain.CompareRules{AllowExtraKinds: []string{"contact"}}),
			[]string{`ticket/12345 upsert fields.status: primary "open" → shadow "closed"`}},
		{"shadow failed", "ticket", effects(ticket()), Side{Err: &pipelineclient.Error{Status: 502, Msg: "bad\ngateway"}}, nil,
			[]string{`shadow failed: pipeline answered 502: bad gateway`}},
		{"both failed", "ticket", Side{Err: errors.New("no answer")}, Side{Err: errTimeout}, nil,
			[]string{`primary failed: no answer`, `shadow failed: pipeline call failed: timed out after 10s`}},
		{"primary failed", "ticket", Side{Err: errTimeout}, effects(ticket()), nil,
			[]string{`primary failed: pipeline call failed: timed out after 10s`, `shadow succeeded: would apply 1 effect`}},
		{"odd names are quoted", "ticket", effects(pipelineclient.Effect{Kind: "ticket", Op: "upsert", Key: "a/b", Fields: map[string]any{"": float64(1), "a b": true}}),
			effects(pipelineclient.Effect{Kind: "ticket", Op: "upsert", Key: "a/b", Fields: map[string]any{"": float64(2), "a b": false}}), nil,
			[]string{
				`ticket/"a/b" upsert fields[""]: primary 1 → shadow 2`,
				`ticket/"a/b" upsert fields["a b"]: primary true → shadow false`,
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := strings.Split(Compare(tt.eventType, tt.primary, tt.shadow, tt.rules).Diff, "\n")
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("diff =\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tt.want, "\n"))
			}
		})
	}
}

func TestCompareDiffIsCapped(t *testing.T) {
	big := func(status string) pipelineclient.Effect {
		f := map[string]any{}
		for i := range 200 {
			f[fmt.Sprintf("field%03d", i)] = strings.Repeat(status, 40)
		}
		return pipelineclient.Effect{Kind: "ticket", Op: "upsert", Key: "12345", Fields: f}
	}
	var ps, ss []pipelineclient.Effect
	for i := range 20 {
		p, s := big("open"), big("done")
		p.Key, s.Key = fmt.Sprint(i), fmt.Sprint(i)
		ps, ss = append(ps, p), append(ss, s)
	}
	for _, tt := range []struct {
		name            string
		primary, shadow []pipelineclient.Effect
		want            domain.Class
	}{
		{"value diffs", ps, ss, domain.ClassValueDiff},
		{"missing effects", ps, ss[:1], domain.ClassMissing},
		{"long error", nil, nil, domain.ClassShadowError},
	} {
		t.Run(tt.name, func(t *testing.T) {
			shadow := effects(tt.shadow...)
			if tt.want == domain.ClassShadowError {
				shadow.Err = errors.New(strings.Repeat("é", 5000))
			}
			got := Compare("ticket", effects(tt.primary...), shadow, nil)
			if got.Class != tt.want {
				t.Fatalf("class = %s, want %s", got.Class, tt.want)
			}
			if len(got.Diff) > maxDiff {
				t.Errorf("len(diff) = %d, want at most %d", len(got.Diff), maxDiff)
			}
			if len(got.Diff) < maxDiff/2 && tt.want != domain.ClassShadowError {
				t.Errorf("len(diff) = %d, want it filled to near %d", len(got.Diff), maxDiff)
			}
			if !strings.Contains(got.Diff, "…") {
				t.Errorf("diff does not say it was cut:\n%s", got.Diff)
			}
			if !strings.Contains(got.Diff, "left out") && tt.want != domain.ClassShadowError {
				t.Errorf("diff does not say lines were left out:\n%s", got.Diff)
			}
		})
	}
}

func TestCompileRules(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"fields.updatedAt", true},
		{"updatedAt", true},
		{"ticket:fields.updatedAt", true},
		{"fields", true},
		{"fields.ns:name", true},
		{"", false},
		{"fields..updatedAt", false},
		{"fields.", false},
		{".updatedAt", false},
		{":fields.updatedAt", false},
		{"ticket:", false},
		{"fields." + strings.Repeat("x", 200), false},
	}
	for _, tt := range tests {
		for _, r := range []domain.CompareRules{{Ignore: []string{tt.path}}, {Sets: []string{tt.path}}} {
			_, err := Compile(r)
			if got := err == nil; got != tt.ok {
				t.Errorf("Compile(%+v) err = %v, want ok %v", r, err, tt.ok)
			}
			if err != nil && domain.ErrorCode(err) != domain.CodeInvalid {
				t.Errorf("Compile(%+v) code = %s, want %s", r, domain.ErrorCode(err), domain.CodeInvalid)
			}
			if NewRules(r) == nil {
				t.Errorf("NewRules(%+v) = nil", r)
			}
			// What the API refuses, Compile refuses too. (The API still
			// takes an empty scope or an empty path after a scope, which
			// Compile refuses and NewRules applies literally.)
			m := domain.Migration{Key: "m", Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://a"}, New: domain.Pipeline{URL: "http://b"}},
				Compare: r, Gates: domain.DefaultGates(), Guard: domain.DefaultGuard()}
			if m.Validate() != nil && tt.ok {
				t.Errorf("Migration.Validate refuses %+v, Compile takes it", r)
			}
		}
	}
}

func TestRulesLiteralAndNil(t *testing.T) {
	p, s := effects(ticket()), effects(with(ticket(), map[string]any{"updatedAt": "2026-03-02T09:14:01Z"}))
	tests := []struct {
		name  string
		rules *Rules
		want  domain.Class
	}{
		{"nil rules", nil, domain.ClassValueDiff},
		{"rules built as a literal", &Rules{Ignore: []string{"fields.updatedAt"}}, domain.ClassEqual},
		{"NewRules", NewRules(domain.CompareRules{Ignore: []string{"fields.updatedAt"}}), domain.ClassEqual},
		{"NewRules copies its input", func() *Rules {
			in := []string{"fields.updatedAt"}
			r := NewRules(domain.CompareRules{Ignore: in})
			in[0] = "fields.status"
			return r
		}(), domain.ClassEqual},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Compare("ticket", p, s, tt.rules).Class; got != tt.want {
				t.Errorf("class = %s, want %s", got, tt.want)
			}
		})
	}
}

func TestCompareChangesNothing(t *testing.T) {
	p := []pipelineclient.Effect{ticket(), key(ticket(), "2", "delete")}
	s := []pipelineclient.Effect{with(ticket(), map[string]any{"tags": []any{"b", "a"}}), schedule()}
	wantP, wantS := clone(p), clone(s)
	r := rules([]string{"updatedAt"}, "tags")
	for _, et := range []string{"ticket", "unknown"} {
		Compare(et, effects(p...), effects(s...), r)
		Compare(et, effects(p...), effects(p...), r)
	}
	if !reflect.DeepEqual(p, wantP) || !reflect.DeepEqual(s, wantS) {
		t.Errorf("Compare changed its input:\nprimary %v\nshadow  %v", p, s)
	}
}

func clone(es []pipelineclient.Effect) []pipelineclient.Effect {
	out := make([]pipelineclient.Effect, len(es))
	for i, e := range es {
		out[i] = e
		out[i].Fields = maps.Clone(deepCopy(e.Fields).(map[string]any))
	}
	return out
}

func TestCompareConcurrently(t *testing.T) {
	r := rules([]string{"updatedAt", "ticket:fields.contact"}, "tags")
	lit := &Rules{Ignore: []string{"updatedAt"}} // compiled on first use, by any goroutine
	p := effects(ticket())
	s := effects(with(ticket(), map[string]any{"updatedAt": "2026-03-02T09:14:01Z", "tags": []any{"hardware", "printer", "floor-3"}}))
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 200 {
				if got := Compare("ticket", p, s, r).Class; got != domain.ClassEqual {
					t.Errorf("class = %s, want equal", got)
					return
				}
				if got := Compare("ticket", p, s, lit).Class; got != domain.ClassValueDiff {
					t.Errorf("class = %s, want value_diff", got)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestNormalizedOrder(t *testing.T) {
	// order must be a total order consistent with equal, or two sets
	// holding the same members could sort differently.
	vals := []any{nil, false, true, int64(-1), int64(0), int64(1), 0.5, 1e300, notANumber{}, "", "a", "b",
		normalize("2026-03-02T09:14:00Z", nil), normalize("2026-03-02T10:14:00+01:00", nil), normalize("2026-03-02T09:15:00Z", nil),
		[]any{}, []any{int64(1)}, []any{int64(1), "a"}, map[string]any{}, map[string]any{"a": int64(1)}, map[string]any{"a": int64(2)}, map[string]any{"b": nil}}
	for _, a := range vals {
		for _, b := range vals {
			o, e := order(a, b), equal(a, b)
			if (o == 0) != e {
				t.Errorf("order(%v, %v) = %d, equal = %v", a, b, o, e)
			}
			if order(b, a) != -o {
				t.Errorf("order(%v, %v) = %d, order(%v, %v) = %d", a, b, o, b, a, order(b, a))
			}
		}
	}
}
