package psa

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/domain"
)

func TestDecodeGeneric(t *testing.T) {
	tests := []struct {
		fixture string
		want    Envelope // without DeliveryID and Payload, which are the test's
		updated string   // the stamp read in passing, RFC 3339
	}{
		{"ticket_created.json", Envelope{EntityType: "ticket", SourceType: "ticket", Action: "created", EntityID: "12345"}, "2026-03-02T09:14:07.512Z"},
		{"ticket_updated.json", Envelope{EntityType: "ticket", SourceType: "ticket", Action: "updated", EntityID: "12345"}, "2026-03-02T09:31:43Z"},
		{"ticket_deleted.json", Envelope{EntityType: "ticket", SourceType: "ticket", Action: "deleted", EntityID: "12346"}, "2026-03-02T11:02:19Z"},
		{"schedule_entry_created.json", Envelope{EntityType: "schedule_entry", SourceType: "schedule_entry", Action: "created", EntityID: "778"}, "2026-03-02T10:00:00Z"},
		{"schedule_updated.json", Envelope{EntityType: "schedule_entry", SourceType: "schedule", Action: "updated", EntityID: "778"}, "2026-03-02T10:05:00Z"},
		{"time_entry_created.json", Envelope{EntityType: "time_entry", SourceType: "time_entry", Action: "created", EntityID: "te_90211"}, "2026-03-02T17:45:12Z"},
		{"company_updated.json", Envelope{EntityType: "company", SourceType: "company", Action: "updated", EntityID: "250"}, "2026-03-01T08:00:00Z"},
		{"contact_created.json", Envelope{EntityType: "contact", SourceType: "contact", Action: "created", EntityID: "4711"}, "2026-03-01T08:10:00Z"},
		{"invoice_paid.json", Envelope{EntityType: "unknown", SourceType: "invoice", Action: "paid", EntityID: "INV-2026-0042"}, "2026-03-04T12:00:00Z"},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := fixture(t, "generic", tt.fixture)
			id := testWebhookPrefix + strings.TrimSuffix(tt.fixture, ".json")
			h := standardHeaders(t, genericSecret, id, testNow.Add(-30*time.Second), body)
			got, err := testDecoder().Decode(context.Background(), "generic", genericSecret, h, body)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := tt.want
			want.DeliveryID, want.Payload = id, body
			want.UpdatedAt, _ = time.Parse(time.RFC3339Nano, tt.updated)
			if diff := cmp.Diff([]Envelope{want}, got); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

func TestDecodeGenericEntityNames(t *testing.T) {
	tests := []struct{ typ, entity, source, action string }{
		{"tickets.updated", "ticket", "tickets", "updated"},
		{"scheduleentry.created", "schedule_entry", "scheduleentry", "created"},
		{"timeentry.deleted", "time_entry", "timeentry", "deleted"},
		{"Ticket.Updated", "ticket", "Ticket", "updated"},
		{"ticket.status.changed", "unknown", "ticket.status", "changed"},
		{"ticket.Reopened", "ticket", "ticket", "reopened"},
	}
	for _, tt := range tests {
		t.Run(tt.typ, func(t *testing.T) {
			body := []byte(`{"type":"` + tt.typ + `","timestamp":"2026-03-02T11:59:00Z","data":{"id":7}}`)
			got, err := testDecoder().Decode(context.Background(), "generic", genericSecret,
				standardHeaders(t, genericSecret, "msg_1", testNow, body), body)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			if got[0].EntityType != tt.entity || got[0].SourceType != tt.source || got[0].Action != tt.action {
				t.Errorf("got %s/%s/%s, want %s/%s/%s", got[0].EntityType, got[0].SourceType, got[0].Action,
					tt.entity, tt.source, tt.action)
			}
		})
	}
}

// TestStandardWebhooksVector checks interoperability with the Standard
// Webhooks libraries on the example their test suites use.
func TestStandardWebhooksVector(t *testing.T) {
	h := http.Header{}
	h.Set("webhook-id", "msg_p5jXN8AQM9LWM0D4loKWxJek")
	h.Set("webhook-timestamp", "1614265330")
	h.Set("webhook-signature", "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	id, e := verifyStandardWebhooks(mustKey(t, genericSecret), h, []byte(`{"test": 2432232314}`), time.Unix(1614265330, 0))
	if e != nil {
		t.Fatalf("verify: %v", e)
	}
	if id != "msg_p5jXN8AQM9LWM0D4loKWxJek" {
		t.Errorf("id = %q", id)
	}
}

func TestDecodeGenericAcceptsAnyV1Signature(t *testing.T) {
	body := fixture(t, "generic", "ticket_updated.json")
	ts := strconv.FormatInt(testNow.Unix(), 10)
	good := signStandard(mustKey(t, genericSecret), "msg_1", ts, body)
	bad := signStandard(mustKey(t, otherGenericKey), "msg_1", ts, body)
	for name, sig := range map[string]string{
		"rotated key first":   bad + " " + good,
		"other versions":      "v2,abc " + strings.Replace(good, "v1,", "v1a,", 1) + " " + good,
		"extra spaces":        "  " + good + "  ",
		"without key prefix":  good, // the secret below has no whsec_ prefix
		"two header values":   bad,  // plus good in a second value, below
		"v1 among v1 invalid": "v1,!!notbase64 " + good,
	} {
		t.Run(name, func(t *testing.T) {
			h := http.Header{}
			h.Set("webhook-id", "msg_1")
			h.Set("webhook-timestamp", ts)
			h.Set("webhook-signature", sig)
			secret := genericSecret
			switch name {
			case "without key prefix":
				secret = strings.TrimPrefix(genericSecret, "whsec_")
			case "two header values":
				h.Add("webhook-signature", good)
			}
			if _, err := testDecoder().Decode(context.Background(), "generic", secret, h, body); err != nil {
				t.Errorf("Decode: %v", err)
			}
		})
	}
}

func TestDecodeGenericRefuses(t *testing.T) {
	body := fixture(t, "generic", "ticket_updated.json")
	signed := func(mod func(h http.Header)) http.Header {
		h := standardHeaders(t, genericSecret, "msg_1", testNow, body)
		if mod != nil {
			mod(h)
		}
		return h
	}
	at := func(ts time.Time) http.Header { return standardHeaders(t, genericSecret, "msg_1", ts, body) }
	tampered := []byte(strings.Replace(string(body), "In Progress", "Closed", 1))
	tests := []struct {
		name   string
		secret string
		h      http.Header
		body   []byte
		status int
		code   string
	}{
		{"wrong secret", otherGenericKey, signed(nil), body, 401, domain.CodeBadSignature},
		{"signed with another key", genericSecret, standardHeaders(t, otherGenericKey, "msg_1", testNow, body), body, 401, domain.CodeBadSignature},
		{"tampered body", genericSecret, signed(nil), tampered, 401, domain.CodeBadSignature},
		{"other webhook-id", genericSecret, signed(func(h http.Header) { h.Set("webhook-id", "msg_2") }), body, 401, domain.CodeBadSignature},
		{"other timestamp", genericSecret, signed(func(h http.Header) {
			h.Set("webhook-timestamp", strconv.FormatInt(testNow.Unix()-1, 10))
		}), body, 401, domain.CodeBadSignature},
		{"missing signature", genericSecret, signed(func(h http.Header) { h.Del("webhook-signature") }), body, 401, domain.CodeMissingSignature},
		{"missing id", genericSecret, signed(func(h http.Header) { h.Del("webhook-id") }), body, 401, domain.CodeMissingSignature},
		{"missing timestamp", genericSecret, signed(func(h http.Header) { h.Del("webhook-timestamp") }), body, 401, domain.CodeMissingSignature},
		{"no headers", genericSecret, http.Header{}, body, 401, domain.CodeMissingSignature},
		{"timestamp not seconds", genericSecret, signed(func(h http.Header) { h.Set("webhook-timestamp", "2026-03-02T12:00:00Z") }), body, 401, domain.CodeBadTimestamp},
		{"stale timestamp", genericSecret, at(testNow.Add(-5*time.Minute - time.Second)), body, 401, domain.CodeStaleTimestamp},
		{"future timestamp", genericSecret, at(testNow.Add(5*time.Minute + time.Second)), body, 401, domain.CodeStaleTimestamp},
		{"only v2 signatures", genericSecret, signed(func(h http.Header) {
			h.Set("webhook-signature", strings.Replace(h.Get("webhook-signature"), "v1,", "v2,", 1))
		}), body, 401, domain.CodeBadSignature},
		{"signature without version", genericSecret, signed(func(h http.Header) {
			h.Set("webhook-signature", strings.TrimPrefix(h.Get("webhook-signature"), "v1,"))
		}), body, 401, domain.CodeBadSignature},
		{"empty secret", "", signed(nil), body, 401, domain.CodeNoSecret},
		{"secret not base64", "whsec_%%%", signed(nil), body, 401, domain.CodeInvalidSecret},
		{"secret of no bytes", "whsec_", signed(nil), body, 401, domain.CodeInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testDecoder().Decode(context.Background(), "generic", tt.secret, tt.h, tt.body)
			if got != nil {
				t.Errorf("Decode returned envelopes with an error: %v", got)
			}
			wantError(t, err, tt.status, tt.code, tt.secret, tt.h.Get("webhook-signature"))
		})
	}
}

func TestDecodeGenericTimestampWindow(t *testing.T) {
	body := fixture(t, "generic", "ticket_created.json")
	for _, off := range []time.Duration{-5 * time.Minute, -time.Minute, 0, time.Minute, 5 * time.Minute} {
		h := standardHeaders(t, genericSecret, "msg_1", testNow.Add(off), body)
		if _, err := testDecoder().Decode(context.Background(), "generic", genericSecret, h, body); err != nil {
			t.Errorf("timestamp now%+v: %v", off, err)
		}
	}
}

func TestDecodeGenericMalformed(t *testing.T) {
	tests := []struct{ name, body string }{
		{"not JSON", `type=ticket.updated&id=1`},
		{"truncated", `{"type":"ticket.updated","data":{"id":"1"}`},
		{"array", `[{"type":"ticket.updated","data":{"id":"1"}}]`},
		{"no type", `{"data":{"id":"1"}}`},
		{"type without dot", `{"type":"ticket","data":{"id":"1"}}`},
		{"type without entity", `{"type":".updated","data":{"id":"1"}}`},
		{"type without action", `{"type":"ticket.","data":{"id":"1"}}`},
		{"blank action", `{"type":"ticket. ","data":{"id":"1"}}`},
		{"type not a string", `{"type":7,"data":{"id":"1"}}`},
		{"no data", `{"type":"ticket.updated"}`},
		{"data not an object", `{"type":"ticket.updated","data":"1"}`},
		{"no id", `{"type":"ticket.updated","data":{"summary":"x"}}`},
		{"null id", `{"type":"ticket.updated","data":{"id":null}}`},
		{"empty id", `{"type":"ticket.updated","data":{"id":""}}`},
		{"object id", `{"type":"ticket.updated","data":{"id":{"value":1}}}`},
		{"bool id", `{"type":"ticket.updated","data":{"id":true}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			h := standardHeaders(t, genericSecret, "msg_1", testNow, body)
			_, err := testDecoder().Decode(context.Background(), "generic", genericSecret, h, body)
			wantError(t, err, 400, domain.CodeMalformedBody)
		})
	}
}

// TestDecodeGenericVerifiesBeforeParsing: a malformed body that is not
// signed is refused as unsigned, not as malformed.
func TestDecodeGenericVerifiesBeforeParsing(t *testing.T) {
	_, err := testDecoder().Decode(context.Background(), "generic", genericSecret, http.Header{}, []byte("not json"))
	wantError(t, err, 401, domain.CodeMissingSignature)
}

func TestDecodeUnknownKind(t *testing.T) {
	body := fixture(t, "generic", "ticket_created.json")
	for _, kind := range []string{"", "Generic", "servicenow", "kaseya"} {
		_, err := testDecoder().Decode(context.Background(), kind, genericSecret,
			standardHeaders(t, genericSecret, "msg_1", testNow, body), body)
		wantError(t, err, 401, domain.CodeUnknownPSA, genericSecret)
	}
}

func TestDecodePayloadIsACopy(t *testing.T) {
	body := fixture(t, "generic", "ticket_created.json")
	h := standardHeaders(t, genericSecret, "msg_1", testNow, body)
	got, err := testDecoder().Decode(context.Background(), "generic", genericSecret, h, body)
	if err != nil {
		t.Fatal(err)
	}
	want := string(body)
	for i := range body {
		body[i] = 'x'
	}
	if string(got[0].Payload) != want {
		t.Error("Payload changed with the caller's body buffer")
	}
}

// TestDecodeGenericWebhookIDLength: webhook-id becomes the dedup key the
// journal keeps, so one over 256 bytes is refused with a 400 that says so,
// even when correctly signed; 256 bytes is accepted.
func TestDecodeGenericWebhookIDLength(t *testing.T) {
	body := []byte(`{"type":"ticket.updated","data":{"id":"1"}}`)
	tests := []struct {
		name string
		id   string
		ok   bool
	}{
		{"256 bytes", "msg_" + strings.Repeat("a", 252), true},
		{"257 bytes", "msg_" + strings.Repeat("a", 253), false},
		{"4 KiB", strings.Repeat("m", 4096), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := standardHeaders(t, genericSecret, tt.id, testNow, body)
			envs, err := testDecoder().Decode(context.Background(), "generic", genericSecret, h, body)
			if tt.ok {
				if err != nil || len(envs) != 1 || envs[0].DeliveryID != tt.id {
					t.Fatalf("Decode = %v, %v; want one envelope with the webhook-id", envs, err)
				}
				return
			}
			if envs != nil {
				t.Errorf("Decode returned envelopes with an error: %v", envs)
			}
			wantError(t, err, 400, domain.CodeMalformedBody)
			var e *domain.Error
			if errors.As(err, &e) && !strings.Contains(e.Message, "webhook-id") {
				t.Errorf("message %q does not name webhook-id", e.Message)
			}
		})
	}
}
