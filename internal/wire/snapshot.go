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
