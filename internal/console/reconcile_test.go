package console

import (
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/wire"
)

// A finished job shows each gap with when the primary last applied
// something about the entity ("never" when nothing), the uncertain ones
// apart, and the backfill's counts; an id a PSA chose cannot act on the
// terminal.
func TestReconciliationTables(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	applied := at.Add(-time.Hour)
	skew, settle := wire.Duration(2*time.Minute), wire.Duration(time.Minute)
	job := wire.Reconciliation{ID: "rec_0123456789abcdef", State: wire.ReconcileDone, Trigger: wire.TriggerManual, Actor: "ops",
		Request:  wire.ReconcileRequest{Partners: []string{"acme"}, From: at.Add(-2 * time.Hour), To: at, Skew: &skew, Settle: &settle},
		Partners: []wire.ReconcilePartner{{Partner: "acme", State: wire.ReconcileDone, Changes: 5, Checked: 5, Reflected: 2, Uncertain: 1, Gaps: 2}},
		Checked:  5, GapCount: 2, Uncertain: 1,
		Gaps: []wire.Finding{
			{Partner: "acme", Type: "ticket", ID: "101", UpdatedAt: at.Add(-30 * time.Minute), Reason: "no_event"},
			{Partner: "acme", Type: "ticket", ID: "10\x1b[2J2", UpdatedAt: at.Add(-20 * time.Minute), LastAppliedAt: &applied, Reason: "older_only"},
		},
		Unsure:   []wire.Finding{{Partner: "acme", Type: "ticket", ID: "103", UpdatedAt: at.Add(-time.Minute), Reason: "recent"}},
		Backfill: &wire.BackfillProgress{State: wire.ReconcileDone, Events: 2, Journaled: 2, Applied: 2},
	}
	var b strings.Builder
	Reconciliation(&b, job)
	got := b.String()
	for _, want := range []string{
		"reconciliation rec_0123456789abcdef (manual, by ops): done, window 2026-03-01T10:00:00Z to 2026-03-01T12:00:00Z, skew 2m0s, settle 1m0s",
		"5 checked, 2 gaps, 1 uncertain, 0 in flight",
		"acme     ticket  101           2026-03-01T11:30:00Z  never                 no_event",
		`acme     ticket  "10\x1b[2J2"  2026-03-01T11:40:00Z  2026-03-01T11:00:00Z  older_only`,
		"uncertain (not gaps, never backfilled: reconcile again later):",
		"2026-03-01T11:59:00Z  never         recent",
		"backfill done: 2 events, 2 journaled, 0 duplicates (already backfilled), 2 applied, 0 dead-lettered, 0 pending",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "\x1b") {
		t.Errorf("output holds a raw escape:\n%q", got)
	}
}
