package domain

import (
	"encoding/json"
	"time"
)

// AuditEntry records one change. Entries form a hash chain: Hash covers
// PrevHash and every other field, so editing or removing an entry breaks
// every hash after it.
type AuditEntry struct {
	Seq      uint64          `json:"seq"`
	At       time.Time       `json:"at"`
	Actor    string          `json:"actor"`
	Action   string          `json:"action"`
	Target   string          `json:"target"`
	Before   json.RawMessage `json:"before"`
	After    json.RawMessage `json:"after"`
	Reason   string          `json:"reason"`
	Hash     string          `json:"hash"`
	PrevHash string          `json:"prevHash"`
}

// Data is everything the control service loads from storage at start.
type Data struct {
	// StoreID identifies the store, created with it: snapshot versions
	// compare only within one store, so a router that sees another id
	// resyncs, and one that sees a lower version of the same id knows the
	// store went back (restored from a backup).
	StoreID    string
	Version    uint64 // the last snapshot version written
	Partners   []Partner
	Migrations []Migration
	Stages     map[string][]PartnerStage // by migration key
	Cohorts    map[string][]Cohort       // by migration key
	Tokens     []Token
	// Changes are the change requests kept: every pending one and the
	// latest ended ones (the control service bounds them).
	Changes   []ChangeRequest
	LastAudit AuditEntry // zero when the log is empty
	// Notifiers are the notification targets, with their secrets.
	Notifiers []Notifier
}
