package ingress

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchbackhq/switchback/internal/compare"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

// Evaluator answers the migration flag: an OpenFeature client with the
// flags provider registered, the same path any other router uses.
type Evaluator interface {
	StringValueDetails(ctx context.Context, flag string, defaultValue string, evalCtx openfeature.EvaluationContext, options ...openfeature.Option) (openfeature.StringEvaluationDetails, error)
}

// route is where one delivery attempt goes.
type route struct {
	migration string
	pipeline  string // legacy or new
	url       string
	version   uint64 // the snapshot version that answered
	stage     domain.Stage
	shadow    string // the pipeline to run in dry-run, or ""
}

// errNoRoute is a delivery that cannot go anywhere yet: no snapshot, no
// migration, or no URL for the pipelineclient. It is retried like a failed call.
var errNoRoute = errors.New("no route")

// resolve evaluates the flag for ev's partner and finds the pipeline's URL.
func (rt *Router) resolve(ctx context.Context, ev journal.Event) (route, error) {
	tbl := rt.routing.load()
	key, ok := tbl.migration(rt.opts.Migration)
	if !ok {
		return route{}, fmt.Errorf("%w: no migration to route by (snapshot version %d)", errNoRoute, tbl.version)
	}
	d, _ := rt.opts.Flags.StringValueDetails(ctx, key, "legacy",
		openfeature.NewEvaluationContext(ev.Partner, map[string]any{"eventType": ev.Type}))
	r := route{migration: key, pipeline: d.Value}
	if v, ok := d.FlagMetadata["snapshotVersion"]; ok {
		switch n := v.(type) {
		case int64:
			r.version = uint64(n)
		case float64:
			r.version = uint64(n)
		}
	}
	r.shadow, _ = d.FlagMetadata["shadow"].(string)
	stage, _ := d.FlagMetadata["stage"].(string)
	r.stage = domain.Stage(stage)
	if d.Reason == openfeature.DisabledReason {
		r.stage = domain.StageLegacy // the kill switch: nothing to compare
	}
	m := tbl.migrations[key]
	switch r.pipeline {
	case "legacy":
		r.url = m.Pipelines.Legacy.URL
	case "new":
		r.url = m.Pipelines.New.URL
	}
	if r.url == "" {
		return route{}, fmt.Errorf("%w: no URL for pipeline %q of migration %q", errNoRoute, r.pipeline, key)
	}
	return r, nil
}

// lane is one delivery worker's queue: a channel, and behind it a backlog
// in memory for when the channel is full, so handing an event over never
// blocks the webhook's answer. Events of one entity always take the same
// lane, first in, first out.
type lane struct {
	mu      sync.Mutex
	ch      chan journal.Event
	backlog []journal.Event // guarded by mu; its head is the next to go
	wake    chan struct{}
}

func (rt *Router) lane(ev journal.Event) *lane {
	h := fnv.New32a()
	h.Write([]byte(ev.Partner + "\x00" + ev.Type + "\x00" + ev.EntityID))
	return rt.lanes[h.Sum32()%uint32(len(rt.lanes))]
}

// submit hands a journaled event to the worker that owns its entity,
// without waiting: when the worker's channel is full, the event joins its
// lane's backlog, which a feeder drains in order.
func (rt *Router) submit(ev journal.Event) {
	if !rt.claim(ev.Seq) {
		return // already with a worker
	}
	rt.metrics.inFlight.Inc()
	l := rt.lane(ev)
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.backlog) == 0 {
		select {
		case l.ch <- ev:
			return
		default:
		}
	}
	l.backlog = append(l.backlog, ev)
	rt.backlogged.Add(1)
	select {
	case l.wake <- struct{}{}:
	default:
	}
}

// feed moves a lane's backlog into its channel, oldest first. An event
// leaves the backlog only once it is in the channel, so a webhook handled
// meanwhile queues behind it: order holds.
func (rt *Router) feed(ctx context.Context, l *lane) {
	for {
		l.mu.Lock()
		if len(l.backlog) == 0 {
			l.mu.Unlock()
			select {
			case <-l.wake:
				continue
			case <-ctx.Done():
				return
			}
		}
		ev := l.backlog[0]
		l.mu.Unlock()
		select {
		case l.ch <- ev:
		case <-ctx.Done():
			return
		}
		l.mu.Lock()
		l.backlog[0] = journal.Event{}
		l.backlog = l.backlog[1:]
		l.mu.Unlock()
		rt.backlogged.Add(-1)
	}
}

// claim marks seq as handed to a worker; false if it already is.
func (rt *Router) claim(seq uint64) bool {
	rt.flightMu.Lock()
	defer rt.flightMu.Unlock()
	if _, ok := rt.inFlight[seq]; ok {
		return false
	}
	rt.inFlight[seq] = struct{}{}
	return true
}

func (rt *Router) release(seq uint64) {
	rt.flightMu.Lock()
	delete(rt.inFlight, seq)
	rt.flightMu.Unlock()
}

// worker delivers the events of its lane one after another.
func (rt *Router) worker(ctx context.Context, q <-chan journal.Event) {
	for {
		select {
		case ev := <-q:
			rt.deliver(ctx, ev)
			rt.release(ev.Seq)
			rt.metrics.inFlight.Dec()
		case <-ctx.Done():
			return
		}
	}
}

// deliver applies ev through its primary pipeline, retrying with capped
// exponential backoff and full jitter, and records the terminal outcome:
// applied, or dead-lettered after MaxAttempts. On shutdown it gives up
// without an outcome: the event stays pending and is resumed at start.
func (rt *Router) deliver(ctx context.Context, ev journal.Event) {
	var lastErr error
	var r route
	for attempt := 1; attempt <= rt.opts.MaxAttempts; attempt++ {
		var err error
		r, err = rt.resolve(ctx, ev)
		if err == nil {
			var res pipelineclient.Result
			res, err = rt.opts.Pipelines.Call(ctx, r.url, pipelineclient.Apply, toPipelineEvent(ev))
			if ctx.Err() != nil {
				return
			}
			rt.countCall(r.pipeline, pipelineclient.Apply, err)
			var call []journal.Tally
			if r.pipeline == "new" {
				rt.stats.candidateCall(ev, r, err != nil)
				call = append(call, callTally(ev, r, err != nil))
			}
			if err == nil {
				rt.finish(ev, journal.Outcome{State: journal.StateApplied, Attempts: attempt, Pipeline: r.pipeline,
					SnapshotVersion: r.version, Effects: res.Raw, At: rt.opts.Now().UTC(), Tallies: call, Shadow: r.shadow})
				rt.shadow(ev, r, compare.Side{Effects: res.Effects}, res.Raw)
				return
			}
			// A failed attempt has no outcome of its own to carry its tally.
			rt.tally(ev, call)
		}
		if ctx.Err() != nil {
			return
		}
		lastErr = err
		rt.log.Warn("delivery attempt failed", "event", ev.ID, "partner", ev.Partner, "attempt", attempt, "err", err)
		if attempt == rt.opts.MaxAttempts {
			break
		}
		if !sleep(ctx, backoff(attempt, rt.opts.MinBackoff, rt.opts.MaxBackoff)) {
			return
		}
	}
	rt.log.Error("event dead-lettered", "event", ev.ID, "partner", ev.Partner, "attempts", rt.opts.MaxAttempts, "err", lastErr)
	out := journal.Outcome{State: journal.StateDeadLettered, Attempts: rt.opts.MaxAttempts, Pipeline: r.pipeline,
		SnapshotVersion: r.version, Error: lastErr.Error(), At: rt.opts.Now().UTC()}
	var pe *pipelineclient.Error
	if errors.As(lastErr, &pe) {
		out.Status = pe.Status
	}
	if r.url != "" {
		out.Shadow = r.shadow
	}
	rt.finish(ev, out)
	if r.url != "" {
		// Did the other pipeline fail too? An asymmetry is a finding.
		rt.shadow(ev, r, compare.Side{Err: lastErr}, nil)
	}
}

// finish records an outcome; if the journal cannot take it, the event
// stays pending and is delivered again at the next start (at least once).
func (rt *Router) finish(ev journal.Event, out journal.Outcome) {
	// The outcome is worth waiting for even during shutdown.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.opts.Journal.Complete(ctx, ev.Seq, out); err != nil {
		rt.log.Error("recording an outcome failed; the event stays pending", "event", ev.ID, "err", err)
		return
	}
	rt.metrics.events.WithLabelValues(string(out.State)).Inc()
}

// tally owes the control service tallies that no outcome records.
func (rt *Router) tally(ev journal.Event, tallies []journal.Tally) {
	if len(tallies) == 0 {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := rt.opts.Journal.Tally(ctx, tallies); err != nil {
		rt.log.Error("recording a call to the new pipeline failed; the gates will not count it", "event", ev.ID, "err", err)
	}
}

func (rt *Router) countCall(pipelineName string, mode pipelineclient.Mode, err error) {
	result := "ok"
	if err != nil {
		result = "error"
	}
	rt.metrics.attempts.WithLabelValues(pipelineName, string(mode), result).Inc()
}

func toPipelineEvent(ev journal.Event) pipelineclient.Event {
	out := pipelineclient.Event{ID: ev.ID, Partner: ev.Partner, PSA: ev.PSA, Type: ev.Type, Action: ev.Action,
		EntityID: ev.EntityID, ReceivedAt: ev.ReceivedAt, Payload: ev.Payload, Backfill: ev.Backfill}
	if ev.Backfill {
		at := ev.EntityUpdatedAt
		out.EntityUpdatedAt = &at
	}
	return out
}

// backoff is the delay before attempt+1: capped exponential with full
// jitter, so retries of many events do not arrive together.
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	d := lo << min(attempt-1, 30)
	if d <= 0 || d > hi {
		d = hi
	}
	return lo/2 + rand.N(d)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
