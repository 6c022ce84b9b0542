package ingress_test

import (
	"context"
	"net/http"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// holdDryRuns passes calls on to next, except dry-runs, which it holds
// until release is closed: a shadow whose comparison lands late, or never.
func holdDryRuns(next http.Handler, held chan<- struct{}, release <-chan struct{}) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Switchback-Mode") == "dry-run" {
			select {
			case held <- struct{}{}:
			default:
			}
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
		}
		next.ServeHTTP(w, r)
	})
}

// A revert's replay stays open for the comparisons still to come of the
// events the new pipeline applied: a mismatch recorded after the replay's
// first pass is replayed through legacy, and an event whose comparison
// never comes is replayed and listed as unknown at the deadline. The same
// holds for a replay started on the router and one a standalone router
// takes from the control service.
func TestRevertReplayAwaitsLateComparisons(t *testing.T) {
	type lateCase struct {
		name         string
		newFaults    refpipe.Faults
		answer       bool // the held dry-run answers; otherwise the clock passes the deadline
		wantReplayed bool
		wantUnknown  int
		asked        bool // asked of the router by the control service, not started on it
	}
	var tests []lateCase
	for _, asked := range []bool{false, true} {
		how := "started on the router"
		if asked {
			how = "asked by the control service"
		}
		tests = append(tests,
			lateCase{"a late mismatch is replayed, " + how, refpipe.Faults{DropField: "data.summary"}, true, true, 0, asked},
			lateCase{"a late equal comparison is not replayed, " + how, refpipe.Faults{}, true, false, 0, asked},
			lateCase{"a comparison that never lands is unknown at the deadline, " + how, refpipe.Faults{}, false, true, 1, asked})
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var skew atomic.Int64 // the router's clock runs ahead of time.Now by this
			e := newEnv(t, withFaults(refpipe.Faults{}, tt.newFaults),
				withClock(func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }))
			held, release := make(chan struct{}, 1), make(chan struct{})
			var released atomic.Bool
			free := func() {
				if released.CompareAndSwap(false, true) {
					close(release)
				}
			}
			t.Cleanup(free)
			e.legacyAt.set(holdDryRuns(e.legacy, held, release))
			ctx := context.Background()
			c := control.Change{Actor: "t", Reason: "test"}
			for _, st := range []domain.Stage{domain.StageShadow, domain.StageNew} {
				if _, err := e.svc.SetStage(ctx, c, "psa-webhooks-v2", "globex", st, true); err != nil {
					t.Fatal(err)
				}
			}
			waitFor(t, "the router to see globex on new", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })
			from := time.Now().Add(-time.Minute)
			if status, body := e.post(t, "globex", "late-1", "ticket.updated", "T-1", map[string]any{"summary": "printer on fire"}, ""); status != http.StatusAccepted {
				t.Fatalf("status = %d %v, want 202", status, body)
			}
			select {
			case <-held:
			case <-time.After(10 * time.Second):
				t.Fatal("the shadow's dry-run never reached legacy")
			}
			var ev journal.Event
			waitFor(t, "the event applied by new", func() bool {
				ev, _ = e.journal.Get(t.Context(), 1)
				return ev.State == journal.StateApplied
			})
			if ev.Pipeline != "new" || ev.Shadow != "legacy" || ev.Comparison != "" {
				t.Fatalf("event = pipeline %q, shadow %q, comparison %q; want applied by new, legacy's comparison due and not in",
					ev.Pipeline, ev.Shadow, ev.Comparison)
			}

			if _, err := e.svc.Revert(ctx, c, "psa-webhooks-v2"); err != nil {
				t.Fatal(err)
			}
			waitFor(t, "the router to see the revert", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })
			req := domain.ReplayRequest{Migration: "psa-webhooks-v2", Partners: []string{"globex"},
				From: from, To: time.Now().Add(time.Second), Pipeline: "legacy", Filter: domain.ReplayMismatched, AwaitComparisons: true, Rate: 1000}
			var job domain.ReplayJob
			var err error
			if tt.asked {
				asked, err := e.svc.AskReplay(ctx, c, req)
				if err != nil {
					t.Fatal(err)
				}
				fctx, cancel := context.WithCancel(ctx)
				followed := make(chan struct{})
				go func() {
					defer close(followed)
					e.router.FollowAsked(fctx, http.DefaultClient, mustControls(t, e.control.URL), e.svc.AddEphemeralToken("router-follow", domain.RoleRouter), 20*time.Millisecond)
				}()
				t.Cleanup(func() { cancel(); <-followed })
				waitFor(t, "the router to take the asked replay", func() bool {
					job, err = e.router.Replay(asked.ID)
					return err == nil
				})
			} else if job, err = e.router.StartReplay(ctx, req); err != nil {
				t.Fatal(err)
			}
			if want := job.CreatedAt.Add(2 * time.Minute); !job.AwaitUntil.Equal(want) {
				t.Errorf("awaitUntil = %v, want the default deadline, %v", job.AwaitUntil, want)
			}
			waitFor(t, "the replay to await the comparison", func() bool {
				j, _ := e.router.Replay(job.ID)
				return j.AwaitingComparison == 1
			})
			if j, _ := e.router.Replay(job.ID); j.Status != domain.ReplayRunning {
				t.Fatalf("replay awaiting a comparison is %s, want running", j.Status)
			}
			if tt.answer {
				free()
			} else {
				skew.Store(int64(3 * time.Minute))
			}
			waitFor(t, "the replay done", func() bool { j, _ := e.router.Replay(job.ID); return j.Status == domain.ReplayDone })

			got, _ := e.router.Replay(job.ID)
			wantDone, wantIDs := 0, []string(nil)
			if tt.wantReplayed {
				wantDone = 1
			}
			if tt.wantUnknown > 0 {
				wantIDs = []string{ev.ID}
			}
			if got.Done != wantDone || got.Total != wantDone || got.Failed != 0 || got.AwaitingComparison != 0 ||
				got.Unknown != tt.wantUnknown || !slices.Equal(got.UnknownEvents, wantIDs) {
				t.Errorf("replay = done %d of %d, failed %d, awaiting %d, unknown %d %v; want done %d of %d, none failed or awaiting, unknown %d %v",
					got.Done, got.Total, got.Failed, got.AwaitingComparison, got.Unknown, got.UnknownEvents, wantDone, wantDone, tt.wantUnknown, wantIDs)
			}
			if got, want := e.legacy.HasApplied(ev.ID), tt.wantReplayed; got != want {
				t.Errorf("legacy applied the event: %v, want %v", got, want)
			}
			after, _ := e.journal.Get(t.Context(), 1)
			replayed := slices.ContainsFunc(after.Replays, func(r journal.Replay) bool { return r.Job == job.ID && r.OK })
			if replayed != tt.wantReplayed {
				t.Errorf("event's replays = %+v (comparison %q), want replayed by %s: %v", after.Replays, after.Comparison, job.ID, tt.wantReplayed)
			}
		})
	}
}
