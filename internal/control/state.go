package control

import (
	"maps"
	"slices"
	"sort"
	"time"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/domain"
)

// State is everything the control service holds at one snapshot version.
// It is immutable once published: changes build a new State that shares the
// parts they did not touch, so a kill switch costs O(migrations), not
// O(partners).
type State struct {
	Version uint64
	BuiltAt time.Time
	// StoreID is the identity of the store the state was loaded from.
	StoreID string
	// Audit is the head of the audit log when the state was sealed.
	Audit      flags.AuditHead
	Partners   map[string]*domain.Partner
	Migrations map[string]*MigrationState
	// Notifiers are the notification targets by name, with their
	// secrets: see Notifier and NotifierList.
	Notifiers map[string]*domain.Notifier

	order        []string // migration keys, oldest first
	flagPartners map[string]flags.Partner
	flags        *flags.Snapshot
	enc          *encoded
}

// MigrationState is one migration with its partners' stages and cohorts.
type MigrationState struct {
	domain.Migration
	// Stages holds the stored stage records; a partner without one is at
	// legacy since it or the migration was created, whichever was later.
	Stages   map[string]domain.PartnerStage
	Cohorts  []domain.Cohort   // by order, then name
	cohortOf map[string]string // partner → cohort
	flag     *flags.Migration
}

// Flags returns the evaluation view of the state.
func (s *State) Flags() *flags.Snapshot { return s.flags }

// MigrationKeys returns the migration keys, oldest first.
func (s *State) MigrationKeys() []string { return s.order }

// PartnerIDs returns the partner ids in sorted order.
func (s *State) PartnerIDs() []string { return slices.Sorted(maps.Keys(s.Partners)) }

// Migration returns the migration with key or a not_found error.
func (s *State) Migration(key string) (*MigrationState, error) {
	m, ok := s.Migrations[key]
	if !ok {
		return nil, domain.Errorf(domain.CodeNotFound, "migration %q does not exist", key)
	}
	return m, nil
}

// Partner returns the partner with id or a not_found error.
func (s *State) Partner(id string) (*domain.Partner, error) {
	p, ok := s.Partners[id]
	if !ok {
		return nil, domain.Errorf(domain.CodeNotFound, "partner %q does not exist", id)
	}
	return p, nil
}

// StageOf returns the partner's stage in the migration.
func (m *MigrationState) StageOf(p *domain.Partner) domain.PartnerStage {
	if ps, ok := m.Stages[p.ID]; ok {
		return ps
	}
	since := m.CreatedAt
	if p.CreatedAt.After(since) {
		since = p.CreatedAt
	}
	return domain.PartnerStage{Partner: p.ID, Stage: domain.StageLegacy, Since: since}
}

// CohortOf returns the name of the partner's cohort, or "".
func (m *MigrationState) CohortOf(partner string) string { return m.cohortOf[partner] }

// Cohort returns the named cohort or a not_found error.
func (m *MigrationState) Cohort(name string) (domain.Cohort, error) {
	for _, c := range m.Cohorts {
		if c.Name == name {
			return c, nil
		}
	}
	return domain.Cohort{}, domain.Errorf(domain.CodeNotFound, "cohort %q does not exist in migration %q", name, m.Key)
}

// newState builds a State from what storage loaded.
func newState(d domain.Data) *State {
	s := &State{Version: d.Version, StoreID: d.StoreID, Partners: map[string]*domain.Partner{}, Migrations: map[string]*MigrationState{}}
	s.Notifiers = make(map[string]*domain.Notifier, len(d.Notifiers))
	for i := range d.Notifiers {
		n := d.Notifiers[i]
		s.Notifiers[n.Name] = &n
	}
	for i := range d.Partners {
		p := d.Partners[i]
		s.Partners[p.ID] = &p
	}
	for _, m := range d.Migrations {
		ms := &MigrationState{Migration: m, Stages: map[string]domain.PartnerStage{}}
		for _, ps := range d.Stages[m.Key] {
			ms.Stages[ps.Partner] = ps
		}
		ms.setCohorts(d.Cohorts[m.Key])
		ms.flag = buildFlag(ms)
		s.Migrations[m.Key] = ms
	}
	s.reindex()
	return s
}

// clone returns a shallow copy whose maps may be replaced without touching s.
func (s *State) clone() *State {
	n := *s
	n.Migrations = maps.Clone(s.Migrations)
	return &n
}

// withPartner returns a copy of s holding p.
func (s *State) withPartner(p domain.Partner) *State {
	n := s.clone()
	n.Partners = maps.Clone(s.Partners)
	n.Partners[p.ID] = &p
	n.flagPartners = maps.Clone(s.flagPartners)
	n.flagPartners[p.ID] = flags.Partner{Name: p.Name, PSA: string(p.PSA)}
	return n
}

// withMigration returns a copy of s in which the migration's settings are m;
// its stages and cohorts are kept.
func (s *State) withMigration(m domain.Migration) *State {
	n := s.clone()
	ms := &MigrationState{Migration: m, Stages: map[string]domain.PartnerStage{}, cohortOf: map[string]string{}}
	if old, ok := s.Migrations[m.Key]; ok {
		ms.Stages, ms.Cohorts, ms.cohortOf = old.Stages, old.Cohorts, old.cohortOf
	}
	ms.flag = buildFlag(ms)
	n.Migrations[m.Key] = ms
	if _, ok := s.Migrations[m.Key]; !ok {
		n.order = nil
		n.reindex()
	}
	return n
}

// withStages returns a copy of s with the given stage records of a migration.
func (s *State) withStages(key string, changes []domain.PartnerStage) *State {
	n := s.clone()
	old := s.Migrations[key]
	ms := *old
	ms.Stages = maps.Clone(old.Stages)
	for _, ps := range changes {
		ms.Stages[ps.Partner] = ps
	}
	ms.flag = buildFlag(&ms)
	n.Migrations[key] = &ms
	return n
}

// withCohort returns a copy of s in which the migration holds c.
func (s *State) withCohort(key string, c domain.Cohort) *State {
	n := s.clone()
	old := s.Migrations[key]
	ms := *old
	cohorts := slices.DeleteFunc(slices.Clone(old.Cohorts), func(x domain.Cohort) bool { return x.Name == c.Name })
	ms.setCohorts(append(cohorts, c))
	n.Migrations[key] = &ms
	return n
}

// withReverted returns a copy of s with the kill switches of keys set to on.
func (s *State) withReverted(keys []string, on bool, now time.Time) *State {
	n := s.clone()
	for _, k := range keys {
		ms := *s.Migrations[k]
		ms.Reverted, ms.UpdatedAt = on, now
		ms.flag = &flags.Migration{Reverted: on, Stages: s.Migrations[k].flag.Stages}
		n.Migrations[k] = &ms
	}
	return n
}

// seal stamps the version and the audit head and builds the evaluation
// view; call it once, before publishing.
func (s *State) seal(version uint64, now time.Time, head domain.AuditEntry) {
	s.Version, s.BuiltAt = version, now
	s.Audit = flags.AuditHead{Seq: head.Seq, Hash: head.Hash}
	s.enc = &encoded{}
	fm := make(map[string]*flags.Migration, len(s.Migrations))
	for k, m := range s.Migrations {
		fm[k] = m.flag
	}
	s.flags = &flags.Snapshot{Version: version, StoreID: s.StoreID, Audit: s.Audit, Migrations: fm, Partners: s.flagPartners}
}

func (s *State) reindex() {
	s.order = slices.Collect(maps.Keys(s.Migrations))
	sort.Slice(s.order, func(i, j int) bool {
		a, b := s.Migrations[s.order[i]], s.Migrations[s.order[j]]
		if a.Seq != b.Seq {
			return a.Seq < b.Seq
		}
		return a.Key < b.Key
	})
	if s.flagPartners == nil {
		s.flagPartners = make(map[string]flags.Partner, len(s.Partners))
		for id, p := range s.Partners {
			s.flagPartners[id] = flags.Partner{Name: p.Name, PSA: string(p.PSA)}
		}
	}
}

func (m *MigrationState) setCohorts(cs []domain.Cohort) {
	sort.Slice(cs, func(i, j int) bool {
		if cs[i].Order != cs[j].Order {
			return cs[i].Order < cs[j].Order
		}
		return cs[i].Name < cs[j].Name
	})
	m.Cohorts = cs
	m.cohortOf = map[string]string{}
	for _, c := range cs {
		for _, p := range c.Partners {
			m.cohortOf[p] = c.Name
		}
	}
}

func buildFlag(m *MigrationState) *flags.Migration {
	st := make(map[string]string, len(m.Stages))
	for p, ps := range m.Stages {
		if ps.Stage != domain.StageLegacy {
			st[p] = string(ps.Stage)
		}
	}
	return &flags.Migration{Reverted: m.Reverted, Stages: st}
}

// PartnersByStage counts the migration's partners by stage, every stage present.
func (s *State) PartnersByStage(m *MigrationState) map[domain.Stage]int {
	counts := map[domain.Stage]int{domain.StageLegacy: 0, domain.StageShadow: 0, domain.StageNew: 0, domain.StageDone: 0}
	for _, p := range s.Partners {
		counts[m.StageOf(p).Stage]++
	}
	return counts
}
