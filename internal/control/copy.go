package control

import (
	"context"
	"errors"
	"math"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Copyable is a Store that can be copied whole into another (switchback
// store copy): Export hands over the rows that Store's reads cannot list,
// and SetStoreID gives a copy the identity of its original. Both stores
// implement it; internal/control/storetest checks it.
type Copyable interface {
	Store
	// Export calls fn with every statistics row, mismatch, applied
	// report mark and noise path, all as of one moment, in no particular order; it stops
	// at fn's first error and returns it.
	Export(ctx context.Context, fn func(Row) error) error
	// SetStoreID replaces the store's identity with id, that of the store
	// it is a copy of (see Store.Load). It returns an error for an empty id.
	SetStoreID(ctx context.Context, id string) error
}

// Row is one exported row: exactly one of Comparison, Candidate, Mismatch,
// Report and Noise is set.
type Row struct {
	// Since is when the stint of Comparison or Candidate began.
	Since      time.Time
	Comparison *domain.ComparisonCount
	Candidate  *domain.CandidateCount
	Mismatch   *domain.Mismatch
	Report     *AppliedReport
	// Noise is one noise path of a migration's partner and event type,
	// with its count.
	Noise *domain.NoiseObservation
}

// AppliedReport is the mark of the last report applied from a router's
// journal epoch.
type AppliedReport struct {
	Router, Epoch string
	Seq           uint64
}

// Put writes r into tx: into a store without its row, the row as it was
// in the store it was exported from. It returns an error for a Row with
// nothing set.
func (r Row) Put(tx Tx) error {
	switch {
	case r.Comparison != nil:
		return tx.AddComparisons(r.Since, *r.Comparison)
	case r.Candidate != nil:
		return tx.AddCandidate(r.Since, *r.Candidate)
	case r.Mismatch != nil:
		// Its original kept it: keep every one.
		return tx.PutMismatch(*r.Mismatch, math.MaxInt)
	case r.Report != nil:
		return tx.PutAppliedReport(r.Report.Router, r.Report.Epoch, r.Report.Seq)
	case r.Noise != nil:
		// Its original bounded the paths: keep every one.
		return tx.AddNoise(*r.Noise, math.MaxInt)
	}
	return errors.New("an exported row with nothing in it")
}
