package psaapi

import (
	"context"
	"errors"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"
)

// A token the API stops taking is renewed once, and the page asked again.
func TestHaloRenewsARevokedToken(t *testing.T) {
	fk := newHaloFake(t, dataset(), faults{}, true)
	cfg := Config{PSA: "halopsa", BaseURL: fk.srv.URL, ClientID: haloClientID, ClientSecret: haloSecret}
	got, err := collect(t, context.Background(), open(t, cfg, fk.srv.Client(), defaultRetry()))
	if err != nil || !slices.Equal(ids(got), wantIDs) {
		t.Fatalf("Changes: %v, ids %v, want %v", err, ids(got), wantIDs)
	}
}

// A token is renewed before it expires: the clock passes the hour between
// two pages.
func TestHaloRenewsAnExpiringToken(t *testing.T) {
	fk := newHaloFake(t, dataset(), faults{}, false)
	cfg := Config{PSA: "halopsa", BaseURL: fk.srv.URL, ClientID: haloClientID, ClientSecret: haloSecret}
	r := defaultRetry()
	now := t0
	r.now = func() time.Time { now = now.Add(20 * time.Minute); return now }
	tokens := 0
	hc := fk.srv.Client()
	base := hc.Transport
	hc.Transport = roundTripper(func(req *http.Request) (*http.Response, error) {
		if req.URL.Path == "/auth/token" {
			tokens++
		}
		return base.RoundTrip(req)
	})
	got, err := collect(t, context.Background(), open(t, cfg, hc, r))
	if err != nil || !slices.Equal(ids(got), wantIDs) {
		t.Fatalf("Changes: %v, ids %v, want %v", err, ids(got), wantIDs)
	}
	if tokens < 2 {
		t.Errorf("%d token requests over several expiries, want more than one", tokens)
	}
}

// OAuth2 refuses a wrong client with 400 invalid_client.
func TestHaloTokenRefused(t *testing.T) {
	fk := newHaloFake(t, dataset(), faults{}, false)
	cfg := Config{PSA: "halopsa", BaseURL: fk.srv.URL, ClientID: haloClientID, ClientSecret: "wrong-SECRET11"}
	_, err := collect(t, context.Background(), open(t, cfg, fk.srv.Client(), defaultRetry()))
	if !errors.Is(err, ErrCredentialsRefused) || !strings.Contains(err.Error(), "auth/token") {
		t.Fatalf("err %v, want ErrCredentialsRefused at auth/token", err)
	}
	if strings.Contains(err.Error(), "wrong-SECRET11") {
		t.Errorf("err %q holds the secret", err)
	}
	if fk.requests != 0 {
		t.Errorf("%d ticket requests without a token", fk.requests)
	}
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }
