package control

import (
	"context"
	"fmt"
	"math/bits"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// StatsTx is what a write transaction offers for comparison statistics.
type StatsTx interface {
	AddComparisons(since time.Time, c domain.ComparisonCount) error
	AddCandidate(since time.Time, c domain.CandidateCount) error
	PutMismatch(m domain.Mismatch) error
	// AppliedReport returns the highest report seq applied for a router's
	// journal epoch, 0 if none; PutAppliedReport records a new one.
	AppliedReport(router, epoch string) (uint64, error)
	PutAppliedReport(router, epoch string, seq uint64) error
}

// StatsReader reads comparison statistics.
type StatsReader interface {
	ComparisonStats
	Comparisons(ctx context.Context, migration, partner string, stage domain.Stage, since time.Time, limit int) (map[string]map[domain.Class]uint64, []domain.Mismatch, error)
	Timeline(ctx context.Context, migration, partner string, stage domain.Stage, since time.Time) ([]domain.MinuteCount, error)
}

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
		stx, ok := tx.(StatsTx)
		if !ok {
			return fmt.Errorf("the store keeps no comparison statistics")
		}
		duplicate = false
		if id := r.ReportID; id != nil {
			last, err := stx.AppliedReport(r.Router.ID, id.Epoch)
			if err != nil {
				return err
			}
			// Routers send their reports one at a time, in seq order, and
			// the next only after the previous was answered: a seq at or
			// below the last applied one is a resend.
			duplicate = id.Seq <= last
			if !duplicate {
				if err := stx.PutAppliedReport(r.Router.ID, id.Epoch, id.Seq); err != nil {
					return err
				}
			}
		}
		if duplicate {
			// Mismatches are samples, safe to keep again; counts are not.
			return putMismatches(stx, r.Mismatches)
		}
		for _, c := range r.Comparisons {
			if since, ok := current(c.Migration, c.Partner, c.Stage); ok && !c.Minute.Before(since.Truncate(time.Minute)) {
				if err := stx.AddComparisons(since, c); err != nil {
					return err
				}
			}
		}
		for _, c := range r.Candidate {
			if since, ok := current(c.Migration, c.Partner, c.Stage); ok {
				if err := stx.AddCandidate(since, c); err != nil {
					return err
				}
			}
		}
		return putMismatches(stx, r.Mismatches)
	})
	if err != nil {
		return false, domain.Internal("record comparisons", err)
	}
	return duplicate, nil
}

func putMismatches(stx StatsTx, ms []domain.Mismatch) error {
	for _, m := range ms {
		if err := stx.PutMismatch(m); err != nil {
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
	out := domain.Comparisons{Partner: partner, Stage: ps.Stage, Since: ps.Since, Counts: map[string]map[domain.Class]uint64{}, Mismatches: []domain.Mismatch{}}
	sr, ok := s.stats.(StatsReader)
	if !ok {
		return out, nil
	}
	counts, mism, err := sr.Comparisons(ctx, migration, partner, ps.Stage, ps.Since, 50)
	if err != nil {
		return domain.Comparisons{}, domain.Internal("read comparisons", err)
	}
	out.Counts, out.Mismatches = counts, mism
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
	sr, ok := s.stats.(StatsReader)
	if !ok {
		return []domain.MinuteCount{}, nil
	}
	ps := ms.StageOf(p)
	out, err := sr.Timeline(ctx, migration, partner, ps.Stage, ps.Since)
	if err != nil {
		return nil, domain.Internal("read the comparison timeline", err)
	}
	return out, nil
}
