package psa

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/domain"
)

const haloWebhook = "53232637-7724-4a19-b126-3c7267a292aa"

func TestDecodeHalo(t *testing.T) {
	tests := []struct {
		fixture string
		want    Envelope
		// hash holds the fields of the documented DeliveryID hash: webhook
		// id, event, entity id, then timestamp, escmsg_id or id.
		hash []string
	}{
		{"ticket_new_logged.json", Envelope{EntityType: "ticket", SourceType: "New Ticket Logged", Action: "created", EntityID: "4242"},
			[]string{haloWebhook, "New Ticket Logged", "4242", "2026-09-25T06:41:08.7895915Z"}},
		{"ticket_updated.json", Envelope{EntityType: "ticket", SourceType: "Ticket Updated", Action: "updated", EntityID: "4242"},
			[]string{haloWebhook, "Ticket Updated", "4242", "2026-09-25T07:02:11.1200000Z"}},
		{"ticket_status_changed.json", Envelope{EntityType: "ticket", SourceType: "ticket status changed", Action: "updated", EntityID: "4242"},
			[]string{haloWebhook, "ticket status changed", "4242", "2026-09-25T08:15:40.0000000Z"}},
		{"ticket_deleted.json", Envelope{EntityType: "ticket", SourceType: "Ticket Deleted", Action: "deleted", EntityID: "4240"},
			[]string{haloWebhook, "Ticket Deleted", "4240", "2026-09-25T09:00:00.0000000Z"}},
		{"ticket_reassigned.json", Envelope{EntityType: "ticket", SourceType: "Ticket Reassigned", Action: "reassigned", EntityID: "4242"},
			[]string{haloWebhook, "Ticket Reassigned", "4242", "2026-09-25T07:10:00.0000000Z"}},
		{"client_updated.json", Envelope{EntityType: "company", SourceType: "Client Updated", Action: "updated", EntityID: "12"},
			[]string{haloWebhook, "Client Updated", "12", "2026-09-24T16:00:00.0000000Z"}},
		{"user_new.json", Envelope{EntityType: "contact", SourceType: "New User", Action: "created", EntityID: "301"},
			[]string{haloWebhook, "New User", "301", "2026-09-24T16:05:00.0000000Z"}},
		{"appointment_updated.json", Envelope{EntityType: "schedule_entry", SourceType: "Appointment Updated", Action: "updated", EntityID: "9931"},
			[]string{haloWebhook, "Appointment Updated", "9931", "2026-09-25T10:30:00.0000000Z"}},
		{"asset_updated.json", Envelope{EntityType: "unknown", SourceType: "Asset Updated", Action: "updated", EntityID: "5512"},
			[]string{haloWebhook, "Asset Updated", "5512", "2026-09-25T11:00:00.0000000Z"}},
		{"event_only.json", Envelope{EntityType: "ticket", SourceType: "Ticket Updated", Action: "updated", EntityID: "4242"},
			[]string{haloWebhook, "Ticket Updated", "4242", "3f1c3e9e-0c1d-4e34-9a55-6d2f2b7a9f10"}},
		{"nested_id.json", Envelope{EntityType: "ticket", SourceType: "Ticket Updated", Action: "updated", EntityID: "4243"},
			[]string{haloWebhook, "Ticket Updated", "4243", "2026-09-25T12:00:00.0000000Z"}},
	}
	for _, auth := range []struct{ name, secret, header string }{
		{"basic", haloBasicSecret, basicAuth(haloUser, haloPassword)},
		{"bearer", haloBearerSecret, "Bearer " + haloToken},
	} {
		for _, tt := range tests {
			t.Run(auth.name+"/"+tt.fixture, func(t *testing.T) {
				body := fixture(t, "halopsa", tt.fixture)
				got, err := testDecoder().Decode(context.Background(), "halopsa", auth.secret, authHeader(auth.header), body)
				if err != nil {
					t.Fatalf("Decode: %v", err)
				}
				want := tt.want
				want.DeliveryID, want.Payload = hashOf(t, "halopsa", tt.hash...), body
				if diff := cmp.Diff([]Envelope{want}, got); diff != "" {
					t.Errorf("Decode (-want +got):\n%s", diff)
				}
			})
		}
	}
}

func TestDecodeHaloBatch(t *testing.T) {
	body := fixture(t, "halopsa", "batch.json")
	got, err := testDecoder().Decode(context.Background(), "halopsa", haloBearerSecret, authHeader("Bearer "+haloToken), body)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	want := []Envelope{
		{EntityType: "ticket", SourceType: "Ticket Updated", Action: "updated", EntityID: "4242",
			DeliveryID: hashOf(t, "halopsa", haloWebhook, "Ticket Updated", "4242", "2026-09-25T13:00:00.1000000Z"),
			Payload: []byte(`{"id":"aa000001-0000-4000-8000-000000000001","webhook_id":"` + haloWebhook + `","notification_id":41,` +
				`"escmsg_id":"c0000001-0000-0000-0000-000000000001","event":"Ticket Updated","message":"Ticket Updated: 4242",` +
				`"object_id":4242,"agent_id":3,"timestamp":"2026-09-25T13:00:00.1000000Z","ticket":{"id":4242,"status_id":2}}`)},
		{EntityType: "ticket", SourceType: "Ticket Updated", Action: "updated", EntityID: "4243",
			DeliveryID: hashOf(t, "halopsa", haloWebhook, "Ticket Updated", "4243", "2026-09-25T13:00:03.5000000Z"),
			Payload: []byte(`{"id":"aa000002-0000-4000-8000-000000000002","webhook_id":"` + haloWebhook + `","notification_id":41,` +
				`"escmsg_id":"c0000002-0000-0000-0000-000000000002","event":"Ticket Updated","message":"Ticket Updated: 4243",` +
				`"object_id":4243,"agent_id":3,"timestamp":"2026-09-25T13:00:03.5000000Z","ticket":{"id":4243,"status_id":3}}`)},
		{EntityType: "ticket", SourceType: "New Ticket Logged", Action: "created", EntityID: "4244",
			DeliveryID: hashOf(t, "halopsa", haloWebhook, "New Ticket Logged", "4244", "2026-09-25T13:00:09.9000000Z"),
			Payload: []byte(`{"id":"aa000003-0000-4000-8000-000000000003","webhook_id":"` + haloWebhook + `","notification_id":41,` +
				`"escmsg_id":"c0000003-0000-0000-0000-000000000003","event":"New Ticket Logged","message":"New Ticket Logged: 4244",` +
				`"object_id":4244,"agent_id":3,"timestamp":"2026-09-25T13:00:09.9000000Z",` +
				`"ticket":{"id":4244,"summary":"New starter laptop","status_id":1}}`)},
	}
	if diff := cmp.Diff(want, got, compactJSON); diff != "" {
		t.Errorf("Decode (-want +got):\n%s", diff)
	}
	for i, e := range got {
		if !bytes.Contains(body, e.Payload) {
			t.Errorf("item %d: Payload is not the item as received", i)
		}
	}
}

func TestDecodeHaloVariants(t *testing.T) {
	tests := []struct {
		name, body       string
		entity, action   string
		entityID, source string
	}{
		{"names in other cases", `{"Event":"Ticket Updated","Object_ID":"77","Webhook_Id":"w"}`, "ticket", "updated", "77", "Ticket Updated"},
		{"event_name and objectid", `{"event_name":"New Ticket Logged","objectid":78}`, "ticket", "created", "78", "New Ticket Logged"},
		{"snake_case event", `{"event":"ticket_status_changed","object_id":79}`, "ticket", "updated", "79", "ticket_status_changed"},
		{"id in object", `{"event":"Client Updated","object":{"id":80}}`, "company", "updated", "80", "Client Updated"},
		{"ticket_id only", `{"event":"Ticket Updated","ticket_id":81}`, "ticket", "updated", "81", "Ticket Updated"},
		{"action on a ticket", `{"event":"Action Added to Ticket","object_id":82}`, "unknown", "created", "82", "Action Added to Ticket"},
		{"no known words", `{"event":"SLA Hold Released","object_id":83}`, "unknown", "sla hold released", "83", "SLA Hold Released"},
		{"timesheet", `{"event":"Timesheet Event Updated","object_id":84}`, "time_entry", "updated", "84", "Timesheet Event Updated"},
		{"batch of one", `[{"event":"Ticket Updated","object_id":85}]`, "ticket", "updated", "85", "Ticket Updated"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testDecoder().Decode(context.Background(), "halopsa", haloBearerSecret, authHeader("Bearer "+haloToken), []byte(tt.body))
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			g := got[0]
			if g.EntityType != tt.entity || g.Action != tt.action || g.EntityID != tt.entityID || g.SourceType != tt.source {
				t.Errorf("got %s/%s/%s/%q, want %s/%s/%s/%q", g.EntityType, g.Action, g.EntityID, g.SourceType,
					tt.entity, tt.action, tt.entityID, tt.source)
			}
		})
	}
}

func TestDecodeHaloRefuses(t *testing.T) {
	body := fixture(t, "halopsa", "ticket_updated.json")
	tests := []struct {
		name, secret, header string
		code                 string
	}{
		{"wrong password", haloBasicSecret, basicAuth(haloUser, "p4ss:with:colon"), domain.CodeBadCredentials},
		{"wrong user", haloBasicSecret, basicAuth("someone", haloPassword), domain.CodeBadCredentials},
		{"basic credentials not base64", haloBasicSecret, "Basic " + haloUser + ":" + haloPassword, domain.CodeBadCredentials},
		{"basic credentials then garbage", haloBasicSecret, basicAuth(haloUser, haloPassword) + "!!", domain.CodeBadCredentials},
		{"basic credentials unpadded then garbage", haloBasicSecret,
			"Basic " + base64.RawStdEncoding.EncodeToString([]byte(haloUser+":"+haloPassword)) + "*", domain.CodeBadCredentials},
		{"bearer sent, basic expected", haloBasicSecret, "Bearer " + base64.StdEncoding.EncodeToString([]byte(haloUser+":"+haloPassword)), domain.CodeBadCredentials},
		{"wrong token", haloBearerSecret, "Bearer " + haloToken + "x", domain.CodeBadCredentials},
		{"token prefix", haloBearerSecret, "Bearer " + haloToken[:10], domain.CodeBadCredentials},
		{"basic sent, bearer expected", haloBearerSecret, "Basic " + haloToken, domain.CodeBadCredentials},
		{"token without scheme", haloBearerSecret, haloToken, domain.CodeBadCredentials},
		{"missing header", haloBearerSecret, "", domain.CodeMissingCredentials},
		{"empty secret", "", "Bearer " + haloToken, domain.CodeNoSecret},
		{"secret without scheme", haloToken, "Bearer " + haloToken, domain.CodeInvalidSecret},
		{"basic secret without password", "basic:" + haloUser, basicAuth(haloUser, ""), domain.CodeInvalidSecret},
		{"basic secret without user", "basic::" + haloPassword, basicAuth("", haloPassword), domain.CodeInvalidSecret},
		{"bearer secret without token", "bearer:", "Bearer ", domain.CodeInvalidSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testDecoder().Decode(context.Background(), "halopsa", tt.secret, authHeader(tt.header), body)
			if got != nil {
				t.Errorf("Decode returned envelopes with an error: %v", got)
			}
			wantError(t, err, 401, tt.code, haloPassword, haloToken, tt.header)
		})
	}
}

func TestDecodeHaloAcceptsCredentialVariants(t *testing.T) {
	body := fixture(t, "halopsa", "ticket_updated.json")
	raw := base64.RawStdEncoding.EncodeToString([]byte(haloUser + ":" + haloPassword))
	for name, tt := range map[string]struct{ secret, header string }{
		"lower-case scheme":     {haloBearerSecret, "bearer " + haloToken},
		"upper-case prefix":     {"Bearer:" + haloToken, "Bearer " + haloToken},
		"basic without padding": {haloBasicSecret, "Basic " + raw},
		"empty password":        {"basic:" + haloUser + ":", basicAuth(haloUser, "")},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := testDecoder().Decode(context.Background(), "halopsa", tt.secret, authHeader(tt.header), body); err != nil {
				t.Errorf("Decode: %v", err)
			}
		})
	}
}

func TestDecodeHaloMalformed(t *testing.T) {
	tests := []struct{ name, body string }{
		{"empty", ``},
		{"not JSON", `event=Ticket Updated`},
		{"string", `"Ticket Updated"`},
		{"null", `null`},
		{"empty batch", `[]`},
		{"batch of numbers", `[1,2]`},
		{"batch with null", `[{"event":"Ticket Updated","object_id":1},null]`},
		{"batch with one bad item", `[{"event":"Ticket Updated","object_id":1},{"event":"Ticket Updated"}]`},
		{"no event", `{"object_id":1}`},
		{"blank event", `{"event":"  ","object_id":1}`},
		{"event not a string", `{"event":7,"object_id":1}`},
		{"no object id", `{"event":"Ticket Updated","webhook_id":"w"}`},
		{"object id null", `{"event":"Ticket Updated","object_id":null}`},
		{"nested object without id", `{"event":"Ticket Updated","ticket":{"summary":"x"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := testDecoder().Decode(context.Background(), "halopsa", haloBearerSecret, authHeader("Bearer "+haloToken), []byte(tt.body))
			if got != nil {
				t.Errorf("Decode returned envelopes with an error: %v", got)
			}
			wantError(t, err, 400, domain.CodeMalformedBody)
		})
	}
}

func TestDecodeHaloVerifiesBeforeParsing(t *testing.T) {
	_, err := testDecoder().Decode(context.Background(), "halopsa", haloBearerSecret, http.Header{}, []byte(`[]`))
	wantError(t, err, 401, domain.CodeMissingCredentials)
}
