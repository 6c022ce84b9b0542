package reconcile

import (
	"context"
	"encoding/json"
	"path/filepath"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/psa"
	"github.com/switchbackhq/switchback/internal/wire"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// Check against a real journal, written the way delivery writes it: each
// change gets the verdict its entity's events call for, and another
// partner's events about the same ids change nothing.
func TestCheckAgainstAJournal(t *testing.T) {
	j, err := journal.Open(filepath.Join(t.TempDir(), "journal.db"), journal.Options{UpdatedAt: psa.UpdatedAt})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		bolttest.Check(t, j.DB())
		j.Close()
	})
	ctx := context.Background()
	cw := func(partner, msg, id, action string, lastUpdated time.Time) journal.Event {
		var entity any
		if action != "deleted" {
			entity = `{"id":` + id + `,"_info":{"lastUpdated":"` + lastUpdated.Format(time.RFC3339) + `"}}`
		}
		body, _ := json.Marshal(map[string]any{"MessageId": msg, "Type": "ticket", "Action": action, "ID": id, "Entity": entity})
		return journal.Event{Partner: partner, PSA: psa.KindConnectWise, Type: "ticket", SourceType: "ticket", Action: action,
			EntityID: id, DeliveryID: msg, ReceivedAt: lastUpdated.Add(3 * time.Second), Payload: body}
	}
	res, err := j.Append(ctx, []journal.Event{
		cw("acme", "m1", "1", "updated", u),                  // applied: reflected
		cw("acme", "m2", "2", "updated", u.Add(-time.Hour)),  // applied, older: a gap
		cw("acme", "m3", "3", "updated", u),                  // pending: in flight
		cw("acme", "m4", "4", "updated", u),                  // dead-lettered, shadow ran: a gap
		cw("acme", "m5", "5", "deleted", u.Add(time.Minute)), // a deletion applied
		cw("globex", "m6", "6", "updated", u),                // another partner's ticket 6
	})
	if err != nil {
		t.Fatal(err)
	}
	done := func(i int, out journal.Outcome) {
		if err := j.Complete(ctx, res[i].Seq, out); err != nil {
			t.Fatal(err)
		}
	}
	done(0, journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", At: u.Add(time.Minute)})
	done(1, journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", At: u.Add(-time.Hour)})
	done(3, journal.Outcome{State: journal.StateDeadLettered, Pipeline: "new", Shadow: "legacy", At: u.Add(time.Minute)})
	done(4, journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", At: u.Add(2 * time.Minute)})
	done(5, journal.Outcome{State: journal.StateApplied, Pipeline: "legacy", At: u.Add(time.Minute)})

	changes := []Change{
		{Type: "ticket", ID: "1", UpdatedAt: u},
		{Type: "ticket", ID: "2", UpdatedAt: u},
		{Type: "ticket", ID: "3", UpdatedAt: u},
		{Type: "ticket", ID: "4", UpdatedAt: u},
		{Type: "ticket", ID: "5", UpdatedAt: u.Add(time.Minute), Deleted: true},
		{Type: "ticket", ID: "6", UpdatedAt: u},
	}
	want := []struct {
		class  Class
		reason wire.GapReason
	}{
		{Reflected, wire.ReasonApplied}, {Gap, wire.ReasonOlderOnly}, {InFlight, wire.ReasonPending},
		{Gap, wire.ReasonShadowOnly}, {Reflected, wire.ReasonApplied}, {Gap, wire.ReasonNoEvent},
	}
	got, err := Check(ctx, j, "acme", changes, Rule{Skew: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	for i, v := range got {
		if v.Class != want[i].class || v.Reason != want[i].reason {
			t.Errorf("ticket %s: %s (%s), want %s (%s)", changes[i].ID, v.Class, v.Reason, want[i].class, want[i].reason)
		}
	}
	if !got[1].LastAppliedAt.Equal(u.Add(-time.Hour)) {
		t.Errorf("ticket 2's LastAppliedAt = %v, want %v", got[1].LastAppliedAt, u.Add(-time.Hour))
	}

	ended, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := Check(ended, j, "acme", changes, Rule{Skew: time.Minute}); err != context.Canceled {
		t.Errorf("Check with an ended context: %v, want context.Canceled", err)
	}
}
