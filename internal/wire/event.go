package wire

import (
	"encoding/json"
	"time"
)

// Event is a journaled webhook event as GET /v1/events lists it: the
// journal's record without its payload. It is declared apart from the
// journal's own record so that the API does not change when the journal's
// file format does; a test in internal/ingress checks that the two still
// marshal alike.
type Event struct {
	Seq        uint64    `json:"seq"`
	ID         string    `json:"id"`
	Partner    string    `json:"partner"`
	PSA        string    `json:"psa"`
	Type       string    `json:"type"`
	SourceType string    `json:"sourceType,omitempty"`
	Action     string    `json:"action"`
	EntityID   string    `json:"entityId"`
	DeliveryID string    `json:"deliveryId"`
	ReceivedAt time.Time `json:"receivedAt"`
	// EntityUpdatedAt is the entity's last update as the PSA stamped it in
	// the body, by the PSA's clock; left out when the body has none.
	EntityUpdatedAt time.Time         `json:"entityUpdatedAt,omitzero"`
	Headers         map[string]string `json:"headers,omitempty"`
	// Payload is always null here: the list is for finding events, not
	// reading them. The field stays so that an item has the journal
	// record's shape, as docs/api.md promises.
	Payload json.RawMessage `json:"payload"`

	State           string          `json:"state"`
	Attempts        int             `json:"attempts"`
	Pipeline        string          `json:"pipeline,omitempty"`
	SnapshotVersion uint64          `json:"snapshotVersion,omitempty"`
	Effects         json.RawMessage `json:"effects,omitempty"`
	LastError       string          `json:"lastError,omitempty"`
	LastStatus      int             `json:"lastStatus,omitempty"`
	DoneAt          time.Time       `json:"doneAt,omitzero"`
	Duplicates      int             `json:"duplicates,omitempty"`
	Shadow          string          `json:"shadow,omitempty"`
	Comparison      string          `json:"comparison,omitempty"`
	Replays         []EventReplay   `json:"replays,omitempty"`
	// Backfill marks an event a reconciliation made from the PSA's change
	// API.
	Backfill bool `json:"backfill,omitempty"`
}

// EventReplay is the outcome of one replay of an event.
type EventReplay struct {
	Job      string          `json:"job"`
	Pipeline string          `json:"pipeline"`
	At       time.Time       `json:"at"`
	OK       bool            `json:"ok"`
	Effects  json.RawMessage `json:"effects,omitempty"`
	Error    string          `json:"error,omitempty"`
}
