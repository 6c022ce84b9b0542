package control_test

import (
	"slices"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// A replay asked of standalone routers shows, summed over their reports,
// the comparisons they still await and the events they replayed as
// unknown: the same progress an embedded router shows.
func TestAskedReplaySumsAwaitedAndUnknownEvents(t *testing.T) {
	e := newEnv(t, nil)
	e.migration(t, "m1")
	e.partner(t, "acme")
	from := e.clock.Now().Add(-time.Hour)
	req := domain.ReplayRequest{Migration: "m1", Partners: []string{"acme"}, From: from, To: e.clock.Now(),
		Pipeline: "legacy", Filter: domain.ReplayMismatched, AwaitComparisons: true}
	job, err := e.svc.AskReplay(ctx, ops, req)
	if err != nil {
		t.Fatal(err)
	}
	if asked := e.svc.AskedReplays(); len(asked) != 1 || !asked[0].Request.AwaitComparisons {
		t.Fatalf("asked replays = %+v, want the job with awaitComparisons for the routers", asked)
	}
	until := e.clock.Now().Add(2 * time.Minute)
	report := func(router string, j domain.ReplayJob) {
		t.Helper()
		j.ID, j.Request, j.CreatedAt = job.ID, req, e.clock.Now()
		if _, err := e.svc.IngestReport(ctx, wire.Report{Router: router, Replays: []domain.ReplayJob{j}}); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name                                 string
		router                               string
		progress                             domain.ReplayJob
		wantStatus                           string
		wantAwaiting, wantUnknown, wantTotal int
		wantInFlight                         int
		wantUnknownEvents                    []string
		wantAwaitUntil                       time.Time
	}{
		{"one router awaits", "r1",
			domain.ReplayJob{Status: domain.ReplayRunning, Total: 2, Done: 2, AwaitUntil: until, AwaitingComparison: 3},
			domain.ReplayRunning, 3, 0, 2, 0, nil, until},
		{"another is done with unknown events", "r2",
			domain.ReplayJob{Status: domain.ReplayDone, Total: 1, Done: 1, AwaitUntil: until.Add(time.Second), Unknown: 1, UnknownEvents: []string{"evt_b"}, InFlight: 2},
			domain.ReplayRunning, 3, 1, 3, 2, []string{"evt_b"}, until.Add(time.Second)},
		{"the first ends past its deadline", "r1",
			domain.ReplayJob{Status: domain.ReplayDone, Total: 4, Done: 4, AwaitUntil: until, Unknown: 2, UnknownEvents: []string{"evt_a1", "evt_a2"}},
			domain.ReplayDone, 0, 3, 5, 2, []string{"evt_a1", "evt_a2", "evt_b"}, until.Add(time.Second)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			report(tt.router, tt.progress)
			got, err := e.svc.AskedReplay(job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.wantStatus || got.AwaitingComparison != tt.wantAwaiting || got.Unknown != tt.wantUnknown || got.Total != tt.wantTotal {
				t.Errorf("got status %s, awaiting %d, unknown %d, total %d; want %s, %d, %d, %d",
					got.Status, got.AwaitingComparison, got.Unknown, got.Total, tt.wantStatus, tt.wantAwaiting, tt.wantUnknown, tt.wantTotal)
			}
			if got.InFlight != tt.wantInFlight {
				t.Errorf("in flight = %d, want %d: the routers' sum", got.InFlight, tt.wantInFlight)
			}
			if !slices.Equal(got.UnknownEvents, tt.wantUnknownEvents) {
				t.Errorf("unknown events = %v, want %v", got.UnknownEvents, tt.wantUnknownEvents)
			}
			if !got.AwaitUntil.Equal(tt.wantAwaitUntil) {
				t.Errorf("awaitUntil = %v, want the latest reported, %v", got.AwaitUntil, tt.wantAwaitUntil)
			}
		})
	}
}

// A replay asked of a tier of routers is summed over the router that runs
// it: the routers that lost its claim report it done with nothing to
// send, and a router it was taken over from (its last progress left
// running) is left out once the taker reports, through any chain of
// takeovers, one back to a router taken over from before.
func TestAskedReplaySumsTheRouterThatRunsItOnATier(t *testing.T) {
	e := newEnv(t, nil)
	e.migration(t, "m1")
	e.partner(t, "acme")
	req := domain.ReplayRequest{Migration: "m1", Partners: []string{"acme"}, From: e.clock.Now().Add(-time.Hour), To: e.clock.Now(),
		Pipeline: "legacy", Filter: domain.ReplayAll}
	job, err := e.svc.AskReplay(ctx, ops, req)
	if err != nil {
		t.Fatal(err)
	}
	report := func(router string, j domain.ReplayJob) {
		t.Helper()
		j.ID, j.Request, j.CreatedAt = job.ID, req, e.clock.Now()
		if _, err := e.svc.IngestReport(ctx, wire.Report{Router: router, Replays: []domain.ReplayJob{j}}); err != nil {
			t.Fatal(err)
		}
	}
	elsewhere := func(runner string, takeover int) domain.ReplayJob {
		return domain.ReplayJob{Status: domain.ReplayDone, RunBy: runner, Takeover: takeover}
	}
	tests := []struct {
		name          string
		router        string
		progress      domain.ReplayJob
		wantStatus    string
		wantTotal     int
		wantDone      int
		wantRunBy     string
		wantTakenFrom string
	}{
		{"a loser reports before the claimant", "b", elsewhere("a", 0), domain.ReplayRunning, 0, 0, "a", ""},
		{"the claimant runs", "a", domain.ReplayJob{Status: domain.ReplayRunning, Total: 10, Done: 4, RunBy: "a"}, domain.ReplayRunning, 10, 4, "a", ""},
		{"another loser", "c", elsewhere("a", 0), domain.ReplayRunning, 10, 4, "a", ""},
		{"b takes it over from a, which never reports again", "b",
			domain.ReplayJob{Status: domain.ReplayRunning, Total: 10, Done: 1, RunBy: "b", TakenFrom: "a", Takeover: 1}, domain.ReplayRunning, 10, 1, "b", "a"},
		{"c takes it over from b", "c",
			domain.ReplayJob{Status: domain.ReplayRunning, Total: 10, Done: 2, RunBy: "c", TakenFrom: "b", Takeover: 2}, domain.ReplayRunning, 10, 2, "c", "b"},
		{"a comes back and takes it back from c", "a",
			domain.ReplayJob{Status: domain.ReplayRunning, Total: 10, Done: 3, RunBy: "a", TakenFrom: "c", Takeover: 3}, domain.ReplayRunning, 10, 3, "a", "c"},
		{"a finishes", "a",
			domain.ReplayJob{Status: domain.ReplayDone, Total: 10, Done: 10, RunBy: "a", TakenFrom: "c", Takeover: 3}, domain.ReplayDone, 10, 10, "a", "c"},
		{"c learns it lost the claim", "c", elsewhere("a", 3), domain.ReplayDone, 10, 10, "a", "c"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			report(tt.router, tt.progress)
			got, err := e.svc.AskedReplay(job.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Status != tt.wantStatus || got.Total != tt.wantTotal || got.Done != tt.wantDone || got.RunBy != tt.wantRunBy || got.TakenFrom != tt.wantTakenFrom {
				t.Errorf("got %s %d/%d run by %q taken from %q; want %s %d/%d run by %q taken from %q",
					got.Status, got.Done, got.Total, got.RunBy, got.TakenFrom, tt.wantStatus, tt.wantDone, tt.wantTotal, tt.wantRunBy, tt.wantTakenFrom)
			}
		})
	}
}
