package ingress

import (
	"context"
	"time"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/wire"
)

// reconcileLoop makes sure "received" never silently means "processed":
// it counts and lists events that have no outcome past StuckAfter, hands
// pending events that no worker holds back to delivery, and sweeps events
// past retention.
func (rt *Router) reconcileLoop(ctx context.Context) {
	t := time.NewTicker(rt.opts.ReconcileEvery)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		rt.reconcile(ctx)
		rt.measureJournal(ctx)
		cutoff := rt.opts.Now().Add(-rt.opts.Retention)
		for {
			n, err := rt.opts.Journal.Sweep(ctx, cutoff, 10000)
			if err != nil && ctx.Err() == nil {
				rt.log.Error("retention sweep failed", "err", err)
			}
			if n < 10000 || err != nil {
				break
			}
		}
	}
}

func (rt *Router) reconcile(ctx context.Context) {
	pending, err := rt.opts.Journal.Pending(ctx)
	if err != nil {
		if ctx.Err() == nil {
			rt.log.Error("reconciler cannot read pending events", "err", err)
		}
		return
	}
	now := rt.opts.Now()
	stuck := 0
	var others []journal.Event
	for _, ev := range pending {
		if !rt.ours(ev) {
			others = append(others, ev)
			continue
		}
		if now.Sub(ev.ReceivedAt) > rt.opts.StuckAfter {
			stuck++
		}
		// A pending event no worker holds was dropped between journal and
		// delivery (a cancelled request, a shutdown): deliver it.
		if now.Sub(ev.ReceivedAt) > rt.opts.ReconcileEvery && rt.backlog.len() < int64(rt.opts.MaxBacklog) {
			rt.resubmit(ctx, ev)
		}
	}
	if rt.opts.Tier != nil {
		rt.settleFromTier(ctx, others)
	}
	rt.metrics.stuck.Set(float64(stuck))
	if stuck > 0 {
		rt.log.Warn("events without an outcome past the stuck threshold", "events", stuck, "threshold", rt.opts.StuckAfter)
	}
}

// Stuck returns the events without an outcome past StuckAfter, oldest
// first (on a tier, those the tier holds with this router: the others are
// the tier's to hand out, and show in its oldest-waiting gauge); the journal's error, or ctx's if ctx ends first.
func (rt *Router) Stuck(ctx context.Context) ([]journal.Event, error) {
	pending, err := rt.opts.Journal.Pending(ctx)
	if err != nil {
		return nil, err
	}
	now := rt.opts.Now()
	var out []journal.Event
	for _, ev := range pending {
		if now.Sub(ev.ReceivedAt) > rt.opts.StuckAfter && rt.ours(ev) {
			out = append(out, ev)
		}
	}
	return out, nil
}

// StuckEvents returns the events Stuck returns as GET /v1/events lists
// them: without their payloads, which are for reading an event, not for
// finding it.
func (rt *Router) StuckEvents(ctx context.Context) ([]wire.Event, error) {
	evs, err := rt.Stuck(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]wire.Event, 0, len(evs))
	for _, ev := range evs {
		out = append(out, listed(ev))
	}
	return out, nil
}

// listed is ev as the API lists it, without its payload.
func listed(ev journal.Event) wire.Event {
	w := wire.Event{Seq: ev.Seq, ID: ev.ID, Partner: ev.Partner, PSA: ev.PSA, Type: ev.Type, SourceType: ev.SourceType,
		Action: ev.Action, EntityID: ev.EntityID, DeliveryID: ev.DeliveryID, ReceivedAt: ev.ReceivedAt, EntityUpdatedAt: ev.EntityUpdatedAt, Headers: ev.Headers,
		State: string(ev.State), Attempts: ev.Attempts, Pipeline: ev.Pipeline, SnapshotVersion: ev.SnapshotVersion,
		Effects: ev.Effects, LastError: ev.LastError, LastStatus: ev.LastStatus, DoneAt: ev.DoneAt, Duplicates: ev.Duplicates,
		Shadow: ev.Shadow, Comparison: ev.Comparison, Backfill: ev.Backfill}
	for _, r := range ev.Replays {
		w.Replays = append(w.Replays, wire.EventReplay{Job: r.Job, Pipeline: r.Pipeline, At: r.At, OK: r.OK, Effects: r.Effects, Error: r.Error})
	}
	return w
}

// Figures are what the router reports about its journal.
type Figures struct {
	journal.Stats
	Stuck int `json:"stuck"`
}

// Figures returns the journal's figures; the journal's error, or ctx's if
// ctx ends first.
func (rt *Router) Figures(ctx context.Context) (Figures, error) {
	st, err := rt.opts.Journal.Stats(ctx)
	if err != nil {
		return Figures{}, err
	}
	stuck, err := rt.Stuck(ctx)
	return Figures{Stats: st, Stuck: len(stuck)}, err
}

// measureJournal puts the journal's size and age on /metrics.
func (rt *Router) measureJournal(ctx context.Context) {
	st, err := rt.opts.Journal.Stats(ctx)
	if err != nil {
		if ctx.Err() == nil {
			rt.log.Error("journal figures unavailable", "err", err)
		}
		return
	}
	rt.metrics.journalBytes.Set(float64(st.SizeBytes))
	rt.metrics.journalEvents.Set(float64(st.Events))
	rt.metrics.journalPending.Set(float64(st.Pending))
	age := 0.0
	if !st.Oldest.IsZero() {
		age = rt.opts.Now().Sub(st.Oldest).Seconds()
	}
	rt.metrics.journalAge.Set(age)
}
