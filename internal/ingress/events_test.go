package ingress

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/journal"
)

// GET /v1/events lists journal events as wire.Event: the journal's record,
// field for field, with the payload null. The fixture sets every field of
// the journal's record, so a field added there fails here until the wire
// type says whether the API shows it.
func TestListedEventIsTheJournalRecordWithoutPayload(t *testing.T) {
	at := time.Date(2026, 11, 30, 14, 3, 51, 0, time.UTC)
	ev := journal.Event{Seq: 7, ID: "evt_01", Partner: "acme", PSA: "connectwise", Type: "ticket", SourceType: "service/ticket",
		Action: "updated", EntityID: "4711", DeliveryID: "d-1", ReceivedAt: at, Headers: map[string]string{"X-Event": "ticket"},
		Payload: json.RawMessage(`{"id":4711}`), EntityUpdatedAt: at.Add(-time.Second), State: journal.StateJournaled, Attempts: 3, Pipeline: "new", SnapshotVersion: 13,
		Effects: json.RawMessage(`{"updated":1}`), LastError: "pipeline answered 503", LastStatus: 503, DoneAt: at.Add(time.Second),
		Duplicates: 1, Shadow: "legacy", Comparison: "equal",
		Replays: []journal.Replay{{Job: "rpl_5f0c2a9e1b7d4c36", Pipeline: "legacy", At: at.Add(time.Minute), OK: true,
			Effects: json.RawMessage(`{"updated":1}`), Error: "retried"}}, Backfill: true}
	for _, v := range []reflect.Value{reflect.ValueOf(ev), reflect.ValueOf(ev.Replays[0])} {
		for i := range v.NumField() {
			if v.Field(i).IsZero() {
				t.Fatalf("the fixture leaves %s.%s unset: set it, and give wire.Event the field", v.Type(), v.Type().Field(i).Name)
			}
		}
	}
	stripped := ev
	stripped.Payload = nil
	want, err := json.Marshal(stripped)
	if err != nil {
		t.Fatal(err)
	}
	got, err := json.Marshal(listed(ev))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("wire.Event disagrees with the journal's record (-journal +wire):\n%s", diff)
	}
}
