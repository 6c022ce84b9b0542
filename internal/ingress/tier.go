package ingress

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
)

// Tier is a journal shared by a tier of routers (internal/natstier). A
// webhook is acknowledged once the tier holds it, and the tier hands each
// router the events it is to deliver: the router journals them in its own
// journal, its working set, delivers them as it delivers its own, and
// tells the tier each terminal outcome.
type Tier interface {
	// Publish makes a delivery's events durable in the tier. Its errors
	// are *domain.Error with a RetryAfter: the PSA is told to retry.
	Publish(ctx context.Context, events []journal.Event) ([]journal.Appended, error)
	// Run hands take the tier's events for this router, in their
	// entities' order, until ctx ends.
	Run(ctx context.Context, take func(context.Context, []journal.Event) error) error
	// Done records an event's terminal outcome in the tier, without
	// waiting.
	Done(ev journal.Event, out journal.Outcome)
	// Release hands back what the router holds without an outcome, once
	// it has stopped delivering.
	Release(ctx context.Context)
	// Name is this router's name in the tier.
	Name() string
	// Throttle tells every router of the tier to refuse partner's
	// webhooks for a while: its events fill its share of this router's
	// backlog. Throttled reports whether a router said so lately.
	Throttle(partner string)
	Throttled(partner string) bool
	// Compared records the class of an event's comparison in the tier,
	// without waiting.
	Compared(id, class string)
	// Replayed records in the tier that a replay through pipeline applied
	// a dead-lettered event, without waiting.
	Replayed(id, pipeline string)
	// Claim makes this router the one that runs a replay asked of every
	// router, unless another router does: one that renews its claim, or
	// marked it done. A claim this router has seen unrenewed for
	// ClaimLease is taken over. It returns the claim as it stands.
	Claim(ctx context.Context, job string) (domain.ReplayClaim, error)
	// Renew tells the tier this router still runs job, every third of
	// ClaimLease while the job is queued or running; it returns the claim
	// as it stands, another router's once one took it over.
	Renew(ctx context.Context, job string) (domain.ReplayClaim, error)
	// Finished marks this router's claim on job done.
	Finished(ctx context.Context, job string) error
	ClaimLease() time.Duration
	// Window hands fn partner's events received in [from, to), each with
	// its terminal outcome if the tier holds one.
	Window(ctx context.Context, partner string, from, to time.Time, fn func([]journal.Event) error) error
	// Outcomes gives each event its terminal outcome if the tier holds
	// one.
	Outcomes(ctx context.Context, events []journal.Event) error
	// Holds reports whether the tier handed event id to this router and
	// awaits its outcome from it.
	Holds(id string) bool
	Close() error
}

// takeFromTier journals the tier's events in the router's journal and
// hands the new ones to delivery, in order. An event the tier hands out
// again (this router held it before a restart, or a resend came after the
// tier's duplicate window) is a duplicate here: its outcome, if it has
// one, is given to the tier again, else it goes back to delivery unless
// delivery holds it.
func (rt *Router) takeFromTier(ctx context.Context, events []journal.Event) error {
	// Taking more while delivery's backlog is full would only hold them
	// in memory: the tier keeps them meanwhile.
	for rt.backlog.len() >= int64(rt.opts.MaxBacklog) {
		if !sleep(ctx, 10*time.Millisecond) {
			return ctx.Err()
		}
	}
	res, err := rt.opts.Journal.Append(ctx, events)
	if err != nil {
		return err
	}
	for i, a := range res {
		ev := events[i]
		ev.Seq, ev.ID, ev.State = a.Seq, a.ID, journal.StateJournaled
		if !a.Duplicate {
			rt.submit(ev)
			if rt.backlog.partner(ev.Partner) >= rt.opts.PartnerBacklog {
				// The other routers take this partner's webhooks too.
				rt.opts.Tier.Throttle(ev.Partner)
			}
			continue
		}
		cur, err := rt.opts.Journal.Get(ctx, a.Seq)
		if err != nil {
			continue // swept meanwhile: the tier hands it out again
		}
		if cur.State.Terminal() {
			rt.opts.Tier.Done(cur, journal.Outcome{State: cur.State, Pipeline: cur.Pipeline, Attempts: cur.Attempts,
				Error: cur.LastError, At: cur.DoneAt})
			continue
		}
		rt.resubmit(ctx, cur)
	}
	return nil
}

// adoptWindow reads into the router's journal the events of a replay's
// window that the tier's other routers delivered, with their outcomes
// (journal.Adopt), so that the replay run here takes every event of the
// tier: those this router holds are in its journal already. It may take a
// while for a long window: one read of the stream and one of the outcome
// bucket per event.
//
// An event another router holds without an outcome yet is waited for, up
// to settle: its outcome is usually on its way (the pipeline answered, the
// bucket not yet written). It returns how many were still on their way
// then: live delivery takes those, by the routing of its moment, and the
// replay does not.
func (rt *Router) adoptWindow(ctx context.Context, req domain.ReplayRequest, settle time.Duration) (int, error) {
	adopted := 0
	adopt := func(events []journal.Event) error {
		for i := range events {
			events[i].Seq = 0
		}
		res, err := rt.opts.Journal.Adopt(ctx, events)
		for _, a := range res {
			if !a.Duplicate {
				adopted++
			}
		}
		return err
	}
	var elsewhere []journal.Event
	for _, p := range req.Partners {
		err := rt.opts.Tier.Window(ctx, p, req.From, req.To, func(events []journal.Event) error {
			open, err := rt.notHeld(ctx, events)
			if err != nil {
				return err
			}
			elsewhere = append(elsewhere, open...)
			return adopt(slices.DeleteFunc(events, func(e journal.Event) bool { return !e.State.Terminal() }))
		})
		if err != nil {
			return 0, fmt.Errorf("reading partner %s's window from the tier: %w", p, err)
		}
	}
	// Looked at again soon (the usual lag is a bucket write), then less
	// often: elsewhere may be a whole backlog not yet handed out.
	for deadline, wait := time.Now().Add(settle), 50*time.Millisecond; len(elsewhere) > 0 && time.Now().Before(deadline); wait = min(2*wait, 500*time.Millisecond) {
		if !sleep(ctx, wait) {
			return 0, ctx.Err()
		}
		if err := rt.opts.Tier.Outcomes(ctx, elsewhere); err != nil {
			return 0, fmt.Errorf("reading the tier's outcomes of a replay's window: %w", err)
		}
		var settled, still []journal.Event
		for _, e := range elsewhere {
			if e.State.Terminal() {
				settled = append(settled, e)
			} else {
				still = append(still, e)
			}
		}
		elsewhere = still
		if err := adopt(settled); err != nil {
			return 0, err
		}
	}
	if adopted > 0 {
		rt.log.Info("took the tier's history of a replay's window", "events", adopted, "migration", req.Migration)
	}
	if len(elsewhere) > 0 && settle > 0 {
		rt.log.Warn("events of a replay's window are still on their way on other routers: live delivery takes them, not the replay",
			"events", len(elsewhere), "migration", req.Migration)
	}
	return len(elsewhere), nil
}

// notHeld returns those of events without an outcome that this router's
// journal does not hold: another router of the tier has them.
func (rt *Router) notHeld(ctx context.Context, events []journal.Event) ([]journal.Event, error) {
	var open []journal.Event
	for _, e := range events {
		if !e.State.Terminal() {
			open = append(open, e)
		}
	}
	if len(open) == 0 {
		return nil, nil
	}
	held, err := rt.opts.Journal.Holds(ctx, open)
	if err != nil {
		return nil, err
	}
	var elsewhere []journal.Event
	for i, e := range open {
		if !held[i] {
			elsewhere = append(elsewhere, e)
		}
	}
	return elsewhere, nil
}

// ours reports whether this router is to deliver ev, pending in its
// journal. On a tier, only while the tier holds ev's message with this
// router: one it held before a restart, or handed back, the tier hands
// out again, maybe to another router, which must not be delivering it at
// the same time as this one.
func (rt *Router) ours(ev journal.Event) bool {
	return rt.opts.Tier == nil || rt.opts.Tier.Holds(ev.ID)
}

// settleFromTier records in the router's journal the outcomes the tier
// holds of events pending here that another router brought to an end
// (handed out again after a restart or a release): they are no longer
// this router's to deliver, nor stuck here. A comparison the other router
// owes is not owed here.
func (rt *Router) settleFromTier(ctx context.Context, pending []journal.Event) {
	if len(pending) == 0 {
		return
	}
	events := slices.Clone(pending)
	if err := rt.opts.Tier.Outcomes(ctx, events); err != nil {
		if ctx.Err() == nil {
			rt.log.Warn("reading the tier's outcomes of events pending here failed", "events", len(events), "err", err)
		}
		return
	}
	settled := 0
	for _, ev := range events {
		if !ev.State.Terminal() {
			continue
		}
		out := journal.Outcome{State: ev.State, Attempts: ev.Attempts, Pipeline: ev.Pipeline, Error: ev.LastError, At: ev.DoneAt,
			Comparison: ev.Comparison}
		if ev.Comparison != "" {
			out.Shadow = ev.Shadow
		}
		if err := rt.opts.Journal.Complete(ctx, ev.Seq, out); err != nil {
			if ctx.Err() == nil {
				rt.log.Warn("recording the tier's outcome of an event pending here failed", "event", ev.ID, "err", err)
			}
			return
		}
		settled++
	}
	if settled > 0 {
		rt.log.Info("events pending here were brought to an end by other routers of the tier", "events", settled)
	}
}
