package ingress_test

import (
	"context"
	"fmt"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

// A shadow that falls behind never holds primary delivery. With the
// shadow pipeline's dry-runs held, every event is still applied by the
// primary; the comparisons the shadow pool has no place for are shed:
// recorded as skipped with their event's outcome (never due), counted in
// the router's metrics and owed to the control service. Those that found a
// place are made once the shadow answers.
func TestAShadowThatFallsBehindIsShedNotWaitedFor(t *testing.T) {
	const events, queue = 10, 2
	held, release := make(chan struct{}, events), make(chan struct{})
	e := newEnv(t, withShadowPool(1, queue), withNewPipeline(func(h http.Handler) http.Handler { return holdDryRuns(h, held, release) }))
	var once sync.Once
	unblock := func() { once.Do(func() { close(release) }) }
	t.Cleanup(unblock) // before the pipelines' servers close
	ctx := context.Background()
	if _, err := e.svc.SetStage(ctx, control.Change{Actor: "t", Reason: "test"}, "psa-webhooks-v2", "acme", domain.StageShadow, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router to see acme in shadow", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })
	post := func(i int) {
		t.Helper()
		if status, _ := e.post(t, "acme", fmt.Sprintf("s%d", i), "ticket.updated", fmt.Sprintf("T-%d", i), nil, ""); status != http.StatusAccepted {
			t.Fatalf("status = %d, want 202", status)
		}
	}
	// The first event's dry-run holds the one shadow worker; the pool
	// then has room for queue more.
	post(0)
	select {
	case <-held:
	case <-time.After(10 * time.Second):
		t.Fatal("the shadow pipeline was never called")
	}
	for i := 1; i < events; i++ {
		post(i)
	}
	waitFor(t, "every event applied while the shadow is held", func() bool { return e.pendingCount(t) == 0 })

	due, err := e.journal.ComparisonsDue(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(due), 1+queue; got != want {
		t.Errorf("%d comparisons due while the shadow is held, want %d (one with the worker, %d queued)", got, want, queue)
	}
	byClass := func() map[string]int {
		t.Helper()
		n := map[string]int{}
		for seq := uint64(1); seq <= events; seq++ {
			ev, err := e.journal.Get(t.Context(), seq)
			if err != nil {
				t.Fatal(err)
			}
			if ev.State != "applied" || ev.Shadow != "new" {
				t.Errorf("event %d: %s, shadow %q; want applied, shadow new", seq, ev.State, ev.Shadow)
			}
			n[ev.Comparison]++
		}
		return n
	}
	shed := events - 1 - queue
	if got := byClass(); got[string(domain.ClassSkipped)] != shed || got[""] != 1+queue {
		t.Errorf("comparisons recorded while the shadow is held = %v, want %d skipped and %d to come", got, shed, 1+queue)
	}
	if got := counterValue(t, e.metrics, "switchback_ingress_comparisons_total", "class", string(domain.ClassSkipped)); got != float64(shed) {
		t.Errorf("skipped comparisons in the metrics = %v, want %d", got, shed)
	}
	if got := counterValue(t, e.metrics, "switchback_ingress_shadow_queue", "", ""); got != queue {
		t.Errorf("shadow queue gauge = %v, want %d", got, queue)
	}

	unblock()
	waitFor(t, "the comparisons queued made", func() bool {
		due, err := e.journal.ComparisonsDue(t.Context())
		return err == nil && len(due) == 0
	})
	if got := byClass(); got[string(domain.ClassSkipped)] != shed || got[string(domain.ClassEqual)] != 1+queue {
		t.Errorf("comparisons recorded = %v, want %d skipped and %d equal", got, shed, 1+queue)
	}
	e.report(t, e.control.URL)
	waitFor(t, "every comparison counted", func() bool {
		compared, _ := e.comparisons(t)
		return compared == events
	})
	if _, got := e.comparisons(t); got[domain.ClassSkipped] != uint64(shed) || got[domain.ClassEqual] != 1+queue {
		t.Errorf("the control service counted %v, want %d skipped and %d equal", got, shed, 1+queue)
	}
}

// counterValue is the value of the counter or gauge name in reg, of the
// series whose label is value ("" for one without labels); 0 when there
// is none.
func counterValue(t *testing.T, reg *prometheus.Registry, name, label, value string) float64 {
	t.Helper()
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			match := label == ""
			for _, l := range m.GetLabel() {
				match = match || l.GetName() == label && l.GetValue() == value
			}
			if !match {
				continue
			}
			if m.GetCounter() != nil {
				return m.GetCounter().GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	return 0
}

// A router allowed to compare only a share of the shadowed events while
// its CPU is contended does so: while contended, an eighth of the events
// is compared and the others are shed, recorded as skipped with their
// outcome and counted with their reason; no noise probe runs. Once the CPU
// is free again, every event is compared.
func TestUnderContentionOnlyTheShadowsShareIsCompared(t *testing.T) {
	var contended atomic.Bool
	contended.Store(true)
	e := newEnv(t, withShadowBudget(1.0/8, contended.Load))
	ctx := context.Background()
	c := control.Change{Actor: "t", Reason: "test"}
	ms, _ := e.svc.State().Migration("psa-webhooks-v2")
	m := ms.Migration
	every := 1.0
	m.Compare.NoiseSampleRate = &every // a probe for every event compared, unless contended
	if _, _, err := e.svc.PutMigration(ctx, c, m); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetStage(ctx, c, "psa-webhooks-v2", "acme", domain.StageShadow, true); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the router to see acme in shadow", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })
	share := func() float64 { return counterValue(t, e.metrics, "switchback_ingress_shadow_share", "", "") }
	waitFor(t, "the shadow's share down to its minimum", func() bool { return share() == 1.0/8 })

	seq := uint64(0)
	send := func(n int) map[string]int {
		t.Helper()
		from := seq + 1
		for range n {
			seq++
			if status, _ := e.post(t, "acme", fmt.Sprintf("c%d", seq), "ticket.updated", fmt.Sprintf("T-%d", seq), nil, ""); status != http.StatusAccepted {
				t.Fatalf("status = %d, want 202", status)
			}
		}
		byClass := map[string]int{}
		waitFor(t, "every event applied and compared or shed", func() bool {
			clear(byClass)
			for s := from; s <= seq; s++ {
				ev, err := e.journal.Get(t.Context(), s)
				if err != nil || ev.Comparison == "" {
					return false
				}
				byClass[ev.Comparison]++
			}
			return true
		})
		return byClass
	}
	const events = 16
	if got := send(events); got[string(domain.ClassEqual)] != events/8 || got[string(domain.ClassSkipped)] != events-events/8 {
		t.Errorf("while contended: %v, want %d equal and %d skipped", got, events/8, events-events/8)
	}
	if got := counterValue(t, e.metrics, "switchback_ingress_shadow_shed_total", "reason", "contended"); got != events-events/8 {
		t.Errorf("shed as contended = %v, want %d", got, events-events/8)
	}
	if n := e.legacy.Calls(pipelineclient.DryRun); n != 0 {
		t.Errorf("%d noise probes while contended, want none", n)
	}

	contended.Store(false)
	waitFor(t, "the shadow's share back to every event", func() bool { return share() == 1 })
	if got := send(events); got[string(domain.ClassEqual)] != events {
		t.Errorf("once free: %v, want %d equal", got, events)
	}
}
