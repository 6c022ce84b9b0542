package psa

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httperr"
)

// testNow is the Decoders' clock in tests.
var testNow = time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)

const (
	// genericSecret is the Standard Webhooks documentation's example secret.
	genericSecret     = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	otherGenericKey   = "whsec_c2VjcmV0LXRoYXQtaXMtbm90LXRoZS1wYXJ0bmVycw=="
	connectWiseKey    = "cw-signing-key-7d2f9a41c0e8"
	autotaskSecret    = "at-webhook-secret-0f3b8e51"
	haloUser          = "switchback"
	haloPassword      = "p4ss:with:colons"
	haloBasicSecret   = "basic:" + haloUser + ":" + haloPassword
	haloToken         = "halo-bearer-token-9c1e77d2"
	haloBearerSecret  = "bearer:" + haloToken
	testWebhookPrefix = "msg_"
)

func testDecoder() *Decoder { return &Decoder{Now: func() time.Time { return testNow }} }

// fixture returns testdata/<psa>/<name>.
func fixture(t testing.TB, psa, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", psa, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustKey(t testing.TB, secret string) []byte {
	t.Helper()
	k, e := standardWebhooksKey(secret)
	if e != nil {
		t.Fatal(e)
	}
	return k
}

// signStandard returns the Standard Webhooks v1 signature of a delivery.
func signStandard(key []byte, id, ts string, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + ts + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

// standardHeaders returns the headers of a generic delivery signed with
// secret at ts.
func standardHeaders(t testing.TB, secret, id string, ts time.Time, body []byte) http.Header {
	t.Helper()
	sec := strconv.FormatInt(ts.Unix(), 10)
	h := http.Header{}
	h.Set("webhook-id", id)
	h.Set("webhook-timestamp", sec)
	h.Set("webhook-signature", signStandard(mustKey(t, secret), id, sec, body))
	return h
}

func signConnectWise(signingKey string, body []byte) string {
	k := sha256.Sum256([]byte(signingKey))
	mac := hmac.New(sha256.New, k[:])
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func connectWiseHeaders(signingKey string, body []byte) http.Header {
	h := http.Header{}
	h.Set("x-content-signature", signConnectWise(signingKey, body))
	return h
}

func signAutotask(secret string, body []byte) string {
	mac := hmac.New(sha1.New, []byte(secret))
	mac.Write(body)
	return "sha1=" + base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func autotaskHeaders(secret string, body []byte) http.Header {
	h := http.Header{}
	h.Set("X-Hook-Signature", signAutotask(secret, body))
	return h
}

func basicAuth(user, password string) string {
	return "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
}

func authHeader(v string) http.Header {
	h := http.Header{}
	if v != "" {
		h.Set("Authorization", v)
	}
	return h
}

// hashOf is the documented DeliveryID hash, written independently of
// deliveryHash (every field here is shorter than 128 bytes, so its length
// is one byte).
func hashOf(t testing.TB, kind string, fields ...string) string {
	t.Helper()
	var b []byte
	for _, f := range append([]string{kind}, fields...) {
		if len(f) >= 128 {
			t.Fatalf("hashOf: field %q too long for this helper", f)
		}
		b = append(b, byte(len(f)))
		b = append(b, f...)
	}
	sum := sha256.Sum256(b)
	return "h:" + hex.EncodeToString(sum[:])
}

// wantError fails t unless err is an *domain.Error with status and code whose
// message holds none of secrets (those of 8 bytes or more: shorter ones,
// such as a bare "whsec_", may appear in any text).
func wantError(t testing.TB, err error, status int, code string, secrets ...string) {
	t.Helper()
	var e *domain.Error
	if !errors.As(err, &e) {
		t.Fatalf("err = %v (%T), want *domain.Error %d %s", err, err, status, code)
	}
	if httperr.Status(e) != status || e.Code != code {
		t.Errorf("err = %d %s (%q), want %d %s", httperr.Status(e), e.Code, e.Message, status, code)
	}
	if e.Message == "" {
		t.Errorf("err %s has no message", e.Code)
	}
	for _, s := range secrets {
		if len(s) >= 8 && (strings.Contains(e.Message, s) || strings.Contains(e.Error(), s)) {
			t.Errorf("err message %q reveals %q", e.Message, s)
		}
	}
}

// compactJSON compares JSON payloads by content, whitespace aside.
var compactJSON = cmp.Comparer(func(a, b json.RawMessage) bool {
	var x, y any
	if json.Unmarshal(a, &x) != nil || json.Unmarshal(b, &y) != nil {
		return string(a) == string(b)
	}
	return cmp.Equal(x, y)
})

var canonicalEntities = map[string]bool{
	EntityTicket: true, EntityScheduleEntry: true, EntityTimeEntry: true,
	EntityCompany: true, EntityContact: true, EntityUnknown: true,
}

// checkEnvelopes checks what every successful Decode promises.
func checkEnvelopes(t testing.TB, envs []Envelope) {
	t.Helper()
	if len(envs) == 0 {
		t.Fatal("Decode returned no envelopes and no error")
	}
	for i, e := range envs {
		if !canonicalEntities[e.EntityType] {
			t.Errorf("envelope %d: EntityType %q is not canonical", i, e.EntityType)
		}
		if e.Action == "" || e.EntityID == "" || e.DeliveryID == "" {
			t.Errorf("envelope %d: blank field in %+v", i, e)
		}
		if !json.Valid(e.Payload) {
			t.Errorf("envelope %d: Payload is not JSON", i)
		}
	}
}

// signStandardRaw is base64(HMAC-SHA256(key, body)).
func signStandardRaw(key, body []byte) string {
	mac := hmac.New(sha256.New, key)
	mac.Write(body)
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}
