package control

import (
	"context"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// ReplayStarter is what the scheduler needs from an ingress router in the
// same process: starting a replay on its journal.
type ReplayStarter interface {
	StartReplay(ctx context.Context, req domain.ReplayRequest) (domain.ReplayJob, error)
}

// ReplayScheduler turns the service's revert events into replays: the one
// place where a revert schedules a replay. For an event that asks for one,
// it starts the replay through legacy of the mismatched events of the
// reverted partners since Since, awaiting the comparisons still to come, so
// that a mismatch recorded after the revert is replayed too. The replay
// runs on the router of this process when there is one, else it is asked
// of the routers (AskReplay). Events are handled one at a time, in order.
type ReplayScheduler struct {
	svc     *Service
	router  ReplayStarter
	events  chan pendingRevert
	stopped chan struct{}
}

type pendingRevert struct {
	ev    RevertEvent
	reply chan scheduled // buffered: the loop never waits for the emitter
}

type scheduled struct {
	replay ScheduledReplay
	ok     bool
}

// replayLead is how far past the revert a replay's window reaches: events
// journaled while routers learn of the revert may still go to the new
// pipeline.
const replayLead = time.Second

// NewReplayScheduler returns the scheduler of svc's replays, run on
// router, or asked of the routers when router is nil. From now on every
// revert event of svc goes to it, and waits until Run takes it: call Run.
// A revert emitted while no scheduler exists starts no replay. It returns
// a CodeConflict error if svc has a scheduler already.
func NewReplayScheduler(svc *Service, router ReplayStarter) (*ReplayScheduler, error) {
	sc := &ReplayScheduler{svc: svc, router: router, events: make(chan pendingRevert), stopped: make(chan struct{})}
	if !svc.scheduler.CompareAndSwap(nil, sc) {
		return nil, domain.Errorf(domain.CodeConflict, "the control service has a replay scheduler already")
	}
	return sc, nil
}

// Run takes the service's revert events, one at a time, until ctx ends;
// then it detaches from the service, so that another scheduler may follow.
func (sc *ReplayScheduler) Run(ctx context.Context) {
	defer close(sc.stopped)
	defer sc.svc.scheduler.CompareAndSwap(sc, nil)
	for {
		select {
		case <-ctx.Done():
			return
		case p := <-sc.events:
			r, ok := sc.schedule(ctx, p.ev)
			p.reply <- scheduled{r, ok}
		}
	}
}

// submit hands ev to the loop and waits for its replay. The revert has
// landed already: its event is dropped only if the scheduler stops first,
// never because the caller gave up waiting.
func (sc *ReplayScheduler) submit(ev RevertEvent) (ScheduledReplay, bool) {
	p := pendingRevert{ev: ev, reply: make(chan scheduled, 1)}
	select {
	case sc.events <- p:
	case <-sc.stopped:
		return ScheduledReplay{}, false
	}
	// The loop answers every event it took before it looks at ctx again.
	r := <-p.reply
	return r.replay, r.ok
}

// schedule starts the replay of ev, if it asks for one and reverted
// partners; a replay that cannot start is logged, as the revert stands.
func (sc *ReplayScheduler) schedule(ctx context.Context, ev RevertEvent) (ScheduledReplay, bool) {
	if !ev.Replay || len(ev.Partners) == 0 {
		return ScheduledReplay{}, false
	}
	svc := sc.svc
	req := domain.ReplayRequest{Migration: ev.Migration, Partners: ev.Partners, From: ev.Since,
		To: svc.now().UTC().Add(replayLead), Pipeline: "legacy", Filter: domain.ReplayMismatched, AwaitComparisons: true}
	var job domain.ReplayJob
	var err error
	if sc.router == nil {
		job, err = svc.AskReplay(ctx, ev.Change, req)
	} else if job, err = sc.router.StartReplay(ctx, req); err == nil {
		err = svc.RecordAction(ctx, ev.Change, "replay.start", "replay/"+job.ID, job.Request)
	}
	if err != nil {
		svc.log.Error("the replay after a revert could not start", "migration", ev.Migration, "action", ev.Action,
			"actor", ev.Change.Actor, "embedded", sc.router != nil, "err", err)
		return ScheduledReplay{}, false
	}
	svc.log.Info("replay after a revert started", "migration", ev.Migration, "replay", job.ID, "partners", len(ev.Partners), "actor", ev.Change.Actor)
	return ScheduledReplay{Event: ev, Job: job}, true
}
