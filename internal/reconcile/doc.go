// Package reconcile holds the gap rule: whether a change a partner's PSA
// reports (an entity's type, id and updatedAt, from the PSA's change API)
// is reflected by an event that the partner's primary pipeline applied, as
// the router's journal knows it (journal.EntityRecord). Judge is the one
// place the rule is decided; Check asks the journal about many changes at
// once, a lookup per entity in its entity index, never a scan.
//
// # The rule
//
// Two clocks meet here: the PSA's, which stamps updatedAt, and
// switchback's, which stamps when an event was received. They may
// disagree by up to a bound the caller gives (skew). The rule compares
// times on one clock wherever it can, and says Uncertain rather than guess
// where the bound leaves the answer open, so that skew neither hides a gap
// nor invents one:
//
//  1. An event reflects the change when it was made at or after it. When
//     the event's body carries the PSA's own stamp of the entity's last
//     update (journal.Seen.UpdatedAt, read by psa.UpdatedAt: ConnectWise
//     _info.lastUpdated, Autotask LastActivityDate or EventTime, Halo
//     last_update or timestamp, generic data.updatedAt or timestamp), that
//     stamp is compared with updatedAt: both are the PSA's clock, skew
//     plays no part. stamp ≥ updatedAt reflects it (equal: it is that very
//     change); stamp < updatedAt does not, unless the two are equal to the
//     coarser of their precisions (a PSA that writes whole seconds in one
//     place and milliseconds in the other): then Uncertain.
//  2. Without a stamp, the event's receipt time R (switchback's clock) is
//     compared with updatedAt U allowing the skew bound S: R ≥ U+S means
//     it was received after the change was made, whichever way the clocks
//     differ, and reflects it; R < U−S means it was received before the
//     change and does not; in between, Uncertain. Receipt after the change
//     is taken to reflect it: a PSA's webhook carries, or leads the
//     pipeline to, the entity's state when it is sent, not when an earlier
//     change was made.
//  3. Only events the primary pipeline applied count (journal.StateApplied,
//     including a successful replay): the shadow pipeline runs in dry-run
//     and applies nothing, so an event whose primary failed is a gap
//     however its shadow fared.
//
// Judge then decides, in this order:
//
//   - the latest applied event reflects the change: Reflected. A deleted
//     entity (Change.Deleted) is reflected by an applied delete, whenever
//     it came; an applied delete after the change also reflects a change
//     (the entity was deleted since the PSA was asked);
//   - an event journaled and not yet applied or dead-lettered may reflect
//     it (reflects, or Uncertain): InFlight, not a gap yet: ask again once
//     delivery is done;
//   - the latest applied event is Uncertain: Uncertain, with the reason;
//   - a dead-lettered event that would have reflected it: a Gap
//     (wire.ReasonDeadLettered, or wire.ReasonShadowOnly when a shadow ran it in
//     dry-run): its webhook came and failed;
//   - the change was made within Rule.Skew+Rule.Settle of when the PSA
//     was asked (Rule.AsOf): Uncertain (wire.ReasonRecent), since its webhook
//     may still be on its way; a gap said now could be invented by a slow
//     PSA or a clock ahead of switchback's;
//   - otherwise a Gap, with the reason: a deletion never applied
//     (wire.ReasonDeleteNotApplied), only older events applied
//     (wire.ReasonOlderOnly), or nothing about the entity at all
//     (wire.ReasonNoEvent).
//
// Uncertain entities are listed apart from gaps and not backfilled: ask
// again later. Backfilling one would be safe all the same, since a
// backfill's Idempotency-Key comes from the entity and updatedAt.
//
// The journal's entity index keeps, per entity, the latest applied event
// even once retention has swept it, so lastAppliedAt is known for entities
// applied long ago; see internal/journal/entities.go.
package reconcile
