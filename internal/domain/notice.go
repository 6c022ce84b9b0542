package domain

import (
	"crypto/rand"
	"encoding/hex"
	"time"
)

// The events a notification target may ask for. Each is emitted by the
// control service once the change it reports has committed (or, for
// gate.refused and router.stale, once it was seen), never before.
const (
	NoticeGuardRevert     = "guard.revert"     // the guard reverted partners
	NoticeRevert          = "revert"           // a person turned a kill switch on (one migration or all)
	NoticeResume          = "resume"           // a kill switch was turned off
	NoticeAdvance         = "advance"          // a cohort or a partner moved forward
	NoticeGateRefused     = "gate.refused"     // a forward move was refused by its gates
	NoticeChangePending   = "change.pending"   // a move waits for approvals
	NoticeAutopilotPaused = "autopilot.paused" // the autopilot paused itself
	NoticeRouterStale     = "router.stale"     // a router stopped reporting
	NoticeReconcileGaps   = "reconcile.gaps"   // a reconciliation found gaps
)

// NoticeEvents lists every notice event, in the order the API documents.
var NoticeEvents = []string{NoticeGuardRevert, NoticeRevert, NoticeResume, NoticeAdvance,
	NoticeGateRefused, NoticeChangePending, NoticeAutopilotPaused, NoticeRouterStale, NoticeReconcileGaps}

// Notice is one event for the notification targets: what happened, to
// what, who did it and why, with a one-line text for people (a Slack
// message) and the event's own detail.
type Notice struct {
	// ID is unique per notice and the same on every retry of its
	// delivery: receivers deduplicate on it (webhook-id).
	ID        string    `json:"id"`
	Event     string    `json:"event"`
	At        time.Time `json:"at"`
	Actor     string    `json:"actor,omitempty"`
	Migration string    `json:"migration,omitempty"`
	// Target is what the notice concerns, named as the audit log names it
	// (migration/KEY/cohort/NAME, router/ID).
	Target string `json:"target,omitempty"`
	Reason string `json:"reason,omitempty"`
	Text   string `json:"text"`
	Detail any    `json:"detail,omitempty"`
}

// NewNoticeID returns a fresh notice id, "ntc_" and 24 hex digits.
func NewNoticeID() string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24)
	return "ntc_" + hex.EncodeToString(b[:])
}
