package ingress

import (
	"context"
	"errors"
	"slices"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
)

// Backfill takes events a reconciliation made from a PSA's change API
// (internal/reconcile) the way hook takes a webhook's: journaled durably
// first, each marked Backfill, then handed to delivery, which routes it by
// the partner's flag at that moment, like any event. An event whose
// partner and delivery id were journaled before is a duplicate, sent
// nowhere. The events must come with their ID and DeliveryID.
//
// A backfill may fill half of delivery's backlog, and half of each
// partner's share of it, at most (one call at least while they are
// empty), so that live webhooks are not answered 429 because of it
// (admitBackfill).
//
// Errors are *domain.Error: not_found for a partner the router does not
// know; router_backlogged (with RetryAfter) while the backfill's half of
// delivery's backlog, or of a partner's share, is full and journal_busy
// (with RetryAfter) while the journal's queue is, nothing of the call
// journaled; internal for any other failure of the journal.
func (rt *Router) Backfill(ctx context.Context, events []journal.Event) ([]journal.Appended, error) {
	tbl, _ := rt.table()
	for _, e := range events {
		if _, ok := tbl.partners[e.Partner]; !ok {
			return nil, domain.Errorf(domain.CodeNotFound, "no partner %s is known to this router", quote(e.Partner))
		}
	}
	if err := rt.admitBackfill(events); err != nil {
		return nil, err
	}
	events = slices.Clone(events)
	for i := range events {
		events[i].Backfill = true
	}
	res, err := rt.journalEvents(ctx, events)
	var de *domain.Error
	switch {
	case errors.As(err, &de):
		return nil, de
	case errors.Is(err, journal.ErrBusy):
		return nil, &domain.Error{Code: domain.CodeJournalBusy, RetryAfter: time.Second,
			Message: "the router's journal is busy: retry", Err: err}
	case err != nil:
		return nil, &domain.Error{Code: domain.CodeInternal, Message: "the router could not journal the backfill", Err: err}
	}
	for _, a := range res {
		if a.Duplicate {
			rt.metrics.events.WithLabelValues("duplicate").Inc()
		} else {
			rt.metrics.events.WithLabelValues("journaled").Inc()
		}
	}
	return res, nil
}
