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
	// BackfillableJobs is how many of the newest jobs keep their gaps'
	// entity states, which a backfill sends.
	BackfillableJobs = 10
	BackfillTimeout  = 10 * time.Minute
)
