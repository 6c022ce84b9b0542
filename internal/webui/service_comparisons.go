package webui

import (
	"context"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// ServiceComparisons reads comparisons from the control service, which
// keeps what the routers report.
type ServiceComparisons struct{ Svc *control.Service }

var _ Comparisons = ServiceComparisons{}

// PartnerComparisons returns the partner's counts in its current stage and
// its latest mismatches, newest first.
func (c ServiceComparisons) PartnerComparisons(ctx context.Context, migration, partner string) (PartnerComparisons, error) {
	got, err := c.Svc.Comparisons(ctx, migration, partner)
	if err != nil {
		return PartnerComparisons{}, err
	}
	out := PartnerComparisons{Partner: partner, Counts: got.Counts, Mismatches: make([]Mismatch, 0, len(got.Mismatches))}
	for _, m := range got.Mismatches {
		out.Mismatches = append(out.Mismatches, Mismatch{EventID: m.EventID, EventType: m.EventType, Class: m.Class,
			Diff: m.Diff, Primary: m.Primary, Shadow: m.Shadow, At: m.At, Event: m.Event})
	}
	return out, nil
}

// Mismatch returns one of the partner's kept mismatches.
func (c ServiceComparisons) Mismatch(ctx context.Context, migration, partner, eventID string) (Mismatch, error) {
	pc, err := c.PartnerComparisons(ctx, migration, partner)
	if err != nil {
		return Mismatch{}, err
	}
	for _, m := range pc.Mismatches {
		if m.EventID == eventID {
			return m, nil
		}
	}
	return Mismatch{}, domain.Errorf(domain.CodeNotFound, "no mismatch of event %q is kept for partner %q", eventID, partner)
}

// Timeline returns the partner's counts per minute in its current stage.
func (c ServiceComparisons) Timeline(ctx context.Context, migration, partner string) ([]domain.MinuteCount, error) {
	return c.Svc.Timeline(ctx, migration, partner)
}
