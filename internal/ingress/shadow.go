package ingress

import (
	"context"
	"encoding/json"

	"github.com/switchbackhq/switchback/internal/compare"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

// shadowJob is one event to run through its shadow pipeline in dry-run.
type shadowJob struct {
	ev      journal.Event
	r       route
	primary compare.Side
	raw     json.RawMessage // the primary's effects as it sent them
}

// shadow queues ev for its shadow pipeline, if its stage has one. The pool
// is bounded and never slows the primary path: when it is full, the
// comparison is skipped, and counted as a coverage gap, never a match.
func (rt *Router) shadow(ev journal.Event, r route, primary compare.Side, raw json.RawMessage) {
	if r.shadow == "" {
		return
	}
	select {
	case rt.shadowQ <- shadowJob{ev: ev, r: r, primary: primary, raw: raw}:
	default:
		rt.record(ev, r, compare.Result{Class: domain.ClassSkipped, Diff: "the shadow pool was full"}, raw, nil, nil)
	}
}

// resumeComparisons queues again the comparisons due, read when the router
// started, that were due when it last stopped: the outcome was journaled, the comparison was not
// (a crash, or a shutdown while the shadow pipeline was called). The
// primary side is what the journal recorded. Without a snapshot yet it
// waits for one: the shadow's URL and the rules come from it.
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
		if ev.State == journal.StateApplied {
			var effects []pipelineclient.Effect
			if err := json.Unmarshal(ev.Effects, &effects); err != nil {
				rt.log.Error("the recorded effects do not decode; the comparison is skipped", "event", ev.ID, "err", err)
				rt.record(ev, j.r, compare.Result{Class: domain.ClassSkipped, Diff: "the recorded primary effects do not decode"}, ev.Effects, nil, nil)
				continue
			}
			j.primary = compare.Side{Effects: effects}
		} else {
			j.primary = compare.Side{Err: recordedError{msg: ev.LastError, pe: &pipelineclient.Error{Status: ev.LastStatus}}}
		}
		select {
		case rt.shadowQ <- j:
		case <-ctx.Done():
			return
		}
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
		select {
		case j := <-rt.shadowQ:
			rt.runShadow(ctx, j)
		case <-ctx.Done():
			return
		}
	}
}

// runShadow calls the shadow pipeline once, in dry-run (never retried: it
// applies nothing), and compares its effects with the primary's.
func (rt *Router) runShadow(ctx context.Context, j shadowJob) {
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
	primary := j.primary
	primary.New = j.r.pipeline == "new"
	shadow := compare.Side{Effects: res.Effects, Err: err, New: j.r.shadow == "new"}
	result := compare.Compare(j.ev.Type, primary, shadow, tbl.rules[j.r.migration])
	result = compare.Reclassify(result, rt.noise.isNoise(noiseKey{j.r.migration, j.ev.Partner, j.ev.Type}, tbl.pins[j.r.migration]))
	rt.record(j.ev, j.r, result, j.raw, res.Raw, call)
	// The other legacy result of the event: the primary's in shadow, this
	// dry-run's in new.
	legacy := j.primary
	if j.r.shadow == "legacy" {
		legacy = shadow
	}
	rt.probeNoise(ctx, j, legacy)
}

// record keeps a comparison: its class on the event in the journal (for
// replays of mismatched events) and, in the same transaction, its count
// and tallies owed to the control service until it acknowledges them; and
// samples for the next report.
func (rt *Router) record(ev journal.Event, r route, res compare.Result, primary, shadow json.RawMessage, tallies []journal.Tally) {
	rt.metrics.comparisons.WithLabelValues(string(res.Class)).Inc()
	rt.stats.comparison(ev, r, res.Class, res.Diff, primary, shadow, rt.opts.Now().UTC())
	ctx, cancel := context.WithTimeout(context.Background(), 10e9)
	defer cancel()
	out := journal.Outcome{Comparison: string(res.Class), Tallies: append(tallies, comparisonTally(ev, r, res.Class))}
	if err := rt.opts.Journal.Complete(ctx, ev.Seq, out); err != nil {
		rt.log.Error("recording a comparison failed", "event", ev.ID, "err", err)
	}
	if res.Class.Mismatched() {
		rt.log.Warn("shadow mismatch", "event", ev.ID, "partner", ev.Partner, "type", ev.Type, "class", res.Class, "stage", r.stage)
	}
}
