package control

import (
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// RevertEvent is one revert: partners of a migration taken off the new
// pipeline, by a kill switch (one migration or all of them), a partner
// moved back from new or done, or the guard. The service emits one for
// every revert, to the ReplayScheduler, which alone decides what to
// replay from it; a resume asked to replay emits one too.
type RevertEvent struct {
	Migration string
	// Partners are those that were at new or done before the revert, whose
	// events since Since the new pipeline may have applied wrongly.
	Partners []string
	// Since is the earliest time one of Partners entered its stage.
	Since time.Time
	// At is when the revert was made.
	At time.Time
	// Change is who reverted and why; the replay is audited with it.
	Change Change
	// Action is the audit action of the revert: migration.revert,
	// revert.all, migration.resume, stage.set, or guard.revert for the
	// guard (whose entries are migration.revert or stage.set).
	Action string
	// Replay tells whether the replay through legacy was asked: always by
	// the guard, on request by a kill switch call, never by a stage move.
	Replay bool
}

// add counts ps into the event if the partner was on the new pipeline.
func (e *RevertEvent) add(ps domain.PartnerStage) {
	if ps.Stage != domain.StageNew && ps.Stage != domain.StageDone {
		return
	}
	e.Partners = append(e.Partners, ps.Partner)
	if e.Since.IsZero() || ps.Since.Before(e.Since) {
		e.Since = ps.Since
	}
}

// ScheduledReplay is a replay the scheduler started for a revert.
type ScheduledReplay struct {
	Event RevertEvent
	Job   domain.ReplayJob
}

// emit hands ev to the running ReplayScheduler and returns the replay it
// started, if any. Without a scheduler (a service still starting, or one
// that serves no replays) the event is only logged.
func (s *Service) emit(ev RevertEvent) (ScheduledReplay, bool) {
	s.log.Info("revert", "migration", ev.Migration, "action", ev.Action, "actor", ev.Change.Actor,
		"partners", strings.Join(ev.Partners, ","), "replay", ev.Replay)
	if fn := s.onRevert.Load(); fn != nil && len(ev.Partners) > 0 {
		(*fn)(ev)
	}
	if !ev.Replay || len(ev.Partners) == 0 {
		// Nothing to replay: a kill switch stays instant, never queued
		// behind another revert's replay.
		return ScheduledReplay{}, false
	}
	sc := s.scheduler.Load()
	if sc == nil {
		s.log.Error("no replay scheduler runs: the replay after a revert was not started", "migration", ev.Migration, "actor", ev.Change.Actor)
		return ScheduledReplay{}, false
	}
	return sc.submit(ev)
}

// OnRevert makes fn hear of every revert this service makes that took
// partners off the new pipeline, as the ReplayScheduler does (the
// reconciliations after reverts). fn runs on the reverting call's
// goroutine: it must not block. A later call replaces fn; a nil fn stops
// it.
func (s *Service) OnRevert(fn func(RevertEvent)) {
	if fn == nil {
		s.onRevert.Store(nil)
		return
	}
	s.onRevert.Store(&fn)
}

// emitStageRevert emits the event of a partner moved by hand from new or
// done back to shadow or legacy; before is the state before the move.
func (s *Service) emitStageRevert(c Change, before *State, key string, moved domain.PartnerStage) {
	ms, ok := before.Migrations[key]
	p, known := before.Partners[moved.Partner]
	if !ok || !known || moved.Stage.Index() >= domain.StageNew.Index() {
		return
	}
	ev := RevertEvent{Migration: key, At: moved.Since, Change: c, Action: "stage.set"}
	if ev.add(ms.StageOf(p)); len(ev.Partners) == 0 {
		return // not a revert: the partner was not on the new pipeline
	}
	s.emit(ev)
}
