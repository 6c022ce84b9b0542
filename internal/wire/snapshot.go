package wire

import (
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Snapshot is the wire form of the control service's state: everything a
// router or a flags provider needs. Partners absent from a migration's
// stages are at legacy.
type Snapshot struct {
	Version uint64    `json:"version"`
	BuiltAt time.Time `json:"builtAt"`
	// StoreID identifies the store: versions compare only within one.
	StoreID string `json:"storeId,omitempty"`
	// Audit is the audit log's head at this version, for routers to keep
	// as witnesses; absent on an empty log.
	Audit      AuditHead                    `json:"audit,omitzero"`
	Migrations map[string]SnapshotMigration `json:"migrations"`
	Partners   map[string]SnapshotPartner   `json:"partners"`
}

// AuditHead is the last entry of the audit log when a snapshot was built.
type AuditHead struct {
	Seq  uint64 `json:"seq"`
	Hash string `json:"hash"`
}

// SnapshotMigration is one migration in a snapshot. Stages holds only the
// partners not at legacy.
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

// SnapshotDelta is the change from the snapshot of version Base to the
// snapshot of Version, sent on the snapshot stream to the subscribers that
// ask for deltas (?deltas=1) and hold Base. It carries exactly what
// changed: a subscriber that applies it to Base holds Version. Version,
// BuiltAt, StoreID and Audit are those of the new snapshot.
type SnapshotDelta struct {
	Version uint64    `json:"version"`
	Base    uint64    `json:"base"`
	BuiltAt time.Time `json:"builtAt"`
	StoreID string    `json:"storeId,omitempty"`
	Audit   AuditHead `json:"audit,omitzero"`
	// Migrations holds the migrations added or changed, and null for each
	// one removed. Absent: none.
	Migrations map[string]*MigrationDelta `json:"migrations,omitempty"`
	// Partners holds the partners added or changed, whole (Secret only in
	// the router's copy), and null for each one removed. Absent: none.
	Partners map[string]*SnapshotPartner `json:"partners,omitempty"`
}

// MigrationDelta is a migration added or changed: its settings whole, and
// of its stages only those that changed. A migration added has its stages
// as changes to an empty map.
type MigrationDelta struct {
	Seq       uint64              `json:"seq"`
	Reverted  bool                `json:"reverted"`
	Pipelines domain.Pipelines    `json:"pipelines"`
	Compare   domain.CompareRules `json:"compare"`
	Guard     domain.Guard        `json:"guard"`
	// Stages maps each partner whose stage changed to its new stage, or
	// to null when it went back to legacy (or out of the migration).
	// Absent: no stage changed.
	Stages map[string]*string `json:"stages,omitempty"`
}
