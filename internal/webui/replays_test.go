package webui_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/webui"
	"github.com/switchbackhq/switchback/internal/wire"
)

// The replays page says what a revert's replay still awaits and which
// events it replayed as unknown, and how many it left to live delivery on
// other routers of a tier, whether the replay runs on the router of
// this process or was asked of standalone routers.
func TestReplaysPageShowsAwaitedAndUnknownEvents(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	req := domain.ReplayRequest{Migration: mig, Partners: []string{"acme"}, From: at.Add(-time.Hour), To: at,
		Pipeline: "legacy", Filter: domain.ReplayMismatched, AwaitComparisons: true}
	progress := domain.ReplayJob{ID: "rpl_0123456789abcdef", Status: domain.ReplayRunning, Request: req, Total: 3, Done: 2,
		CreatedAt: at, AwaitUntil: at.Add(2 * time.Minute), AwaitingComparison: 4, Unknown: 1, UnknownEvents: []string{"evt_unknown1"}, InFlight: 2}
	tests := []struct {
		name  string
		setup func(t *testing.T) fixtureOptions
		after func(t *testing.T, f *fixture)
	}{
		{"router in this process", func(t *testing.T) fixtureOptions {
			return fixtureOptions{ui: webui.Options{Replays: func() []domain.ReplayJob { return []domain.ReplayJob{progress} }}}
		}, func(*testing.T, *fixture) {}},
		{"asked of standalone routers", func(t *testing.T) fixtureOptions { return fixtureOptions{} }, func(t *testing.T, f *fixture) {
			job, err := f.svc.AskReplay(ctx, control.Change{Actor: "ops"}, req)
			if err != nil {
				t.Fatal(err)
			}
			p := progress
			p.ID = job.ID
			if _, err := f.svc.IngestReport(ctx, wire.Report{Router: "ingress-1", Replays: []domain.ReplayJob{p}}); err != nil {
				t.Fatal(err)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.setup(t))
			tt.after(t, f)
			c := f.client(t)
			c.login("viewer")
			res := c.get("/replays")
			if res.status != 200 {
				t.Fatalf("status = %d, want 200\n%s", res.status, res.body)
			}
			for _, want := range []string{"2/3", "awaiting 4 comparisons until", `datetime="2026-03-01T12:02:00Z"`, "<code>evt_unknown1</code>", "2 in flight on other routers"} {
				if !strings.Contains(res.body, want) {
					t.Errorf("page lacks %q", want)
				}
			}
		})
	}
}

// On a tier of routers, the replays page says which router runs a replay
// and, once one took it over, from which router.
func TestReplaysPageShowsTheRouterThatRunsIt(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	req := domain.ReplayRequest{Migration: mig, Partners: []string{"acme"}, From: at.Add(-time.Hour), To: at, Pipeline: "legacy", Filter: domain.ReplayAll}
	f := newFixture(t, fixtureOptions{})
	job, err := f.svc.AskReplay(ctx, control.Change{Actor: "ops"}, req)
	if err != nil {
		t.Fatal(err)
	}
	for router, p := range map[string]domain.ReplayJob{
		"ingress-1": {Status: domain.ReplayRunning, Total: 5, Done: 1, RunBy: "ingress-1"},
		"ingress-2": {Status: domain.ReplayRunning, Total: 5, Done: 3, RunBy: "ingress-2", TakenFrom: "ingress-1", Takeover: 1},
	} {
		p.ID, p.Request, p.CreatedAt = job.ID, req, at
		if _, err := f.svc.IngestReport(ctx, wire.Report{Router: router, Replays: []domain.ReplayJob{p}}); err != nil {
			t.Fatal(err)
		}
	}
	c := f.client(t)
	c.login("viewer")
	res := c.get("/replays")
	if res.status != 200 {
		t.Fatalf("status = %d, want 200\n%s", res.status, res.body)
	}
	for _, want := range []string{"3/5", "on ingress-2, taken over from ingress-1"} {
		if !strings.Contains(res.body, want) {
			t.Errorf("page lacks %q", want)
		}
	}
}
