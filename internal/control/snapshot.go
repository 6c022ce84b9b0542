package control

import (
	"encoding/json"
	"sync"

	"github.com/switchbackhq/switchback/internal/wire"
)

// encoded caches a State's wire forms: they are built at most once per
// version, on first use, however many clients ask.
type encoded struct {
	public, router         sync.Once
	publicJSON, routerJSON []byte
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
