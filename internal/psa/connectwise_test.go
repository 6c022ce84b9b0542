package psa

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/domain"
)

func TestDecodeConnectWise(t *testing.T) {
	tests := []struct {
		fixture string
		want    Envelope // without Payload, which is the fixture
	}{
		{"ticket_added.json", Envelope{EntityType: "ticket", SourceType: "ticket", Action: "created", EntityID: "98765",
			DeliveryID: "5d0e1c4a-7b3f-4a59-9a0e-2f7c0c1d9e11"}},
		{"ticket_updated.json", Envelope{EntityType: "ticket", SourceType: "ticket", Action: "updated", EntityID: "98765",
			DeliveryID: "0b7d5c9e-3c1a-4f0e-8d62-5f4a1b2c3d4e"}},
		{"ticket_deleted.json", Envelope{EntityType: "ticket", SourceType: "ticket", Action: "deleted", EntityID: "98764",
			DeliveryID: "e8f1a2b3-c4d5-4e6f-9a0b-1c2d3e4f5a6b"}},
		{"company_updated.json", Envelope{EntityType: "company", SourceType: "company", Action: "updated", EntityID: "250",
			DeliveryID: "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d"}},
		{"contact_added.json", Envelope{EntityType: "contact", SourceType: "contact", Action: "created", EntityID: "4711",
			DeliveryID: "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e"}},
		{"schedule_updated.json", Envelope{EntityType: "schedule_entry", SourceType: "schedule", Action: "updated", EntityID: "55120",
			DeliveryID: "3c4d5e6f-7a8b-4c9d-0e1f-2a3b4c5d6e7f"}},
		{"time_added.json", Envelope{EntityType: "time_entry", SourceType: "time", Action: "created", EntityID: "300457",
			DeliveryID: "4d5e6f7a-8b9c-4d0e-1f2a-3b4c5d6e7f8a"}},
		{"opportunity_updated.json", Envelope{EntityType: "unknown", SourceType: "opportunity", Action: "updated", EntityID: "812",
			DeliveryID: "5e6f7a8b-9c0d-4e1f-2a3b-4c5d6e7f8a9b"}},
	}
	for _, tt := range tests {
		t.Run(tt.fixture, func(t *testing.T) {
			body := fixture(t, "connectwise", tt.fixture)
			got, err := testDecoder().Decode(context.Background(), "connectwise", connectWiseKey, connectWiseHeaders(connectWiseKey, body), body)
			if err != nil {
				t.Fatalf("Decode: %v", err)
			}
			want := tt.want
			want.Payload = body
			if diff := cmp.Diff([]Envelope{want}, got); diff != "" {
				t.Errorf("Decode (-want +got):\n%s", diff)
			}
		})
	}
}

// TestDecodeConnectWiseWithoutMessageId: the DeliveryID falls back to the
// hash of CompanyId, Type, Action, ID, FromUrl and the SHA-256 of the body,
// so that only a byte-identical resend is a duplicate.
func TestDecodeConnectWiseWithoutMessageId(t *testing.T) {
	body := fixture(t, "connectwise", "ticket_updated_no_message_id.json")
	got, err := testDecoder().Decode(context.Background(), "connectwise", connectWiseKey, connectWiseHeaders(connectWiseKey, body), body)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	sum := sha256.Sum256(body)
	want := hashOf(t, "connectwise", "acmemsp", "ticket", "updated", "98765", "https://na.myconnectwise.net", hex.EncodeToString(sum[:]))
	if got[0].DeliveryID != want {
		t.Errorf("DeliveryID = %q, want %q", got[0].DeliveryID, want)
	}

	// Other callbacks about the same ticket are other deliveries, even when
	// only a field outside Entity differs.
	for name, other := range map[string][]byte{
		"another update": []byte(strings.Replace(string(body), `Waiting on Client`, `Closed`, 1)),
		"another member": []byte(strings.Replace(string(body), `"MemberId": "jsmith"`, `"MemberId": "akim"`, 1)),
	} {
		if bytes.Equal(other, body) {
			t.Fatalf("%s: the fixture did not change", name)
		}
		got2, err := testDecoder().Decode(context.Background(), "connectwise", connectWiseKey, connectWiseHeaders(connectWiseKey, other), other)
		if err != nil {
			t.Fatalf("%s: Decode: %v", name, err)
		}
		if got2[0].DeliveryID == got[0].DeliveryID {
			t.Errorf("%s: two different callbacks without MessageId share a DeliveryID", name)
		}
	}
}

func TestDecodeConnectWiseRefuses(t *testing.T) {
	body := fixture(t, "connectwise", "ticket_updated.json")
	tampered := []byte(strings.Replace(string(body), "In Progress", "Closed", 1))
	sig := signConnectWise(connectWiseKey, body)
	// Signed with the key itself rather than its SHA-256: a common mistake.
	unhashed := signStandardRaw([]byte(connectWiseKey), body)
	tests := []struct {
		name   string
		secret string
		sig    string
		body   []byte
		status int
		code   string
	}{
		{"wrong key", "another-signing-key", sig, body, 401, domain.CodeBadSignature},
		{"tampered body", connectWiseKey, sig, tampered, 401, domain.CodeBadSignature},
		{"missing header", connectWiseKey, "", body, 401, domain.CodeMissingSignature},
		{"garbage signature", connectWiseKey, "not-a-signature", body, 401, domain.CodeBadSignature},
		{"key not hashed", connectWiseKey, unhashed, body, 401, domain.CodeBadSignature},
		{"empty secret and no key cache", "", sig, body, 401, domain.CodeNoSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			if tt.sig != "" {
				h.Set("X-Content-Signature", tt.sig)
			}
			got, err := testDecoder().Decode(context.Background(), "connectwise", tt.secret, h, tt.body)
			if got != nil {
				t.Errorf("Decode returned envelopes with an error: %v", got)
			}
			wantError(t, err, tt.status, tt.code, tt.secret, tt.sig)
		})
	}
}

func TestDecodeConnectWiseMalformed(t *testing.T) {
	tests := []struct{ name, body string }{
		{"not JSON", `MessageId=1`},
		{"no Type", `{"MessageId":"m1","Action":"updated","ID":1}`},
		{"no Action", `{"MessageId":"m1","Type":"ticket","ID":1}`},
		{"no ID", `{"MessageId":"m1","Type":"ticket","Action":"updated"}`},
		{"ID not scalar", `{"MessageId":"m1","Type":"ticket","Action":"updated","ID":[1]}`},
		{"Type not a string", `{"MessageId":"m1","Type":1,"Action":"updated","ID":1}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(tt.body)
			_, err := testDecoder().Decode(context.Background(), "connectwise", connectWiseKey, connectWiseHeaders(connectWiseKey, body), body)
			wantError(t, err, 400, domain.CodeMalformedBody)
		})
	}
}

// keyServer is a TLS key endpoint that serves key at /key and counts hits.
func keyServer(t *testing.T, key string) (*httptest.Server, *atomic.Int32) {
	t.Helper()
	var hits atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		switch r.URL.Path {
		case "/key":
			fmt.Fprintf(w, `{"signing_key":%q}`, key)
		case "/busy":
			w.WriteHeader(http.StatusServiceUnavailable)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return srv, &hits
}

// callbackWithKeyURL is a ConnectWise callback whose Metadata.key_url is u.
func callbackWithKeyURL(u string) []byte {
	return []byte(`{"MessageId":"6f7a8b9c-0d1e-4f2a-3b4c-5d6e7f8a9b0c","FromUrl":"https://na.myconnectwise.net","CompanyId":"acmemsp",` +
		`"Action":"updated","Type":"ticket","ID":98765,"Entity":"{\"id\":98765,\"summary\":\"VPN\"}",` +
		`"Metadata":{"key_url":"` + u + `"}}`)
}

func TestDecodeConnectWiseFetchesKey(t *testing.T) {
	srv, hits := keyServer(t, connectWiseKey)
	d := testDecoder()
	d.Keys = NewKeyCache([]string{"127.0.0.1"}, srv.Client(), 0)
	d.Keys.Timeout = 10 * time.Second // shared test machines are slow under -race

	body := callbackWithKeyURL(srv.URL + "/key")
	for i := range 2 {
		got, err := d.Decode(context.Background(), "connectwise", "", connectWiseHeaders(connectWiseKey, body), body)
		if err != nil {
			t.Fatalf("Decode %d: %v", i, err)
		}
		want := []Envelope{{EntityType: "ticket", SourceType: "ticket", Action: "updated", EntityID: "98765",
			DeliveryID: "6f7a8b9c-0d1e-4f2a-3b4c-5d6e7f8a9b0c", Payload: body}}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Decode %d (-want +got):\n%s", i, diff)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("key endpoint hit %d times, want 1 (cached)", n)
	}

	tests := []struct {
		name   string
		body   []byte
		sig    string
		status int
		code   string
	}{
		{"signed with another key", body, signConnectWise("not-the-published-key", body), 401, domain.CodeBadSignature},
		{"no key_url", []byte(`{"MessageId":"m","Type":"ticket","Action":"updated","ID":1}`), "x", 401, domain.CodeKeyRefused},
		{"body not JSON", []byte(`garbage`), "x", 401, domain.CodeKeyRefused},
		{"key_url on another host", callbackWithKeyURL("https://attacker.example/key"), "x", 401, domain.CodeKeyRefused},
		{"key_url not https", callbackWithKeyURL(strings.Replace(srv.URL, "https:", "http:", 1) + "/key"), "x", 401, domain.CodeKeyRefused},
		{"key endpoint 404", callbackWithKeyURL(srv.URL + "/gone"), "x", 401, domain.CodeKeyRefused},
		{"key endpoint 503", callbackWithKeyURL(srv.URL + "/busy"), "x", 429, domain.CodeKeyUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			h.Set("X-Content-Signature", tt.sig)
			_, err := d.Decode(context.Background(), "connectwise", "", h, tt.body)
			wantError(t, err, tt.status, tt.code, connectWiseKey, tt.sig)
		})
	}

	t.Run("missing signature fetches nothing", func(t *testing.T) {
		before := hits.Load()
		_, err := d.Decode(context.Background(), "connectwise", "", http.Header{}, callbackWithKeyURL(srv.URL+"/other"))
		wantError(t, err, 401, domain.CodeMissingSignature)
		if hits.Load() != before {
			t.Error("the key endpoint was hit for an unsigned callback")
		}
	})
	t.Run("configured key wins over key_url", func(t *testing.T) {
		before := hits.Load()
		other := callbackWithKeyURL(srv.URL + "/other")
		if _, err := d.Decode(context.Background(), "connectwise", "partner-key", connectWiseHeaders("partner-key", other), other); err != nil {
			t.Fatalf("Decode: %v", err)
		}
		if hits.Load() != before {
			t.Error("the key endpoint was hit although the partner configured a key")
		}
	})
}
