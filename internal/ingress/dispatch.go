package ingress

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

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

// entityKey names an entity: its events are delivered one at a time, in
// the order they were handed to delivery.
type entityKey struct{ partner, typ, id string }

// entityQueue is an entity's events that no worker has taken yet, oldest
// first.
type entityQueue struct {
	key    entityKey
	events []journal.Event
}

// backlog holds the events handed to delivery that no worker has taken
// yet, per entity. An entity whose next event may go (none of its events
// is with a worker) waits in ready, in the order it became ready. A worker
// takes the first ready entity's next event and, once that event's
// outcome is queued for the journal, puts the entity back at the end of
// ready if it has more: a hot entity holds one worker at a time, and every
// other entity gets its turn between two of its events.
type backlog struct {
	mu       sync.Mutex
	cond     sync.Cond                  // signalled when an entity becomes ready
	entities map[entityKey]*entityQueue // guarded by mu: those with events waiting or one with a worker
	ready    []*entityQueue             // guarded by mu
	// byPartner counts the events waiting, per partner (guarded by mu);
	// total, their sum, is read without the lock.
	byPartner map[string]int
	total     atomic.Int64
}

func newBacklog() *backlog {
	b := &backlog{entities: map[entityKey]*entityQueue{}, byPartner: map[string]int{}}
	b.cond.L = &b.mu
	return b
}

// len is the number of events waiting for a worker.
func (b *backlog) len() int64 { return b.total.Load() }

// partner is the number of partner's events waiting for a worker.
func (b *backlog) partner(id string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.byPartner[id]
}

// push queues ev behind its entity's events.
func (b *backlog) push(ev journal.Event) {
	k := entityKey{ev.Partner, ev.Type, ev.EntityID}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.byPartner[ev.Partner]++
	b.total.Add(1)
	if q, ok := b.entities[k]; ok {
		// Ready already, or with a worker, which readies it when done.
		q.events = append(q.events, ev)
		return
	}
	q := &entityQueue{key: k, events: []journal.Event{ev}}
	b.entities[k] = q
	b.ready = append(b.ready, q)
	b.cond.Signal()
}

// take waits for a ready entity and returns it with its next event; false
// once ctx ends (wake must then be called: Run arranges it).
func (b *backlog) take(ctx context.Context) (*entityQueue, journal.Event, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(b.ready) == 0 && ctx.Err() == nil {
		b.cond.Wait()
	}
	if ctx.Err() != nil {
		return nil, journal.Event{}, false
	}
	q := b.ready[0]
	b.ready[0] = nil
	b.ready = b.ready[1:]
	ev := q.events[0]
	q.events[0] = journal.Event{}
	q.events = q.events[1:]
	if b.byPartner[ev.Partner]--; b.byPartner[ev.Partner] == 0 {
		delete(b.byPartner, ev.Partner)
	}
	b.total.Add(-1)
	return q, ev, true
}

// done is called when the event take returned with q is settled far
// enough for q's next event to go: q is ready again, or forgotten.
func (b *backlog) done(q *entityQueue) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(q.events) == 0 {
		delete(b.entities, q.key)
		return
	}
	b.ready = append(b.ready, q)
	b.cond.Signal()
}

// wake wakes every worker waiting in take, to see that its context ended.
func (b *backlog) wake() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.cond.Broadcast()
}

// submit hands a journaled event to delivery, without waiting: it queues
// behind its entity's events.
func (rt *Router) submit(ev journal.Event) {
	if !rt.claim(ev.Seq) {
		return // already with delivery
	}
	rt.metrics.inFlight.Inc()
	rt.backlog.push(ev)
}

// resubmit hands back to delivery a pending event read from the journal
// (at start, or by the reconciler), unless delivery holds it or its
// outcome was written since it was read: delivery lets go of an event
// once its outcome is written, and handing it out again would deliver it
// twice, after its entity's later events.
func (rt *Router) resubmit(ctx context.Context, ev journal.Event) {
	if !rt.claim(ev.Seq) {
		return
	}
	rt.metrics.inFlight.Inc()
	if now, err := rt.opts.Journal.Get(ctx, ev.Seq); err != nil || now.State.Terminal() {
		rt.settle(ev.Seq) // swept, or done
		return
	}
	rt.backlog.push(ev)
}

// admit decides whether delivery's backlog takes a webhook of partner: nil,
// or router_backlogged with a Retry-After while MaxBacklog events wait, or
// PartnerBacklog of the partner's. The partner's own bound keeps one
// partner's burst (one ticket updated over and over) from refusing every
// other partner's webhooks. Both bounds are checked before the delivery is
// read, so the deliveries already being read still go in.
func (rt *Router) admit(partner string) error {
	if rt.backlog.partner(partner) >= rt.opts.PartnerBacklog {
		return &domain.Error{Code: domain.CodeRouterBacklogged, RetryAfter: 5 * time.Second,
			Message: "this partner's events fill its share of the router's delivery backlog: retry"}
	}
	if rt.opts.Tier != nil && rt.opts.Tier.Throttled(partner) {
		return &domain.Error{Code: domain.CodeRouterBacklogged, RetryAfter: 5 * time.Second,
			Message: "this partner's events fill its share of the delivery backlog of the router that delivers them: retry"}
	}
	if rt.backlog.len() >= int64(rt.opts.MaxBacklog) {
		return &domain.Error{Code: domain.CodeRouterBacklogged, RetryAfter: 5 * time.Second,
			Message: "the router's delivery backlog is full: retry"}
	}
	return nil
}

// admitBackfill decides whether delivery's backlog takes a backfill's
// events: while they would fill more than half of the backlog, or half of
// a partner's share, it answers router_backlogged with a Retry-After, so
// that live webhooks are not answered 429 because of a backfill. One call
// goes in at least while the backlog (or the partner's share) is empty.
func (rt *Router) admitBackfill(events []journal.Event) error {
	if b := rt.backlog.len(); b > 0 && b+int64(len(events)) > int64(rt.opts.MaxBacklog/2) {
		return &domain.Error{Code: domain.CodeRouterBacklogged, RetryAfter: time.Second,
			Message: "the router's delivery backlog is half full: a backfill waits for it to drain"}
	}
	n := map[string]int{}
	for _, e := range events {
		n[e.Partner]++
	}
	for p, k := range n {
		if b := rt.backlog.partner(p); b > 0 && b+k > rt.opts.PartnerBacklog/2 {
			return &domain.Error{Code: domain.CodeRouterBacklogged, RetryAfter: time.Second,
				Message: "the share of partner " + quote(p) + " in the router's delivery backlog is half full: a backfill waits for it to drain"}
		}
	}
	return nil
}

// claim marks seq as handed to delivery; false if it already is.
func (rt *Router) claim(seq uint64) bool {
	rt.flightMu.Lock()
	defer rt.flightMu.Unlock()
	if _, ok := rt.inFlight[seq]; ok {
		return false
	}
	rt.inFlight[seq] = struct{}{}
	return true
}

// settle ends delivery's hold on seq: its outcome is written, or it has
// none and stays pending.
func (rt *Router) settle(seq uint64) {
	rt.flightMu.Lock()
	delete(rt.inFlight, seq)
	rt.flightMu.Unlock()
	rt.metrics.inFlight.Dec()
}

// worker delivers events, one of an entity's at a time, until ctx ends.
func (rt *Router) worker(ctx context.Context) {
	for {
		q, ev, ok := rt.backlog.take(ctx)
		if !ok {
			return
		}
		if !rt.deliver(ctx, ev) {
			rt.settle(ev.Seq) // shut down: resumed at the next start
		}
		rt.backlog.done(q)
	}
}

// deliver applies ev through its primary pipeline, retrying with capped
// exponential backoff and full jitter, and hands the terminal outcome to
// finish: applied, or dead-lettered after MaxAttempts. On shutdown it
// gives up without an outcome, and returns false: the event stays pending
// and is resumed at start.
func (rt *Router) deliver(ctx context.Context, ev journal.Event) bool {
	var lastErr error
	var r route
	for attempt := 1; attempt <= rt.opts.MaxAttempts; attempt++ {
		var err error
		r, err = rt.resolve(ctx, ev)
		if err == nil {
			// The effects are journaled as sent; a comparison decodes them
			// in the shadow worker, off the primary path.
			var res pipelineclient.Result
			res, err = rt.opts.Pipelines.CallRaw(ctx, r.url, pipelineclient.Apply, toPipelineEvent(ev))
			if ctx.Err() != nil {
				return false
			}
			rt.countCall(r.pipeline, pipelineclient.Apply, err)
			var call []journal.Tally
			if r.pipeline == "new" {
				rt.stats.candidateCall(ev, r, err != nil)
				call = append(call, callTally(ev, r, err != nil))
			}
			if err == nil {
				out := journal.Outcome{State: journal.StateApplied, Attempts: attempt, Pipeline: r.pipeline,
					SnapshotVersion: r.version, Effects: res.Raw, At: rt.opts.Now().UTC(), Tallies: call, Shadow: r.shadow}
				compared := rt.planShadow(ev, r, &out)
				rt.finish(ev, out)
				if compared {
					rt.shadowPool.put(shadowJob{ev: ev, r: r, raw: res.Raw})
				}
				return true
			}
			// A failed attempt has no outcome of its own to carry its tally.
			rt.tally(ev, call)
		}
		if ctx.Err() != nil {
			return false
		}
		lastErr = err
		rt.log.Warn("delivery attempt failed", "event", ev.ID, "partner", ev.Partner, "attempt", attempt, "err", err)
		if attempt == rt.opts.MaxAttempts {
			break
		}
		if !sleep(ctx, backoff(attempt, rt.opts.MinBackoff, rt.opts.MaxBackoff)) {
			return false
		}
	}
	rt.log.Error("event dead-lettered", "event", ev.ID, "partner", ev.Partner, "attempts", rt.opts.MaxAttempts, "err", lastErr)
	out := journal.Outcome{State: journal.StateDeadLettered, Attempts: rt.opts.MaxAttempts, Pipeline: r.pipeline,
		SnapshotVersion: r.version, Error: lastErr.Error(), At: rt.opts.Now().UTC()}
	var pe *pipelineclient.Error
	if errors.As(lastErr, &pe) {
		out.Status = pe.Status
	}
	// Did the other pipeline fail too? An asymmetry is a finding.
	compared := false
	if r.url != "" {
		out.Shadow = r.shadow
		compared = rt.planShadow(ev, r, &out)
	}
	rt.finish(ev, out)
	if compared {
		rt.shadowPool.put(shadowJob{ev: ev, r: r, primaryErr: lastErr})
	}
	return true
}

// finish queues an outcome for the journal and returns without waiting
// for it to be written, so that the entity's next event goes meanwhile and
// its outcome shares a transaction (one fsync) with others. The journal
// writes outcomes in the order they are queued: after a crash, an entity's
// events are delivered again, in order, from the first whose outcome is
// not on disk. The event stays claimed until its outcome is written, so
// that the reconciler does not hand it out again meanwhile. If the journal
// cannot take the outcome, the event stays pending and is delivered again
// at the next start (at least once).
func (rt *Router) finish(ev journal.Event, out journal.Outcome) {
	failed := func(err error) {
		rt.log.Error("recording an outcome failed; the event stays pending", "event", ev.ID, "err", err)
	}
	// The outcome is worth waiting for even during shutdown: Run waits
	// for it to be written.
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt.recording.Add(1)
	err := rt.opts.Journal.CompleteLater(ctx, ev.Seq, out, func(err error) {
		defer rt.recording.Done()
		rt.settle(ev.Seq)
		if err != nil {
			failed(err)
			return
		}
		rt.metrics.events.WithLabelValues(string(out.State)).Inc()
		if rt.opts.Tier != nil {
			rt.opts.Tier.Done(ev, out)
		}
	})
	if err != nil {
		rt.recording.Done()
		rt.settle(ev.Seq)
		failed(err)
	}
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
