package control

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// refused returns the gate_refused *domain.Error of report r, which carries
// r as its Detail so that a client sees every check and the verdict, not
// only the message. An inconclusive report is refused like a failing one;
// its message says what data it waits for instead of what failed.
func refused(r gate.Report) error {
	return &domain.Error{Code: domain.CodeGateRefused, Message: r.Explain(), Detail: r}
}

// SetStage moves one partner of a migration to stage to. A forward move goes
// one step and passes the gates unless forced with a reason; a backward move
// always passes. Forward moves are refused while the kill switch is on.
// A forward move into a stage the migration's approvals policy names is
// refused with a conflict and files nothing: MoveStage files its change
// request.
//
// The gates are judged on the published state before the change lock is
// taken, since they read comparison counts: a revert never waits behind
// them. Under the lock the move is checked again, so a revert that landed
// meanwhile wins and the move is refused.
func (s *Service) SetStage(ctx context.Context, c Change, key, partner string, to domain.Stage, force bool) (domain.PartnerStage, error) {
	res, err := s.moveStage(ctx, c, key, partner, to, force, false)
	return res.Stage, err
}

// StageResult is a partner's move, or the change request filed for it.
type StageResult struct {
	// Stage is the partner's stage record after the call: its new one,
	// or, when Change is set, the one it keeps until the change applies.
	Stage domain.PartnerStage `json:"stage"`
	// Change is set when the move waits for approvals: nothing moved.
	Change *domain.ChangeRequest `json:"change,omitempty"`
}

// MoveStage is SetStage, except that a forward move into a stage the
// migration's approvals policy names files a change request (or returns
// the pending one of the same move) instead of moving, once the kill
// switch and, unless forced, the gates allow it now: see Advance.
func (s *Service) MoveStage(ctx context.Context, c Change, key, partner string, to domain.Stage, force bool) (StageResult, error) {
	return s.moveStage(ctx, c, key, partner, to, force, true)
}

func (s *Service) moveStage(ctx context.Context, c Change, key, partner string, to domain.Stage, force, file bool) (StageResult, error) {
	s.CatchUp(ctx) // an unreachable store is the change's to refuse
	before := s.State()
	out, moved, filed, err := s.stageChange(ctx, c, key, partner, to, force, file)
	if filed != nil {
		s.noticeFiled(*filed)
	}
	if err == nil && out.Change == nil {
		s.emitStageRevert(c, before, key, out.Stage)
	}
	if out.Change == nil {
		s.noticeStage(c, before, key, partner, moved, to, force, out.Stage, err)
	}
	return out, err
}

// setStage is SetStage without its revert event and notices, for the
// guard, which emits one event and one notice for all the partners it
// moves backward (never waiting for approvals).
func (s *Service) setStage(ctx context.Context, c Change, key, partner string, to domain.Stage, force bool) (domain.PartnerStage, error) {
	res, _, _, err := s.stageChange(ctx, c, key, partner, to, force, false)
	return res.Stage, err
}

// stageChange makes a partner's move or, with file, files its change
// request when it needs approvals. moved is the stage record the partner
// left, as decided under the change lock (zero when it did not move);
// filed is the change request when a new one was filed, for its notice.
func (s *Service) stageChange(ctx context.Context, c Change, key, partner string, to domain.Stage, force, file bool) (_ StageResult, moved domain.PartnerStage, filed *domain.ChangeRequest, _ error) {
	judged, err := s.prejudgeStage(ctx, c, key, partner, to, force)
	if err != nil {
		return StageResult{}, moved, nil, err
	}
	var out StageResult
	_, err = s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		// decided again when another replica changed the store first
		out, moved, filed = StageResult{}, domain.PartnerStage{}, nil
		ms, err := cur.Migration(key)
		if err != nil {
			return plan{}, err
		}
		p, err := cur.Partner(partner)
		if err != nil {
			return plan{}, err
		}
		from := ms.StageOf(p)
		if err := domain.CheckTransition(from.Stage, to); err != nil {
			return plan{}, err
		}
		if from.Stage == to {
			out.Stage = from
			return plan{}, nil
		}
		forward := to.Index() > from.Stage.Index()
		if forward {
			if err := forwardAllowed(ms, c, force); err != nil {
				return plan{}, err
			}
			if judged != nil && *judged != from {
				return plan{}, domain.Errorf(domain.CodeConflict, "partner %q moved while its gates were judged: try again", partner)
			}
			if ms.Approvals.Requires(to) {
				if !file {
					return plan{}, domain.Errorf(domain.CodeConflict, "moving partner %q to %s in migration %q needs %d %s: ask for it with PUT /v1/migrations/%s/partners/%s, which files a change request",
						partner, to, key, ms.Approvals.Required, plural(ms.Approvals.Required, "approval", "approvals"), key, partner)
				}
				p, ch, isNew, err := s.fileChange(cur, now, c, ms, domain.ChangeRequest{Kind: domain.ChangeStage, Partner: partner, From: from.Stage, To: to, Force: force})
				if err != nil {
					return plan{}, err
				}
				out = StageResult{Stage: from, Change: &ch}
				if isNew {
					filed = &ch
				}
				return p, nil
			}
		}
		next, st := stagePlan(cur, key, from, to, force && forward, now)
		out.Stage, moved = st, from
		return next, nil
	})
	if err != nil {
		filed = nil
	}
	return out, moved, filed, err
}

// stagePlan is the plan of moving a partner from its stage record from to
// stage to, audited as stage.set.
func stagePlan(cur *State, key string, from domain.PartnerStage, to domain.Stage, forced bool, now time.Time) (plan, domain.PartnerStage) {
	moved := domain.PartnerStage{Partner: from.Partner, Stage: to, Since: now}
	return plan{
		next:   cur.withStages(key, []domain.PartnerStage{moved}),
		writes: func(tx Tx) error { return tx.PutStage(key, moved) },
		records: []record{{action: "stage.set", target: "migration/" + key + "/partner/" + from.Partner,
			before: from, after: map[string]any{"stage": to, "since": now, "forced": forced}}},
	}, moved
}

// prejudgeStage judges the gates for a gated forward move on the published
// state and returns the stage record it judged, or nil when nothing needed
// judging.
func (s *Service) prejudgeStage(ctx context.Context, c Change, key, partner string, to domain.Stage, force bool) (*domain.PartnerStage, error) {
	cur := s.State()
	ms, err := cur.Migration(key)
	if err != nil {
		return nil, err
	}
	p, err := cur.Partner(partner)
	if err != nil {
		return nil, err
	}
	from := ms.StageOf(p)
	if to.Index() <= from.Stage.Index() || domain.CheckTransition(from.Stage, to) != nil {
		return nil, nil // backward, no-op or refused under the lock with its reason
	}
	if err := forwardAllowed(ms, c, force); err != nil {
		return nil, err
	}
	if force || !from.Stage.Gated() {
		return nil, nil
	}
	r, err := s.judge(ctx, ms.Key, ms.GatesOf(partner), []domain.PartnerStage{from}, s.now().UTC())
	if err != nil {
		return nil, err
	}
	if !r.Pass {
		return nil, refused(r)
	}
	return &from, nil
}

// forwardAllowed refuses a forward move while the kill switch is on, and a
// forced one without a reason.
func forwardAllowed(ms *MigrationState, c Change, force bool) error {
	if ms.Reverted {
		return domain.Errorf(domain.CodeMigrationReverted, "migration %q is reverted: resume it before moving partners forward", ms.Key)
	}
	if force && strings.TrimSpace(c.Reason) == "" {
		return domain.Errorf(domain.CodeInvalid, "a forced move needs a reason")
	}
	return nil
}

// judge evaluates gates g for the partners at their current stages.
func (s *Service) judge(ctx context.Context, key string, g domain.Gates, partners []domain.PartnerStage, now time.Time) (gate.Report, error) {
	if err := s.Available(); err != nil {
		return gate.Report{}, err // each read would wait the store's timeout
	}
	reports := make([]gate.PartnerReport, 0, len(partners))
	for _, ps := range partners {
		counts, err := s.stats.StageCounts(ctx, key, ps.Partner, ps.Stage, ps.Since)
		if err != nil {
			return gate.Report{}, storeError("read comparison counts", err)
		}
		reports = append(reports, gate.Judge(g, ps.Partner, ps.Stage, ps.Since, now, counts))
	}
	return gate.NewReport(reports), nil
}

// cohortMove is what advancing a cohort would do: the partners at the
// cohort's lowest stage move one step forward.
type cohortMove struct {
	cohort   domain.Cohort
	from, to domain.Stage
	movers   []domain.PartnerStage
}

// planAdvance works out the move of a cohort, or why there is none.
func planAdvance(cur *State, ms *MigrationState, name string) (cohortMove, error) {
	co, err := ms.Cohort(name)
	if err != nil {
		return cohortMove{}, err
	}
	if len(co.Partners) == 0 {
		return cohortMove{}, domain.Errorf(domain.CodeConflict, "cohort %q has no partners", name)
	}
	m := cohortMove{cohort: co, from: domain.StageDone}
	stages := make([]domain.PartnerStage, 0, len(co.Partners))
	for _, id := range co.Partners {
		p, err := cur.Partner(id)
		if err != nil {
			return cohortMove{}, err
		}
		ps := ms.StageOf(p)
		stages = append(stages, ps)
		if ps.Stage.Index() < m.from.Index() {
			m.from = ps.Stage
		}
	}
	next, ok := m.from.Next()
	if !ok {
		return cohortMove{}, domain.Errorf(domain.CodeConflict, "cohort %q is done: every partner is on the new pipeline for good", name)
	}
	m.to = next
	for _, ps := range stages {
		if ps.Stage == m.from {
			m.movers = append(m.movers, ps)
		}
	}
	return m, nil
}

// CohortStage is the lowest stage of the cohort's partners: the stage the
// cohort as a whole has reached.
func (cur *State) CohortStage(ms *MigrationState, co domain.Cohort) domain.Stage {
	lowest := domain.StageDone
	for _, id := range co.Partners {
		if p, ok := cur.Partners[id]; ok {
			if st := ms.StageOf(p).Stage; st.Index() < lowest.Index() {
				lowest = st
			}
		}
	}
	if len(co.Partners) == 0 {
		return domain.StageLegacy
	}
	return lowest
}

// Gate returns the gate report for advancing a cohort now.
func (s *Service) Gate(ctx context.Context, key, cohort string) (gate.Report, error) {
	cur := s.State()
	ms, err := cur.Migration(key)
	if err != nil {
		return gate.Report{}, err
	}
	m, err := planAdvance(cur, ms, cohort)
	if err != nil {
		return gate.Report{}, err
	}
	return s.moveReport(ctx, ms.Key, cohortGates(ms, m.cohort), m.from, m.movers)
}

// moveReport is the gate report of moving partners forward from stage
// from: judged by g, or, for a move no gate guards (legacy → shadow
// changes nothing a partner sees), a pass with no checks.
func (s *Service) moveReport(ctx context.Context, key string, g domain.Gates, from domain.Stage, movers []domain.PartnerStage) (gate.Report, error) {
	if !from.Gated() {
		r := gate.Report{Verdict: gate.Pass, Pass: true}
		for _, ps := range movers {
			r.Partners = append(r.Partners, gate.PartnerReport{Partner: ps.Partner, Stage: ps.Stage, Verdict: gate.Pass, Pass: true, Checks: []gate.Check{}})
		}
		return r, nil
	}
	return s.judge(ctx, key, g, movers, s.now().UTC())
}

// AdvanceResult is a cohort's move, or the change request filed for it.
type AdvanceResult struct {
	Cohort   string       `json:"cohort"`
	From     domain.Stage `json:"from"`
	To       domain.Stage `json:"to"`
	Partners []string     `json:"partners"`
	// Change is set when the move waits for approvals: nothing moved, and
	// Partners are those that move once the change is approved.
	Change *domain.ChangeRequest `json:"change,omitempty"`
}

// Advance moves the partners at a cohort's lowest stage one stage forward,
// all of them or none: only if the gates pass for each, unless forced with a
// reason. Partners already ahead of the others stay where they are.
//
// When the move is into a stage the migration's approvals policy names,
// Advance checks it as it would move (the kill switch, the reason of a
// forced move, the gates unless forced: a refusal is returned as it is,
// and nothing is filed) and then files a change request instead of moving:
// the result's Change is set and nothing moved. While a change request of
// the same move (migration, cohort, from and to stages) is pending, Advance
// returns that one and files nothing. Approve makes the move once enough
// operators approved, judging the gates again then.
//
// As with SetStage, the gates are judged before the change lock is taken
// and the move is checked again under it: a revert that lands while the
// gates are judged wins, and the advance is refused.
func (s *Service) Advance(ctx context.Context, c Change, key, cohort string, force bool) (AdvanceResult, error) {
	out, err := s.advance(ctx, c, key, cohort, force, false)
	s.noticeAdvance(c, key, cohort, force, out, err)
	return out, err
}

// advance is Advance without its notices. With auto, the move is the
// autopilot's: under the change lock it checks that the autopilot may
// move now and counts the move (or the change request filed).
func (s *Service) advance(ctx context.Context, c Change, key, cohort string, force, auto bool) (AdvanceResult, error) {
	pre := s.State()
	ms, err := pre.Migration(key)
	if err != nil {
		return AdvanceResult{}, err
	}
	judged, err := planAdvance(pre, ms, cohort)
	if err != nil {
		return AdvanceResult{}, err
	}
	if err := forwardAllowed(ms, c, force); err != nil {
		return AdvanceResult{}, err
	}
	if !force && judged.from.Gated() {
		r, err := s.judge(ctx, key, cohortGates(ms, judged.cohort), judged.movers, s.now().UTC())
		if err != nil {
			return AdvanceResult{}, err
		}
		if !r.Pass {
			return AdvanceResult{}, refused(r)
		}
	}
	var out AdvanceResult
	var filed *domain.ChangeRequest
	_, err = s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		out, filed = AdvanceResult{}, nil // decided again when another replica changed the store first
		ms, err := cur.Migration(key)
		if err != nil {
			return plan{}, err
		}
		m, err := planAdvance(cur, ms, cohort)
		if err != nil {
			return plan{}, err
		}
		if err := forwardAllowed(ms, c, force); err != nil {
			return plan{}, err
		}
		if m.from != judged.from || !slices.Equal(m.movers, judged.movers) {
			return plan{}, domain.Errorf(domain.CodeConflict, "cohort %q changed while its gates were judged: try again", cohort)
		}
		if auto {
			if err := autopilotMayMove(cur, ms, cohort, now); err != nil {
				return plan{}, err
			}
		}
		var p plan
		if ms.Approvals.Requires(m.to) {
			var ch domain.ChangeRequest
			var isNew bool
			var err error
			p, ch, isNew, err = s.fileChange(cur, now, c, ms, domain.ChangeRequest{Kind: domain.ChangeAdvance, Cohort: cohort, From: m.from, To: m.to, Force: force})
			if err != nil {
				return plan{}, err
			}
			out = AdvanceResult{Cohort: cohort, From: m.from, To: m.to, Partners: partnerIDs(m.movers), Change: &ch}
			if !isNew {
				return p, nil // the pending one: nothing moved, nothing counted
			}
			filed = &ch
		} else {
			p, out = advancePlan(cur, key, m, force, now)
		}
		if auto {
			p = withAutopilotMove(cur, p, key, now)
		}
		return p, nil
	})
	if err == nil && filed != nil {
		s.noticeFiled(*filed)
	}
	return out, err
}

// advancePlan is the plan of cohort move m, audited as cohort.advance.
func advancePlan(cur *State, key string, m cohortMove, force bool, now time.Time) (plan, AdvanceResult) {
	moved := make([]domain.PartnerStage, len(m.movers))
	out := AdvanceResult{Cohort: m.cohort.Name, From: m.from, To: m.to, Partners: partnerIDs(m.movers)}
	for i, ps := range m.movers {
		moved[i] = domain.PartnerStage{Partner: ps.Partner, Stage: m.to, Since: now}
	}
	return plan{
		next: cur.withStages(key, moved),
		writes: func(tx Tx) error {
			for _, ps := range moved {
				if err := tx.PutStage(key, ps); err != nil {
					return err
				}
			}
			return nil
		},
		records: []record{{action: "cohort.advance", target: "migration/" + key + "/cohort/" + m.cohort.Name,
			before: map[string]any{"stage": m.from, "partners": out.Partners},
			after:  map[string]any{"stage": m.to, "forced": force}}},
	}, out
}

// partnerIDs returns the partners of stage records, in their order.
func partnerIDs(stages []domain.PartnerStage) []string {
	out := make([]string, len(stages))
	for i, ps := range stages {
		out[i] = ps.Partner
	}
	return out
}

// cohortGates returns the gates that judge a cohort's advance: its own when
// it sets them, else the migration's.
func cohortGates(ms *MigrationState, co domain.Cohort) domain.Gates {
	if co.Gates != nil {
		return *co.Gates
	}
	return ms.Gates
}

// GatesOf returns the gates that judge a partner's forward moves. A partner
// in a cohort is judged by its cohort's gates, as an advance of the cohort
// would judge it; any other by the migration's.
func (m *MigrationState) GatesOf(partner string) domain.Gates {
	if name := m.CohortOf(partner); name != "" {
		if co, err := m.Cohort(name); err == nil {
			return cohortGates(m, co)
		}
	}
	return m.Gates
}

// PartnerGate returns the gate report for moving one partner of a migration
// one stage forward now, judged as SetStage would judge it: by the gates of
// GatesOf, on the partner's comparison counts in its current stage. A move
// that needs no gate (legacy → shadow) passes with no checks. Errors:
// not_found for an unknown migration or partner, conflict when the partner
// is done (there is no further stage), internal when the comparison counts
// cannot be read.
func (s *Service) PartnerGate(ctx context.Context, key, partner string) (gate.Report, error) {
	cur := s.State()
	ms, err := cur.Migration(key)
	if err != nil {
		return gate.Report{}, err
	}
	p, err := cur.Partner(partner)
	if err != nil {
		return gate.Report{}, err
	}
	ps := ms.StageOf(p)
	if _, ok := ps.Stage.Next(); !ok {
		return gate.Report{}, domain.Errorf(domain.CodeConflict, "partner %q is done: there is no further stage", partner)
	}
	return s.moveReport(ctx, ms.Key, ms.GatesOf(partner), ps.Stage, []domain.PartnerStage{ps})
}

// StageCounts returns the comparison counts of a partner in its stage.
func (s *Service) StageCounts(ctx context.Context, key string, ps domain.PartnerStage) (gate.Counts, error) {
	if err := s.Available(); err != nil {
		return gate.Counts{}, err
	}
	return s.stats.StageCounts(ctx, key, ps.Partner, ps.Stage, ps.Since)
}
