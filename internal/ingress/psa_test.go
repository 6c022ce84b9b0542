package ingress_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

const (
	autotaskSecret = "at-webhook-secret-for-ingress-tests"
	haloToken      = "halo-token-for-ingress-tests"
	connectWiseKey = "cw-signing-key-for-ingress-tests"
)

// putPartner adds a partner of kind psa with secret and waits until the
// router routes by a snapshot that holds it.
func (e *env) putPartner(t testing.TB, id string, psa domain.PSA, secret string) {
	t.Helper()
	e.putPartnerInput(t, control.PartnerInput{ID: id, Name: id, PSA: psa, Secret: &secret})
}

// putPartnerInput puts a partner and waits until the router routes by a
// snapshot that holds it.
func (e *env) putPartnerInput(t testing.TB, in control.PartnerInput) {
	t.Helper()
	id := in.ID
	if _, _, err := e.svc.PutPartner(context.Background(), control.Change{Actor: "test"}, in); err != nil {
		t.Fatal(err)
	}
	v := e.svc.State().Version
	waitFor(t, "the router to see partner "+id, func() bool { return e.router.RoutingVersion() >= v })
}

// postPSA sends body to partner with the headers of its PSA kind and
// returns the status and the answer.
func (e *env) postPSA(t *testing.T, partner string, psa domain.PSA, body []byte) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, e.hooks.URL+"/hooks/"+partner, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	switch psa {
	case domain.PSAAutotask:
		m := hmac.New(sha1.New, []byte(autotaskSecret))
		m.Write(body)
		req.Header.Set("X-Hook-Signature", "sha1="+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	case domain.PSAHaloPSA:
		req.Header.Set("Authorization", "Bearer "+haloToken)
	case domain.PSAConnectWise:
		k := sha256.Sum256([]byte(connectWiseKey))
		m := hmac.New(sha256.New, k[:])
		m.Write(body)
		req.Header.Set("X-Content-Signature", base64.StdEncoding.EncodeToString(m.Sum(nil)))
	default:
		t.Fatalf("postPSA: no signer for %s", psa)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	json.NewDecoder(resp.Body).Decode(&out)
	return resp.StatusCode, out
}

// TestDistinctUpdatesWithoutDeliveryIdentityAreBothDelivered: two updates
// of ticket 99 that differ only in the title, from a PSA that sends no
// delivery identity, are two deliveries whichever comes first: both are
// journaled, neither is answered as a duplicate, and both are applied.
func TestDistinctUpdatesWithoutDeliveryIdentityAreBothDelivered(t *testing.T) {
	bodies := map[domain.PSA]func(title string) []byte{
		domain.PSAAutotask: func(title string) []byte {
			return []byte(`{"EntityType":"Ticket","Action":"Update","Id":99,"Fields":{"Title":"` + title + `"}}`)
		},
		domain.PSAHaloPSA: func(title string) []byte {
			return []byte(`{"event":"Ticket Updated","object_id":99,"ticket":{"id":99,"summary":"` + title + `"}}`)
		},
	}
	e := newEnv(t)
	e.putPartner(t, "at-ab", domain.PSAAutotask, autotaskSecret)
	e.putPartner(t, "at-ba", domain.PSAAutotask, autotaskSecret)
	e.putPartner(t, "halo-ab", domain.PSAHaloPSA, "bearer:"+haloToken)
	e.putPartner(t, "halo-ba", domain.PSAHaloPSA, "bearer:"+haloToken)
	tests := []struct {
		partner string
		psa     domain.PSA
		titles  []string
	}{
		{"at-ab", domain.PSAAutotask, []string{"a", "b"}},
		{"at-ba", domain.PSAAutotask, []string{"b", "a"}},
		{"halo-ab", domain.PSAHaloPSA, []string{"a", "b"}},
		{"halo-ba", domain.PSAHaloPSA, []string{"b", "a"}},
	}
	for _, tt := range tests {
		t.Run(tt.partner, func(t *testing.T) {
			for _, title := range tt.titles {
				status, ans := e.postPSA(t, tt.partner, tt.psa, bodies[tt.psa](title))
				if status != http.StatusAccepted {
					t.Fatalf("title %q: status = %d %v, want 202", title, status, ans)
				}
				evs, _ := ans["events"].([]any)
				if len(evs) != 1 {
					t.Fatalf("title %q: answer %v, want one event", title, ans)
				}
				if dup, _ := evs[0].(map[string]any)["duplicate"].(bool); dup {
					t.Errorf("title %q: answered as a duplicate of the other update", title)
				}
			}
			// A byte-identical resend is still a duplicate.
			_, ans := e.postPSA(t, tt.partner, tt.psa, bodies[tt.psa](tt.titles[1]))
			if evs, _ := ans["events"].([]any); len(evs) != 1 || evs[0].(map[string]any)["duplicate"] != true {
				t.Errorf("resend: answer %v, want one duplicate event", ans)
			}
		})
	}
	waitFor(t, "every update applied", func() bool { return e.pendingCount(t) == 0 && e.legacy.Applications() == 2*len(tests) })
	if got := len(e.legacy.EventsApplied("ticket/99")); got != 2*len(tests) {
		t.Errorf("events applied to ticket/99 = %d, want %d", got, 2*len(tests))
	}
}

// TestConnectWiseCallbackForAnotherCompanyIsRefused: a connectwise partner
// bound to its company through the control service takes callbacks for it
// and refuses, with 401 and nothing journaled, a correctly signed callback
// for another company or for none.
func TestConnectWiseCallbackForAnotherCompanyIsRefused(t *testing.T) {
	e := newEnv(t)
	key := connectWiseKey
	e.putPartnerInput(t, control.PartnerInput{ID: "cw", Name: "cw", PSA: domain.PSAConnectWise, Secret: &key, CompanyID: "acmemsp"})
	callback := func(msg, company string) []byte {
		return []byte(`{"MessageId":"` + msg + `",` + company + `"Type":"ticket","Action":"updated","ID":98765,"Entity":null}`)
	}
	tests := []struct {
		name   string
		body   []byte
		status int
		code   string
	}{
		{"another company", callback("m-1", `"CompanyId":"globexmsp",`), http.StatusUnauthorized, "wrong_company"},
		{"no company", callback("m-2", ``), http.StatusUnauthorized, "missing_company"},
		{"its company", callback("m-3", `"CompanyId":"acmemsp",`), http.StatusAccepted, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, ans := e.postPSA(t, "cw", domain.PSAConnectWise, tt.body)
			if status != tt.status {
				t.Fatalf("status = %d %v, want %d", status, ans, tt.status)
			}
			if tt.code != "" {
				if got, _ := ans["error"].(map[string]any)["code"].(string); got != tt.code {
					t.Errorf("code = %q, want %q", got, tt.code)
				}
			}
		})
	}
	st, err := e.journal.Stats(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.Events != 1 {
		t.Errorf("journal holds %d events, want 1 (the callback for the partner's company)", st.Events)
	}
}
