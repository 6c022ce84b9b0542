package domain

import (
	"encoding/json"
	"math"
	"time"
	"unicode/utf8"
)

// Bounds on what a router may report, so that a faulty or hostile router
// cannot wrap a counter or fill a stage with counts it could not have made.
const (
	// MaxReportedCount bounds each count of one report row; a router
	// splits a larger count over several rows.
	MaxReportedCount = 1_000_000
	// MaxReportAhead bounds how far past the control service's clock a
	// reported minute may be (clock skew between hosts).
	MaxReportAhead = 5 * time.Minute
	// ComparisonRetention is how far back a reported minute may be: as long
	// as a router keeps its events by default, so no router can still
	// hold an older comparison that it has not reported.
	ComparisonRetention = 30 * 24 * time.Hour
)

// ComparisonCount is a number of comparisons of one class, for one
// partner's events of one type, in one minute, as a router reports them.
type ComparisonCount struct {
	Migration string    `json:"migration"`
	Partner   string    `json:"partner"`
	Stage     Stage     `json:"stage"`
	EventType string    `json:"eventType"`
	Class     Class     `json:"class"`
	Minute    time.Time `json:"minute"`
	Count     uint64    `json:"count"`
}

// CandidateCount counts calls to the new pipeline and how many failed, for
// one partner in one stage.
type CandidateCount struct {
	Migration string `json:"migration"`
	Partner   string `json:"partner"`
	Stage     Stage  `json:"stage"`
	Calls     uint64 `json:"calls"`
	Errors    uint64 `json:"errors"`
}

// Mismatch is one comparison that did not come out equal, with both sides.
type Mismatch struct {
	Migration string          `json:"migration"`
	Partner   string          `json:"partner"`
	EventID   string          `json:"eventId"`
	EventType string          `json:"eventType"`
	Class     Class           `json:"class"`
	Diff      string          `json:"diff"`
	Primary   json.RawMessage `json:"primary"`
	Shadow    json.RawMessage `json:"shadow"`
	At        time.Time       `json:"at"`
	// Event is the event both pipelines were given; nil on samples from
	// routers that predate it.
	Event *SampleEvent `json:"event,omitempty"`
}

// MaxSampleEventBody bounds a sample's event body: enough to show most
// webhook bodies whole, small beside a diff's 4 KiB. A router reports its
// samples within the control service's 1 MiB body limit, so what a
// sample carries is what it does not leave to the others.
const MaxSampleEventBody = 2 << 10

// SampleEvent is a mismatch sample's event as the pipelines received it.
type SampleEvent struct {
	Type     string `json:"type"`
	Action   string `json:"action"`
	EntityID string `json:"entityId"`
	// Body is the payload's text, whole when it has at most
	// MaxSampleEventBody bytes, else cut to that, on a character
	// boundary: Truncated says so and BodyBytes is the whole size.
	Body      string `json:"body"`
	BodyBytes int    `json:"bodyBytes"`
	Truncated bool   `json:"truncated"`
}

// maxSampleName bounds a sample event's type, action and entity id, which
// a partner's payload chose.
const maxSampleName = 256

// NewSampleEvent is the sample of an event of entity type typ with action,
// entityID and payload: its body cut to MaxSampleEventBody bytes, and its
// type, action and entity id to 256 bytes each.
func NewSampleEvent(typ, action, entityID string, payload []byte) SampleEvent {
	body, cut := prefix(string(payload), MaxSampleEventBody)
	typ, _ = prefix(typ, maxSampleName)
	action, _ = prefix(action, maxSampleName)
	entityID, _ = prefix(entityID, maxSampleName)
	return SampleEvent{Type: typ, Action: action, EntityID: entityID, Body: body, BodyBytes: len(payload), Truncated: cut}
}

// prefix cuts s to at most n bytes on a character boundary, and reports
// whether it cut.
func prefix(s string, n int) (string, bool) {
	if len(s) <= n {
		return s, false
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n], true
}

// GuardSample is the outcomes, in order, of a partner's latest events on
// the new pipeline: a comparison class, or "error" for a failed call.
type GuardSample struct {
	Migration string   `json:"migration"`
	Partner   string   `json:"partner"`
	Outcomes  []string `json:"outcomes"`
	// EventID is one of the events, kept as evidence.
	EventID string `json:"eventId"`
}

// OutcomeError is a guard sample's outcome for a failed call.
const OutcomeError = "error"

// Comparisons are a partner's comparison figures in its current stage.
type Comparisons struct {
	Partner    string                      `json:"partner"`
	Stage      Stage                       `json:"stage"`
	Since      time.Time                   `json:"since"`
	Counts     map[string]map[Class]uint64 `json:"counts"` // by event type
	Mismatches []Mismatch                  `json:"mismatches"`
}

// MinuteCount is a number of comparisons of one class, for one event type,
// in one minute of a partner's stage.
type MinuteCount struct {
	Minute    time.Time `json:"minute"`
	EventType string    `json:"eventType"`
	Class     Class     `json:"class"`
	Count     uint64    `json:"count"`
}

// StageRows are the statistics rows a store keeps for one partner's stint
// in a stage (its migration, partner, stage and the time it began): the
// comparisons per minute, event type and class, in no particular order,
// and the sums of the candidate pipeline's calls and errors. What they
// mean for the gates is gate.Tally's to say.
type StageRows struct {
	Comparisons     []MinuteCount
	CandidateCalls  uint64
	CandidateErrors uint64
}

// AddCounts sums counts without wrapping: a count stuck at the maximum
// still fails every gate, one wrapped to a small number (or to 0) would
// pass a zero-tolerance gate it must fail.
func AddCounts(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}
