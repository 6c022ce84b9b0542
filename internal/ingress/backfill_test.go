package ingress_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
)

// While the pipeline is stuck, backfill events pile up in delivery's
// backlog only to half of it: then the router refuses more (retry later),
// and a live webhook is still taken.
func TestABackfillLeavesHalfTheBacklogToWebhooks(t *testing.T) {
	e := newEnv(t, withBacklog(40))
	release := make(chan struct{})
	e.legacyAt.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer close(release)

	var refusal *domain.Error
	journaled := 0
	for batch := 0; batch < 200 && refusal == nil; batch++ {
		events := make([]journal.Event, 10)
		for i := range events {
			id := fmt.Sprintf("bf_%d_%d", batch, i)
			events[i] = journal.Event{ID: id, DeliveryID: id, Partner: "acme", PSA: "generic", Type: "ticket", SourceType: "ticket",
				Action: "updated", EntityID: id, ReceivedAt: time.Now().UTC(), EntityUpdatedAt: time.Now().UTC(), Payload: []byte(`{}`)}
		}
		_, err := e.router.Backfill(context.Background(), events)
		switch {
		case errors.As(err, &refusal):
		case err != nil:
			t.Fatal(err)
		default:
			journaled += len(events)
		}
	}
	if refusal == nil || refusal.Code != domain.CodeRouterBacklogged || refusal.RetryAfter <= 0 {
		t.Fatalf("after %d backfill events, no router_backlogged refusal with a Retry-After: %v", journaled, refusal)
	}
	// Four workers hold an event each; the backlog holds the rest: half
	// of 40 at most (half of acme's share, 10, in fact), and one call over
	// while empty.
	if journaled > 4+20+10 {
		t.Errorf("%d backfill events taken, more than the workers and half the backlog", journaled)
	}
	if code, _ := e.post(t, "acme", "msg-live", "ticket.updated", "1", nil, ""); code != http.StatusAccepted {
		t.Errorf("a live webhook during the backfill = %d, want 202", code)
	}
}
