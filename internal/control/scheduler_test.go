package control_test

import (
	"context"
	"errors"
	"sync"
	"testing"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// fakeRouter is an ingress router in the same process; start, if set,
// answers StartReplay.
type fakeRouter struct {
	mu    sync.Mutex
	asked []domain.ReplayRequest
	start func(domain.ReplayRequest) (domain.ReplayJob, error)
}

var _ control.ReplayStarter = (*fakeRouter)(nil)

func (f *fakeRouter) StartReplay(_ context.Context, req domain.ReplayRequest) (domain.ReplayJob, error) {
	f.mu.Lock()
	f.asked = append(f.asked, req)
	f.mu.Unlock()
	if f.start != nil {
		return f.start(req)
	}
	return domain.ReplayJob{ID: "rpl_embedded", Status: domain.ReplayQueued, Request: req}, nil
}

func (f *fakeRouter) requests() []domain.ReplayRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]domain.ReplayRequest(nil), f.asked...)
}

// runScheduler runs a scheduler of e's service on router (nil: the
// routers are asked) until the test ends, as serve does.
func (e *env) runScheduler(t *testing.T, router control.ReplayStarter) {
	t.Helper()
	sc, err := control.NewReplayScheduler(e.svc, router)
	if err != nil {
		t.Fatalf("NewReplayScheduler: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// replays returns the replays started, on the router or asked of the
// routers.
func (e *env) replays(router *fakeRouter) []domain.ReplayRequest {
	if router != nil {
		return router.requests()
	}
	var out []domain.ReplayRequest
	for _, j := range e.svc.AskedReplayList() {
		out = append(out, j.Request)
	}
	return out
}

// Every revert that asks for a replay gets exactly one, of the partners
// that were on the new pipeline, since the earliest entered its stage,
// through legacy, awaiting late comparisons: on the router of the process
// when there is one, else asked of the routers, audited with the revert's
// actor and reason.
func TestSchedulerReplaysEachRevertOnce(t *testing.T) {
	guardTrip := func(t *testing.T, e *env) string {
		if _, err := e.svc.IngestReport(ctx, wire.Report{Router: "r1",
			Guard: []domain.GuardSample{{Migration: "m", Partner: "acme", EventID: "evt_1",
				Outcomes: []string{string(domain.ClassMissing)}}}}); err != nil {
			t.Fatalf("IngestReport: %v", err)
		}
		return "guard"
	}
	manual := func(t *testing.T, e *env) string {
		c := control.Change{Actor: "alice", Reason: "INC-1"}
		res, err := e.svc.SetKillSwitch(ctx, c, control.KillSwitch{Migrations: []string{"m"}, On: true, Replay: true})
		if err != nil {
			t.Fatalf("SetKillSwitch: %v", err)
		}
		if len(res.Replays) != 1 || len(res.Replays[0].Event.Partners) != 1 {
			t.Errorf("result replays = %+v, want the one replay of acme", res.Replays)
		}
		return c.Actor
	}
	for _, tt := range []struct {
		name     string
		revert   func(*testing.T, *env) string
		embedded bool
	}{
		{"guard revert, embedded router", guardTrip, true},
		{"guard revert, routers asked", guardTrip, false},
		{"manual revert, embedded router", manual, true},
		{"manual revert, routers asked", manual, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.partner(t, "acme")
			e.partner(t, "globex")
			e.migration(t, "m")
			e.moveTo(t, "m", "acme", domain.StageNew)
			e.moveTo(t, "m", "globex", domain.StageShadow)
			since := e.stage(t, "m", "acme").Since
			var router *fakeRouter
			var starter control.ReplayStarter
			if tt.embedded {
				router = &fakeRouter{}
				starter = router
			}
			e.runScheduler(t, starter)

			actor := tt.revert(t, e)

			got := e.replays(router)
			if len(got) != 1 {
				t.Fatalf("replays = %+v, want exactly one", got)
			}
			r := got[0]
			if r.Migration != "m" || len(r.Partners) != 1 || r.Partners[0] != "acme" || !r.From.Equal(since) || !r.To.After(since) ||
				r.Pipeline != "legacy" || r.Filter != domain.ReplayMismatched || !r.AwaitComparisons {
				t.Errorf("replay = %+v, want acme's mismatched events of m since %v through legacy, awaiting comparisons", r, since)
			}
			if tt.embedded && len(e.svc.AskedReplayList()) != 0 {
				t.Errorf("the routers were asked too: %+v", e.svc.AskedReplayList())
			}
			log := e.auditLog(t)
			if last := log[len(log)-1]; last.Action != "replay.start" || last.Actor != actor {
				t.Errorf("last audit entry = %s by %s, want replay.start by %s", last.Action, last.Actor, actor)
			}
		})
	}
}

// A revert that asks for no replay, a partner moved back by hand, and a
// revert while no scheduler runs start none, and the reverts land all
// the same.
func TestSchedulerStartsNoReplayUnasked(t *testing.T) {
	for _, tt := range []struct {
		name      string
		scheduler bool
		revert    func(e *env) error
	}{
		{"revert without replay", true, func(e *env) error {
			_, err := e.svc.Revert(ctx, admin, "m")
			return err
		}},
		{"revert of every migration without replay", true, func(e *env) error {
			_, err := e.svc.RevertAll(ctx, admin)
			return err
		}},
		{"partner moved back by hand", true, func(e *env) error {
			_, err := e.svc.SetStage(ctx, admin, "m", "acme", domain.StageShadow, false)
			return err
		}},
		{"replay asked while no scheduler runs", false, func(e *env) error {
			res, err := e.svc.SetKillSwitch(ctx, admin, control.KillSwitch{Migrations: []string{"m"}, On: true, Replay: true})
			if err == nil && res.Replays != nil {
				err = errors.New("replays reported without a scheduler")
			}
			return err
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, nil)
			e.partner(t, "acme")
			e.migration(t, "m")
			e.moveTo(t, "m", "acme", domain.StageNew)
			router := &fakeRouter{}
			if tt.scheduler {
				e.runScheduler(t, router)
			}
			version := e.svc.State().Version
			if err := tt.revert(e); err != nil {
				t.Fatal(err)
			}
			if got := e.svc.State().Version; got <= version {
				t.Errorf("version = %d, want the revert's, above %d", got, version)
			}
			if got := router.requests(); len(got) != 0 {
				t.Errorf("replays = %+v, want none", got)
			}
		})
	}
}

// A replay that cannot start is logged; the revert stands and answers no
// replay.
func TestSchedulerReplayThatCannotStart(t *testing.T) {
	e := newEnv(t, nil)
	e.partner(t, "acme")
	e.migration(t, "m")
	e.moveTo(t, "m", "acme", domain.StageNew)
	e.runScheduler(t, &fakeRouter{start: func(domain.ReplayRequest) (domain.ReplayJob, error) {
		return domain.ReplayJob{}, domain.Errorf(domain.CodeNotFound, "migration m is not in the router's snapshot")
	}})
	res, err := e.svc.SetKillSwitch(ctx, admin, control.KillSwitch{On: true, Replay: true})
	if err != nil {
		t.Fatalf("SetKillSwitch: %v", err)
	}
	if res.Replays != nil || !e.svc.State().Migrations["m"].Reverted {
		t.Errorf("replays = %+v, reverted %v; want none, and m reverted", res.Replays, e.svc.State().Migrations["m"].Reverted)
	}
}

// One scheduler per service: a second is refused while the first exists.
func TestSchedulerOnePerService(t *testing.T) {
	e := newEnv(t, nil)
	e.runScheduler(t, nil)
	_, err := control.NewReplayScheduler(e.svc, nil)
	var de *domain.Error
	if !errors.As(err, &de) || de.Code != domain.CodeConflict {
		t.Errorf("second scheduler: err = %v, want %s", err, domain.CodeConflict)
	}
}

// A kill switch without a replay never waits for the scheduler: the kill
// switch stays instant while another revert's replay is still starting.
func TestRevertWithoutReplayDoesNotWaitForTheScheduler(t *testing.T) {
	e := newEnv(t, nil)
	e.partner(t, "acme")
	e.partner(t, "globex")
	e.migration(t, "m")
	e.migration(t, "other")
	e.moveTo(t, "m", "acme", domain.StageNew)
	e.moveTo(t, "other", "globex", domain.StageNew)
	starting, release := make(chan struct{}), make(chan struct{})
	router := &fakeRouter{start: func(req domain.ReplayRequest) (domain.ReplayJob, error) {
		close(starting)
		<-release // a replay that takes its time to start
		return domain.ReplayJob{ID: "rpl_slow", Status: domain.ReplayQueued, Request: req}, nil
	}}
	e.runScheduler(t, router)
	done := make(chan error, 1)
	go func() {
		_, err := e.svc.SetKillSwitch(ctx, admin, control.KillSwitch{Migrations: []string{"m"}, On: true, Replay: true})
		done <- err
	}()
	<-starting
	// The scheduler is busy until release: this revert must not queue behind it.
	if _, err := e.svc.SetKillSwitch(ctx, admin, control.KillSwitch{Migrations: []string{"other"}, On: true}); err != nil {
		t.Fatalf("revert without a replay: %v", err)
	}
	if _, err := e.svc.Revert(ctx, admin, "other"); err != nil {
		t.Fatalf("Revert: %v", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatalf("revert with a replay: %v", err)
	}
}
