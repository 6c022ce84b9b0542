package reconcile

import (
	"context"
	"time"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/wire"
)

// Change is one entity a PSA reports changed, as its change API lists it.
type Change struct {
	Type string // canonical entity type: "ticket"…
	ID   string
	// UpdatedAt is the entity's last update, by the PSA's clock.
	UpdatedAt time.Time
	// Deleted says the PSA reports the entity deleted.
	Deleted bool
}

// Class is what the rule says of a change.
type Class string

const (
	// Reflected: an event the primary pipeline applied reflects the change.
	Reflected Class = "reflected"
	// InFlight: an event that may reflect it is journaled and not yet
	// applied; not a gap yet.
	InFlight Class = "in_flight"
	// Gap: no event the primary pipeline applied reflects the change.
	Gap Class = "gap"
	// Uncertain: the clocks cannot tell whether the latest applied event
	// came before or after the change.
	Uncertain Class = "uncertain"
)

// Verdict is the rule's answer for one change.
type Verdict struct {
	Class  Class
	Reason wire.GapReason
	// LastAppliedAt is when the primary pipeline last applied an event
	// about the entity (switchback's clock), zero if it never did.
	LastAppliedAt time.Time
	// Event is the journaled event the verdict rests on (the applied,
	// pending or dead-lettered one), nil when there is none.
	Event *journal.Seen
}

// IsGap reports whether the verdict is a gap.
func (v Verdict) IsGap() bool { return v.Class == Gap }

// order is where an event stands against a change.
type order int

const (
	before order = iota
	after
	unsure
)

// Rule is what Judge needs besides a change and its entity's record.
type Rule struct {
	// Skew bounds how far the PSA's clock may be from switchback's; a
	// negative skew counts as 0.
	Skew time.Duration
	// Settle is how long a webhook may take from its change to the
	// journal; negative counts as 0.
	Settle time.Duration
	// AsOf is when the PSA was asked, by switchback's clock. A change made
	// within Skew+Settle of it that nothing reflects is Uncertain
	// (wire.ReasonRecent): its webhook may still be on its way. Zero: no change
	// is recent.
	AsOf time.Time
	// Since is the start of the window whose changes are judged, less
	// Skew and Settle: a journal that reads a window of events
	// (WindowJournal) reads from there. Zero: the journal's whole index.
	Since time.Time
}

// recent reports whether a change made at u (the PSA's clock) may still
// have its webhook on the way at r.AsOf.
func (r Rule) recent(u time.Time) bool {
	return !r.AsOf.IsZero() && u.After(r.AsOf.Add(-max(r.Skew, 0)-max(r.Settle, 0)))
}

// Judge applies the rule (see the package documentation) to one change
// and what the journal knows of its entity.
func Judge(c Change, rec journal.EntityRecord, r Rule) Verdict {
	skew := max(r.Skew, 0)
	v := Verdict{}
	if rec.Applied != nil {
		v.LastAppliedAt = rec.Applied.DoneAt
	}
	appliedOrder, appliedWhy := before, wire.GapReason("")
	if a := rec.Applied; a != nil {
		switch {
		case c.Deleted && a.Deleted():
			appliedOrder = after
		case c.Deleted:
			appliedOrder = before // the entity is gone at the PSA, still there downstream
		default:
			appliedOrder, appliedWhy = compare(*a, c.UpdatedAt, skew)
		}
		if appliedOrder == after {
			v.Class, v.Reason, v.Event = Reflected, wire.ReasonApplied, a
			return v
		}
	}
	for i := range rec.Pending {
		p := &rec.Pending[i]
		if c.Deleted && !p.Deleted() {
			continue
		}
		if o, _ := compare(*p, c.UpdatedAt, skew); o != before || c.Deleted {
			v.Class, v.Reason, v.Event = InFlight, wire.ReasonPending, p
			return v
		}
	}
	if appliedOrder == unsure {
		v.Class, v.Reason, v.Event = Uncertain, appliedWhy, rec.Applied
		return v
	}
	v.Class = Gap
	if f := rec.Failed; f != nil && (!c.Deleted || f.Deleted()) {
		if o, _ := compare(*f, c.UpdatedAt, skew); o != before || c.Deleted {
			// The change's webhook came and failed: a gap, however recent.
			v.Reason, v.Event = wire.ReasonDeadLettered, f
			if f.Shadow != "" {
				v.Reason = wire.ReasonShadowOnly
			}
			return v
		}
	}
	if r.recent(c.UpdatedAt) {
		// Nothing reflects it yet and its webhook may still come: a gap
		// said now could be invented by a slow PSA or a skewed clock.
		v.Class, v.Reason, v.Event = Uncertain, wire.ReasonRecent, rec.Applied
		return v
	}
	switch {
	case c.Deleted:
		v.Reason, v.Event = wire.ReasonDeleteNotApplied, rec.Applied
	case rec.Applied != nil:
		v.Reason, v.Event = wire.ReasonOlderOnly, rec.Applied
	case rec.Failed != nil || len(rec.Pending) > 0:
		v.Reason, v.Event = wire.ReasonOlderOnly, rec.Failed
	default:
		v.Reason = wire.ReasonNoEvent
	}
	return v
}

// compare places event s against a change made at u by the PSA's clock:
// by the PSA's own stamp in s when it has one, else by when s was
// received, within skew.
func compare(s journal.Seen, u time.Time, skew time.Duration) (order, wire.GapReason) {
	if st := s.UpdatedAt; !st.IsZero() {
		if !st.Before(u) {
			return after, ""
		}
		p := max(precision(st), precision(u))
		if st.Truncate(p).Equal(u.Truncate(p)) {
			return unsure, wire.ReasonPrecision
		}
		return before, ""
	}
	switch r := s.ReceivedAt; {
	case !r.Before(u.Add(skew)):
		return after, ""
	case r.Before(u.Add(-skew)):
		return before, ""
	}
	return unsure, wire.ReasonWithinSkew
}

// precision is the coarsest of a second, a millisecond and a microsecond
// that t is a whole number of; else a nanosecond.
func precision(t time.Time) time.Duration {
	ns := t.Nanosecond()
	for _, p := range []time.Duration{time.Second, time.Millisecond, time.Microsecond} {
		if ns%int(p) == 0 {
			return p
		}
	}
	return time.Nanosecond
}

// Journal is what the rule needs of a router's journal: what it knows of
// many entities of a partner, by lookup.
type Journal interface {
	Entities(ctx context.Context, partner string, entities []journal.Entity) ([]journal.EntityRecord, error)
}

var _ Journal = (*journal.Journal)(nil)

// WindowJournal is a Journal that answers from the events received since a
// time rather than from an index (natstier.History, a tier's stream): an
// event received before the window cannot reflect a change made in it.
type WindowJournal interface {
	EntitiesSince(ctx context.Context, partner string, since time.Time, entities []journal.Entity) ([]journal.EntityRecord, error)
}

// Check judges each of partner's changes against j by rule r, in order:
// one lookup per entity. It returns j's error, or ctx's if ctx ends first.
func Check(ctx context.Context, j Journal, partner string, changes []Change, r Rule) ([]Verdict, error) {
	entities := make([]journal.Entity, len(changes))
	for i, c := range changes {
		entities[i] = journal.Entity{Type: c.Type, ID: c.ID}
	}
	var recs []journal.EntityRecord
	var err error
	if w, ok := j.(WindowJournal); ok && !r.Since.IsZero() {
		recs, err = w.EntitiesSince(ctx, partner, r.Since, entities)
	} else {
		recs, err = j.Entities(ctx, partner, entities)
	}
	if err != nil {
		return nil, err
	}
	out := make([]Verdict, len(changes))
	for i, c := range changes {
		out[i] = Judge(c, recs[i], r)
	}
	return out, nil
}
