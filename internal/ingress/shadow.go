package ingress

import (
	"context"
	"encoding/json"

	"github.com/switchbackhq/switchback/internal/compare"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipeline"
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
	res, err := rt.opts.Pipelines.Call(ctx, url, pipeline.DryRun, toPipelineEvent(j.ev))
	if ctx.Err() != nil {
		return
	}
	rt.countCall(j.r.shadow, pipeline.DryRun, err)
	var call []journal.Tally
	if j.r.shadow == "new" {
		rt.stats.candidateCall(j.ev, j.r, err != nil)
		call = append(call, callTally(j.ev, j.r, err != nil))
	}
	shadow := compare.Side{Effects: res.Effects, Err: err}
	result := compare.Compare(j.ev.Type, j.primary, shadow, tbl.rules[j.r.migration])
	rt.record(j.ev, j.r, result, j.raw, res.Raw, call)
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
