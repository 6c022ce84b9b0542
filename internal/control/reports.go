package control

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"slices"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// maxVersionAhead bounds how far ahead of the store a router's version may
// be: a store restored from a backup is behind by the changes made since,
// and a router token must not push versions to where they wrap.
const maxVersionAhead = 1_000_000

// checkVersion refuses a router's version that cannot be judged (ahead of
// the store with no store id, as before store ids) or that is implausibly
// far ahead of this store's.
func (s *Service) checkVersion(r RouterStatus) error {
	st := s.State()
	switch {
	case len(r.StoreID) > 64:
		return domain.Errorf(domain.CodeInvalid, "storeId is longer than 64 characters")
	case r.StoreID == "" && r.SnapshotVersion > st.Version:
		return domain.Errorf(domain.CodeInvalid, "snapshotVersion %d is newer than the current version %d", r.SnapshotVersion, st.Version)
	case r.StoreID == st.StoreID && r.SnapshotVersion > st.Version+maxVersionAhead:
		return domain.Errorf(domain.CodeInvalid, "snapshotVersion %d is more than %d versions ahead of the current version %d", r.SnapshotVersion, maxVersionAhead, st.Version)
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
func (s *Service) IngestReport(ctx context.Context, r wire.Report) (duplicate bool, err error) {
	if err := r.Validate(s.now()); err != nil {
		return false, err
	}
	// A replica cut off from its shared store refuses at once: the router
	// sends the report to another, and its counts stay owed until then.
	if err := s.Available(); err != nil {
		return false, err
	}
	rt := RouterStatus{ID: r.Router, SnapshotVersion: r.SnapshotVersion, StoreID: r.StoreID, Refused: r.Refused, Journal: r.Journal}
	if err := s.checkVersion(rt); err != nil {
		return false, err
	}
	s.reportRouter(ctx, rt)
	if err := s.fastForward(ctx, rt); err != nil {
		return false, err
	}
	s.recordReplays(ctx, r.Router, r.Replays)
	if len(r.Comparisons)+len(r.Candidate)+len(r.Mismatches) > 0 {
		if duplicate, err = s.recordStats(ctx, r); err != nil {
			return false, err
		}
	}
	for _, g := range r.Guard {
		s.observeGuard(ctx, g)
	}
	if len(r.Noise) > 0 {
		s.recordNoise(ctx, r.Noise)
	}
	return duplicate, nil
}

// RowLimiter is a Store that takes at most MaxRowsPerUpdate statistics
// rows and mismatches in one Update (etcd's 128 operations per
// transaction): a larger report is written in parts.
type RowLimiter interface {
	MaxRowsPerUpdate() int
}

// recordStats writes a report's counts and mismatches with its ReportID,
// so that the counts and the record that they were applied land together
// or not at all: in one transaction, or, for a store that limits its rows
// (RowLimiter), in parts that each carry their own record, so that a
// resent report applies each part exactly once. Parts are cut the same
// way every time a sealed report is sent again.
func (s *Service) recordStats(ctx context.Context, r wire.Report) (duplicate bool, err error) {
	size := 0
	if l, ok := s.store.(RowLimiter); ok {
		size = l.MaxRowsPerUpdate()
	}
	duplicate = true
	for i, part := range splitStats(r, size) {
		dup, err := s.recordPart(ctx, part, i)
		if err != nil {
			return false, err
		}
		duplicate = duplicate && dup
	}
	return duplicate, nil
}

// splitStats cuts a report's rows into parts of at most size rows (one
// part when size is 0), comparisons first, then candidate counts, then
// mismatches.
func splitStats(r wire.Report, size int) []wire.Report {
	n := len(r.Comparisons) + len(r.Candidate) + len(r.Mismatches)
	if size <= 0 || n <= size {
		return []wire.Report{r}
	}
	var parts []wire.Report
	for start := 0; start < n; start += size {
		part := wire.Report{Router: r.Router, ReportID: r.ReportID}
		for i := start; i < min(start+size, n); i++ {
			switch {
			case i < len(r.Comparisons):
				part.Comparisons = append(part.Comparisons, r.Comparisons[i])
			case i < len(r.Comparisons)+len(r.Candidate):
				part.Candidate = append(part.Candidate, r.Candidate[i-len(r.Comparisons)])
			default:
				part.Mismatches = append(part.Mismatches, r.Mismatches[i-len(r.Comparisons)-len(r.Candidate)])
			}
		}
		parts = append(parts, part)
	}
	return parts
}

// recordPart writes part i of a report in one transaction. Part 0 keeps
// its applied record under the report's epoch, as a whole report does;
// part i under "EPOCH#i".
func (s *Service) recordPart(ctx context.Context, r wire.Report, i int) (duplicate bool, err error) {
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
			epoch := id.Epoch
			if i > 0 {
				epoch = fmt.Sprintf("%s#%d", id.Epoch, i)
			}
			last, err := tx.AppliedReport(r.Router, epoch)
			if err != nil {
				return err
			}
			// Routers send their reports one at a time, in seq order, and
			// the next only after the previous was answered: a seq at or
			// below the last applied one is a resend.
			duplicate = id.Seq <= last
			if !duplicate {
				if err := tx.PutAppliedReport(r.Router, epoch, id.Seq); err != nil {
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
		return false, storeError("record comparisons", err)
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
	if err := s.Available(); err != nil {
		return domain.Comparisons{}, err
	}
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
		return domain.Comparisons{}, storeError("read comparisons", err)
	}
	for _, r := range rows.Comparisons {
		if out.Counts[r.EventType] == nil {
			out.Counts[r.EventType] = map[domain.Class]uint64{}
		}
		out.Counts[r.EventType][r.Class] = domain.AddCounts(out.Counts[r.EventType][r.Class], r.Count)
	}
	// Every sample since the stage began, not the newest few: many event
	// types of noise, each within the store's bound per type and class,
	// could otherwise push an older mismatch out before shownSamples puts
	// mismatches first. The bound is the store's (20 per event type and
	// class), and both stores read them all to sort them anyway.
	samples, err := s.store.Mismatches(ctx, migration, partner, ps.Since, math.MaxInt)
	if err != nil {
		return domain.Comparisons{}, storeError("read mismatches", err)
	}
	out.Mismatches = shownSamples(samples)
	return out, nil
}

// samplesShown is how many samples Comparisons returns.
const samplesShown = 50

// shownSamples keeps, of samples sorted newest first, samplesShown: the
// mismatches first, then noise samples in the room left, so that a
// partner whose every event is noise still shows its real mismatches.
// Each group stays newest first.
func shownSamples(samples []domain.Mismatch) []domain.Mismatch {
	out := make([]domain.Mismatch, 0, min(len(samples), samplesShown))
	for _, m := range samples {
		if m.Class.Mismatched() && len(out) < samplesShown {
			out = append(out, m)
		}
	}
	for _, m := range samples {
		if !m.Class.Mismatched() && len(out) < samplesShown {
			out = append(out, m)
		}
	}
	return out
}

// Timeline returns a partner's comparison counts per minute, event type
// and class in its current stage, sorted by minute, then type, then class.
func (s *Service) Timeline(ctx context.Context, migration, partner string) ([]domain.MinuteCount, error) {
	if err := s.Available(); err != nil {
		return nil, err
	}
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
		return nil, storeError("read the comparison timeline", err)
	}
	out := append([]domain.MinuteCount{}, rows.Comparisons...)
	slices.SortFunc(out, func(a, b domain.MinuteCount) int {
		return cmp.Or(a.Minute.Compare(b.Minute), cmp.Compare(a.EventType, b.EventType), cmp.Compare(a.Class, b.Class))
	})
	return out, nil
}
