package psa

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httperr"
)

// The fuzz targets check the two promises of every scheme: a body signed
// correctly is never refused as unauthenticated (it gives envelopes, or 400
// if it cannot be read), and a body with any other signature is always
// refused with 401. Seeds: the fixtures, plus testdata/fuzz/<FuzzName>/.

// addFixtureSeeds adds every testdata/<psa>/*.json file to f, with sig.
func addFixtureSeeds(f *testing.F, psa string, sig func(body []byte) string) {
	paths, err := filepath.Glob(filepath.Join("testdata", psa, "*.json"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no fixtures for %s: %v", psa, err)
	}
	for _, p := range paths {
		body, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(body, sig(body))
	}
}

// checkSigned fails t unless a correctly signed delivery gave valid
// envelopes or a 400.
func checkSigned(t *testing.T, envs []Envelope, err error) {
	t.Helper()
	if err == nil {
		checkEnvelopes(t, envs)
		return
	}
	var e *domain.Error
	if !errors.As(err, &e) {
		t.Fatalf("signed delivery: err %v is not an *domain.Error", err)
	}
	if httperr.Status(e) != http.StatusBadRequest || e.Code != domain.CodeMalformedBody {
		t.Fatalf("signed delivery refused with %d %s: %s", httperr.Status(e), e.Code, e.Message)
	}
	if envs != nil {
		t.Fatal("envelopes returned with an error")
	}
}

// checkUnsigned fails t unless a wrongly signed delivery gave a 401.
func checkUnsigned(t *testing.T, envs []Envelope, err error) {
	t.Helper()
	var e *domain.Error
	if !errors.As(err, &e) || httperr.Status(e) != http.StatusUnauthorized {
		t.Fatalf("wrongly signed delivery: envelopes %d, err %v; want 401", len(envs), err)
	}
	if envs != nil {
		t.Fatal("envelopes returned with an error")
	}
}

func FuzzDecodeGeneric(f *testing.F) {
	key := mustKey(f, genericSecret)
	ts := strconv.FormatInt(testNow.Unix(), 10)
	addFixtureSeeds(f, "generic", func(b []byte) string { return signStandard(key, "msg_1", ts, b) })
	f.Add([]byte(`{"type":"ticket.updated","data":{"id":1}}`), "v1,AAAA")
	f.Add([]byte(`{"type":"a.b.c","data":{"id":-0.5e10}}`), "v2,x v1,")
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		d := testDecoder()
		h := http.Header{}
		h.Set("webhook-id", "msg_1")
		h.Set("webhook-timestamp", ts)
		good := signStandard(key, "msg_1", ts, body)
		h.Set("webhook-signature", good)
		envs, err := d.Decode(context.Background(), "generic", genericSecret, h, body)
		checkSigned(t, envs, err)
		if len(envs) == 1 && (envs[0].DeliveryID != "msg_1" || string(envs[0].Payload) != string(body)) {
			t.Fatalf("envelope %+v: not this delivery", envs[0])
		}
		if len(envs) == 1 {
			// The stamp read in passing is the one the journal would read.
			want, _ := UpdatedAt(KindGeneric, envs[0].Payload)
			if !envs[0].UpdatedAt.Equal(want) {
				t.Fatalf("envelope's UpdatedAt %v, UpdatedAt of its payload %v", envs[0].UpdatedAt, want)
			}
		}

		if strings.Contains(sig, strings.TrimPrefix(good, "v1,")) {
			return // the fuzzer found the signature itself
		}
		h.Set("webhook-signature", sig)
		envs, err = d.Decode(context.Background(), "generic", genericSecret, h, body)
		checkUnsigned(t, envs, err)
	})
}

func FuzzVerifyStandardWebhooks(f *testing.F) {
	key := mustKey(f, genericSecret)
	now := strconv.FormatInt(testNow.Unix(), 10)
	f.Add("msg_1", now, []byte(`{"type":"ticket.updated","data":{"id":"1"}}`), "v1,AAAA")
	f.Add("msg_p5jXN8AQM9LWM0D4loKWxJek", "1614265330", []byte(`{"test": 2432232314}`), "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=")
	f.Add("", "", []byte{}, "")
	f.Add("id with spaces", "-9223372036854775808", []byte("x"), "v1,, v1 ,,, v1,=")
	f.Add("msg", "9223372036854775807", []byte("x"), strings.Repeat("v1,A ", 50))
	f.Fuzz(func(t *testing.T, id, ts string, body []byte, sig string) {
		// Arbitrary headers: never a panic, and never a pass unless the
		// fuzzer supplied the right signature.
		h := http.Header{}
		h.Set("webhook-id", id)
		h.Set("webhook-timestamp", ts)
		h.Set("webhook-signature", sig)
		gotID, e := verifyStandardWebhooks(key, h, body, testNow)
		if e == nil {
			want := strings.TrimPrefix(signStandard(key, id, ts, body), "v1,")
			if !strings.Contains(sig, want) || gotID != id {
				t.Fatalf("verified without the right signature: id %q ts %q sig %q", id, ts, sig)
			}
		} else if httperr.Status(e) != http.StatusUnauthorized {
			t.Fatalf("status %d, want 401", httperr.Status(e))
		}

		// The same delivery signed correctly, now: always verified.
		// (http.Header.Get cannot give back an id that is empty.)
		if id == "" {
			return
		}
		h.Set("webhook-timestamp", now)
		h.Set("webhook-signature", sig+" "+signStandard(key, id, now, body))
		if gotID, e := verifyStandardWebhooks(key, h, body, testNow); e != nil || gotID != id {
			t.Fatalf("correctly signed delivery refused: %v (id %q)", e, gotID)
		}
	})
}

func FuzzDecodeConnectWise(f *testing.F) {
	addFixtureSeeds(f, "connectwise", func(b []byte) string { return signConnectWise(connectWiseKey, b) })
	f.Add([]byte(`{"MessageId":null,"Type":"ticket","Action":"added","ID":1,"Entity":null}`), "")
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		d := testDecoder()
		h := http.Header{}
		good := signConnectWise(connectWiseKey, body)
		h.Set("X-Content-Signature", good)
		envs, err := d.Decode(context.Background(), "connectwise", connectWiseKey, h, body)
		checkSigned(t, envs, err)

		if strings.TrimSpace(sig) == good {
			return
		}
		h.Set("X-Content-Signature", sig)
		envs, err = d.Decode(context.Background(), "connectwise", connectWiseKey, h, body)
		checkUnsigned(t, envs, err)
	})
}

func FuzzDecodeAutotask(f *testing.F) {
	addFixtureSeeds(f, "autotask", func(b []byte) string { return signAutotask(autotaskSecret, b) })
	f.Add([]byte(`{"EntityType":"Ticket","Action":"Update","Id":"1","SequenceNumber":1e400}`), "sha1=")
	f.Add([]byte(cafeBody), signAutotask(autotaskSecret, []byte(strings.ReplaceAll(cafeBody, `"`, `\u0022`))))
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		d := testDecoder()
		h := http.Header{}
		good := signAutotask(autotaskSecret, body)
		h.Set("X-Hook-Signature", good)
		envs, err := d.Decode(context.Background(), "autotask", autotaskSecret, h, body)
		checkSigned(t, envs, err)

		// Autotask may sign an escaped form of the body: a signature over
		// any of them is as good as one over the body.
		accepted := []string{good}
		for _, e := range autotaskEscapings {
			if esc, changed := e.escape(body); changed {
				h.Set("X-Hook-Signature", signAutotask(autotaskSecret, esc))
				envs, err := d.Decode(context.Background(), "autotask", autotaskSecret, h, body)
				checkSigned(t, envs, err)
				accepted = append(accepted, h.Get("X-Hook-Signature"))
			}
		}

		if slices.Contains(accepted, strings.TrimSpace(sig)) {
			return
		}
		h.Set("X-Hook-Signature", sig)
		envs, err = d.Decode(context.Background(), "autotask", autotaskSecret, h, body)
		checkUnsigned(t, envs, err)
	})
}

func FuzzDecodeHalo(f *testing.F) {
	good := basicAuth(haloUser, haloPassword)
	addFixtureSeeds(f, "halopsa", func([]byte) string { return good })
	f.Add([]byte(`[{"event":"Ticket Updated","object_id":1},{"event":"x","ticket":{"id":2}}]`), "Bearer "+haloToken)
	f.Add([]byte(`{"event":"..","object":{"id":"x"}}`), "Basic")
	f.Fuzz(func(t *testing.T, body []byte, auth string) {
		d := testDecoder()
		envs, err := d.Decode(context.Background(), "halopsa", haloBasicSecret, authHeader(good), body)
		checkSigned(t, envs, err)

		// Any Authorization header that does not carry the configured
		// user:password under Basic is refused.
		if carriesBasic(auth, haloUser+":"+haloPassword) {
			return
		}
		envs, err = d.Decode(context.Background(), "halopsa", haloBasicSecret, authHeader(auth), body)
		checkUnsigned(t, envs, err)
	})
}

// carriesBasic reports whether the Authorization header value auth holds
// the credentials userPass under the Basic scheme, however its base64 is
// written (padded or not, with or without stray trailing bits).
func carriesBasic(auth, userPass string) bool {
	scheme, cred, _ := strings.Cut(strings.TrimSpace(auth), " ")
	if !strings.EqualFold(scheme, "Basic") {
		return false
	}
	cred = strings.TrimSpace(cred)
	dec, err := base64.StdEncoding.DecodeString(cred)
	if err != nil {
		dec, err = base64.RawStdEncoding.DecodeString(cred)
	}
	return err == nil && string(dec) == userPass
}
