package reconcile

import (
	"time"
)

// The states of a reconciliation, of a partner in it, and of a backfill.
const (
	StateRunning = "running"
	StateDone    = "done"
	StateFailed  = "failed"

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

// Limits of a reconciliation request and of what a job keeps.
const (
	MaxPartners     = 100
	MaxWindow       = 31 * 24 * time.Hour
	MaxSkew         = time.Hour
	DefaultSkew     = 2 * time.Minute
	DefaultSettle   = time.Minute
	MaxGapsShown    = 10000
	MaxUncertain    = 1000
	KeptJobs        = 100
	BackfillTimeout = 10 * time.Minute
)

// Request is what to reconcile.
type Request struct {
	Partners []string  `json:"partners"`
	From     time.Time `json:"from"`
	To       time.Time `json:"to"`
	Backfill bool      `json:"backfill"`
	// Skew bounds how far the PSA's clock may be from switchback's; nil
	// is DefaultSkew.
	Skew *Duration `json:"skew"`
	// Settle is how long a webhook may take to arrive after its change;
	// nil is DefaultSettle.
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

// Job is one reconciliation, as the API and the UI show it.
type Job struct {
	ID         string          `json:"id"`
	State      string          `json:"state"`
	Error      string          `json:"error,omitempty"`
	Trigger    string          `json:"trigger"`
	Actor      string          `json:"actor"`
	Request    Request         `json:"request"`
	CreatedAt  time.Time       `json:"createdAt"`
	FinishedAt time.Time       `json:"finishedAt,omitzero"`
	Partners   []PartnerResult `json:"partners"`
	Checked    int             `json:"checked"`
	GapCount   int             `json:"gapCount"`
	Uncertain  int             `json:"uncertainCount"`
	InFlight   int             `json:"inFlightCount"`
	Gaps       []Finding       `json:"gaps,omitempty"`
	Truncated  bool            `json:"gapsTruncated,omitempty"`
	Unsure     []Finding       `json:"uncertain,omitempty"`
	Backfill   *BackfillResult `json:"backfill"`
}

// PartnerResult is one partner's part of a job, and its progress.
type PartnerResult struct {
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
	Reason        Reason     `json:"reason"`
}

// BackfillResult is a backfill of a job's gaps and its progress.
type BackfillResult struct {
	State        string    `json:"state"`
	Events       int       `json:"events"`
	Journaled    int       `json:"journaled"`
	Duplicates   int       `json:"duplicates"`
	Applied      int       `json:"applied"`
	DeadLettered int       `json:"deadLettered"`
	Pending      int       `json:"pending"`
	StartedAt    time.Time `json:"startedAt"`
	FinishedAt   time.Time `json:"finishedAt,omitzero"`
	Error        string    `json:"error,omitempty"`
}
