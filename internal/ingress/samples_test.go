package ingress_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// Every mismatch sample a router reports carries the event both pipelines
// were given, its body cut to domain.MaxSampleEventBody and marked so, and
// the control service keeps it with the sample.
func TestMismatchSampleCarriesTheEvent(t *testing.T) {
	// The new pipeline drops a field: every event is a value_diff.
	e := newEnv(t, withFaults(refpipe.Faults{}, refpipe.Faults{DropField: "data.summary"}))
	e.moveAcme(t, domain.StageShadow)
	hostile := `</pre><script>alert("x")</script>`
	events := map[string]map[string]any{
		"sample-small": {"summary": hostile},
		"sample-large": {"summary": "long notes", "notes": strings.Repeat("n", 3*domain.MaxSampleEventBody)},
	}
	for id, fields := range events {
		if status, _ := e.post(t, "acme", id, "ticket.updated", "T-"+id, fields, ""); status != http.StatusAccepted {
			t.Fatalf("status = %d, want 202", status)
		}
	}
	e.report(t, e.control.URL)
	var kept []domain.Mismatch
	waitFor(t, "both mismatches kept by the control service", func() bool {
		c, err := e.svc.Comparisons(context.Background(), "psa-webhooks-v2", "acme")
		kept = c.Mismatches
		return err == nil && len(kept) == len(events)
	})
	journaled := map[string]journal.Event{}
	for seq := uint64(1); seq <= uint64(len(events)); seq++ {
		ev, err := e.journal.Get(t.Context(), seq)
		if err != nil {
			t.Fatal(err)
		}
		journaled[ev.ID] = ev
	}
	for _, m := range kept {
		ev := journaled[m.EventID]
		payload := ev.Payload
		if m.Event == nil {
			t.Fatalf("mismatch of %s: no event", m.EventID)
		}
		got := *m.Event
		if got.Type != "ticket" || got.Action != "updated" || got.EntityID != ev.EntityID || ev.EntityID == "" {
			t.Errorf("%s: type, action, entityId = %q, %q, %q; want ticket, updated, %q", m.EventID, got.Type, got.Action, got.EntityID, ev.EntityID)
		}
		if got.BodyBytes != len(payload) {
			t.Errorf("%s: bodyBytes = %d, want %d, the payload's size", m.EventID, got.BodyBytes, len(payload))
		}
		switch got.EntityID {
		case "T-sample-small":
			if got.Truncated || got.Body != string(payload) {
				t.Errorf("body = %q (truncated %v), want the payload whole: %s", got.Body, got.Truncated, payload)
			}
			var body struct {
				Data map[string]any `json:"data"`
			}
			if err := json.Unmarshal([]byte(got.Body), &body); err != nil || body.Data["summary"] != hostile {
				t.Errorf("body's data = %v (%v), want the summary as posted", body.Data, err)
			}
		case "T-sample-large":
			if !got.Truncated || len(got.Body) != domain.MaxSampleEventBody || !strings.HasPrefix(string(payload), got.Body) {
				t.Errorf("body of %d bytes, truncated %v: want the payload's first %d bytes, marked truncated", len(got.Body), got.Truncated, domain.MaxSampleEventBody)
			}
		default:
			t.Errorf("a mismatch of entity %q, which was not posted", got.EntityID)
		}
	}
}
