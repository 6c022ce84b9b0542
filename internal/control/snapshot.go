package control

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/domain"
)

// Snapshot is the wire form of a State: everything a router or a flags
// provider needs. Partners absent from a migration's stages are at legacy.
type Snapshot struct {
	Version uint64    `json:"version"`
	BuiltAt time.Time `json:"builtAt"`
	// StoreID identifies the store: versions compare only within one.
	StoreID string `json:"storeId,omitempty"`
	// Audit is the audit log's head at this version, for routers to keep
	// as witnesses.
	Audit      flags.AuditHead              `json:"audit,omitzero"`
	Migrations map[string]SnapshotMigration `json:"migrations"`
	Partners   map[string]SnapshotPartner   `json:"partners"`
}

// SnapshotMigration is one migration in a snapshot.
type SnapshotMigration struct {
	Seq       uint64              `json:"seq"`
	Reverted  bool                `json:"reverted"`
	Stages    map[string]string   `json:"stages"`
	Pipelines domain.Pipelines    `json:"pipelines"`
	Compare   domain.CompareRules `json:"compare"`
	Guard     domain.Guard        `json:"guard"`
}

// SnapshotPartner is one partner in a snapshot; Secret is only in the
// router's copy. CompanyID, not a secret, is in both: the router checks
// ConnectWise callbacks against it.
type SnapshotPartner struct {
	Name      string     `json:"name"`
	PSA       domain.PSA `json:"psa"`
	Secret    string     `json:"secret,omitempty"`
	CompanyID string     `json:"companyId,omitempty"`
}

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
	w := Snapshot{Version: s.Version, BuiltAt: s.BuiltAt, StoreID: s.StoreID, Audit: s.Audit,
		Migrations: make(map[string]SnapshotMigration, len(s.Migrations)),
		Partners:   make(map[string]SnapshotPartner, len(s.Partners))}
	for k, m := range s.Migrations {
		w.Migrations[k] = SnapshotMigration{Seq: m.Seq, Reverted: m.Reverted, Stages: m.flag.Stages,
			Pipelines: m.Pipelines, Compare: m.Compare, Guard: m.Guard}
	}
	for id, p := range s.Partners {
		sp := SnapshotPartner{Name: p.Name, PSA: p.PSA, CompanyID: p.CompanyID}
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
