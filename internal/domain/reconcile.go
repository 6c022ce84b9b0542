package domain

import (
	"encoding/json"
	"time"
)

// ReconcilePolicy is when the control service reconciles a migration's
// partners against their PSAs on its own (docs/api.md, "Automatic
// reconciliations"). A migration without one (a nil *ReconcilePolicy, as
// every migration stored before the setting existed) is never reconciled
// automatically. A policy in a published State is shared between states
// and never changed in place.
type ReconcilePolicy struct {
	// AfterRevert reconciles the partners a revert takes off the new
	// pipeline, over the time they were on it.
	AfterRevert bool `json:"afterRevert"`
	// Every is the period of scheduled reconciliations; 0 is none.
	Every time.Duration `json:"every"`
	// Window is how far back a scheduled reconciliation looks; 0 is
	// Every. Read it with EffectiveWindow.
	Window time.Duration `json:"window"`
}

// Bounds of a ReconcilePolicy. A scheduled reconciliation asks every
// partner's PSA for its changes, so a period shorter than MinReconcileEvery
// would spend the PSAs' rate limits on windows too short to matter; a
// reconciliation never looks back further than MaxReconcileWindow, and the
// period is bounded the same because the window defaults to it.
const (
	MinReconcileEvery  = 5 * time.Minute
	MaxReconcileWindow = 31 * 24 * time.Hour
)

// EffectiveWindow returns how far back a scheduled reconciliation looks:
// Window, or Every when Window is 0.
func (p ReconcilePolicy) EffectiveWindow() time.Duration {
	if p.Window == 0 {
		return p.Every
	}
	return p.Window
}

// Validate checks the policy's bounds. Its errors have CodeInvalid and
// name the field.
func (p ReconcilePolicy) Validate() error {
	switch {
	case p.Every < 0:
		return Errorf(CodeInvalid, "reconcile: every must not be negative: use 0s for no scheduled reconciliation, or a period such as 1h")
	case p.Every > 0 && p.Every < MinReconcileEvery:
		return Errorf(CodeInvalid, "reconcile: every is %s: a period is at least %s (0s for no scheduled reconciliation)", p.Every, MinReconcileEvery)
	case p.Every > MaxReconcileWindow:
		return Errorf(CodeInvalid, "reconcile: every is %s: a period is at most %s (31 days)", p.Every, MaxReconcileWindow)
	case p.Window < 0:
		return Errorf(CodeInvalid, "reconcile: window must not be negative: use 0s to look back one period (every), or a span such as 2h")
	case p.Window > MaxReconcileWindow:
		return Errorf(CodeInvalid, "reconcile: window is %s: a reconciliation looks back at most %s (31 days)", p.Window, MaxReconcileWindow)
	}
	return nil
}

// reconcileJSON is a ReconcilePolicy as JSON writes it: durations as Go
// writes them ("1h0m0s"), read back by time.ParseDuration ("1h", "90m").
type reconcileJSON struct {
	AfterRevert bool    `json:"afterRevert"`
	Every       *string `json:"every"`
	Window      *string `json:"window"`
}

// MarshalJSON writes the durations as time.Duration.String does.
func (p ReconcilePolicy) MarshalJSON() ([]byte, error) {
	every, window := p.Every.String(), p.Window.String()
	return json.Marshal(reconcileJSON{AfterRevert: p.AfterRevert, Every: &every, Window: &window})
}

// UnmarshalJSON reads durations as time.ParseDuration does; a duration
// absent or null is 0. It returns the decoder's errors, and an error with
// CodeInvalid naming the field for a string that is not a duration.
func (p *ReconcilePolicy) UnmarshalJSON(b []byte) error {
	var in reconcileJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	out := ReconcilePolicy{AfterRevert: in.AfterRevert}
	for _, f := range []struct {
		name string
		s    *string
		d    *time.Duration
	}{{"every", in.Every, &out.Every}, {"window", in.Window, &out.Window}} {
		if f.s == nil {
			continue
		}
		d, err := time.ParseDuration(*f.s)
		if err != nil {
			return Errorf(CodeInvalid, "reconcile: %s %q is not a duration: write one such as 1h, 90m or 0s", f.name, *f.s)
		}
		*f.d = d
	}
	*p = out
	return nil
}
