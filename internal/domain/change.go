package domain

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"slices"
	"time"
)

// ApprovalPolicy is which forward moves of a migration need other
// operators' approval before they happen (docs/api.md, "Approvals and
// change requests"). A migration without one (a nil *ApprovalPolicy, as
// every migration stored before the setting existed) needs none. A policy
// in a published State is shared between states and never changed in
// place. Its JSON is approvalJSON's (the tags name the fields for the
// API's strict decoding).
type ApprovalPolicy struct {
	// Required is how many approvals, each of another token than the
	// requester's, a change request needs.
	Required int `json:"required"`
	// Stages are the stages a forward move into needs approvals.
	Stages []Stage `json:"stages"`
	// TTL is how long a change request waits for its approvals before it
	// expires; 0 is DefaultApprovalTTL (read it with EffectiveTTL).
	TTL time.Duration `json:"ttl"`
}

// Bounds and default of an ApprovalPolicy.
const (
	MaxApprovalsRequired = 10
	DefaultApprovalTTL   = 24 * time.Hour
	// MaxApprovalTTL is 30 days: a change request older than that was
	// decided on gates and people that are no longer there.
	MaxApprovalTTL = 720 * time.Hour
)

// Requires reports whether a forward move into stage to needs approvals.
// A nil policy requires none. Backward moves never need approval: the
// caller asks only for forward ones.
func (p *ApprovalPolicy) Requires(to Stage) bool {
	return p != nil && slices.Contains(p.Stages, to)
}

// EffectiveTTL returns how long a change request waits: TTL, or
// DefaultApprovalTTL when TTL is 0.
func (p ApprovalPolicy) EffectiveTTL() time.Duration {
	if p.TTL == 0 {
		return DefaultApprovalTTL
	}
	return p.TTL
}

// Validate checks the policy's bounds. Its errors have CodeInvalid and
// name the field.
func (p ApprovalPolicy) Validate() error {
	switch {
	case p.Required < 1 || p.Required > MaxApprovalsRequired:
		return Errorf(CodeInvalid, "approvals: required is %d: a change needs 1 to %d approvals (leave approvals out for none)", p.Required, MaxApprovalsRequired)
	case len(p.Stages) == 0:
		return Errorf(CodeInvalid, "approvals: stages is empty: name the stages whose forward moves need approvals, such as [\"new\", \"done\"] (leave approvals out for none)")
	case p.TTL < 0 || p.TTL > MaxApprovalTTL:
		return Errorf(CodeInvalid, "approvals: ttl is %s: a change request waits more than 0s and at most %s (30 days); leave it out for %s", p.TTL, MaxApprovalTTL, DefaultApprovalTTL)
	}
	seen := make(map[Stage]bool, len(p.Stages))
	for _, st := range p.Stages {
		if st != StageShadow && st != StageNew && st != StageDone {
			return Errorf(CodeInvalid, "approvals: stage %q cannot need approvals: use shadow, new or done (moves into legacy are backward and never wait)", st)
		}
		if seen[st] {
			return Errorf(CodeInvalid, "approvals: stages lists %q twice: name each stage once", st)
		}
		seen[st] = true
	}
	return nil
}

// approvalJSON is an ApprovalPolicy as JSON writes it: the TTL as Go
// writes durations ("24h0m0s"), read back by time.ParseDuration ("24h").
type approvalJSON struct {
	Required int     `json:"required"`
	Stages   []Stage `json:"stages"`
	TTL      *string `json:"ttl,omitempty"`
}

// MarshalJSON writes the policy with its TTL in force.
func (p ApprovalPolicy) MarshalJSON() ([]byte, error) {
	ttl := p.EffectiveTTL().String()
	stages := p.Stages
	if stages == nil {
		stages = []Stage{}
	}
	return json.Marshal(approvalJSON{Required: p.Required, Stages: stages, TTL: &ttl})
}

// UnmarshalJSON reads the TTL as time.ParseDuration does; an absent or
// null ttl is the default. It returns the decoder's errors, and an error
// with CodeInvalid for a ttl that is not a duration or not above 0.
func (p *ApprovalPolicy) UnmarshalJSON(b []byte) error {
	var in approvalJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	out := ApprovalPolicy{Required: in.Required, Stages: in.Stages}
	if in.TTL != nil {
		d, err := time.ParseDuration(*in.TTL)
		if err != nil {
			return Errorf(CodeInvalid, "approvals: ttl %q is not a duration: write one such as 24h or 90m", *in.TTL)
		}
		if d <= 0 {
			return Errorf(CodeInvalid, "approvals: ttl is %s: a change request waits more than 0s; leave ttl out for %s", d, DefaultApprovalTTL)
		}
		out.TTL = d
	}
	*p = out
	return nil
}

// ChangeKind is what a change request moves.
type ChangeKind string

const (
	// ChangeAdvance moves a cohort's partners at its lowest stage one
	// stage forward (POST …/cohorts/{name}/advance).
	ChangeAdvance ChangeKind = "advance"
	// ChangeStage moves one partner one stage forward (PUT …/partners/{id}).
	ChangeStage ChangeKind = "stage"
)

// ChangeState is where a change request stands. Only pending changes;
// the others are ended and never change again.
type ChangeState string

const (
	ChangePending  ChangeState = "pending"  // waiting for approvals
	ChangeApplied  ChangeState = "applied"  // approved, and the move was made
	ChangeRejected ChangeState = "rejected" // an operator rejected it
	ChangeExpired  ChangeState = "expired"  // not approved before ExpiresAt
	ChangeFailed   ChangeState = "failed"   // approved, and the move could not be made
)

// ChangeStates lists every state, pending first.
var ChangeStates = []ChangeState{ChangePending, ChangeApplied, ChangeRejected, ChangeExpired, ChangeFailed}

// ParseChangeState returns the state named s or an invalid_argument error.
func ParseChangeState(s string) (ChangeState, error) {
	if st := ChangeState(s); slices.Contains(ChangeStates, st) {
		return st, nil
	}
	return "", Errorf(CodeInvalid, "change state %q is unknown: use pending, applied, rejected, expired or failed", s)
}

// ChangeActor is the actor of what switchback decides itself about a
// change request: expiring it, failing it when its move cannot be made.
const ChangeActor = "switchback"

// Approval is one token's approval of a change request.
type Approval struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// ChangeEnd is who or what ended a change request, when and why: the
// approver whose approval applied it (or made it fail), the operator who
// rejected it, or switchback for an expiry.
type ChangeEnd struct {
	By     string    `json:"by"`
	At     time.Time `json:"at"`
	Reason string    `json:"reason,omitempty"`
}

// ChangeRequest is a forward move that waits for approvals instead of
// happening (docs/api.md, "Approvals and change requests").
type ChangeRequest struct {
	ID        string     `json:"id"`
	Migration string     `json:"migration"`
	Kind      ChangeKind `json:"kind"`
	// Cohort is set for an advance, Partner for a stage change.
	Cohort  string `json:"cohort,omitempty"`
	Partner string `json:"partner,omitempty"`
	// From and To are the stages of the move: the cohort's lowest stage,
	// or the partner's, when the change was filed, and the next one.
	From Stage `json:"from"`
	To   Stage `json:"to"`
	// Force skips the gates, at filing and when the move is made; the
	// kill switch still stops it.
	Force       bool        `json:"force"`
	RequestedBy string      `json:"requestedBy"`
	Reason      string      `json:"reason"`
	RequestedAt time.Time   `json:"requestedAt"`
	ExpiresAt   time.Time   `json:"expiresAt"`
	State       ChangeState `json:"state"`
	// Required is how many approvals the change needs, from its
	// migration's policy when it was filed.
	Required  int        `json:"required"`
	Approvals []Approval `json:"approvals"`
	// Ended and EndedAt are set once the change is no longer pending.
	Ended   *ChangeEnd `json:"ended,omitempty"`
	EndedAt *time.Time `json:"endedAt,omitempty"`
	// Result is what was applied: the advance's result ({cohort, from,
	// to, partners}) or the partner's new stage ({partner, stage, since}).
	Result json.RawMessage `json:"result,omitempty"`
	// Failure says why a failed change's move could not be made, and
	// Report is the gate report when the gates refused it (its partners
	// that did not pass, at most MaxChangeReportPartners).
	Failure string          `json:"failure,omitempty"`
	Report  json.RawMessage `json:"report,omitempty"`
}

// MaxChangeReportPartners bounds the partners of a failed change's gate
// report, so that a change request of a large cohort stays small to store
// and to load.
const MaxChangeReportPartners = 20

// NewChangeID returns a fresh change request id, "chg_" and 24 hex digits.
func NewChangeID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return "chg_" + hex.EncodeToString(b[:])
}

// ValidChangeID reports whether s is a change request id as NewChangeID
// makes them.
func ValidChangeID(s string) bool {
	if len(s) != 4+24 || s[:4] != "chg_" {
		return false
	}
	_, err := hex.DecodeString(s[4:])
	return err == nil
}

// Pending reports whether c still waits for approvals at now: stored as
// pending, and not past ExpiresAt.
func (c ChangeRequest) Pending(now time.Time) bool {
	return c.State == ChangePending && now.Before(c.ExpiresAt)
}

// AsOf returns c as it stands at now: a pending change past its ExpiresAt
// is expired, ended by switchback at ExpiresAt, even before
// Service.ExpireChanges stored it so. This is the one rule of expiry.
func (c ChangeRequest) AsOf(now time.Time) ChangeRequest {
	if c.State != ChangePending || c.Pending(now) {
		return c
	}
	return c.End(ChangeExpired, ChangeEnd{By: ChangeActor, At: c.ExpiresAt, Reason: "not approved in time"})
}

// End returns c ended in state by e. Its approvals are copied, so that
// the result shares nothing that may change with c.
func (c ChangeRequest) End(state ChangeState, e ChangeEnd) ChangeRequest {
	c.Approvals = slices.Clone(c.Approvals)
	c.State, c.Ended = state, &e
	at := e.At
	c.EndedAt = &at
	return c
}

// Approved returns whether token by approved c.
func (c ChangeRequest) Approved(by string) bool {
	return slices.ContainsFunc(c.Approvals, func(a Approval) bool { return a.By == by })
}

// Target is how the audit log and notices name the change request.
func (c ChangeRequest) Target() string {
	return "migration/" + c.Migration + "/change/" + c.ID
}

// What says in a few words what the change moves: "cohort wave-1 from
// shadow to new", "partner acme from shadow to new".
func (c ChangeRequest) What() string {
	if c.Kind == ChangeStage {
		return "partner " + c.Partner + " from " + string(c.From) + " to " + string(c.To)
	}
	return "cohort " + c.Cohort + " from " + string(c.From) + " to " + string(c.To)
}

// SameMove reports whether c and o ask for the same move: the same
// migration, cohort or partner, from and to stages.
func (c ChangeRequest) SameMove(o ChangeRequest) bool {
	return c.Migration == o.Migration && c.Kind == o.Kind && c.Cohort == o.Cohort && c.Partner == o.Partner &&
		c.From == o.From && c.To == o.To
}
