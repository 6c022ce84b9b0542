package control

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Report is what a router sends: the snapshot version it holds, its
// journal figures, and what it compared since its last report.
type Report struct {
	Router
	// ReportID, when set, makes the counts idempotent: a report whose id
	// was applied before is answered without counting them again.
	ReportID    *domain.ReportID         `json:"reportId,omitempty"`
	Comparisons []domain.ComparisonCount `json:"comparisons"`
	Candidate   []domain.CandidateCount  `json:"candidate"`
	Mismatches  []domain.Mismatch        `json:"mismatches"`
	Guard       []domain.GuardSample     `json:"guard"`
	// Replays is the progress of the replays the router runs.
	Replays []domain.ReplayJob `json:"replays"`
}

// GuardRevert is what the guard did: it reverted partners of a migration
// (back to shadow, or the whole migration with the kill switch) whose
// events since Since may have been applied wrongly by the new pipeline.
type GuardRevert struct {
	Migration string
	Partners  []string
	Since     time.Time
	At        time.Time
	Evidence  string
}

// Validate checks a report before anything of it is applied: known classes
// and stages, each count at most domain.MaxReportedCount, a candidate's
// errors at most its calls, minutes neither more than
// domain.MaxReportAhead past now nor older than domain.ComparisonRetention,
// and counts whose sum fits a counter. It returns a CodeInvalid error that
// names the first bad row.
func (r Report) Validate(now time.Time) error {
	var total uint64
	sum := func(n uint64) bool {
		var carry uint64
		total, carry = bits.Add64(total, n, 0)
		return carry == 0
	}
	for i, c := range r.Comparisons {
		bad := ""
		switch {
		case !c.Class.Valid() || !c.Stage.Valid():
			bad = fmt.Sprintf("class %q and stage %q: unknown class or stage", c.Class, c.Stage)
		case c.Count > domain.MaxReportedCount:
			bad = fmt.Sprintf("count %d is above %d", c.Count, domain.MaxReportedCount)
		case c.Minute.After(now.Add(domain.MaxReportAhead)):
			bad = fmt.Sprintf("minute %s is more than %s ahead of the control service's clock", c.Minute.UTC().Format(time.RFC3339), domain.MaxReportAhead)
		case c.Minute.Before(now.Add(-domain.ComparisonRetention)):
			bad = fmt.Sprintf("minute %s is older than the %s kept", c.Minute.UTC().Format(time.RFC3339), domain.ComparisonRetention)
		case !sum(c.Count):
			bad = "the report's counts overflow"
		}
		if bad != "" {
			return domain.Errorf(domain.CodeInvalid, "comparisons[%d]: %s; nothing of this report was applied", i, bad)
		}
	}
	for i, c := range r.Candidate {
		bad := ""
		switch {
		case !c.Stage.Valid():
			bad = fmt.Sprintf("unknown stage %q", c.Stage)
		case c.Calls > domain.MaxReportedCount || c.Errors > domain.MaxReportedCount:
			bad = fmt.Sprintf("calls %d or errors %d above %d", c.Calls, c.Errors, domain.MaxReportedCount)
		case c.Errors > c.Calls:
			bad = fmt.Sprintf("errors %d are more than calls %d", c.Errors, c.Calls)
		case !sum(c.Calls):
			bad = "the report's counts overflow"
		}
		if bad != "" {
			return domain.Errorf(domain.CodeInvalid, "candidate[%d]: %s; nothing of this report was applied", i, bad)
		}
	}
	if id := r.ReportID; id != nil && (id.Seq == 0 || id.Epoch == "" || len(id.Epoch) > 64) {
		return domain.Errorf(domain.CodeInvalid, "reportId needs an epoch of 1 to 64 characters and a seq above 0")
	}
	return nil
}

// IngestReport records a router's report: its version and journal, the
// comparison counts (counted into the partner's current stage when the
// router saw the same stage, else dropped as stale), the mismatches, and
// the guard's samples, on which the guard may revert. A report that fails
// Validate is refused whole with CodeInvalid. A report whose ReportID was
// applied before has its counts skipped and duplicate true: the router
// sent it again because it did not get the answer.
func (s *Service) IngestReport(ctx context.Context, r Report) (duplicate bool, err error) {
	if err := r.Validate(s.now()); err != nil {
		return false, err
	}
	s.ReportRouter(r.Router)
	if err := s.fastForward(ctx, r.Router); err != nil {
		return false, err
	}
	s.recordReplays(r.ID, r.Replays)
	if len(r.Comparisons)+len(r.Candidate)+len(r.Mismatches) > 0 {
		if duplicate, err = s.recordStats(ctx, r); err != nil {
			return false, err
		}
	}
	for _, g := range r.Guard {
		s.guard.observe(s, ctx, g)
	}
	return duplicate, nil
}

// recordStats writes a report's counts and mismatches in one transaction,
// with its ReportID, so that the counts and the record that they were
// applied land together or not at all.
func (s *Service) recordStats(ctx context.Context, r Report) (duplicate bool, err error) {
	st := s.State()
	current := func(migration, partner string, stage domain.Stage) (time.Time, bool) {
		ms, ok := st.Migrations[migration]
		p, known := st.Partners[partner]
		if !ok || !known {
			return time.Time{}, false
		}
		ps := ms.StageOf(p)
		return ps.Since, ps.Stage == stage
	}
	err = s.store.Update(ctx, func(tx Tx) error {
		duplicate = false
		if id := r.ReportID; id != nil {
			last, err := tx.AppliedReport(r.Router.ID, id.Epoch)
			if err != nil {
				return err
			}
			// Routers send their reports one at a time, in seq order, and
			// the next only after the previous was answered: a seq at or
			// below the last applied one is a resend.
			duplicate = id.Seq <= last
			if !duplicate {
				if err := tx.PutAppliedReport(r.Router.ID, id.Epoch, id.Seq); err != nil {
					return err
				}
			}
		}
		if duplicate {
			// Mismatches are samples, safe to keep again; counts are not.
			return putMismatches(tx, r.Mismatches)
		}
		for _, c := range r.Comparisons {
			if since, ok := current(c.Migration, c.Partner, c.Stage); ok && !c.Minute.Before(since.Truncate(time.Minute)) {
				// Rows are per minute; a store keys a row by the time it is given.
				c.Minute = c.Minute.Truncate(time.Minute)
				if err := tx.AddComparisons(since, c); err != nil {
					return err
				}
			}
		}
		for _, c := range r.Candidate {
			if since, ok := current(c.Migration, c.Partner, c.Stage); ok {
				if err := tx.AddCandidate(since, c); err != nil {
					return err
				}
			}
		}
		return putMismatches(tx, r.Mismatches)
	})
	if err != nil {
		return false, domain.Internal("record comparisons", err)
	}
	return duplicate, nil
}

// mismatchesKept is how many mismatches are kept per partner, event type
// and class, the newest: enough to show what goes wrong, while a partner
// that mismatches on every event cannot fill the store. Every store keeps
// the same samples because the number is decided here, not by the store.
const mismatchesKept = 20

func putMismatches(tx Tx, ms []domain.Mismatch) error {
	for _, m := range ms {
		if err := tx.PutMismatch(m, mismatchesKept); err != nil {
			return err
		}
	}
	return nil
}

// Comparisons returns a partner's comparison figures in its current stage.
func (s *Service) Comparisons(ctx context.Context, migration, partner string) (domain.Comparisons, error) {
	st := s.State()
	ms, err := st.Migration(migration)
	if err != nil {
		return domain.Comparisons{}, err
	}
	p, err := st.Partner(partner)
	if err != nil {
		return domain.Comparisons{}, err
	}
	ps := ms.StageOf(p)
	out := domain.Comparisons{Partner: partner, Stage: ps.Stage, Since: ps.Since, Counts: map[string]map[domain.Class]uint64{}}
	rows, err := s.store.StageRows(ctx, migration, partner, ps.Stage, ps.Since)
	if err != nil {
		return domain.Comparisons{}, domain.Internal("read comparisons", err)
	}
	for _, r := range rows.Comparisons {
		if out.Counts[r.EventType] == nil {
			out.Counts[r.EventType] = map[domain.Class]uint64{}
		}
		out.Counts[r.EventType][r.Class] = satAdd(out.Counts[r.EventType][r.Class], r.Count)
	}
	if out.Mismatches, err = s.store.Mismatches(ctx, migration, partner, ps.Since, 50); err != nil {
		return domain.Comparisons{}, domain.Internal("read mismatches", err)
	}
	return out, nil
}

// Timeline returns a partner's comparison counts per minute, event type
// and class in its current stage, sorted by minute, then type, then class.
func (s *Service) Timeline(ctx context.Context, migration, partner string) ([]domain.MinuteCount, error) {
	st := s.State()
	ms, err := st.Migration(migration)
	if err != nil {
		return nil, err
	}
	p, err := st.Partner(partner)
	if err != nil {
		return nil, err
	}
	ps := ms.StageOf(p)
	rows, err := s.store.StageRows(ctx, migration, partner, ps.Stage, ps.Since)
	if err != nil {
		return nil, domain.Internal("read the comparison timeline", err)
	}
	out := append([]domain.MinuteCount{}, rows.Comparisons...)
	slices.SortFunc(out, func(a, b domain.MinuteCount) int {
		return cmp.Or(a.Minute.Compare(b.Minute), cmp.Compare(a.EventType, b.EventType), cmp.Compare(a.Class, b.Class))
	})
	return out, nil
}

// satAdd sums counts without wrapping, as gate.Tally does.
func satAdd(a, b uint64) uint64 {
	s, carry := bits.Add64(a, b, 0)
	if carry != 0 {
		return math.MaxUint64
	}
	return s
}

// guard keeps, per partner on the new pipeline, the outcomes of its latest
// events, and reverts when they cross the migration's guard.
type guard struct {
	mu      sync.Mutex
	windows map[string][]string // migration 0 partner → outcomes, oldest first
}

func (g *guard) observe(s *Service, ctx context.Context, sample domain.GuardSample) {
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
	key := sample.Migration + "\x00" + sample.Partner
	g.mu.Lock()
	if g.windows == nil {
		g.windows = map[string][]string{}
	}
	w := append(g.windows[key], sample.Outcomes...)
	if len(w) > ms.Guard.Window {
		w = w[len(w)-ms.Guard.Window:]
	}
	g.windows[key] = w
	evidence, trip := judgeWindow(ms, w, sample)
	if trip {
		delete(g.windows, key)
	}
	g.mu.Unlock()
	if trip {
		s.guardRevert(ctx, ms, ps, evidence)
	}
}

// judgeWindow decides on a partner's window of outcomes: any zero-tolerance
// class trips at once; past a full window, the raw mismatch and error rates
// are held to the guard's limits.
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
	for _, o := range sample.Outcomes {
		for _, z := range ms.Gates.ZeroTolerance {
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
// evidence, and hands the revert to OnGuardRevert for the replay.
func (s *Service) guardRevert(ctx context.Context, ms *MigrationState, ps domain.PartnerStage, evidence string) {
	// The evidence names a router's event id, which may be anything.
	evidence = domain.SanitizeReason(evidence)
	c := Change{Actor: "guard", Reason: evidence}
	now := s.now().UTC()
	rev := GuardRevert{Migration: ms.Key, Since: ps.Since, At: now, Evidence: evidence}
	var err error
	switch ms.Guard.Scope {
	case domain.ScopeMigration:
		_, err = s.Revert(ctx, c, ms.Key)
		st := s.State()
		for id, p := range st.Partners {
			if x := st.Migrations[ms.Key].StageOf(p); x.Stage == domain.StageNew || x.Stage == domain.StageDone {
				rev.Partners = append(rev.Partners, id)
				if x.Since.Before(rev.Since) {
					rev.Since = x.Since
				}
			}
		}
	default:
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
				continue
			}
			if _, e := s.SetStage(ctx, c, ms.Key, id, domain.StageShadow, false); e != nil {
				err = e
				continue
			}
			rev.Partners = append(rev.Partners, id)
			if x.Since.Before(rev.Since) {
				rev.Since = x.Since
			}
		}
	}
	if err != nil {
		s.log.Error("guard revert failed", "migration", ms.Key, "err", err)
	}
	s.log.Warn("guard reverted", "migration", ms.Key, "scope", ms.Guard.Scope, "partners", strings.Join(rev.Partners, ","), "evidence", evidence)
	if s.onGuard != nil && len(rev.Partners) > 0 {
		s.onGuard(rev)
	}
}
