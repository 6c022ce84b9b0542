package psa

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/domain"
)

func TestDecodeAutotask(t *testing.T) {
	const (
		guidTickets  = "8a9ea9d5-4c67-4a3b-9c3c-2a5b0c6f3e21"
		guidContacts = "c1f0b7a2-2d6e-4a8f-9b1c-7e5d3a4f2b10"
		guidAccounts = "5f3e9d1c-8b2a-4c6e-a7f0-1d2c3b4a5e6f"
		guidTime     = "0e7c2b9a-4f1d-4d3e-8a6b-2c9f7e1d5a34"
		guidCalls    = "7b1a3c5e-9d2f-4e6a-8c0b-3f5d7e9a1c2b"
	)
	tests := []struct {
		fixture string
		want    Envelope
		// hash holds the fields of the documented DeliveryID hash: Guid,
		// EntityType, Id, Action, SequenceNumber, EventTime.
		hash []string
	}{
		{"ticket_create.json", Envelope{EntityType: "ticket", SourceType: "Ticket", Action: "created", EntityID: "29684123"},
			[]string{guidTickets, "Ticket", "29684123", "Create", "411", "2026-03-02T09:14:05.377Z"}},
		{"ticket_update.json", Envelope{EntityType: "ticket", SourceType: "Ticket", Action: "updated", EntityID: "29684123"},
			[]string{guidTickets, "Ticket", "29684123", "Update", "412", "2026-03-02T09:31:43.250Z"}},
		{"ticket_delete.json", Envelope{EntityType: "ticket", SourceType: "Ticket", Action: "deleted", EntityID: "29684120"},
			[]string{guidTickets, "Ticket", "29684120", "Delete", "413", "2026-03-02T11:02:19.004Z"}},
		{"contact_update.json", Envelope{EntityType: "contact", SourceType: "Contact", Action: "updated", EntityID: "30682811"},
			[]string{guidContacts, "Contact", "30682811", "Update", "12", "2026-03-01T08:10:00.000Z"}},
		{"account_create.json", Envelope{EntityType: "company", SourceType: "Account", Action: "created", EntityID: "29683601"},
			[]string{guidAccounts, "Account", "29683601", "Create", "7", "2026-03-01T08:00:00.000Z"}},
		{"company_update.json", Envelope{EntityType: "company", SourceType: "Company", Action: "updated", EntityID: "29683601"},
			[]string{guidAccounts, "Company", "29683601", "Update", "8", "2026-03-01T09:00:00.000Z"}},
		{"timeentry_create.json", Envelope{EntityType: "time_entry", SourceType: "TimeEntry", Action: "created", EntityID: "29699870"},
			[]string{guidTime, "TimeEntry", "29699870", "Create", "55", "2026-03-02T17:45:12.600Z"}},
		{"servicecall_update.json", Envelope{EntityType: "schedule_entry", SourceType: "ServiceCall", Action: "updated", EntityID: "29700015"},
			[]string{guidCalls, "ServiceCall", "29700015", "Update", "9", "2026-03-02T10:05:00.010Z"}},
		{"ticketnote_create.json", Envelope{EntityType: "unknown", SourceType: "TicketNote", Action: "created", EntityID: "30012277"},
			[]string{guidTickets, "TicketNote", "30012277", "Create", "414", "2026-03-02T09:40:00.500Z"}},
	}
	seen := map[string]string{}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := fixture(t, "autotask", tt.fixture)
			got, err := testDecoder().Decode(context.Background(), "autotask", autotaskSecret, autotaskHeaders(autotaskSecret, body), body)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := tt.want
			want.DeliveryID, want.Payload = hashOf(t, "autotask", tt.hash...), body
			if diff := cmp.Diff([]Envelope{want}, got); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
			if other, ok := seen[got[0].DeliveryID]; ok {
				t.Errorf("DeliveryID shared with %s", other)
			}
			seen[got[0].DeliveryID] = tt.fixture
		})
	}
}

// TestDecodeAutotaskRetryIsTheSameDelivery: Autotask resends the same
// content, which must give the same DeliveryID, whatever the formatting.
func TestDecodeAutotaskRetryIsTheSameDelivery(t *testing.T) {
	body := fixture(t, "autotask", "ticket_update.json")
	compact := []byte(`{"Action":"Update","Guid":"8a9ea9d5-4c67-4a3b-9c3c-2a5b0c6f3e21","EntityType":"Ticket","Id":29684123,` +
		`"Fields":{"Status":8},"EventTime":"2026-03-02T09:31:43.250Z","SequenceNumber":412,"PersonID":29682885}`)
	a, err := testDecoder().Decode(context.Background(), "autotask", autotaskSecret, autotaskHeaders(autotaskSecret, body), body)
	if err != nil {
		t.Fatal(err)
	}
	b, err := testDecoder().Decode(context.Background(), "autotask", autotaskSecret, autotaskHeaders(autotaskSecret, compact), compact)
	if err != nil {
		t.Fatal(err)
	}
	if a[0].DeliveryID != b[0].DeliveryID {
		t.Errorf("DeliveryIDs differ: %s, %s", a[0].DeliveryID, b[0].DeliveryID)
	}
}

func TestDecodeAutotaskRefuses(t *testing.T) {
	body := fixture(t, "autotask", "ticket_update.json")
	sig := signAutotask(autotaskSecret, body)
	tampered := []byte(strings.Replace(string(body), `"Status": 8`, `"Status": 5`, 1))
	tests := []struct {
		name   string
		secret string
		sig    string
		body   []byte
		code   string
	}{
		{"wrong secret", "not-the-webhook-secret", sig, body, domain.CodeBadSignature},
		{"tampered body", autotaskSecret, sig, tampered, domain.CodeBadSignature},
		{"missing header", autotaskSecret, "", body, domain.CodeMissingSignature},
		{"no sha1= prefix", autotaskSecret, strings.TrimPrefix(sig, "sha1="), body, domain.CodeBadSignature},
		{"sha256= prefix", autotaskSecret, "sha256=" + strings.TrimPrefix(sig, "sha1="), body, domain.CodeBadSignature},
		{"SHA1= prefix", autotaskSecret, "SHA1=" + strings.TrimPrefix(sig, "sha1="), body, domain.CodeBadSignature},
		{"hex digest", autotaskSecret, "sha1=0123456789abcdef0123456789abcdef01234567", body, domain.CodeBadSignature},
		{"empty secret", "", sig, body, domain.CodeNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.sig != "" {
				h.Set("X-Hook-Signature", tt.sig)
			}
			got, err := testDecoder().Decode(context.Background(), "autotask", tt.secret, h, tt.body)
			if got != nil {
				t.Errorf("Decode returned envelopes with an error: %v", got)
			}
			wantError(t, err, 401, tt.code, tt.secret, tt.sig)
		})
	}
}

func TestDecodeAutotaskMalformed(t *testing.T) {
	tests := []struct{ name, body string }{
		{"not JSON", `<xml/>`},
		{"no EntityType", `{"Action":"Update","Id":1}`},
		{"no Action", `{"EntityType":"Ticket","Id":1}`},
		{"no Id", `{"EntityType":"Ticket","Action":"Update"}`},
		{"Id null", `{"EntityType":"Ticket","Action":"Update","Id":null}`},
		{"Action not a string", `{"EntityType":"Ticket","Action":1,"Id":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			_, err := testDecoder().Decode(context.Background(), "autotask", autotaskSecret, autotaskHeaders(autotaskSecret, body), body)
			wantError(t, err, 400, domain.CodeMalformedBody)
		})
	}
}

// TestDeliveryIDsArePinned: the dedup keys of deliveries without a PSA
// delivery id must not change between versions, or a resend across an
// upgrade would be applied twice. These values were computed from the
// documented encoding outside Go.
func TestDeliveryIDsArePinned(t *testing.T) {
	tests := []struct {
		kind, fixture, want string
	}{
		{"autotask", "ticket_update.json", "h:affae2eadc00ffdca0b26cb5df35fbae3a09b5c8a3076f8124606773401645fc"},
		{"halopsa", "ticket_new_logged.json", "h:845392bd883013d29b22c06fd4d7ef8067aaf8c825e00cb3c75b02fe412ca6d2"},
		{"halopsa", "event_only.json", "h:89f863cb6224856c2aed83fe332c7dad9e68d1344520b9826c9bbdaed9a3029e"},
	}
	for _, tt := range tests {
		body := fixture(t, tt.kind, tt.fixture)
		secret, h := autotaskSecret, autotaskHeaders(autotaskSecret, body)
		if tt.kind == "halopsa" {
			secret, h = haloBearerSecret, authHeader("Bearer "+haloToken)
		}
		got, err := testDecoder().Decode(context.Background(), tt.kind, secret, h, body)
		if err != nil {
			t.Fatalf("%s/%s: %v", tt.kind, tt.fixture, err)
		}
		if got[0].DeliveryID != tt.want {
			t.Errorf("%s/%s: DeliveryID = %s, want %s", tt.kind, tt.fixture, got[0].DeliveryID, tt.want)
		}
	}
}
