package ingress_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
	"github.com/switchbackhq/switchback/internal/refpipe"
	"github.com/switchbackhq/switchback/internal/wire"
)

// A noisy legacy pipeline is run a second time on every sampled event: in
// shadow, the second run is compared with the applied one; on new, with
// the shadow's dry-run. What differs is learned as noise, reported to the
// control service, and the router's comparisons use it; a signal pin
// overrides it.
func TestNoiseLearnedInShadowAndNew(t *testing.T) {
	e := newEnv(t, withFaults(refpipe.Faults{Noisy: true}, refpipe.Faults{}))
	ctx := context.Background()
	c := control.Change{Actor: "t", Reason: "test"}
	ms, _ := e.svc.State().Migration("psa-webhooks-v2")
	m := ms.Migration
	every := 1.0
	m.Compare.NoiseSampleRate = &every
	if _, _, err := e.svc.PutMigration(ctx, c, m); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetStage(ctx, c, "psa-webhooks-v2", "acme", domain.StageShadow, true); err != nil {
		t.Fatal(err)
	}
	current := func() {
		t.Helper()
		waitFor(t, "the router to see the change", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })
	}
	current()
	e.report(t, e.control.URL)

	seq := uint64(0)
	classOfNext := func() domain.Class {
		t.Helper()
		seq++
		if status, _ := e.post(t, "acme", fmt.Sprintf("evt-%d", seq), "ticket.updated", "T-1", map[string]any{"status": "open"}, ""); status != 202 {
			t.Fatalf("status = %d, want 202", status)
		}
		var ev journal.Event
		waitFor(t, "the comparison recorded", func() bool { ev, _ = e.journal.Get(t.Context(), seq); return ev.Comparison != "" })
		return domain.Class(ev.Comparison)
	}
	// Until the stamped paths were seen often enough, a difference in
	// them is a value_diff; then noise. (The probe of one event may still
	// run as the next is compared, so when exactly is not fixed.)
	first := classOfNext()
	if first != domain.ClassValueDiff {
		t.Fatalf("first event = %s, want value_diff: nothing is learned yet", first)
	}
	learnedAt := 0
	for i := 2; i <= 20 && learnedAt == 0; i++ {
		switch got := classOfNext(); got {
		case domain.ClassNoise:
			learnedAt = i
		case domain.ClassValueDiff:
		default:
			t.Fatalf("event %d = %s, want value_diff or noise", i, got)
		}
	}
	if learnedAt < domain.NoiseLearnedAfter+1 {
		t.Fatalf("noise from event %d on, want not before event %d", learnedAt, domain.NoiseLearnedAfter+1)
	}
	if got := classOfNext(); got != domain.ClassNoise {
		t.Errorf("after learning: %s, want noise", got)
	}

	// Reported: the control service lists the paths for acme.
	waitFor(t, "the noise reported", func() bool {
		paths, err := e.svc.Noise(ctx, "psa-webhooks-v2", "acme")
		if err != nil {
			t.Fatal(err)
		}
		learned := 0
		for _, p := range paths {
			if p.EventType == "ticket" && p.Learned && (p.Path == "ticket:fields.processedAt" || p.Path == "ticket:fields.requestId") {
				learned++
			}
		}
		return learned == 2
	})

	// An operator says the request id matters: no longer noise.
	if _, err := e.svc.PinNoise(ctx, c, "psa-webhooks-v2", "ticket", "ticket:fields.requestId", domain.PinSignal); err != nil {
		t.Fatal(err)
	}
	current()
	if got := classOfNext(); got != domain.ClassValueDiff {
		t.Errorf("with ticket:fields.requestId pinned as signal: %s, want value_diff", got)
	}
	if _, err := e.svc.PinNoise(ctx, c, "psa-webhooks-v2", "ticket", "ticket:fields.requestId", ""); err != nil {
		t.Fatal(err)
	}

	// On new, legacy is the shadow: its dry-run differs from the clean
	// primary in the stamped paths, noise; and legacy is run twice.
	if _, err := e.svc.SetStage(ctx, c, "psa-webhooks-v2", "acme", domain.StageNew, true); err != nil {
		t.Fatal(err)
	}
	current()
	dryRuns := e.legacy.Calls(pipelineclient.DryRun)
	if got := classOfNext(); got != domain.ClassNoise {
		t.Errorf("on new: %s, want noise", got)
	}
	// At least: a probe of an earlier event may still land meanwhile.
	waitFor(t, "the second legacy dry-run", func() bool { return e.legacy.Calls(pipelineclient.DryRun) >= dryRuns+2 })
}

// The probe compares legacy with legacy, never with the new pipeline: a
// deterministic legacy and a new pipeline that leaves a field out differ
// on every event, in shadow (legacy applied, new the shadow) and in new
// (new applied, legacy the shadow), yet no path is learned from the
// probes, so every event stays a value_diff.
func TestNoiseProbeComparesLegacyWithLegacy(t *testing.T) {
	e := newEnv(t, withFaults(refpipe.Faults{}, refpipe.Faults{DropField: "data.status"}))
	ctx := context.Background()
	c := control.Change{Actor: "t", Reason: "test"}
	ms, _ := e.svc.State().Migration("psa-webhooks-v2")
	m := ms.Migration
	every := 1.0
	m.Compare.NoiseSampleRate = &every
	if _, _, err := e.svc.PutMigration(ctx, c, m); err != nil {
		t.Fatal(err)
	}
	e.report(t, e.control.URL)
	seq := uint64(0)
	for _, st := range []struct {
		stage       domain.Stage
		dryRunsEach int // legacy dry-runs per event: the probe, and in new the shadow
	}{{domain.StageShadow, 1}, {domain.StageNew, 2}} {
		if _, err := e.svc.SetStage(ctx, c, "psa-webhooks-v2", "acme", st.stage, true); err != nil {
			t.Fatal(err)
		}
		waitFor(t, "the router to see the change", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })
		for range domain.NoiseLearnedAfter + 3 {
			dryRuns := e.legacy.Calls(pipelineclient.DryRun)
			seq++
			if status, _ := e.post(t, "acme", fmt.Sprintf("evt-%d", seq), "ticket.updated", "T-1", map[string]any{"status": "open"}, ""); status != 202 {
				t.Fatalf("status = %d, want 202", status)
			}
			var ev journal.Event
			waitFor(t, "the comparison recorded", func() bool { ev, _ = e.journal.Get(t.Context(), seq); return ev.Comparison != "" })
			if got := domain.Class(ev.Comparison); got != domain.ClassValueDiff {
				t.Fatalf("%s, event %d: %s, want value_diff: the new pipeline leaves status out", st.stage, seq, got)
			}
			// The probe done before the next event is compared.
			waitFor(t, "the probe", func() bool { return e.legacy.Calls(pipelineclient.DryRun) >= dryRuns+st.dryRunsEach })
		}
	}
	waitFor(t, "the comparisons reported", func() bool {
		cs, err := e.svc.Comparisons(ctx, "psa-webhooks-v2", "acme")
		return err == nil && cs.Counts["ticket"][domain.ClassValueDiff] == domain.NoiseLearnedAfter+3
	})
	paths, err := e.svc.Noise(ctx, "psa-webhooks-v2", "acme")
	if err != nil || len(paths) != 0 {
		t.Errorf("noise paths = %+v, %v; want none: legacy agrees with itself", paths, err)
	}
}

// A router learns from what other routers saw: with no probes of its own
// (a sample rate of 0), it follows the noise the control service learned.
func TestNoiseLearnedByOtherRouters(t *testing.T) {
	e := newEnv(t, withFaults(refpipe.Faults{Noisy: true}, refpipe.Faults{}))
	ctx := context.Background()
	c := control.Change{Actor: "t", Reason: "test"}
	ms, _ := e.svc.State().Migration("psa-webhooks-v2")
	m := ms.Migration
	off := 0.0
	m.Compare.NoiseSampleRate = &off
	if _, _, err := e.svc.PutMigration(ctx, c, m); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetStage(ctx, c, "psa-webhooks-v2", "acme", domain.StageShadow, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router to see acme in shadow", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })
	obs := func(path string) domain.NoiseObservation {
		return domain.NoiseObservation{Migration: "psa-webhooks-v2", Partner: "acme", EventType: "ticket", Path: path, Count: domain.NoiseLearnedAfter}
	}
	if _, err := e.svc.IngestReport(ctx, wire.Report{Router: "edge-2", Noise: []domain.NoiseObservation{obs(domain.NoiseProbesPath), obs("ticket:fields.processedAt"), obs("ticket:fields.requestId")}}); err != nil {
		t.Fatal(err)
	}
	token := e.svc.AddEphemeralToken("follower", domain.RoleRouter)
	fctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		e.router.FollowNoise(fctx, http.DefaultClient, mustControls(t, e.control.URL), token, 10*time.Millisecond)
	})
	defer wg.Wait()
	defer cancel()

	dryRuns := e.legacy.Calls(pipelineclient.DryRun)
	for i := 1; ; i++ {
		if status, _ := e.post(t, "acme", fmt.Sprintf("evt-%d", i), "ticket.updated", "T-1", nil, ""); status != 202 {
			t.Fatalf("status = %d, want 202", status)
		}
		var ev journal.Event
		waitFor(t, "the comparison recorded", func() bool { ev, _ = e.journal.Get(t.Context(), uint64(i)); return ev.Comparison != "" })
		if domain.Class(ev.Comparison) == domain.ClassNoise {
			break
		}
		if i == 50 {
			t.Fatalf("after %d events, still %s: the noise learned elsewhere is not followed", i, ev.Comparison)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if got := e.legacy.Calls(pipelineclient.DryRun); got != dryRuns {
		t.Errorf("legacy dry-runs = %d, want none at a sample rate of 0", got-dryRuns)
	}
}
