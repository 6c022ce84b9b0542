package control

import (
	"context"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Store is everything the control service needs from storage; a store
// implements all of it, and internal/control/storetest checks that it does
// it the same way as every other. Implementations hold no rules: they keep
// the rows they are given and hand them back. What rows mean (which classes
// the gates count, how many samples to keep, which counts are stale) is
// decided here and in package gate.
//
// Every method may return an error wrapping the store's own cause (a closed
// store, a broken file or connection); none panics.
type Store interface {
	// Load returns everything stored but the audit log's entries (only the
	// last, as LastAudit) and the statistics, change requests included,
	// with the store's identity:
	// StoreID is set when the store is created and never changes, and a
	// copy of the store (a restored backup) keeps it.
	Load(ctx context.Context) (domain.Data, error)
	// Update runs fn in one write transaction: all its writes land or none.
	// An fn that returns an error leaves nothing behind, and Update returns
	// that error. With ctx already done, fn is not run and Update returns
	// ctx.Err(). Concurrent Updates are serialized: each sees the writes of
	// those that returned before it began. fn may run more than once (a
	// shared store retries it from fresh reads when another replica won a
	// race), so it must have no effect outside the Tx.
	Update(ctx context.Context, fn func(Tx) error) error
	// AuditLog returns up to limit entries with seq > after, in seq order;
	// an empty, non-nil slice when there are none.
	AuditLog(ctx context.Context, after uint64, limit int) ([]domain.AuditEntry, error)
	// StageRows returns the rows added for a partner's stint in a stage,
	// the one that began at since: other stints, even in the same stage,
	// are not included.
	StageRows(ctx context.Context, migration, partner string, stage domain.Stage, since time.Time) (domain.StageRows, error)
	// Mismatches returns up to limit of a partner's mismatches kept with
	// At at or after since, newest first; an empty, non-nil slice when
	// there are none.
	Mismatches(ctx context.Context, migration, partner string, since time.Time, limit int) ([]domain.Mismatch, error)
	// Noise returns the noise paths kept for a migration's partners, each
	// with its count, sorted by partner, event type and path; an empty,
	// non-nil slice when there are none.
	Noise(ctx context.Context, migration string) ([]domain.NoiseObservation, error)
}

// Tx is one write transaction. Its methods return the store's error when
// the write fails; Update then discards the transaction.
type Tx interface {
	PutPartner(domain.Partner) error
	PutMigration(domain.Migration) error
	PutStage(migration string, ps domain.PartnerStage) error
	PutCohort(migration string, c domain.Cohort) error
	PutToken(domain.Token) error
	// DeleteToken removes a token; removing one that does not exist is not
	// an error.
	DeleteToken(name string) error
	SetVersion(uint64) error
	// PutChange keeps a change request, replacing the one of its id;
	// DeleteChange removes one, and removing one that does not exist is
	// not an error. Load returns those kept; which to keep is the control
	// service's to decide.
	PutChange(domain.ChangeRequest) error
	DeleteChange(id string) error
	// AppendAudit appends e; it returns an error, and writes nothing, when
	// e.Seq does not follow the last entry's: the log is append-only.
	AppendAudit(domain.AuditEntry) error

	// AddComparisons adds c.Count to the row of c's event type, class and
	// minute in the stint of c's partner and stage that began at since.
	// The row saturates at the largest uint64 instead of wrapping.
	AddComparisons(since time.Time, c domain.ComparisonCount) error
	// AddCandidate adds c's calls and errors to the stint of c's partner
	// and stage that began at since, saturating like AddComparisons.
	AddCandidate(since time.Time, c domain.CandidateCount) error
	// PutMismatch keeps m and then only the newest keep mismatches of m's
	// migration, partner, event type and class, by At then event id.
	PutMismatch(m domain.Mismatch, keep int) error
	// AppliedReport returns the highest report seq applied for a router's
	// journal epoch, 0 if none; PutAppliedReport records a new one.
	AppliedReport(router, epoch string) (uint64, error)
	PutAppliedReport(router, epoch string, seq uint64) error
	// AddNoise adds o.Count to the count of o's path among the paths kept
	// for o's migration, partner and event type, saturating like
	// AddComparisons. A path not kept yet when keep paths already are is
	// dropped, without an error.
	AddNoise(o domain.NoiseObservation, keep int) error

	// PutNotifier keeps a notification target, with its secret (a store
	// that seals secrets seals it); DeleteNotifier removes one, and
	// removing one that does not exist is not an error. Load returns them
	// in Data.Notifiers.
	PutNotifier(domain.Notifier) error
	DeleteNotifier(name string) error
}
