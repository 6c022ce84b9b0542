package demo

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/controlclient"
	"github.com/switchbackhq/switchback/internal/simulate"
	"github.com/switchbackhq/switchback/internal/wire"
)

// The dropped scenario: the PSAs drop a share of their webhooks, as in an
// outage, and keep every change in their change APIs, which the simulator
// serves. Once the traffic has settled, a reconciliation of every partner
// holds what each PSA changed against what the pipelines applied, finds
// the changes whose webhooks never came, and a backfill closes every gap;
// a second reconciliation finds no entity that differs.

// droppedTraffic is how long the dropped scenario sends when --duration
// is 0: it reconciles after the traffic, so it cannot run until Ctrl-C.
const droppedTraffic = 20 * time.Second

// droppedRate is the share of webhooks the PSAs drop in the dropped
// scenario.
const droppedRate = 0.1

// setupPSAAPIs gives each partner the psaApi of its PSA's change API,
// served by changes at root.
func setupPSAAPIs(ctx context.Context, api *controlclient.Client, changes *simulate.ChangeAPI, root string, partners []simulate.Partner) error {
	for _, p := range partners {
		access, err := changes.PSAAPI(root, p.ID)
		if err != nil {
			return err
		}
		body := map[string]any{"name": strings.ToUpper(p.ID[:1]) + p.ID[1:], "psa": p.PSA, "secret": p.Secret, "psaApi": access}
		if err := api.Do(ctx, http.MethodPut, controlclient.Path("v1", "partners", p.ID), body, nil); err != nil {
			return err
		}
	}
	return nil
}

// reconcileDropped reconciles every partner over the run, compares the
// gaps with the changes the PSAs dropped, backfills them, and reconciles
// again.
func reconcileDropped(ctx context.Context, api *controlclient.Client, partners []simulate.Partner, from time.Time, sim simulate.Stats, res *Result, out io.Writer) error {
	want := map[string]bool{}
	for _, d := range sim.DroppedChanges {
		if d.Detectable {
			want[entityKey(d.Partner, d.EntityType, d.EntityID)] = true
		}
	}
	say(out, "the PSAs dropped %d of %d webhooks (an outage): %d of the changes no webhook brought are still their entities' latest and listed by the PSAs' change APIs (the vendors' list tickets only)",
		sim.Dropped, sim.Sent+sim.Dropped, len(want))

	ids := make([]string, len(partners))
	for i, p := range partners {
		ids[i] = p.ID
	}
	// The simulator and switchback share this machine's clock, and every
	// webhook sent has its outcome: no skew to allow, nothing on the way.
	request := map[string]any{"partners": ids, "from": from.UTC().Format(time.RFC3339Nano), "skew": "0s", "settle": "0s",
		"reason": "demo: did the outage lose anything?"}
	first, err := runReconciliation(ctx, api, request, out)
	if err != nil {
		return err
	}
	res.Gaps = first.Gaps
	got := map[string]bool{}
	for _, g := range first.Gaps {
		got[entityKey(g.Partner, g.Type, g.ID)] = true
	}
	missed, extra := 0, 0
	for k := range want {
		if !got[k] {
			missed++
		}
	}
	for k := range got {
		if !want[k] {
			extra++
		}
	}
	if missed == 0 && extra == 0 {
		say(out, "the gaps are exactly the changes the PSAs dropped: %d", len(got))
	} else {
		say(out, "the gaps differ from the changes the PSAs dropped: %d dropped changes not found, %d gaps not dropped", missed, extra)
	}
	for _, g := range first.Gaps[:min(5, len(first.Gaps))] {
		last := "never"
		if g.LastAppliedAt != nil {
			last = g.LastAppliedAt.Format(time.TimeOnly)
		}
		say(out, "  gap: %s %s %s changed at %s, last applied %s (%s)", g.Partner, g.Type, g.ID, g.UpdatedAt.Format(time.TimeOnly), last, g.Reason)
	}
	if first.GapCount == 0 {
		return nil
	}

	var job wire.Reconciliation
	if err := api.Do(ctx, http.MethodPost, "/v1/reconciliations/"+first.ID+"/backfill", map[string]any{"reason": "demo: backfill what the outage lost"}, &job); err != nil {
		return err
	}
	for job.Backfill == nil || job.Backfill.State == wire.ReconcileRunning {
		if err := pause(ctx); err != nil {
			return err
		}
		if err := api.Do(ctx, http.MethodGet, "/v1/reconciliations/"+first.ID, nil, &job); err != nil {
			return err
		}
	}
	b := job.Backfill
	res.Backfilled = b.Applied
	say(out, "backfill: %d events journaled and sent through each partner's current primary pipeline, %d applied, %d dead-lettered, %d still pending",
		b.Journaled, b.Applied, b.DeadLettered, b.Pending)

	delete(request, "reason")
	second, err := runReconciliation(ctx, api, request, out)
	if err != nil {
		return err
	}
	res.GapsAfterBackfill = second.GapCount
	say(out, "reconciled again: %d entities differ", second.GapCount)
	return nil
}

// runReconciliation starts one and waits for it, showing its progress.
func runReconciliation(ctx context.Context, api *controlclient.Client, request map[string]any, out io.Writer) (wire.Reconciliation, error) {
	var job wire.Reconciliation
	if err := api.Do(ctx, http.MethodPost, "/v1/reconciliations", request, &job); err != nil {
		return job, err
	}
	for job.State == wire.ReconcileRunning {
		if err := pause(ctx); err != nil {
			return job, err
		}
		if err := api.Do(ctx, http.MethodGet, "/v1/reconciliations/"+job.ID, nil, &job); err != nil {
			return job, err
		}
	}
	if job.State == wire.ReconcileFailed {
		return job, fmt.Errorf("reconciliation %s failed: %s", job.ID, job.Error)
	}
	reflected := 0
	for _, p := range job.Partners {
		reflected += p.Reflected
	}
	say(out, "reconciliation %s: asked %d PSAs what changed, checked %d entities against the journal: %d reflected, %d gaps, %d in flight, %d uncertain",
		job.ID, len(job.Partners), job.Checked, reflected, job.GapCount, job.InFlight, job.Uncertain)
	return job, nil
}

func entityKey(partner, typ, id string) string { return partner + "\x00" + typ + "\x00" + id }

func pause(ctx context.Context) error {
	select {
	case <-time.After(200 * time.Millisecond):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
