package ingress

import (
	"context"
	"encoding/json"
	"time"

	"github.com/switchbackhq/switchback/internal/compare"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

// shadowJob is one event to run through its shadow pipeline in dry-run.
type shadowJob struct {
	ev journal.Event
	r  route
	// The primary's side: its effects as its pipeline sent them, decoded
	// only once the comparison is made, or its failure.
	raw        json.RawMessage
	primaryErr error
}

// primary returns the primary's side of j for compare.
func (j shadowJob) primary() (compare.Side, error) {
	if j.primaryErr != nil {
		return compare.Side{Err: j.primaryErr}, nil
	}
	var effects []pipelineclient.Effect
	if err := json.Unmarshal(j.raw, &effects); err != nil {
		return compare.Side{}, err
	}
	return compare.Side{Effects: effects}, nil
}

// shadowPool holds the comparisons waiting for a shadow worker, at most
// Options.ShadowQueue of them. Delivery reserves a place before it queues
// an event's outcome for the journal, and hands the job over after, so
// that a comparison is always written after its outcome; a comparison
// that finds no place is shed, and recorded with the outcome.
type shadowPool struct {
	room chan struct{} // a token per place reserved or taken by a waiting job
	jobs chan shadowJob
}

func newShadowPool(size int) *shadowPool {
	return &shadowPool{room: make(chan struct{}, size), jobs: make(chan shadowJob, size)}
}

// reserve takes a place for a job without waiting; false when every
// place is taken.
func (p *shadowPool) reserve() bool {
	select {
	case p.room <- struct{}{}:
		return true
	default:
		return false
	}
}

// reserveWait takes a place for a job, waiting for one; false if ctx ends
// first.
func (p *shadowPool) reserveWait(ctx context.Context) bool {
	select {
	case p.room <- struct{}{}:
		return true
	case <-ctx.Done():
		return false
	}
}

// put queues j in the place reserved for it: it never waits, as jobs
// holds as many as room.
func (p *shadowPool) put(j shadowJob) { p.jobs <- j }

// take waits for a job and frees its place; false once ctx ends.
func (p *shadowPool) take(ctx context.Context) (shadowJob, bool) {
	select {
	case j := <-p.jobs:
		<-p.room
		return j, true
	case <-ctx.Done():
		return shadowJob{}, false
	}
}

// waiting is the number of places reserved or taken.
func (p *shadowPool) waiting() int { return len(p.room) }

// planShadow decides, before ev's outcome out is queued for the journal,
// what becomes of its comparison if its route has a shadow: true when a
// place in the shadow pool is reserved (hand the job over once the
// outcome is queued). The shadow never slows the primary path: while the
// router's CPU is contended, only the shadow budget's share of the events
// is compared, and the pool is bounded. A comparison left out is shed,
// and out carries its class, skipped, and its tally, written with the
// outcome in one transaction: a coverage gap, never a match.
func (rt *Router) planShadow(ev journal.Event, r route, out *journal.Outcome) bool {
	if r.shadow == "" {
		return false
	}
	var why, reason string
	switch {
	case !rt.shadowBudget.admit():
		why, reason = "the router's CPU was contended: the event was outside the shadow's share", "contended"
	case !rt.shadowPool.reserve():
		why, reason = "the shadow work fell behind: its queue was full", "queue_full"
	default:
		return true
	}
	rt.metrics.shadowShed.WithLabelValues(reason).Inc()
	res := compare.Result{Class: domain.ClassSkipped, Diff: why}
	rt.noteComparison(ev, r, res, out.Effects, nil)
	out.Comparison = string(res.Class)
	out.Tallies = append(out.Tallies, comparisonTally(ev, r, res.Class))
	return false
}

// resumeComparisons queues again the comparisons due, read when the router
// started, that were due when it last stopped: the outcome was journaled, the comparison was not
// (a crash, or a shutdown while the shadow pipeline was called). The
// primary side is what the journal recorded. Without a snapshot yet it
// waits for one: the shadow's URL and the rules come from it. They wait
// for room in the shadow pool rather than being shed.
func (rt *Router) resumeComparisons(ctx context.Context, due []journal.Event) {
	if len(due) == 0 {
		return
	}
	rt.log.Info("resuming comparisons due", "events", len(due))
	if !rt.awaitRouting(ctx) {
		return
	}
	for _, ev := range due {
		j := shadowJob{ev: ev, r: resumedRoute(rt.routing.load(), rt.opts.Migration, ev), raw: ev.Effects}
		if ev.State != journal.StateApplied {
			j.primaryErr = recordedError{msg: ev.LastError, pe: &pipelineclient.Error{Status: ev.LastStatus}}
		}
		if !rt.shadowPool.reserveWait(ctx) {
			return
		}
		rt.shadowPool.put(j)
	}
}

// resumedRoute is the route an event was delivered by, as far as the
// journal recorded it: its primary and shadow pipelines, from which the
// stage follows.
func resumedRoute(tbl *routing, configured string, ev journal.Event) route {
	key, _ := tbl.migration(configured)
	r := route{migration: key, pipeline: ev.Pipeline, version: ev.SnapshotVersion, shadow: ev.Shadow, stage: domain.StageShadow}
	if ev.Pipeline == "new" {
		r.stage = domain.StageNew
	}
	return r
}

// recordedError is a primary's failure as the journal recorded it: its
// message, and its status for pipelineclient.Unavailable.
type recordedError struct {
	msg string
	pe  *pipelineclient.Error
}

func (e recordedError) Error() string { return e.msg }
func (e recordedError) Unwrap() error { return e.pe }

func (rt *Router) shadowWorker(ctx context.Context) {
	for {
		j, ok := rt.shadowPool.take(ctx)
		if !ok {
			return
		}
		rt.runShadow(ctx, j)
	}
}

// runShadow calls the shadow pipeline once, in dry-run (never retried: it
// applies nothing), and compares its effects with the primary's.
func (rt *Router) runShadow(ctx context.Context, j shadowJob) {
	primary, err := j.primary()
	if err != nil {
		rt.log.Error("the primary's effects do not decode; the comparison is skipped", "event", j.ev.ID, "err", err)
		rt.record(j.ev, j.r, compare.Result{Class: domain.ClassSkipped, Diff: "the primary's effects do not decode"}, j.raw, nil, nil)
		return
	}
	tbl := rt.routing.load()
	m := tbl.migrations[j.r.migration]
	url := m.Pipelines.Legacy.URL
	if j.r.shadow == "new" {
		url = m.Pipelines.New.URL
	}
	res, err := rt.opts.Pipelines.Call(ctx, url, pipelineclient.DryRun, toPipelineEvent(j.ev))
	if ctx.Err() != nil {
		return
	}
	rt.countCall(j.r.shadow, pipelineclient.DryRun, err)
	var call []journal.Tally
	if j.r.shadow == "new" {
		rt.stats.candidateCall(j.ev, j.r, err != nil)
		call = append(call, callTally(j.ev, j.r, err != nil))
	}
	// The new pipeline is the shadow in shadow and the primary in new: the
	// migration's allowed extra kinds excuse its side only.
	primary.New = j.r.pipeline == "new"
	shadow := compare.Side{Effects: res.Effects, Err: err, New: j.r.shadow == "new"}
	result := compare.Compare(j.ev.Type, primary, shadow, tbl.rules[j.r.migration])
	result = compare.Reclassify(result, rt.noise.isNoise(noiseKey{j.r.migration, j.ev.Partner, j.ev.Type}, tbl.pins[j.r.migration]))
	rt.record(j.ev, j.r, result, j.raw, res.Raw, call)
	// The other legacy result of the event: the primary's in shadow, this
	// dry-run's in new.
	legacy := primary
	if j.r.shadow == "legacy" {
		legacy = shadow
	}
	rt.probeNoise(ctx, j, legacy)
}

// record keeps a comparison: its class on the event in the journal (for
// replays of mismatched events) and, in the same transaction, its count
// and tallies owed to the control service until it acknowledges them; and
// samples for the next report. The write is queued for the journal's next
// group commit, not waited for: the comparison stays due until it is on
// disk, so a router that dies first compares the event again at its next
// start.
func (rt *Router) record(ev journal.Event, r route, res compare.Result, primary, shadow json.RawMessage, tallies []journal.Tally) {
	rt.noteComparison(ev, r, res, primary, shadow)
	out := journal.Outcome{Comparison: string(res.Class), Tallies: append(tallies, comparisonTally(ev, r, res.Class))}
	failed := func(err error) { rt.log.Error("recording a comparison failed", "event", ev.ID, "err", err) }
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	rt.recording.Add(1)
	err := rt.opts.Journal.CompleteLater(ctx, ev.Seq, out, func(err error) {
		defer rt.recording.Done()
		if err != nil {
			failed(err)
			return
		}
		if rt.opts.Tier != nil {
			// A replay on another router of the tier reads it there.
			rt.opts.Tier.Compared(ev.ID, out.Comparison)
		}
	})
	if err != nil {
		rt.recording.Done()
		failed(err)
	}
}

// noteComparison counts a comparison in the router's metrics, samples it
// for the next report and logs a mismatch: what is kept of it besides the
// journal.
func (rt *Router) noteComparison(ev journal.Event, r route, res compare.Result, primary, shadow json.RawMessage) {
	rt.metrics.comparisons.WithLabelValues(string(res.Class)).Inc()
	rt.stats.comparison(ev, r, res.Class, res.Diff, primary, shadow, rt.opts.Now().UTC())
	if res.Class.Mismatched() {
		rt.log.Warn("shadow mismatch", "event", ev.ID, "partner", ev.Partner, "type", ev.Type, "class", res.Class, "stage", r.stage)
	}
}
