package wire

import (
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// The reconciliations of the control API (docs/api.md, "Reconciliations"):
// what POST /v1/reconciliations takes and every reconciliation endpoint
// answers. internal/reconcile runs them; the API, the UI, the CLI and the
// demo read these.

// The states of a reconciliation, of a partner in it, and of a backfill.
const (
	ReconcileRunning = "running"
	ReconcileDone    = "done"
	ReconcileFailed  = "failed"

	PartnerPending  = "pending"
	PartnerReading  = "reading"  // asking the PSA what changed
	PartnerChecking = "checking" // holding the changes against the journal
)

// What started a reconciliation.
const (
	TriggerManual   = "manual"
	TriggerRevert   = "revert"
	TriggerSchedule = "schedule"
)

// GapReason says why a change is a gap, or uncertain, or reflected:
// internal/reconcile's rule decides which.
type GapReason string

const (
	ReasonApplied          GapReason = "applied"            // Reflected
	ReasonPending          GapReason = "pending"            // InFlight
	ReasonWithinSkew       GapReason = "within_skew"        // Uncertain: received within the skew bound of the change, no stamp
	ReasonPrecision        GapReason = "precision"          // Uncertain: the stamps are equal to the coarser precision
	ReasonRecent           GapReason = "recent"             // Uncertain: changed too recently for its webhook to have surely arrived
	ReasonDeadLettered     GapReason = "dead_lettered"      // Gap: the event that would reflect it failed permanently
	ReasonShadowOnly       GapReason = "shadow_only"        // Gap: the primary failed it; only the shadow ran it, in dry-run
	ReasonDeleteNotApplied GapReason = "delete_not_applied" // Gap: the PSA deleted the entity; no deletion was applied
	ReasonOlderOnly        GapReason = "older_only"         // Gap: only events older than the change were applied
	ReasonNoEvent          GapReason = "no_event"           // Gap: the journal knows no event about the entity
)

// ReconcileRequest is what to reconcile.
type ReconcileRequest struct {
	Partners []string  `json:"partners"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Backfill bool      `json:"backfill"`
	// Skew bounds how far the PSA's clock may be from switchback's; nil
	// is reconcile.DefaultSkew.
	Skew *Duration `json:"skew"`
	// Settle is how long a webhook may take to arrive after its change;
	// nil is reconcile.DefaultSettle.
	Settle *Duration `json:"settle"`
}

// Duration is a time.Duration written as Go writes it ("2m0s") in JSON.
type Duration time.Duration

// MarshalText writes d as time.Duration.String does.
func (d Duration) MarshalText() ([]byte, error) { return []byte(time.Duration(d).String()), nil }

// UnmarshalText reads what time.ParseDuration reads.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Reconciliation is one reconciliation, as the API and the UI show it.
type Reconciliation struct {
	ID         string             `json:"id"`
	State      string             `json:"state"`
	Error      string             `json:"error,omitempty"`
	Trigger    string             `json:"trigger"`
	Actor      string             `json:"actor"`
	Request    ReconcileRequest   `json:"request"`
	CreatedAt  time.Time          `json:"createdAt"`
	FinishedAt time.Time          `json:"finishedAt,omitzero"`
	Partners   []ReconcilePartner `json:"partners"`
	Checked    int                `json:"checked"`
	GapCount   int                `json:"gapCount"`
	Uncertain  int                `json:"uncertainCount"`
	InFlight   int                `json:"inFlightCount"`
	Gaps       []Finding          `json:"gaps,omitempty"`
	Truncated  bool               `json:"gapsTruncated,omitempty"`
	Unsure     []Finding          `json:"uncertain,omitempty"`
	Backfill   *BackfillProgress  `json:"backfill"`
	// Backfillable says whether POST …/backfill would start one now: the
	// runner's answer, which the UI shows as a button.
	Backfillable bool `json:"backfillable"`
}

// ReconcilePartner is one partner's part of a reconciliation, and its
// progress.
type ReconcilePartner struct {
	Partner   string `json:"partner"`
	State     string `json:"state"`
	Changes   int    `json:"changes"`
	Checked   int    `json:"checked"`
	Reflected int    `json:"reflected"`
	InFlight  int    `json:"inFlight"`
	Uncertain int    `json:"uncertain"`
	Gaps      int    `json:"gaps"`
	Error     string `json:"error,omitempty"`
}

// Finding is one gap or uncertain change.
type Finding struct {
	Partner       string     `json:"partner"`
	Type          string     `json:"type"`
	ID            string     `json:"id"`
	UpdatedAt     time.Time  `json:"updatedAt"`
	LastAppliedAt *time.Time `json:"lastAppliedAt"`
	Reason        GapReason  `json:"reason"`
}

// BackfillProgress is a backfill of a reconciliation's gaps, and its
// progress.
type BackfillProgress struct {
	State      string `json:"state"`
	Events     int    `json:"events"`
	Journaled  int    `json:"journaled"`
	Duplicates int    `json:"duplicates"`
	// Skipped counts the gaps an event closed after the reconciliation:
	// judged again before sending, they are not sent.
	Skipped      int       `json:"skipped"`
	Applied      int       `json:"applied"`
	DeadLettered int       `json:"deadLettered"`
	Pending      int       `json:"pending"`
	StartedAt    time.Time `json:"startedAt"`
	FinishedAt   time.Time `json:"finishedAt,omitzero"`
	Error        string    `json:"error,omitempty"`
}

// Ended reports whether nothing more will change in r: the reconciliation
// has ended, and so has any backfill of it. A reconciliation asked to
// backfill shows its backfill running from the moment it is done.
func (r Reconciliation) Ended() bool {
	return r.State != ReconcileRunning && (r.Backfill == nil || r.Backfill.State != ReconcileRunning)
}

// ParseFrom reads a window's start as the API takes it: RFC 3339, or a
// duration ago such as "2h" before now. Its error is a domain error of
// code invalid_argument.
func ParseFrom(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d <= 0 {
		if len(s) > 64 {
			s = s[:64] + "…"
		}
		return time.Time{}, domain.Errorf(domain.CodeInvalid, "from: %q is neither RFC 3339 nor a duration ago such as 2h", s)
	}
	return now.Add(-d), nil
}
