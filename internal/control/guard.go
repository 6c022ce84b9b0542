package control

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// guardTimeout bounds a guard's update of its window and its revert.
const guardTimeout = 30 * time.Second

// observeGuard adds a router's sample to its partner's window of latest
// outcomes on the new pipeline, in the registry, and reverts when the
// window crosses the migration's guard. Appending, judging and clearing a
// tripped window are one atomic update of the registry, so that of two
// replicas receiving samples of one partner at once exactly one trips.
// A registry that fails is logged, not returned: the report must still be
// answered, and what is lost is this sample's outcomes (the guard judges
// the next ones).
func (s *Service) observeGuard(ctx context.Context, sample domain.GuardSample) {
	st := s.State()
	ms, ok := st.Migrations[sample.Migration]
	p, known := st.Partners[sample.Partner]
	if !ok || !known || ms.Reverted {
		return
	}
	ps := ms.StageOf(p)
	if ps.Stage != domain.StageNew && ps.Stage != domain.StageDone {
		return // the partner is already off the new pipeline
	}
	// A window cleared by a trip must be followed by its revert: neither
	// is given up because the router that sent the sample hung up.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), guardTimeout)
	defer cancel()
	var evidence string
	var tripped []string // the window that tripped, nil if none
	err := s.registry.UpdateWindow(ctx, sample.Migration, sample.Partner, func(old []string) []string {
		w := append(slices.Clip(old), sample.Outcomes...)
		if len(w) > ms.Guard.Window {
			w = w[len(w)-ms.Guard.Window:]
		}
		var trip bool
		evidence, trip = judgeWindow(ms, w, sample)
		tripped = nil
		if trip {
			tripped = w
			return nil
		}
		return w
	})
	if err != nil {
		s.log.Error("registry: guard sample dropped", "migration", sample.Migration, "partner", sample.Partner, "err", err)
		return
	}
	if tripped == nil {
		return
	}
	// The revert must land: a store that cannot be reached for a moment,
	// or another replica's change in the way, is waited out. If it never
	// lands, the tripped window goes back, so that the next sample trips
	// again at once.
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err = s.guardRevert(ctx, ms, ps, evidence)
		code := domain.ErrorCode(err)
		if err == nil || code != domain.CodeStoreUnavailable && code != domain.CodeConflict {
			break
		}
		if sleep(ctx, wait) != nil {
			break
		}
	}
	if err != nil {
		s.log.Error("guard revert failed: the window is kept for the next sample", "migration", ms.Key, "partner", ps.Partner, "err", err)
		restore, cancel := context.WithTimeout(context.Background(), guardTimeout)
		defer cancel()
		s.registry.UpdateWindow(restore, sample.Migration, sample.Partner, func([]string) []string { return tripped })
	}
}

// judgeWindow decides on a partner's window of outcomes: a class in the
// migration's zero tolerance or in that of the partner's cohort trips at
// once; past a full window, the raw
// mismatch and error rates are held to the guard's limits.
//
// The guard acts only on a fail, as package gate means it: a zero-tolerance
// class is one at once, whatever else is known. A window not yet full is
// the guard's inconclusive, not evidence: however bad its rates, it trips
// nothing, so a partner is not reverted on its first few events.
func judgeWindow(ms *MigrationState, w []string, sample domain.GuardSample) (string, bool) {
	var compared, mismatched, errs int
	for _, o := range w {
		if o == domain.OutcomeError {
			errs++
			continue
		}
		c := domain.Class(o)
		if c.Compared() {
			compared++
		}
		if c.Mismatched() {
			mismatched++
		}
	}
	counts := fmt.Sprintf("%d mismatched of %d compared, %d errors in the last %d outcomes; sample event %s", mismatched, compared, errs, len(w), sample.EventID)
	// The guard is the safety net: a cohort's gates may add classes to
	// the migration's zero tolerance, never take one away from it here.
	zero := append(slices.Clone(ms.Gates.ZeroTolerance), ms.GatesOf(sample.Partner).ZeroTolerance...)
	for _, o := range sample.Outcomes {
		for _, z := range zero {
			if o == string(z) {
				return fmt.Sprintf("zero-tolerance class %s: %s", z, counts), true
			}
		}
	}
	if len(w) < ms.Guard.Window {
		return "", false
	}
	if compared > 0 && float64(mismatched)/float64(compared) > ms.Guard.MaxMismatchRate {
		return fmt.Sprintf("mismatch rate %.4f above %.4f: %s", float64(mismatched)/float64(compared), ms.Guard.MaxMismatchRate, counts), true
	}
	if float64(errs)/float64(len(w)) > ms.Guard.MaxErrorRate {
		return fmt.Sprintf("error rate %.4f above %.4f: %s", float64(errs)/float64(len(w)), ms.Guard.MaxErrorRate, counts), true
	}
	return "", false
}

// guardRevert reverts the guard's scope, audited with actor guard and the
// evidence, and emits one RevertEvent for it, which asks for the replay.
func (s *Service) guardRevert(ctx context.Context, ms *MigrationState, ps domain.PartnerStage, evidence string) error {
	// The evidence names a router's event id, which may be anything.
	evidence = domain.SanitizeReason(evidence)
	c := Change{Actor: "guard", Reason: evidence}
	ev := RevertEvent{Migration: ms.Key, Since: ps.Since, At: s.now().UTC(), Change: c, Action: "guard.revert", Replay: true}
	var err, pauseErr error
	switch ms.Guard.Scope {
	case domain.ScopeMigration:
		if _, _, err = s.setKillSwitch(ctx, c, []string{ms.Key}, true, "migration.revert"); err == nil {
			st := s.State()
			for _, id := range st.PartnerIDs() {
				ev.add(st.Migrations[ms.Key].StageOf(st.Partners[id]))
			}
		}
	default:
		// The autopilot stops before the reverts: it never moves the next
		// cohort while this one goes back. (A kill switch pauses it in its
		// own write.)
		// A pause that fails is returned with the reverts' errors, so that
		// the guard tries again (a pause is safe to repeat).
		if cur := s.State().Migrations[ms.Key]; cur != nil && cur.Autopilot != nil && cur.Autopilot.Enabled {
			if pauseErr = s.pauseAutopilot(ctx, c, ms.Key, true); pauseErr != nil {
				s.log.Error("the guard could not pause the autopilot; reverting all the same", "migration", ms.Key, "err", pauseErr)
			}
		}
		partners := []string{ps.Partner}
		if name := ms.CohortOf(ps.Partner); name != "" && ms.Guard.Scope == domain.ScopeCohort {
			co, _ := ms.Cohort(name)
			partners = co.Partners
		}
		st := s.State()
		for _, id := range partners {
			p, ok := st.Partners[id]
			if !ok {
				continue
			}
			x := st.Migrations[ms.Key].StageOf(p)
			if x.Stage != domain.StageNew && x.Stage != domain.StageDone {
				continue // moved already, by hand or by an earlier try
			}
			if _, e := s.setStage(ctx, c, ms.Key, id, domain.StageShadow, false); e != nil {
				err = e
				continue
			}
			ev.add(x)
		}
	}
	// Only what was reverted is replayed; a partner still on new would
	// get its events applied twice.
	if len(ev.Partners) > 0 {
		s.log.Warn("guard reverted", "migration", ms.Key, "scope", ms.Guard.Scope, "partners", strings.Join(ev.Partners, ","), "evidence", evidence)
		s.emit(ev)
		s.noticeGuardRevert(ms, ev, evidence)
	}
	if err == nil {
		err = pauseErr
	}
	return err
}
