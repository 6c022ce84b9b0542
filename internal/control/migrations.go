package control

import (
	"context"
	"reflect"
	"slices"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// PutMigration creates or updates a migration's settings and reports whether
// it created it. Its kill switch, stages, cohorts, noise pins and
// autopilot state are kept.
func (s *Service) PutMigration(ctx context.Context, c Change, m domain.Migration) (domain.Migration, bool, error) {
	var out domain.Migration
	var created bool
	_, err := s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		old, exists := cur.Migrations[m.Key]
		m.CreatedAt, m.UpdatedAt, m.Reverted = now, now, false
		m.Seq = uint64(len(cur.Migrations)) + 1
		for _, o := range cur.Migrations {
			m.Seq = max(m.Seq, o.Seq+1)
		}
		// Pins change through PinNoise only, audited one by one: a PUT
		// of the migration keeps them.
		m.Compare.NoisePins, m.AutopilotState = nil, nil
		if exists {
			m.CreatedAt, m.Reverted, m.Seq = old.CreatedAt, old.Reverted, old.Seq
			m.Compare.NoisePins, m.AutopilotState = old.Compare.NoisePins, old.AutopilotState
		}
		if err := m.Validate(); err != nil {
			return plan{}, err
		}
		if r := m.Reconcile; r != nil && (r.AfterRevert || r.Every > 0) && s.cannotReconcile != "" {
			return plan{}, domain.Errorf(domain.CodeConflict,
				"reconcile: this switchback cannot reconcile, so no reconciliation it asks for would start: %s. Leave reconcile out (or off), and reconcile where one router takes every webhook",
				s.cannotReconcile)
		}
		if a := m.Approvals; a != nil && a.TTL == 0 {
			// Stored with the TTL in force, so that a later default
			// never changes what a migration waits for.
			withTTL := *a
			withTTL.TTL = a.EffectiveTTL()
			m.Approvals = &withTTL
		}
		if a := m.Autopilot; a != nil && a.MaxAdvancesPerDay == 0 {
			withMax := *a // stored with the bound in force, as the TTL above
			withMax.MaxAdvancesPerDay = a.MaxPerDay()
			m.Autopilot = &withMax
		}
		created, out = !exists, m
		rec := record{action: "migration.create", target: "migration/" + m.Key, after: m}
		if exists {
			same := old.Migration
			same.UpdatedAt = m.UpdatedAt
			if reflect.DeepEqual(same, m) {
				out = old.Migration
				return plan{}, nil
			}
			rec.action, rec.before = "migration.update", old.Migration
		}
		return plan{
			next:    cur.withMigration(m),
			writes:  func(tx Tx) error { return tx.PutMigration(m) },
			records: []record{rec},
		}, nil
	})
	return out, created, err
}

// PutCohort creates or replaces a cohort of a migration and reports whether
// it created it. A partner may be in at most one cohort of a migration.
func (s *Service) PutCohort(ctx context.Context, c Change, key string, co domain.Cohort) (domain.Cohort, bool, error) {
	var created bool
	_, err := s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		ms, err := cur.Migration(key)
		if err != nil {
			return plan{}, err
		}
		if err := co.Validate(); err != nil {
			return plan{}, err
		}
		for _, p := range co.Partners {
			if _, err := cur.Partner(p); err != nil {
				return plan{}, err
			}
			if other := ms.CohortOf(p); other != "" && other != co.Name {
				return plan{}, domain.Errorf(domain.CodeConflict, "partner %q is already in cohort %q of migration %q: remove it from there first", p, other, key)
			}
		}
		old, err := ms.Cohort(co.Name)
		created = err != nil
		if !created && old.Order == co.Order && slices.Equal(old.Partners, co.Partners) && reflect.DeepEqual(old.Gates, co.Gates) {
			co = old
			return plan{}, nil
		}
		co.UpdatedAt = now
		rec := record{action: "cohort.create", target: "migration/" + key + "/cohort/" + co.Name, after: co}
		if !created {
			rec.action, rec.before = "cohort.update", old
		}
		return plan{
			next:    cur.withCohort(key, co),
			writes:  func(tx Tx) error { return tx.PutCohort(key, co) },
			records: []record{rec},
		}, nil
	})
	return co, created, err
}
