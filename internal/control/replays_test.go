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
