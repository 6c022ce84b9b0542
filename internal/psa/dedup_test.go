package psa

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"testing"
)

// decodeOne decodes a correctly signed (or credentialed) delivery of kind
// and returns its single envelope.
func decodeOne(t *testing.T, kind string, body []byte) Envelope {
	t.Helper()
	secret, h := autotaskSecret, autotaskHeaders(autotaskSecret, body)
	switch kind {
	case KindHaloPSA:
		secret, h = haloBearerSecret, authHeader("Bearer "+haloToken)
	case KindConnectWise:
		secret, h = connectWiseKey, connectWiseHeaders(connectWiseKey, body)
	}
	envs, err := testDecoder().Decode(context.Background(), kind, secret, h, body)
	if err != nil {
		t.Fatalf("Decode %s: %v", body, err)
	}
	if len(envs) != 1 {
		t.Fatalf("Decode %s: %d envelopes, want 1", body, len(envs))
	}
	return envs[0]
}

// TestDeliveryIDsKeepDistinctUpdatesApart: a dedup key merges only what is
// the same delivery. Where the body carries the PSA's delivery identity it
// decides; without one, only a byte-identical resend is a duplicate, so two
// different updates of one record (the same entity, action and id) are two
// deliveries.
func TestDeliveryIDsKeepDistinctUpdatesApart(t *testing.T) {
	tests := []struct {
		name string
		kind string
		a, b string
		same bool
	}{
		{"autotask without Guid, SequenceNumber or EventTime", KindAutotask,
			`{"EntityType":"Ticket","Action":"Update","Id":99,"Fields":{"Title":"a"}}`,
			`{"EntityType":"Ticket","Action":"Update","Id":99,"Fields":{"Title":"b"}}`, false},
		{"autotask with Guid but no SequenceNumber", KindAutotask,
			`{"Guid":"g-1","EntityType":"Ticket","Action":"Update","Id":99,"EventTime":"2026-03-02T09:31:43.250Z","Fields":{"Title":"a"}}`,
			`{"Guid":"g-1","EntityType":"Ticket","Action":"Update","Id":99,"EventTime":"2026-03-02T09:31:43.250Z","Fields":{"Title":"b"}}`, false},
		{"autotask with SequenceNumber but no Guid", KindAutotask,
			`{"EntityType":"Ticket","Action":"Update","Id":99,"SequenceNumber":7,"Fields":{"Title":"a"}}`,
			`{"EntityType":"Ticket","Action":"Update","Id":99,"SequenceNumber":7,"Fields":{"Title":"b"}}`, false},
		{"autotask without identity, resent byte for byte", KindAutotask,
			`{"EntityType":"Ticket","Action":"Update","Id":99,"Fields":{"Title":"a"}}`,
			`{"EntityType":"Ticket","Action":"Update","Id":99,"Fields":{"Title":"a"}}`, true},
		{"autotask Guid and SequenceNumber name the delivery", KindAutotask,
			`{"Guid":"g-1","SequenceNumber":7,"EntityType":"Ticket","Action":"Update","Id":99,"Fields":{"Title":"a"}}`,
			`{"Guid": "g-1", "SequenceNumber": 7, "EntityType": "Ticket", "Action": "Update", "Id": 99, "Fields": {"Title": "a"}}`, true},
		{"autotask Guid with another SequenceNumber", KindAutotask,
			`{"Guid":"g-1","SequenceNumber":7,"EntityType":"Ticket","Action":"Update","Id":99,"Fields":{"Title":"a"}}`,
			`{"Guid":"g-1","SequenceNumber":8,"EntityType":"Ticket","Action":"Update","Id":99,"Fields":{"Title":"a"}}`, false},
		{"halopsa identified by object_id only", KindHaloPSA,
			`{"event":"Ticket Updated","object_id":99,"webhook_id":"w","ticket":{"id":99,"summary":"a"}}`,
			`{"event":"Ticket Updated","object_id":99,"webhook_id":"w","ticket":{"id":99,"summary":"b"}}`, false},
		{"halopsa without webhook_id either", KindHaloPSA,
			`{"event":"Ticket Updated","object_id":99,"message":"Title: a"}`,
			`{"event":"Ticket Updated","object_id":99,"message":"Title: b"}`, false},
		{"halopsa identified by object_id only, resent byte for byte", KindHaloPSA,
			`{"event":"Ticket Updated","object_id":99,"ticket":{"id":99,"summary":"a"}}`,
			`{"event":"Ticket Updated","object_id":99,"ticket":{"id":99,"summary":"a"}}`, true},
		{"halopsa event id names the delivery", KindHaloPSA,
			`{"id":"e-1","event":"Ticket Updated","object_id":99,"ticket":{"id":99,"summary":"a"}}`,
			`{"id": "e-1", "event": "Ticket Updated", "object_id": 99, "ticket": {"id": 99, "summary": "a"}}`, true},
		{"connectwise without MessageId", KindConnectWise,
			`{"CompanyId":"acmemsp","Type":"ticket","Action":"updated","ID":99,"MemberId":"a","Entity":null}`,
			`{"CompanyId":"acmemsp","Type":"ticket","Action":"updated","ID":99,"MemberId":"b","Entity":null}`, false},
		{"connectwise MessageId names the delivery", KindConnectWise,
			`{"MessageId":"m-1","Type":"ticket","Action":"updated","ID":99,"Entity":"{\"summary\":\"a\"}"}`,
			`{"MessageId":"m-1","Type":"ticket","Action":"updated","ID":99,"Entity":"{\"summary\":\"b\"}"}`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, b := decodeOne(t, tt.kind, []byte(tt.a)), decodeOne(t, tt.kind, []byte(tt.b))
			if got := a.DeliveryID == b.DeliveryID; got != tt.same {
				t.Errorf("same DeliveryID = %v (%s, %s), want %v", got, a.DeliveryID, b.DeliveryID, tt.same)
			}
		})
	}
}

// TestDeliveryIDsWithBodyHashArePinned pins the keys of deliveries without
// a PSA delivery identity: the documented fields, then the hex SHA-256 of
// the body (of the batch item, for HaloPSA), computed here by hashOf.
func TestDeliveryIDsWithBodyHashArePinned(t *testing.T) {
	sum := func(s string) string {
		h := sha256.Sum256([]byte(s))
		return hex.EncodeToString(h[:])
	}
	const (
		at   = `{"EntityType":"Ticket","Action":"Update","Id":99,"EventTime":"2026-03-02T09:31:43.250Z","Fields":{"Title":"a"}}`
		halo = `{"event":"Ticket Updated","object_id":99,"webhook_id":"w"}`
	)
	tests := []struct {
		name, kind, body, want string
	}{
		{"autotask", KindAutotask, at,
			hashOf(t, "autotask", "", "Ticket", "99", "Update", "", "2026-03-02T09:31:43.250Z", sum(at))},
		{"halopsa", KindHaloPSA, halo, hashOf(t, "halopsa", "w", "Ticket Updated", "99", "", sum(halo))},
		{"halopsa batch item", KindHaloPSA, "[ " + halo + " ]", hashOf(t, "halopsa", "w", "Ticket Updated", "99", "", sum(halo))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := decodeOne(t, tt.kind, []byte(tt.body)).DeliveryID; got != tt.want {
				t.Errorf("DeliveryID = %s, want %s", got, tt.want)
			}
		})
	}
}
