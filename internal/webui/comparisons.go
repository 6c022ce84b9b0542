package webui

import (
	"context"
	"encoding/json"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Comparisons reads the shadow comparisons recorded for a partner: what
// GET /v1/migrations/{key}/partners/{id}/comparisons answers. Without one
// (Options.Comparisons nil) the partner and diff pages say they read none.
type Comparisons interface {
	// PartnerComparisons returns the counts by event type and class and
	// the latest mismatches, newest first.
	PartnerComparisons(ctx context.Context, migration, partner string) (PartnerComparisons, error)
	// Mismatch returns one recorded mismatch of the partner, or a
	// not_found error.
	Mismatch(ctx context.Context, migration, partner, eventID string) (Mismatch, error)
	// Timeline returns the partner's counts per minute, event type and
	// class in its current stage, sorted by minute.
	Timeline(ctx context.Context, migration, partner string) ([]domain.MinuteCount, error)
}

// PartnerComparisons are a partner's comparisons in a migration.
type PartnerComparisons struct {
	Partner    string                             `json:"partner"`
	Counts     map[string]map[domain.Class]uint64 `json:"counts"` // by event type, then class
	Mismatches []Mismatch                         `json:"mismatches"`
}

// Mismatch is one comparison that did not come out equal, with both sides.
type Mismatch struct {
	EventID   string          `json:"eventId"`
	EventType string          `json:"eventType"`
	Class     domain.Class    `json:"class"`
	Diff      string          `json:"diff"`    // readable, as the comparator wrote it
	Primary   json.RawMessage `json:"primary"` // the effects the primary gave
	Shadow    json.RawMessage `json:"shadow"`  // the effects the shadow gave
	At        time.Time       `json:"at"`
	// Event is the event both pipelines were given; nil when the router
	// that compared it predates events in samples.
	Event *domain.SampleEvent `json:"event,omitempty"`
}

// classMeaning explains each comparison class in one sentence.
var classMeaning = map[domain.Class]string{
	domain.ClassEqual:          "Both pipelines produced the same effects once normalized.",
	domain.ClassValueDiff:      "Both pipelines produced the same effects, but some fields hold different values.",
	domain.ClassTypeMismatch:   "The shadow produced an effect of another entity kind than the event's or the primary's: the class of the incident that switchback exists to catch.",
	domain.ClassMissing:        "The primary produced an effect that the shadow lacks: an update would be lost.",
	domain.ClassExtra:          "The shadow produced an effect that the primary did not.",
	domain.ClassEmpty:          "One side \"processed\" the event with no effect at all.",
	domain.ClassErrorAsymmetry: "One pipeline failed on the event and the other did not.",
	domain.ClassPrimaryError:   "The primary pipeline was unavailable (no answer, 429 or 5xx) while the shadow answered: a coverage gap, not a finding against the shadow.",
	domain.ClassShadowError:    "The shadow pipeline failed, so nothing could be compared: a coverage gap, not a match.",
	domain.ClassNoise:          "The fields that differ are all noise: they differ between two runs of the legacy pipeline too (learned), or an operator pinned them. Not a mismatch.",
	domain.ClassSkipped:        "The shadow did not run (dropped under load, timed out, too large): a coverage gap, never a match.",
}
