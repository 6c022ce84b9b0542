package reconcile

import (
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/wire"
)

// u is when the PSA says the entity changed, by its clock.
var u = time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC)

// ev is an event about the entity: received at received (switchback's
// clock), stamped by the PSA at stamp (its clock; none when zero).
func ev(state journal.State, action string, received, stamp time.Time) *journal.Seen {
	s := &journal.Seen{Seq: 1, ID: "evt_1", Action: action, State: state, Pipeline: "legacy", ReceivedAt: received, UpdatedAt: stamp}
	if state.Terminal() {
		s.DoneAt = received.Add(time.Second)
	}
	return s
}

func appliedAt(received, stamp time.Time) *journal.Seen {
	return ev(journal.StateApplied, "updated", received, stamp)
}

func failedAt(received, stamp time.Time) *journal.Seen {
	return ev(journal.StateDeadLettered, "updated", received, stamp)
}

func pendingAt(received, stamp time.Time) []journal.Seen {
	return []journal.Seen{*ev(journal.StateJournaled, "updated", received, stamp)}
}

func TestJudge(t *testing.T) {
	none := time.Time{}
	sec, minute, hour := time.Second, time.Minute, time.Hour
	deleted := func(s *journal.Seen) *journal.Seen { s.Action = "deleted"; return s }
	shadowed := func(s *journal.Seen) *journal.Seen { s.Shadow = "new"; return s }
	// The PSA's clock runs 30 s ahead of switchback's in "ahead", behind
	// in "behind"; the skew bound is a minute unless a case says.
	const ahead, behind = 30 * time.Second, -30 * time.Second
	for _, tc := range []struct {
		name    string
		deleted bool          // the PSA reports the entity deleted
		later   time.Duration // the change is this much after u
		rec     journal.EntityRecord
		skew    time.Duration
		// asOf is when the PSA was asked (none: no change is recent), and
		// settle how long a webhook may take.
		asOf   time.Time
		settle time.Duration
		class  Class
		reason wire.GapReason
	}{
		{name: "no event at all", class: Gap, reason: wire.ReasonNoEvent},
		{name: "no event yet, changed within skew+settle of asking: its webhook may be on its way",
			asOf: u.Add(90 * sec), settle: minute, class: Uncertain, reason: wire.ReasonRecent},
		{name: "no event, changed just past skew+settle before asking",
			asOf: u.Add(2*minute + sec), settle: minute, class: Gap, reason: wire.ReasonNoEvent},
		{name: "an older event only, changed recently", rec: journal.EntityRecord{Applied: appliedAt(u.Add(-hour), u.Add(-hour))},
			asOf: u.Add(sec), settle: minute, class: Uncertain, reason: wire.ReasonRecent},
		{name: "the change's event dead-lettered, however recent", rec: journal.EntityRecord{Failed: failedAt(u.Add(sec), u)},
			asOf: u.Add(2 * sec), settle: minute, class: Gap, reason: wire.ReasonDeadLettered},

		{name: "an older event only, stamped", rec: journal.EntityRecord{Applied: appliedAt(u.Add(-hour), u.Add(-hour))},
			class: Gap, reason: wire.ReasonOlderOnly},
		{name: "an older event only, received well before", rec: journal.EntityRecord{Applied: appliedAt(u.Add(-10*minute), none)},
			class: Gap, reason: wire.ReasonOlderOnly},
		{name: "a newer event, stamped", rec: journal.EntityRecord{Applied: appliedAt(u.Add(-hour), u.Add(minute))},
			class: Reflected, reason: wire.ReasonApplied},
		{name: "a newer event, received well after", rec: journal.EntityRecord{Applied: appliedAt(u.Add(5*minute), none)},
			class: Reflected, reason: wire.ReasonApplied},
		{name: "an event stamped exactly at updatedAt", rec: journal.EntityRecord{Applied: appliedAt(u.Add(-hour), u)},
			class: Reflected, reason: wire.ReasonApplied},
		{name: "an event received exactly at updatedAt, within the skew bound", rec: journal.EntityRecord{Applied: appliedAt(u, none)},
			class: Uncertain, reason: wire.ReasonWithinSkew},
		{name: "an event received exactly at updatedAt, clocks trusted (a negative bound counts as 0)", skew: -1, rec: journal.EntityRecord{Applied: appliedAt(u, none)},
			class: Reflected, reason: wire.ReasonApplied},
		{name: "an event received just past the skew bound", rec: journal.EntityRecord{Applied: appliedAt(u.Add(minute), none)},
			class: Reflected, reason: wire.ReasonApplied},
		{name: "an event received just before the skew bound", rec: journal.EntityRecord{Applied: appliedAt(u.Add(-minute-time.Nanosecond), none)},
			class: Gap, reason: wire.ReasonOlderOnly},

		// The change's own webhook, 2 s after it, by switchback's clock.
		{name: "PSA ahead: the change's event, unstamped, looks received before the change: not a gap invented",
			rec:   journal.EntityRecord{Applied: appliedAt(u.Add(-ahead+2*sec), none)},
			class: Uncertain, reason: wire.ReasonWithinSkew},
		{name: "PSA ahead: the change's event, stamped", rec: journal.EntityRecord{Applied: appliedAt(u.Add(-ahead+2*sec), u)},
			class: Reflected, reason: wire.ReasonApplied},
		// An earlier change's webhook, received 10 s before this change.
		{name: "PSA behind: an earlier event, unstamped, looks received after the change: not a gap hidden",
			rec:   journal.EntityRecord{Applied: appliedAt(u.Add(-behind-10*sec), none)},
			class: Uncertain, reason: wire.ReasonWithinSkew},
		{name: "PSA behind: an earlier event, stamped", rec: journal.EntityRecord{Applied: appliedAt(u.Add(-behind-10*sec), u.Add(-15*sec))},
			class: Gap, reason: wire.ReasonOlderOnly},
		{name: "PSA behind: the change's event, stamped, received past the bound",
			rec:   journal.EntityRecord{Applied: appliedAt(u.Add(-behind+2*sec), u)},
			class: Reflected, reason: wire.ReasonApplied},

		{name: "stamps equal to the second, the event's in seconds, the change's in milliseconds", later: 400 * time.Millisecond,
			rec: journal.EntityRecord{Applied: appliedAt(u, u)}, class: Uncertain, reason: wire.ReasonPrecision},
		{name: "the event's stamp in milliseconds, after the change's in seconds", rec: journal.EntityRecord{Applied: appliedAt(u, u.Add(400*time.Millisecond))},
			class: Reflected, reason: wire.ReasonApplied},
		{name: "stamps a second apart", rec: journal.EntityRecord{Applied: appliedAt(u, u.Add(-sec))},
			class: Gap, reason: wire.ReasonOlderOnly},
		{name: "stamps to the millisecond, a microsecond apart", rec: journal.EntityRecord{Applied: appliedAt(u, u.Add(-time.Microsecond))},
			class: Gap, reason: wire.ReasonOlderOnly},

		{name: "deleted at the PSA, the deletion applied", deleted: true, rec: journal.EntityRecord{Applied: deleted(appliedAt(u.Add(-hour), none))},
			class: Reflected, reason: wire.ReasonApplied},
		{name: "deleted at the PSA, a later update applied", deleted: true, rec: journal.EntityRecord{Applied: appliedAt(u.Add(hour), u.Add(hour))},
			class: Gap, reason: wire.ReasonDeleteNotApplied},
		{name: "deleted at the PSA, nothing at all", deleted: true, class: Gap, reason: wire.ReasonDeleteNotApplied},
		{name: "deleted at the PSA, the deletion pending", deleted: true,
			rec:   journal.EntityRecord{Applied: appliedAt(u.Add(-hour), none), Pending: []journal.Seen{*deleted(ev(journal.StateJournaled, "updated", u.Add(-hour), none))}},
			class: InFlight, reason: wire.ReasonPending},
		{name: "deleted at the PSA, the deletion dead-lettered", deleted: true,
			rec:   journal.EntityRecord{Applied: appliedAt(u.Add(-hour), none), Failed: deleted(failedAt(u, none))},
			class: Gap, reason: wire.ReasonDeadLettered},
		{name: "changed at the PSA, then deleted since: the deletion applied after", rec: journal.EntityRecord{Applied: deleted(appliedAt(u.Add(hour), none))},
			class: Reflected, reason: wire.ReasonApplied},
		{name: "changed at the PSA after a deletion applied", rec: journal.EntityRecord{Applied: deleted(appliedAt(u.Add(-hour), none))},
			class: Gap, reason: wire.ReasonOlderOnly},

		{name: "only the shadow ran the change's event (primary dead-lettered it)",
			rec:   journal.EntityRecord{Applied: appliedAt(u.Add(-hour), u.Add(-hour)), Failed: shadowed(failedAt(u.Add(sec), u))},
			class: Gap, reason: wire.ReasonShadowOnly},
		{name: "the change's event dead-lettered", rec: journal.EntityRecord{Failed: failedAt(u.Add(sec), u)},
			class: Gap, reason: wire.ReasonDeadLettered},
		{name: "an older event dead-lettered", rec: journal.EntityRecord{Failed: failedAt(u.Add(-hour), u.Add(-hour))},
			class: Gap, reason: wire.ReasonOlderOnly},

		{name: "the change's event journaled, not yet applied", rec: journal.EntityRecord{Applied: appliedAt(u.Add(-hour), u.Add(-hour)), Pending: pendingAt(u.Add(sec), u)},
			class: InFlight, reason: wire.ReasonPending},
		{name: "an unstamped event within the bound, not yet applied", rec: journal.EntityRecord{Pending: pendingAt(u, none)},
			class: InFlight, reason: wire.ReasonPending},
		{name: "only an older event pending", rec: journal.EntityRecord{Applied: appliedAt(u.Add(-hour), u.Add(-hour)), Pending: pendingAt(u.Add(-minute), u.Add(-minute))},
			class: Gap, reason: wire.ReasonOlderOnly},
		{name: "applied within the bound, and a later failure: uncertain, not guessed",
			rec:   journal.EntityRecord{Applied: appliedAt(u, none), Failed: failedAt(u.Add(hour), u.Add(hour))},
			class: Uncertain, reason: wire.ReasonWithinSkew},
	} {
		t.Run(tc.name, func(t *testing.T) {
			skew := tc.skew
			if skew == 0 {
				skew = time.Minute
			}
			c := Change{Type: "ticket", ID: "42", UpdatedAt: u.Add(tc.later), Deleted: tc.deleted}
			got := Judge(c, tc.rec, Rule{Skew: skew, Settle: tc.settle, AsOf: tc.asOf})
			if got.Class != tc.class || got.Reason != tc.reason {
				t.Errorf("Judge = %s (%s), want %s (%s)", got.Class, got.Reason, tc.class, tc.reason)
			}
			if got.IsGap() != (tc.class == Gap) {
				t.Errorf("IsGap = %v for %s", got.IsGap(), got.Class)
			}
			var wantLast time.Time
			if tc.rec.Applied != nil {
				wantLast = tc.rec.Applied.DoneAt
			}
			if !got.LastAppliedAt.Equal(wantLast) {
				t.Errorf("LastAppliedAt = %v, want %v", got.LastAppliedAt, wantLast)
			}
			if (got.Event == nil) != (tc.reason == wire.ReasonNoEvent || (tc.reason == wire.ReasonDeleteNotApplied || tc.reason == wire.ReasonRecent) && tc.rec.Applied == nil) {
				t.Errorf("Event = %+v for %s", got.Event, tc.reason)
			}
		})
	}
}
