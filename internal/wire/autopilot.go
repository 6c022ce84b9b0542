package wire

import (
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// What an autopilot waits for, or that it moves: AutopilotStatus.State.
const (
	AutopilotOff      = "off"            // no policy, or not enabled
	AutopilotPaused   = "paused"         // until an operator resumes it
	AutopilotReverted = "reverted"       // the kill switch is on
	AutopilotClosed   = "outside_window" // until the next window opens
	AutopilotLimit    = "daily_limit"    // maxAdvancesPerDay moves in the last 24 hours
	AutopilotDone     = "done"           // every cohort is done, or there is none
	AutopilotApproval = "approval"       // a change request of its next move is pending
	AutopilotGates    = "gates"          // the gates of its next move do not pass yet
	AutopilotReady    = "ready"          // it moves at its next step
)

// AutopilotStatus is what a migration's autopilot does now, and why.
type AutopilotStatus struct {
	Migration string                  `json:"migration"`
	Policy    *domain.AutopilotPolicy `json:"policy"`
	// State is one of the Autopilot… constants; Explanation says it in
	// words, with what it waits for.
	State        string                 `json:"state"`
	Explanation  string                 `json:"explanation"`
	Paused       *domain.AutopilotState `json:"paused,omitempty"` // set while paused: by whom, when, why
	InWindow     bool                   `json:"inWindow"`
	WindowCloses *time.Time             `json:"windowCloses,omitempty"`
	NextWindow   *time.Time             `json:"nextWindow,omitempty"` // when outside a window
	// MovesToday are the autopilot's moves (advances and change requests
	// filed) in the last 24 hours, against MaxAdvancesPerDay.
	MovesToday        int        `json:"movesToday"`
	MaxAdvancesPerDay int        `json:"maxAdvancesPerDay"`
	LastMove          *time.Time `json:"lastMove,omitempty"`
	// Next is the move the autopilot makes next, when there is one.
	Next *AutopilotMove `json:"next,omitempty"`
	// Change is the pending change request of the next move (approval).
	Change string `json:"change,omitempty"`
	// Gate is the report of the next move's gates when it was judged.
	Gate *gate.Report `json:"gate,omitempty"`
}

// AutopilotMove is a cohort's next step.
type AutopilotMove struct {
	Cohort   string       `json:"cohort"`
	From     domain.Stage `json:"from"`
	To       domain.Stage `json:"to"`
	Partners []string     `json:"partners"`
}
