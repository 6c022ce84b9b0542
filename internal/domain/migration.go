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
)

// Classes lists every class in a stable order.
var Classes = []Class{ClassEqual, ClassValueDiff, ClassTypeMismatch, ClassMissing, ClassExtra,
	ClassEmpty, ClassErrorAsymmetry, ClassPrimaryError, ClassShadowError, ClassSkipped}

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

// Mismatched reports whether c is a comparison that did not come out equal.
func (c Class) Mismatched() bool { return c.Compared() && c != ClassEqual }

// Pipeline is one of a migration's two pipelines.
type Pipeline struct {
	URL string `json:"url"`
}

// Pipelines are the old and the rewritten pipeline of a migration.
type Pipelines struct {
	Legacy Pipeline `json:"legacy"`
	New    Pipeline `json:"new"`
}

// CompareRules normalize effects before they are diffed.
type CompareRules struct {
	Ignore []string `json:"ignore"` // JSON paths such as fields.updatedAt
	Sets   []string `json:"sets"`   // paths of slices compared as sets
	// AllowExtraKinds are effect kinds the new pipeline may add to an
	// event's own effects without a mismatch (a ticket event that also
	// updates a contact). internal/compare says exactly when they apply.
	AllowExtraKinds []string `json:"allowExtraKinds,omitempty"`
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
	if err := m.Gates.Validate(); err != nil {
		return err
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
