package control

import (
	"bytes"
	"encoding/json"
	"sync"
	"sync/atomic"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// encoded caches a State's wire forms: they are built at most once per
// version, on first use, however many clients ask.
type encoded struct {
	public, router         sync.Once
	publicJSON, routerJSON []byte

	// base is the state published just before this one, from which the
	// deltas are computed; the service clears it when the next state is
	// published, so that states do not chain back through history.
	base                             atomic.Pointer[State]
	publicDelta, routerDelta         sync.Once
	publicDeltaJSON, routerDeltaJSON []byte
	deltaBase                        uint64 // base's version, set before the state is published
}

// SnapshotJSON returns the state's snapshot as JSON; withSecrets adds the
// partners' webhook secrets, for routers only.
func (s *State) SnapshotJSON(withSecrets bool) []byte {
	if withSecrets {
		s.enc.router.Do(func() { s.enc.routerJSON = s.encode(true) })
		return s.enc.routerJSON
	}
	s.enc.public.Do(func() { s.enc.publicJSON = s.encode(false) })
	return s.enc.publicJSON
}

func (s *State) encode(withSecrets bool) []byte {
	w := wire.Snapshot{Version: s.Version, BuiltAt: s.BuiltAt, StoreID: s.StoreID, Audit: wire.AuditHead{Seq: s.Audit.Seq, Hash: s.Audit.Hash},
		Migrations: make(map[string]wire.SnapshotMigration, len(s.Migrations)),
		Partners:   make(map[string]wire.SnapshotPartner, len(s.Partners))}
	for k, m := range s.Migrations {
		w.Migrations[k] = wire.SnapshotMigration{Seq: m.Seq, Reverted: m.Reverted, Stages: m.flag.Stages,
			Pipelines: m.Pipelines, Compare: m.Compare, Guard: m.Guard}
	}
	for id, p := range s.Partners {
		sp := wire.SnapshotPartner{Name: p.Name, PSA: p.PSA, CompanyID: p.CompanyID}
		if withSecrets {
			sp.Secret = p.Secret
		}
		w.Partners[id] = sp
	}
	b, err := json.Marshal(w)
	if err != nil {
		panic("control: snapshot does not marshal: " + err.Error())
	}
	return b
}

// DeltaJSON returns the delta from the state published just before this
// one to this one, as JSON (a wire.SnapshotDelta), and the version it
// applies to. ok is false when there is none: the first state, a state
// whose predecessor is already forgotten (a newer one was published
// before anyone asked), or a predecessor of another store. Like the
// snapshot, it is built at most once per version; withSecrets adds the
// webhook secrets of the partners it carries, for routers only.
func (s *State) DeltaJSON(withSecrets bool) (b []byte, base uint64, ok bool) {
	once, out := &s.enc.publicDelta, &s.enc.publicDeltaJSON
	if withSecrets {
		once, out = &s.enc.routerDelta, &s.enc.routerDeltaJSON
	}
	once.Do(func() {
		prev := s.enc.base.Load()
		if prev == nil || prev.StoreID != s.StoreID || prev.Version != s.enc.deltaBase || prev.Version >= s.Version {
			return
		}
		*out = s.encodeDelta(prev, withSecrets)
	})
	if *out == nil {
		return nil, 0, false
	}
	return *out, s.enc.deltaBase, true
}

func (s *State) encodeDelta(prev *State, withSecrets bool) []byte {
	d := wire.SnapshotDelta{Version: s.Version, Base: prev.Version, BuiltAt: s.BuiltAt, StoreID: s.StoreID,
		Audit: wire.AuditHead{Seq: s.Audit.Seq, Hash: s.Audit.Hash}}
	for k, m := range s.Migrations {
		old := prev.Migrations[k]
		if old == m {
			continue // copy on write: the same pointer is the same migration
		}
		md := &wire.MigrationDelta{Seq: m.Seq, Reverted: m.Reverted, Pipelines: m.Pipelines, Compare: m.Compare, Guard: m.Guard}
		var oldStages map[string]string
		if old != nil {
			oldStages = old.flag.Stages
		}
		for id, st := range m.flag.Stages {
			if o, ok := oldStages[id]; !ok || o != st {
				if md.Stages == nil {
					md.Stages = map[string]*string{}
				}
				md.Stages[id] = &st
			}
		}
		for id := range oldStages {
			if _, ok := m.flag.Stages[id]; !ok {
				if md.Stages == nil {
					md.Stages = map[string]*string{}
				}
				md.Stages[id] = nil
			}
		}
		if old != nil && md.Stages == nil && sameSettings(old, m) {
			continue
		}
		if d.Migrations == nil {
			d.Migrations = map[string]*wire.MigrationDelta{}
		}
		d.Migrations[k] = md
	}
	for k := range prev.Migrations {
		if _, ok := s.Migrations[k]; !ok {
			if d.Migrations == nil {
				d.Migrations = map[string]*wire.MigrationDelta{}
			}
			d.Migrations[k] = nil
		}
	}
	partner := func(p *domain.Partner) wire.SnapshotPartner {
		sp := wire.SnapshotPartner{Name: p.Name, PSA: p.PSA, CompanyID: p.CompanyID}
		if withSecrets {
			sp.Secret = p.Secret
		}
		return sp
	}
	for id, p := range s.Partners {
		old := prev.Partners[id]
		if old == p {
			continue
		}
		sp := partner(p)
		if old != nil && partner(old) == sp {
			continue
		}
		if d.Partners == nil {
			d.Partners = map[string]*wire.SnapshotPartner{}
		}
		d.Partners[id] = &sp
	}
	for id := range prev.Partners {
		if _, ok := s.Partners[id]; !ok {
			if d.Partners == nil {
				d.Partners = map[string]*wire.SnapshotPartner{}
			}
			d.Partners[id] = nil
		}
	}
	b, err := json.Marshal(d)
	if err != nil {
		panic("control: snapshot delta does not marshal: " + err.Error())
	}
	return b
}

// sameSettings reports whether two migrations have the same wire form but
// for their stages.
func sameSettings(a, b *MigrationState) bool {
	enc := func(m *MigrationState) []byte {
		j, err := json.Marshal(wire.SnapshotMigration{Seq: m.Seq, Reverted: m.Reverted, Pipelines: m.Pipelines, Compare: m.Compare, Guard: m.Guard})
		if err != nil {
			panic("control: migration does not marshal: " + err.Error())
		}
		return j
	}
	return bytes.Equal(enc(a), enc(b))
}
