package control

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// The autopilot advances a migration's cohorts on its own (docs/api.md,
// "Autopilot"). One rule, autopilotNext, says what it would do now and
// why not; AutopilotStep acts on it and AutopilotStatus shows it. Its
// moves go through Advance like a person's, audited with the actor
// AutopilotActor, and under the change lock Advance checks again that
// the autopilot may move (autopilotMayMove): every replica may run it.

// AutopilotActor is the audit actor of the autopilot's moves.
const AutopilotActor = "autopilot"

// AutopilotStatus says what the autopilot of migration key does now. It
// judges the gates of the next move, as a step would.
func (s *Service) AutopilotStatus(ctx context.Context, key string) (wire.AutopilotStatus, error) {
	return s.autopilotStatus(ctx, s.State(), key, s.now().UTC())
}

func (s *Service) autopilotStatus(ctx context.Context, cur *State, key string, now time.Time) (wire.AutopilotStatus, error) {
	ms, err := cur.Migration(key)
	if err != nil {
		return wire.AutopilotStatus{}, err
	}
	st, m := autopilotNext(cur, ms, now)
	if m != nil {
		st.Next = &wire.AutopilotMove{Cohort: m.cohort.Name, From: m.from, To: m.to, Partners: partnerIDs(m.movers)}
		if ch, ok := s.pendingChange(ms.Key, m, now); ok {
			st.State, st.Change = wire.AutopilotApproval, ch.ID
			st.Explanation = fmt.Sprintf("Waits for the approvals of change %s: cohort %s from %s to %s.", ch.ID, m.cohort.Name, m.from, m.to)
			return st, nil
		}
		r, err := s.moveReport(ctx, ms.Key, cohortGates(ms, m.cohort), m.from, m.movers)
		if err != nil {
			return st, err
		}
		st.Gate = &r
		if r.Pass {
			st.State = wire.AutopilotReady
			st.Explanation = fmt.Sprintf("Moves cohort %s from %s to %s at its next step.", m.cohort.Name, m.from, m.to)
		} else {
			st.State = wire.AutopilotGates
			st.Explanation = fmt.Sprintf("Waits for the gates of cohort %s from %s to %s: %s", m.cohort.Name, m.from, m.to, r.Explain())
		}
	}
	return st, nil
}

// autopilotNext is the autopilot's rule without the gates and the change
// requests: the status as far as the state and the clock decide it, and
// the cohort move it would make next, nil when it waits for something
// else. The move is that of the cohort furthest behind, the first in
// order among equals: every cohort reaches shadow before any reaches new,
// and new before any is done.
func autopilotNext(cur *State, ms *MigrationState, now time.Time) (wire.AutopilotStatus, *cohortMove) {
	st, ok := autopilotAllowed(ms, now, true)
	if !ok {
		return st, nil
	}
	var next *cohortMove
	for _, co := range ms.Cohorts {
		m, err := planAdvance(cur, ms, co.Name)
		if err != nil {
			continue // done, or without partners
		}
		if next == nil || m.from.Index() < next.from.Index() {
			next = &m
		}
	}
	if next == nil {
		st.State, st.Explanation = wire.AutopilotDone, "Nothing left to move: every cohort is done."
		return st, nil
	}
	return st, next
}

// autopilotAllowed is the part of the rule that the policy, its state
// and the clock decide: whether the autopilot may move now, and if not,
// the status that says why. Without counting, the day's bound is left
// out.
func autopilotAllowed(ms *MigrationState, now time.Time, counting bool) (wire.AutopilotStatus, bool) {
	st := wire.AutopilotStatus{Migration: ms.Key, Policy: ms.Autopilot}
	pol := ms.Autopilot
	if pol == nil || !pol.Enabled {
		st.State, st.Explanation = wire.AutopilotOff, "The migration has no enabled autopilot policy."
		return st, false
	}
	aps := ms.AutopilotState
	st.MaxAdvancesPerDay = pol.MaxPerDay()
	st.MovesToday = aps.MovesSince(now.Add(-24 * time.Hour))
	if aps != nil && len(aps.Moves) > 0 {
		last := aps.Moves[len(aps.Moves)-1]
		st.LastMove = &last
	}
	if closes, open := pol.Open(now); open {
		st.InWindow, st.WindowCloses = true, &closes
	} else if next, ok := pol.NextOpen(now); ok {
		st.NextWindow = &next
	}
	switch {
	case aps != nil && aps.Paused:
		st.Paused = aps
		st.State = wire.AutopilotPaused
		st.Explanation = fmt.Sprintf("Paused by %[2]s at %[1]s (%[3]s) until an operator resumes it.", aps.PausedAt.Format(time.RFC3339), aps.PausedBy, aps.PausedReason)
	case ms.Reverted:
		st.State, st.Explanation = wire.AutopilotReverted, "Waits: the kill switch is on. Resume the migration first."
	case !st.InWindow:
		st.State, st.Explanation = wire.AutopilotClosed, "Waits outside its windows"
		if st.NextWindow != nil {
			st.Explanation += ": the next opens at " + st.NextWindow.Format(time.RFC3339)
		}
		st.Explanation += "."
	case counting && st.MovesToday >= st.MaxAdvancesPerDay:
		st.State = wire.AutopilotLimit
		st.Explanation = fmt.Sprintf("Made %d of its %d moves in the last 24 hours: the next may come at %s.", st.MovesToday, st.MaxAdvancesPerDay,
			aps.Moves[len(aps.Moves)-st.MovesToday].Add(24*time.Hour).Format(time.RFC3339))
	default:
		return st, true
	}
	return st, false
}

// pendingChange returns the pending change request of cohort move m.
func (s *Service) pendingChange(key string, m *cohortMove, now time.Time) (domain.ChangeRequest, bool) {
	want := domain.ChangeRequest{Migration: key, Kind: domain.ChangeAdvance, Cohort: m.cohort.Name, From: m.from, To: m.to}
	for _, o := range s.changes.Load().all {
		if o.Pending(now) && o.SameMove(want) {
			return o, true
		}
	}
	return domain.ChangeRequest{}, false
}

// AutopilotStep makes the move the autopilot of migration key makes now,
// if any, and returns its status before the move. A move is Advance's
// (or its change request, where approvals are required), audited with
// the actor AutopilotActor.
func (s *Service) AutopilotStep(ctx context.Context, key string) (wire.AutopilotStatus, error) {
	s.CatchUp(ctx)
	st, err := s.AutopilotStatus(ctx, key)
	if err != nil || st.State != wire.AutopilotReady {
		return st, err
	}
	c := Change{Actor: AutopilotActor, Reason: fmt.Sprintf("autopilot: the gates of cohort %s pass (%s to %s)", st.Next.Cohort, st.Next.From, st.Next.To)}
	out, err := s.advance(ctx, c, key, st.Next.Cohort, false, true)
	s.noticeAdvance(c, key, st.Next.Cohort, false, out, err)
	return st, err
}

// RunAutopilot steps every migration's autopilot each period until ctx
// ends. Replicas may all run it: a step that lost to another's is refused
// under the change lock and logged at debug level.
func (s *Service) RunAutopilot(ctx context.Context, period time.Duration) {
	every(ctx, period, func() {
		cur := s.State()
		for _, key := range cur.order {
			if a := cur.Migrations[key].Autopilot; a == nil || !a.Enabled {
				continue
			}
			_, err := s.AutopilotStep(ctx, key)
			switch {
			case err == nil || ctx.Err() != nil:
			case domain.ErrorCode(err) == domain.CodeConflict || domain.ErrorCode(err) == domain.CodeGateRefused:
				s.log.Debug("autopilot step refused", "migration", key, "err", err)
			default:
				s.log.Warn("autopilot step failed; trying again", "migration", key, "err", err)
			}
		}
	})
}

// autopilotMayMove checks under the change lock what AutopilotStep
// decided on the published state: the policy still lets the autopilot
// move now, and cohort is still the one it moves next.
func autopilotMayMove(cur *State, ms *MigrationState, cohort string, now time.Time) error {
	st, next := autopilotNext(cur, ms, now)
	switch {
	case next == nil:
		return domain.Errorf(domain.CodeConflict, "the autopilot of migration %q may not move now: %s", ms.Key, st.Explanation)
	case next.cohort.Name != cohort:
		return domain.Errorf(domain.CodeConflict, "cohort %q is no longer the autopilot's next move in migration %q: %q is", cohort, ms.Key, next.cohort.Name)
	}
	return nil
}

// autopilotMayApply checks, when an approval completes a change request
// the autopilot filed, that the autopilot may still move: enabled, not
// paused, a window open. The move was counted against the day's bound
// when it was filed.
func autopilotMayApply(ms *MigrationState, now time.Time) error {
	if st, ok := autopilotAllowed(ms, now, false); !ok {
		return domain.Errorf(domain.CodeConflict, "the autopilot filed this change and may not move now: %s", st.Explanation)
	}
	return nil
}

// withAutopilotMove adds to p the autopilot's move at now: it is counted
// against the policy's daily bound, and the moves older than a day go.
func withAutopilotMove(cur *State, p plan, key string, now time.Time) plan {
	next := p.next
	if next == nil {
		next = cur.clone()
	} else {
		next = next.clone()
	}
	ms := *next.Migrations[key]
	aps := domain.AutopilotState{}
	if ms.AutopilotState != nil {
		aps = *ms.AutopilotState
	}
	dayAgo := now.Add(-24 * time.Hour)
	aps.Moves = append(slices.DeleteFunc(slices.Clone(aps.Moves), func(t time.Time) bool { return t.Before(dayAgo) }), now)
	ms.AutopilotState = &aps
	next.Migrations[key] = &ms
	writes := p.writes
	p.next = next
	p.writes = func(tx Tx) error {
		if writes != nil {
			if err := writes(tx); err != nil {
				return err
			}
		}
		return tx.PutMigration(ms.Migration)
	}
	return p
}

// statusAfter is the status answered after a pause or a resume committed:
// when the gates cannot be judged now, the change still happened, so the
// answer says the gates are unknown instead of failing.
func (s *Service) statusAfter(ctx context.Context, key string) wire.AutopilotStatus {
	st, err := s.AutopilotStatus(ctx, key)
	if err != nil && st.Next != nil {
		st.State = wire.AutopilotGates
		st.Explanation = fmt.Sprintf("Waits for the gates of cohort %s from %s to %s, which cannot be judged now: %v", st.Next.Cohort, st.Next.From, st.Next.To, err)
	}
	return st
}

// PauseAutopilot stops the autopilot of migration key until an operator
// resumes it; c.Reason, required, says why to whoever finds it paused.
// Pausing a paused autopilot changes nothing. Errors: invalid_argument
// without a reason; not_found for an unknown migration; conflict when it
// has no autopilot policy.
func (s *Service) PauseAutopilot(ctx context.Context, c Change, key string) (wire.AutopilotStatus, error) {
	if strings.TrimSpace(c.Reason) == "" {
		return wire.AutopilotStatus{}, domain.Errorf(domain.CodeInvalid, "pausing an autopilot needs a reason: say why, for whoever finds it paused")
	}
	if err := s.pauseAutopilot(ctx, c, key, false); err != nil {
		return wire.AutopilotStatus{}, err
	}
	return s.statusAfter(ctx, key), nil
}

// pauseAutopilot is PauseAutopilot without the status, for the guard;
// ifRunning makes it pause only an enabled autopilot, decided under the
// change lock, and nothing otherwise.
func (s *Service) pauseAutopilot(ctx context.Context, c Change, key string, ifRunning bool) error {
	var paused bool
	_, err := s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		paused = false
		ms, err := cur.Migration(key)
		if err != nil {
			return plan{}, err
		}
		if ifRunning && !autopilotRunning(ms) {
			return plan{}, nil
		}
		if ms.Autopilot == nil {
			return plan{}, domain.Errorf(domain.CodeConflict, "migration %q has no autopilot policy: set one with PUT /v1/migrations/%s", key, key)
		}
		if ms.AutopilotState != nil && ms.AutopilotState.Paused {
			return plan{}, nil
		}
		next := cur.clone()
		rec := pausePlan(next, key, c, now)
		paused = true
		m := next.Migrations[key].Migration
		return plan{next: next, writes: func(tx Tx) error { return tx.PutMigration(m) }, records: []record{rec}}, nil
	})
	if err == nil && paused {
		s.noticeAutopilotPaused(c, key)
	}
	return err
}

// pausePlan pauses the autopilot of migration key in next, a copy of
// the published state the caller may change, and returns its audit
// record.
func pausePlan(next *State, key string, c Change, now time.Time) record {
	before, after := pauseIn(next, key, c, now)
	return record{action: "autopilot.pause", target: "migration/" + key, before: before, after: after}
}

// pauseIn pauses the autopilot of migration key in next and returns its
// state before and after.
func pauseIn(next *State, key string, c Change, now time.Time) (before, after domain.AutopilotState) {
	ms := *next.Migrations[key]
	if ms.AutopilotState != nil {
		before = *ms.AutopilotState
	}
	after = before
	after.Paused, after.PausedAt, after.PausedBy, after.PausedReason = true, now, c.Actor, c.Reason
	ms.AutopilotState = &after
	next.Migrations[key] = &ms
	return before, after
}

// autopilotRunning reports whether the autopilot of ms is enabled and not
// paused: what a revert pauses.
func autopilotRunning(ms *MigrationState) bool {
	return ms.Autopilot != nil && ms.Autopilot.Enabled && (ms.AutopilotState == nil || !ms.AutopilotState.Paused)
}

// ResumeAutopilot lets a paused autopilot of migration key move again.
// Resuming one that is not paused changes nothing. Errors: not_found for
// an unknown migration; conflict when it has no autopilot policy or its
// kill switch is on (resume the migration first).
func (s *Service) ResumeAutopilot(ctx context.Context, c Change, key string) (wire.AutopilotStatus, error) {
	_, err := s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		ms, err := cur.Migration(key)
		if err != nil {
			return plan{}, err
		}
		if ms.Autopilot == nil {
			return plan{}, domain.Errorf(domain.CodeConflict, "migration %q has no autopilot policy: set one with PUT /v1/migrations/%s", key, key)
		}
		if ms.AutopilotState == nil || !ms.AutopilotState.Paused {
			return plan{}, nil
		}
		if ms.Reverted {
			return plan{}, domain.Errorf(domain.CodeConflict, "migration %q is reverted: resume the migration before its autopilot", key)
		}
		next := cur.clone()
		nms := *ms
		aps := *ms.AutopilotState
		aps.Paused, aps.PausedAt, aps.PausedBy, aps.PausedReason = false, time.Time{}, "", ""
		nms.AutopilotState = &aps
		next.Migrations[key] = &nms
		m := nms.Migration
		return plan{next: next, writes: func(tx Tx) error { return tx.PutMigration(m) },
			records: []record{{action: "autopilot.resume", target: "migration/" + key, before: *ms.AutopilotState, after: aps}}}, nil
	})
	if err != nil {
		return wire.AutopilotStatus{}, err
	}
	return s.statusAfter(ctx, key), nil
}

// noticeAutopilotPaused notices a pause, once it committed.
func (s *Service) noticeAutopilotPaused(c Change, key string) {
	s.log.Warn("autopilot paused", "migration", key, "by", c.Actor, "reason", c.Reason)
	s.notice(domain.Notice{Event: domain.NoticeAutopilotPaused, Actor: c.Actor, Migration: key, Target: "migration/" + key, Reason: c.Reason,
		Text:   oneLine(fmt.Sprintf("%s paused the autopilot of %s until an operator resumes it%s", c.Actor, key, reasonSuffix(c.Reason))),
		Detail: map[string]string{"migration": key}})
}
