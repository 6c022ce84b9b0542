// Package registrytest is the conformance suite of control.Registry: what
// every registry must do, checked the same way for each. A registry runs
// it from its own tests:
//
//	func TestRegistryConformance(t *testing.T) {
//		registrytest.Run(t, func(t *testing.T) control.Registry {
//			return newRegistry(t) // a new, empty registry, released by t.Cleanup
//		})
//	}
//
// What only some registries do (expire routers, drop old replays) is
// tested by their own packages.
package registrytest

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// Opener returns a new, empty registry for one test.
type Opener func(t *testing.T) control.Registry

// Run runs the suite against the registries open returns, each test on a
// registry of its own.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		run  func(*testing.T, control.Registry)
	}{
		{"Routers", testRouters},
		{"RouterJournalKept", testJournalKept},
		{"Replays", testReplays},
		{"ReplayLearnedFromProgress", testReplayLearned},
		{"Window", testWindow},
		{"WindowConcurrentUpdates", testWindowConcurrent},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open(t)) })
	}
}

func routers(t *testing.T, r control.Registry) []control.RouterStatus {
	t.Helper()
	got, err := r.Routers(t.Context())
	if err != nil {
		t.Fatalf("Routers: %v", err)
	}
	slices.SortFunc(got, func(a, b control.RouterStatus) int { return strings.Compare(a.ID, b.ID) })
	return got
}

func put(t *testing.T, r control.Registry, st control.RouterStatus) {
	t.Helper()
	if err := r.PutRouter(t.Context(), st); err != nil {
		t.Fatalf("PutRouter(%s): %v", st.ID, err)
	}
}

// Every router put is listed with what it last reported.
func testRouters(t *testing.T, r control.Registry) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	r1 := control.RouterStatus{ID: "ingress-1", LastSeen: now, SnapshotVersion: 7, StoreID: "s1", Journal: json.RawMessage(`{"pending":2}`)}
	r2 := control.RouterStatus{ID: "ingress/2", LastSeen: now, SnapshotVersion: 9, StoreID: "s1", Refused: 8, Conflict: "holds version 9"}
	put(t, r, r1)
	put(t, r, r2)
	if diff := cmp.Diff([]control.RouterStatus{r1, r2}, routers(t, r)); diff != "" {
		t.Errorf("Routers (-want +got):\n%s", diff)
	}
	r1.SnapshotVersion, r1.LastSeen = 8, now.Add(time.Second)
	put(t, r, r1)
	if diff := cmp.Diff([]control.RouterStatus{r1, r2}, routers(t, r)); diff != "" {
		t.Errorf("Routers after ingress-1 moved to version 8 (-want +got):\n%s", diff)
	}
}

// A report without journal figures keeps the last ones.
func testJournalKept(t *testing.T, r control.Registry) {
	now := time.Now().UTC().Truncate(time.Millisecond)
	put(t, r, control.RouterStatus{ID: "ingress-1", LastSeen: now, SnapshotVersion: 7, Journal: json.RawMessage(`{"pending":2}`)})
	put(t, r, control.RouterStatus{ID: "ingress-1", LastSeen: now.Add(time.Second), SnapshotVersion: 8})
	got := routers(t, r)
	if len(got) != 1 || string(got[0].Journal) != `{"pending":2}` || got[0].SnapshotVersion != 8 {
		t.Errorf("Routers = %+v, want ingress-1 at version 8 with journal {\"pending\":2}", got)
	}
}

func replays(t *testing.T, r control.Registry) []control.AskedJob {
	t.Helper()
	got, err := r.Replays(t.Context())
	if err != nil {
		t.Fatalf("Replays: %v", err)
	}
	slices.SortFunc(got, func(a, b control.AskedJob) int { return strings.Compare(a.Job.ID, b.Job.ID) })
	return got
}

func job(id string) domain.ReplayJob {
	now := time.Now().UTC().Truncate(time.Millisecond)
	return domain.ReplayJob{ID: id, Status: domain.ReplayQueued, CreatedAt: now, Request: domain.ReplayRequest{
		Migration: "m", Partners: []string{"acme"}, From: now.Add(-time.Hour), To: now, Pipeline: "new", Filter: domain.ReplayAll}}
}

// A replay put is listed with every router's latest progress on it.
func testReplays(t *testing.T, r control.Registry) {
	ctx := t.Context()
	a, b := job("rpl_a"), job("rpl_b")
	for _, j := range []domain.ReplayJob{a, b} {
		if err := r.PutReplay(ctx, j); err != nil {
			t.Fatalf("PutReplay(%s): %v", j.ID, err)
		}
	}
	progress := func(j domain.ReplayJob, status string, done int) domain.ReplayJob {
		j.Status, j.Total, j.Done = status, 10, done
		return j
	}
	for _, p := range []struct {
		router string
		job    domain.ReplayJob
	}{
		{"ingress-1", progress(a, domain.ReplayRunning, 3)},
		{"ingress/2", progress(a, domain.ReplayDone, 10)},
		{"ingress-1", progress(a, domain.ReplayRunning, 5)}, // replaces its first
	} {
		if err := r.PutReplayProgress(ctx, p.router, p.job); err != nil {
			t.Fatalf("PutReplayProgress(%s, %s): %v", p.router, p.job.ID, err)
		}
	}
	want := []control.AskedJob{
		{Job: a, Progress: map[string]domain.ReplayJob{"ingress-1": progress(a, domain.ReplayRunning, 5), "ingress/2": progress(a, domain.ReplayDone, 10)}},
		{Job: b, Progress: map[string]domain.ReplayJob{}},
	}
	if diff := cmp.Diff(want, replays(t, r)); diff != "" {
		t.Errorf("Replays (-want +got):\n%s", diff)
	}
}

// Progress on a replay the registry does not hold puts the replay back as
// asked.
func testReplayLearned(t *testing.T, r control.Registry) {
	p := job("rpl_c")
	p.Status, p.Total = domain.ReplayRunning, 4
	if err := r.PutReplayProgress(t.Context(), "ingress-1", p); err != nil {
		t.Fatalf("PutReplayProgress: %v", err)
	}
	asked := p
	asked.Status, asked.Total = "", 0
	want := []control.AskedJob{{Job: asked, Progress: map[string]domain.ReplayJob{"ingress-1": p}}}
	if diff := cmp.Diff(want, replays(t, r)); diff != "" {
		t.Errorf("Replays (-want +got):\n%s", diff)
	}
}

// update runs UpdateWindow and returns the window fn last got.
func update(t *testing.T, r control.Registry, migration, partner string, fn func([]string) []string) []string {
	t.Helper()
	var got []string
	err := r.UpdateWindow(t.Context(), migration, partner, func(w []string) []string {
		got = slices.Clone(w)
		return fn(w)
	})
	if err != nil {
		t.Fatalf("UpdateWindow(%s, %s): %v", migration, partner, err)
	}
	return got
}

// A window holds what was last written, per migration and partner, and
// nil deletes it.
func testWindow(t *testing.T, r control.Registry) {
	appending := func(o ...string) func([]string) []string {
		return func(w []string) []string { return append(slices.Clip(w), o...) }
	}
	if got := update(t, r, "m", "acme", appending("equal")); len(got) != 0 {
		t.Errorf("a new window: got %q, want none", got)
	}
	update(t, r, "m", "acme", appending("value_diff", "error"))
	update(t, r, "m", "acme/2", appending("missing"))
	update(t, r, "n", "acme", appending("empty"))
	if got, want := update(t, r, "m", "acme", func([]string) []string { return nil }), []string{"equal", "value_diff", "error"}; !slices.Equal(got, want) {
		t.Errorf("m/acme: got %q, want %q", got, want)
	}
	if got := update(t, r, "m", "acme", func(w []string) []string { return w }); len(got) != 0 {
		t.Errorf("m/acme after a nil update: got %q, want none", got)
	}
	if got, want := update(t, r, "m", "acme/2", appending()), []string{"missing"}; !slices.Equal(got, want) {
		t.Errorf("m/acme/2: got %q, want %q", got, want)
	}
	if got, want := update(t, r, "n", "acme", appending()), []string{"empty"}; !slices.Equal(got, want) {
		t.Errorf("n/acme: got %q, want %q", got, want)
	}
}

// Updates at once are each applied whole or not at all: a window full at
// size outcomes is cleared by exactly one of them. A registry may refuse
// an update that keeps losing races (an error), never apply half of it.
func testWindowConcurrent(t *testing.T, r control.Registry) {
	const writers, each, size = 4, 15, 10
	var mu sync.Mutex
	applied, trips := 0, 0
	var wg sync.WaitGroup
	for range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				trip := false
				err := r.UpdateWindow(context.WithoutCancel(t.Context()), "m", "acme", func(w []string) []string {
					w = append(slices.Clip(w), "value_diff")
					trip = len(w) == size
					if trip {
						return nil
					}
					return w
				})
				if err != nil {
					continue
				}
				mu.Lock()
				applied++
				if trip {
					trips++
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	left := len(update(t, r, "m", "acme", func(w []string) []string { return w }))
	if trips != applied/size || left != applied%size {
		t.Errorf("%d updates applied: %d trips and %d outcomes left, want %d and %d", applied, trips, left, applied/size, applied%size)
	}
	if applied < writers*each/2 {
		t.Errorf("only %d of %d updates applied", applied, writers*each)
	}
}
