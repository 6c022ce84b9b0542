package domain

import (
	"encoding/json"
	"net/url"
	"strings"
	"time"
)

// Class is the outcome of comparing the two pipelines' effects for one event.
type Class string

const (
	ClassEqual          Class = "equal"
	ClassValueDiff      Class = "value_diff"
	ClassTypeMismatch   Class = "type_mismatch"
	ClassMissing        Class = "missing"
	ClassExtra          Class = "extra"
	ClassEmpty          Class = "empty"
	ClassErrorAsymmetry Class = "error_asymmetry"
	// ClassPrimaryError is a primary (applied) side that got no answer or
	// a 5xx from its pipeline while the shadow answered: an outage of the
	// primary's pipeline, which says nothing of the shadow's effects.
	ClassPrimaryError Class = "primary_error"
	ClassShadowError  Class = "shadow_error"
	ClassSkipped      Class = "skipped"
	// ClassNoise is a value_diff whose every differing field path is
	// noise: a path that differs between two runs of the legacy pipeline
	// on the same event (learned) or that an operator pinned as noise. It
	// is compared but not a mismatch: shown and sampled, never counted in
	// a mismatch rate, never zero-tolerance. No other class becomes noise.
	ClassNoise Class = "noise"
)

// Classes lists every class in a stable order.
var Classes = []Class{ClassEqual, ClassValueDiff, ClassTypeMismatch, ClassMissing, ClassExtra,
	ClassEmpty, ClassErrorAsymmetry, ClassPrimaryError, ClassShadowError, ClassSkipped, ClassNoise}

// Valid reports whether c is a known class.
func (c Class) Valid() bool {
	for _, x := range Classes {
		if x == c {
			return true
		}
	}
	return false
}

// Compared reports whether both sides answered: skipped, shadow_error and
// primary_error are coverage gaps, not comparisons.
func (c Class) Compared() bool {
	return c != ClassSkipped && c != ClassShadowError && c != ClassPrimaryError
}

// Mismatched reports whether c is a comparison that did not come out
// equal: noise, a difference only in fields that differ between two runs
// of the legacy pipeline, is not one.
func (c Class) Mismatched() bool { return c.Compared() && c != ClassEqual && c != ClassNoise }

// Sampled reports whether a comparison of class c is kept as a sample
// with both sides: every mismatch, and noise, so that an operator can see
// what was counted as noise.
func (c Class) Sampled() bool { return c.Mismatched() || c == ClassNoise }

// Pipeline is one of a migration's two pipelines.
type Pipeline struct {
	URL string `json:"url"`
}

// Pipelines are the old and the rewritten pipeline of a migration.
type Pipelines struct {
	Legacy Pipeline `json:"legacy"`
	New    Pipeline `json:"new"`
}

// CompareRules normalize effects before they are diffed, and say how
// noise is learned.
type CompareRules struct {
	Ignore []string `json:"ignore"` // JSON paths such as fields.updatedAt
	Sets   []string `json:"sets"`   // paths of slices compared as sets
	// AllowExtraKinds are effect kinds the new pipeline may add to an
	// event's own effects without a mismatch (a ticket event that also
	// updates a contact). internal/compare says exactly when they apply.
	AllowExtraKinds []string `json:"allowExtraKinds,omitempty"`
	// NoiseSampleRate is the share of events of partners in shadow or new
	// that routers run through the legacy pipeline a second time, in
	// dry-run, to learn noise; nil means DefaultNoiseSampleRate (stored
	// migrations from before the field), 0 turns learning off. Read it
	// with NoiseRate.
	NoiseSampleRate *float64 `json:"noiseSampleRate,omitempty"`
	// NoisePins are the operators' decisions on field paths, which
	// override what routers learn. They are set with the noise pin
	// endpoint only: a PUT of the migration keeps them.
	NoisePins []NoisePin `json:"noisePins,omitempty"`
}

// MaxAllowExtraKinds bounds CompareRules.AllowExtraKinds: a migration
// names the few kinds its rewrite touches on purpose, not a catalogue.
const MaxAllowExtraKinds = 32

// validate checks the paths and the allowed kinds.
func (r CompareRules) validate() error {
	for _, p := range append(append([]string(nil), r.Ignore...), r.Sets...) {
		if !validPath(p) {
			return Errorf(CodeInvalid, "compare: path %q is invalid: use dot-separated field names such as fields.updatedAt, optionally scoped to an event type as ticket:fields.updatedAt", p)
		}
	}
	if len(r.AllowExtraKinds) > MaxAllowExtraKinds {
		return Errorf(CodeInvalid, "compare: allowExtraKinds lists %d kinds: at most %d are allowed", len(r.AllowExtraKinds), MaxAllowExtraKinds)
	}
	seen := make(map[string]bool, len(r.AllowExtraKinds))
	for _, k := range r.AllowExtraKinds {
		switch {
		case k == "" || len(k) > 200:
			return Errorf(CodeInvalid, "compare: allowExtraKinds holds a kind of %d characters: each must be 1 to 200 characters, such as contact", len(k))
		case seen[k]:
			return Errorf(CodeInvalid, "compare: allowExtraKinds lists the kind %q twice: name each kind once", k)
		}
		seen[k] = true
	}
	return nil
}

// DefaultNoiseSampleRate is the noise sample rate of a migration that does
// not set one.
const DefaultNoiseSampleRate = 0.05

// NoiseRate returns the noise sample rate in force.
func (r CompareRules) NoiseRate() float64 {
	if r.NoiseSampleRate == nil {
		return DefaultNoiseSampleRate
	}
	return *r.NoiseSampleRate
}

// NoiseProbesPath is the reserved path of a noise observation that counts
// probes, the events of a partner and type run through legacy a second
// time, whether or not any path differed: routers report it beside the
// paths and stores keep it beside them (outside NoisePathsKept), so that
// a path's count can be weighed against the probes. It has no kind, so it
// is never a valid noise path.
const NoiseProbesPath = "probes"

// NoiseMinShare is the share of a partner and type's probes a path must
// have differed in to be learned as noise. Timestamps and generated ids
// differ on every run, so they clear it easily; a field that differs
// rarely (a random tie-break on 1% of runs) is a legacy bug, not noise,
// and learning it would hide a new pipeline that gets the field wrong on
// every event.
const NoiseMinShare = 0.5

// NoiseLearnedAfter is how many times a field path must have differed
// between two legacy runs, for one partner and event type, before it is
// noise: once may be a legacy bug on one event, three times is a habit.
const NoiseLearnedAfter = 3

// NoisePathsKept bounds the field paths kept per migration, partner and
// event type, by routers and by the control service alike: a legacy
// pipeline that stamps fields under ever new names cannot fill a store.
const NoisePathsKept = 100

// MaxNoisePins bounds a migration's pins.
const MaxNoisePins = 500

// Pin is what an operator decided about a field path.
type Pin string

const (
	// PinNoise makes a path noise even before it is learned.
	PinNoise Pin = "noise"
	// PinSignal makes a path never noise, even once learned: a field the
	// operator knows matters.
	PinSignal Pin = "signal"
)

// NoisePin is an operator's decision on one field path of one event
// type's effects, for every partner of the migration.
type NoisePin struct {
	EventType string `json:"eventType"`
	Path      string `json:"path"`
	As        Pin    `json:"as"`
}

// Validate checks a pin: a known decision, an event type and a path as
// compare.Result.Paths writes them, kind:fields.a.b or
// kind:fields.list[].id, where kind is the effects' kind.
func (p NoisePin) Validate() error {
	switch {
	case p.As != PinNoise && p.As != PinSignal:
		return Errorf(CodeInvalid, "noise pin: as %q is unknown: use noise or signal", p.As)
	case p.EventType == "" || len(p.EventType) > 200:
		return Errorf(CodeInvalid, "noise pin: eventType must be 1 to 200 characters")
	case !NoisePathValid(p.Path):
		return Errorf(CodeInvalid, "noise pin: path %q is invalid: write it as the noise list shows it, the effects' kind, a colon and a field inside them, such as ticket:fields.processedAt or ticket:fields.lines[].price (never a whole list element, [] at the end)", p.Path)
	}
	return nil
}

// NoisePathValid reports whether p is a path that may be noise, as
// compare.Result.Paths writes it: an effect kind without a colon, a colon,
// "fields", then names after dots or quoted names and [] in brackets, at
// most 200 characters. A path ending in [] names a whole list element,
// which is never noise (an element lost, added or moved is what noise
// must not hide), so it is refused.
func NoisePathValid(p string) bool {
	kind, field, ok := strings.Cut(p, ":")
	if !ok || kind == "" || len(p) > 200 {
		return false
	}
	rest, ok := strings.CutPrefix(field, "fields")
	if !ok || strings.HasSuffix(field, ".") || strings.HasSuffix(field, "[]") || strings.Contains(field, "..") {
		return false
	}
	return rest == "" || rest[0] == '.' || rest[0] == '['
}

// NoiseObservation is how many times a field path differed between two
// runs of the legacy pipeline, for one partner's events of one type, as a
// router reports it; with Path NoiseProbesPath, how many probes there
// were.
type NoiseObservation struct {
	Migration string `json:"migration"`
	Partner   string `json:"partner"`
	EventType string `json:"eventType"`
	Path      string `json:"path"`
	Count     uint64 `json:"count"`
}

// NoisePath is one field path of a partner's events of one type, as the
// control service knows it: how many times it differed between two legacy
// runs (all routers together) in how many probes of the partner and type,
// whether that makes it noise, and the pin.
type NoisePath struct {
	EventType string `json:"eventType"`
	Path      string `json:"path"`
	Count     uint64 `json:"count"`
	Probes    uint64 `json:"probes"`
	// Learned is what NoiseLearned says of Count and Probes.
	Learned bool `json:"learned"`
	// Pin is the operator's decision, "" when none.
	Pin Pin `json:"pin,omitempty"`
	// Noise is what comparisons make of the path: pinned noise, or
	// learned and not pinned signal.
	Noise bool `json:"noise"`
}

// NoiseLearned reports whether a path that differed count times in probes
// probes is learned as noise: seen at least NoiseLearnedAfter times, and
// in at least NoiseMinShare of the probes. A count above probes (probes
// lost on the way, a report counted twice) is not trusted: not learned.
func NoiseLearned(count, probes uint64) bool {
	return count >= NoiseLearnedAfter && count <= probes && float64(count) >= NoiseMinShare*float64(probes)
}

// IsNoise is the rule that makes a path noise: a pin decides; without
// one, NoiseLearned of the path's count in probes probes.
func IsNoise(count, probes uint64, pin Pin) bool {
	switch pin {
	case PinNoise:
		return true
	case PinSignal:
		return false
	}
	return NoiseLearned(count, probes)
}

// Gates decide whether partners may move forward from shadow or new.
type Gates struct {
	MinComparisons  int     `json:"minComparisons"`
	MaxMismatchRate float64 `json:"maxMismatchRate"`
	ZeroTolerance   []Class `json:"zeroTolerance"`
	MinBakeSeconds  int     `json:"minBakeSeconds"`
	MaxErrorRate    float64 `json:"maxErrorRate"`
	MinCoverage     float64 `json:"minCoverage"`
	// MinPerEventType is the comparisons each event type the partner sent
	// needs before the gates can pass; 0 turns the rule off.
	MinPerEventType int `json:"minPerEventType"`
}

// DefaultMinPerEventType is the default of Gates.MinPerEventType: canary
// analysis (Kayenta) refuses to judge a metric on fewer than about 50
// data points.
const DefaultMinPerEventType = 50

// UnmarshalJSON reads gates as stored by any release. Gates written before
// minPerEventType existed take its default; they may carry the setting it
// replaced, minComparisonsPerType, whose 0 was its default ("off") and
// whose other values are kept. It returns the decoder's errors.
func (g *Gates) UnmarshalJSON(b []byte) error {
	type plain Gates
	var in struct {
		plain
		MinPerEventType       *int `json:"minPerEventType"`
		MinComparisonsPerType *int `json:"minComparisonsPerType"`
	}
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	*g = Gates(in.plain)
	switch {
	case in.MinPerEventType != nil:
		g.MinPerEventType = *in.MinPerEventType
	case in.MinComparisonsPerType != nil && *in.MinComparisonsPerType != 0:
		g.MinPerEventType = *in.MinComparisonsPerType
	default:
		g.MinPerEventType = DefaultMinPerEventType
	}
	return nil
}

// DefaultGates are the gates of API.md.
func DefaultGates() Gates {
	return Gates{
		MinComparisons:  200,
		MaxMismatchRate: 0.001,
		ZeroTolerance:   []Class{ClassTypeMismatch, ClassMissing, ClassEmpty, ClassErrorAsymmetry},
		MinBakeSeconds:  3600,
		MaxErrorRate:    0.01,
		MinCoverage:     0.99,
		MinPerEventType: DefaultMinPerEventType,
	}
}

// Validate checks the gates' ranges.
func (g Gates) Validate() error {
	switch {
	case g.MinComparisons < 0 || g.MinPerEventType < 0 || g.MinBakeSeconds < 0:
		return Errorf(CodeInvalid, "gates: minComparisons, minPerEventType and minBakeSeconds must not be negative")
	case !isRate(g.MaxMismatchRate) || !isRate(g.MaxErrorRate) || !isRate(g.MinCoverage):
		return Errorf(CodeInvalid, "gates: maxMismatchRate, maxErrorRate and minCoverage must be between 0 and 1")
	}
	seen := make(map[Class]bool, len(g.ZeroTolerance))
	for _, c := range g.ZeroTolerance {
		if !c.Valid() || !c.Mismatched() {
			return Errorf(CodeInvalid, "gates: zeroTolerance class %q is not a mismatch class: use value_diff, type_mismatch, missing, extra, empty or error_asymmetry", c)
		}
		if seen[c] {
			return Errorf(CodeInvalid, "gates: zeroTolerance lists the class %q twice: name each class once", c)
		}
		seen[c] = true
	}
	return nil
}

// GuardScope is what the guard reverts when it trips.
type GuardScope string

const (
	ScopePartner   GuardScope = "partner"
	ScopeCohort    GuardScope = "cohort"
	ScopeMigration GuardScope = "migration"
)

// Guard reverts automatically when a partner on the new pipeline misbehaves.
type Guard struct {
	Scope           GuardScope `json:"scope"`
	Window          int        `json:"window"`
	MaxMismatchRate float64    `json:"maxMismatchRate"`
	MaxErrorRate    float64    `json:"maxErrorRate"`
}

// DefaultGuard reverts one partner past 1% mismatches or 5% errors over the
// last 200 comparisons, and on any zero-tolerance class at once.
func DefaultGuard() Guard {
	return Guard{Scope: ScopePartner, Window: 200, MaxMismatchRate: 0.01, MaxErrorRate: 0.05}
}

// Validate checks the guard's settings.
func (g Guard) Validate() error {
	switch {
	case g.Scope != ScopePartner && g.Scope != ScopeCohort && g.Scope != ScopeMigration:
		return Errorf(CodeInvalid, "guard: scope %q is unknown: use partner, cohort or migration", g.Scope)
	case g.Window < 1 || g.Window > 100000:
		return Errorf(CodeInvalid, "guard: window must be between 1 and 100000 comparisons")
	case !isRate(g.MaxMismatchRate) || !isRate(g.MaxErrorRate):
		return Errorf(CodeInvalid, "guard: maxMismatchRate and maxErrorRate must be between 0 and 1")
	}
	return nil
}

// Migration is the unit a flag stands for; Key is the flag key.
type Migration struct {
	Key         string       `json:"key"`
	Description string       `json:"description"`
	Pipelines   Pipelines    `json:"pipelines"`
	Compare     CompareRules `json:"compare"`
	Gates       Gates        `json:"gates"`
	Guard       Guard        `json:"guard"`
	// Reconcile is when the control service reconciles the migration's
	// partners on its own; nil is never.
	Reconcile *ReconcilePolicy `json:"reconcile,omitempty"`
	// Autopilot lets the control service advance cohorts on its own; nil
	// is never.
	Autopilot *AutopilotPolicy `json:"autopilot,omitempty"`
	// AutopilotState is the autopilot's pause and its recent moves. The
	// control service keeps it: a PUT of the migration leaves it as it is.
	AutopilotState *AutopilotState `json:"autopilotState,omitempty"`
	// Approvals says which forward moves wait for other operators'
	// approvals as change requests; nil is none.
	Approvals *ApprovalPolicy `json:"approvals,omitempty"`
	// Reverted is the kill switch: while on, every partner evaluates to legacy.
	Reverted  bool      `json:"reverted"`
	Seq       uint64    `json:"seq"` // creation order: the ingress default is the first
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Validate checks the migration's settings.
func (m Migration) Validate() error {
	if err := CheckID("migration", m.Key); err != nil {
		return err
	}
	if err := CheckText("description", m.Description, 2000); err != nil {
		return err
	}
	for name, p := range map[string]Pipeline{"legacy": m.Pipelines.Legacy, "new": m.Pipelines.New} {
		if err := checkPipelineURL(p.URL); err != nil {
			return Errorf(CodeInvalid, "pipelines.%s.url: %s", name, err.Error())
		}
	}
	if err := m.Compare.validate(); err != nil {
		return err
	}
	if r := m.Compare.NoiseSampleRate; r != nil && !isRate(*r) {
		return Errorf(CodeInvalid, "compare: noiseSampleRate must be between 0 and 1")
	}
	if len(m.Compare.NoisePins) > MaxNoisePins {
		return Errorf(CodeInvalid, "compare: more than %d noise pins", MaxNoisePins)
	}
	pinned := make(map[[2]string]bool, len(m.Compare.NoisePins))
	for _, p := range m.Compare.NoisePins {
		if err := p.Validate(); err != nil {
			return err
		}
		if pinned[[2]string{p.EventType, p.Path}] {
			return Errorf(CodeInvalid, "compare: the path %q of %q is pinned twice", p.Path, p.EventType)
		}
		pinned[[2]string{p.EventType, p.Path}] = true
	}
	if err := m.Gates.Validate(); err != nil {
		return err
	}
	if m.Reconcile != nil {
		if err := m.Reconcile.Validate(); err != nil {
			return err
		}
	}
	if m.Autopilot != nil {
		if err := m.Autopilot.Validate(); err != nil {
			return err
		}
	}
	if m.Approvals != nil {
		if err := m.Approvals.Validate(); err != nil {
			return err
		}
	}
	return m.Guard.Validate()
}

func checkPipelineURL(s string) error {
	if s == "" {
		return Errorf(CodeInvalid, "is required")
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return Errorf(CodeInvalid, "%q is not an http or https URL", s)
	}
	return nil
}

// validPath accepts "fields.updatedAt", "updatedAt", and a path scoped to
// an event type as "ticket:fields.updatedAt".
func validPath(p string) bool {
	if p == "" || len(p) > 200 {
		return false
	}
	// A colon before any dot scopes the path; after one, it is part of a
	// field's name ("fields.ns:name").
	if scope, rest, scoped := strings.Cut(p, ":"); scoped && !strings.Contains(scope, ".") {
		if scope == "" || strings.Contains(scope, " ") {
			return false
		}
		p = rest
	}
	if p == "" {
		return false
	}
	for _, part := range strings.Split(p, ".") {
		if part == "" {
			return false
		}
	}
	return true
}

func isRate(f float64) bool { return f >= 0 && f <= 1 }
