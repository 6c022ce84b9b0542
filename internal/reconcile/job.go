package reconcile

import (
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Limits of a reconciliation request and of what a job keeps.
const (
	MaxPartners   = 100
	MaxWindow     = domain.MaxReconcileWindow
	MaxSkew       = time.Hour
	DefaultSkew   = 2 * time.Minute
	DefaultSettle = time.Minute
	MaxGapsShown  = 10000
	MaxUncertain  = 1000
	KeptJobs      = 100
	// MaxRunning bounds the reconciliations and backfills running or
	// waiting at once.
	MaxRunning = 10
	// MaxChanges bounds the entities one partner's window may hold: they
	// are in memory until judged.
	MaxChanges = 500_000
	// BackfillableJobs is how many of the newest jobs keep their gaps'
	// entity states, which a backfill sends.
	BackfillableJobs = 10
	BackfillTimeout  = 10 * time.Minute
)
