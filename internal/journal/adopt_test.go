package journal

import (
	"path/filepath"
	"testing"
	"time"
)

// Events another router delivered are kept with their outcomes for
// replays: never pending, never due for a comparison, a second adoption
// (or a webhook of the same delivery) a duplicate; they stay so across a
// restart.
func TestAdoptKeepsOutcomesNeverPending(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j := open(t, path, Options{})
	ctx := t.Context()
	mine, err := j.Append(ctx, []Event{{Partner: "acme", Type: "ticket", EntityID: "1", DeliveryID: "d-0", ReceivedAt: t0, Payload: []byte(`{}`)}})
	if err != nil {
		t.Fatal(err)
	}
	adopted := []Event{
		{ID: "evt_a", Partner: "acme", Type: "ticket", EntityID: "1", DeliveryID: "d-1", ReceivedAt: t0.Add(time.Second), Payload: []byte(`{"n": 1}`),
			State: StateApplied, Pipeline: "new", Shadow: "legacy", Comparison: "type_mismatch", Attempts: 1, DoneAt: t0.Add(2 * time.Second)},
		{ID: "evt_b", Partner: "acme", Type: "ticket", EntityID: "2", DeliveryID: "d-2", ReceivedAt: t0.Add(3 * time.Second), Payload: []byte(`{}`),
			State: StateDeadLettered, Pipeline: "new", Attempts: 8, LastError: "boom", DoneAt: t0.Add(4 * time.Second)},
		{ID: "evt_c", Partner: "acme", DeliveryID: "d-0", State: StateApplied, Payload: []byte(`{}`)}, // held here already
	}
	res, err := j.Adopt(ctx, adopted)
	if err != nil {
		t.Fatal(err)
	}
	if res[0].Duplicate || res[1].Duplicate || !res[2].Duplicate || res[2].Seq != mine[0].Seq {
		t.Fatalf("adopted %+v, want two new and the event held here a duplicate", res)
	}
	if _, err := j.Adopt(ctx, []Event{{ID: "evt_d", Partner: "acme", DeliveryID: "d-3", Payload: []byte(`{}`)}}); err == nil {
		t.Fatal("an event without a terminal outcome was adopted")
	}
	again, err := j.Adopt(ctx, adopted[:1])
	if err != nil || !again[0].Duplicate {
		t.Fatalf("adopted twice: %+v, %v", again, err)
	}
	dup, err := j.Append(ctx, []Event{{Partner: "acme", DeliveryID: "d-1", ReceivedAt: t0, Payload: []byte(`{}`)}})
	if err != nil || !dup[0].Duplicate {
		t.Fatalf("a webhook of an adopted delivery: %+v, %v", dup, err)
	}
	j.Close()

	j = open(t, path, Options{})
	pending, err := j.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 1 || pending[0].Seq != mine[0].Seq {
		t.Fatalf("pending %v, want only the event appended here", pending)
	}
	if due, err := j.ComparisonsDue(ctx); err != nil || len(due) != 0 {
		t.Fatalf("comparisons due %v, %v: want none", due, err)
	}
	var got []Event
	if err := j.Scan(ctx, "acme", Position{At: t0}, t0.Add(time.Hour), func(e Event) bool { got = append(got, e); return true }); err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 {
		t.Fatalf("scanned %d events, want 3", len(got))
	}
	a, b := got[1], got[2]
	if a.ID != "evt_a" || a.State != StateApplied || a.Pipeline != "new" || a.Shadow != "legacy" || a.Comparison != "type_mismatch" || string(a.Payload) != `{"n":1}` {
		t.Errorf("adopted applied event reads %+v", a)
	}
	if b.ID != "evt_b" || b.State != StateDeadLettered || b.LastError != "boom" || b.Attempts != 8 {
		t.Errorf("adopted dead letter reads %+v", b)
	}
}
