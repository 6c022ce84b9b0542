package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
)

// Every PSA API credential of the tests below holds "CRED-", and the
// generic feed's URL path does too: none may be in an answer, the audit
// log or a log line.
const credMark = "CRED-"

func cwPSAAPI() obj {
	return obj{"baseUrl": "https://api-na.myconnectwise.net", "companyId": "CRED-company", "publicKey": "CRED-public",
		"privateKey": "CRED-private", "clientId": "CRED-client"}
}

func partnerWithAPI(psa string, api obj) obj {
	return obj{"name": "Acme", "psa": psa, "psaApi": api, "reason": "reconcile"}
}

// A partner's PSA API access is write-only: no answer holds it, for any
// role, whatever the path; the partner's views say psaApiSet.
func TestPartnerPSAAPINeverReturned(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	f.putCohort(t, "tickets", "first", 1, "acme")
	put := f.must(t, http.StatusOK, "admin", http.MethodPut, "/v1/partners/acme",
		partnerWithAPI("generic", obj{"baseUrl": "https://feed.example/CRED-path", "token": "CRED-token"}), nil)
	f.must(t, http.StatusOK, "admin", http.MethodPut, "/v1/partners/globex",
		obj{"name": "Globex", "psa": "connectwise", "psaApi": cwPSAAPI()}, nil)

	paths := []string{"/v1/partners/acme", "/v1/partners/globex", "/v1/partners", "/v1/audit?limit=1000",
		mig + "/partners", mig + "/cohorts", "/v1/snapshot"}
	for _, as := range []string{"viewer", "operator", "admin", "router"} {
		for _, path := range paths {
			t.Run(as+" "+path, func(t *testing.T) {
				res := f.call(t, as, http.MethodGet, path, nil)
				if res.status != http.StatusOK {
					t.Fatalf("got %s, want 200", res)
				}
				if bytes.Contains(res.body, []byte(credMark)) || bytes.Contains(res.body, []byte(`"psaApi"`)) {
					t.Errorf("the answer holds the PSA API access: %s", res.body)
				}
			})
		}
	}
	t.Run("views say psaApiSet", func(t *testing.T) {
		var list []map[string]any
		f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/partners", nil, &list)
		want := map[string]bool{"acme": true, "globex": true, "initech": false}
		for _, p := range list {
			if got := p["psaApiSet"]; got != want[p["id"].(string)] {
				t.Errorf("partner %v: psaApiSet %v, want %v", p["id"], got, want[p["id"].(string)])
			}
		}
		var view map[string]any
		if err := json.Unmarshal(put.body, &view); err != nil {
			t.Fatal(err)
		}
		if view["psaApiSet"] != true || bytes.Contains(put.body, []byte(credMark)) {
			t.Errorf("PUT answer %s: want psaApiSet true and no credential", put.body)
		}
	})
	t.Run("audit shows the host", func(t *testing.T) {
		log := f.auditLog(t, 0)
		last := log[len(log)-1]
		var after map[string]any
		if err := json.Unmarshal(last.After, &after); err != nil {
			t.Fatal(err)
		}
		if after["psaApiSet"] != true || after["psaApiHost"] != "api-na.myconnectwise.net" {
			t.Errorf("last audit entry after = %s, want psaApiSet and the host", last.After)
		}
	})
}

// The snapshot stream's first event carries no PSA API access, not even
// to routers, which get the webhook secrets.
func TestStreamCarriesNoPSAAPI(t *testing.T) {
	e := newStreamEnv(t)
	secret := "whsec-stream"
	api := domain.PSAAPI{BaseURL: "https://acme.halopsa.com", ClientID: "CRED-client", ClientSecret: "CRED-clientsecret"}
	if _, _, err := e.svc.PutPartner(context.Background(), control.Change{Actor: "test"},
		control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAHaloPSA, Secret: &secret, PSAAPI: &api}); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{e.viewer, e.router} {
		ev := subscribe(t, e, tok, "").next(t)
		if ev.event != "snapshot" || !strings.Contains(ev.data, `"acme"`) {
			t.Fatalf("first event %+v, want the snapshot with acme", ev)
		}
		if strings.Contains(ev.data, credMark) || strings.Contains(ev.data, "halopsa.com") {
			t.Errorf("the stream's first event holds the PSA API access: %s", ev.data)
		}
	}
}

// psaApi is read with the body's rules, and checked per the partner's PSA;
// leaving it out or null keeps it, {} removes it.
func TestPutPartnerPSAAPIInput(t *testing.T) {
	f := newFixture(t)
	f.seed(t)
	tests := []struct {
		name string
		body obj
		want string
	}{
		{"not an object", withField(partnerWithAPI("generic", nil), "psaApi", "CRED-token"), `field "psaApi" must be`},
		{"field of the wrong type", partnerWithAPI("generic", obj{"baseUrl": "https://feed.example", "token": 42}), `field "psaApi.token" must be a string`},
		{"unknown field", partnerWithAPI("generic", obj{"baseUrl": "https://feed.example", "bearer": "CRED-token"}), `unknown field "bearer"`},
		{"field in another case", partnerWithAPI("generic", obj{"baseUrl": "https://feed.example", "Token": "CRED-token"}), `unknown field "Token" in psaApi`},
		{"connectwise without keys", partnerWithAPI("connectwise", obj{"baseUrl": "https://api-na.myconnectwise.net", "companyId": "CRED-company"}),
			"psaApi: connectwise needs publicKey, privateKey, clientId"},
		{"autotask without secret", partnerWithAPI("autotask", obj{"baseUrl": "https://webservices5.autotask.net/atservicesrest", "username": "CRED-user", "integrationCode": "CRED-code"}),
			"psaApi: autotask needs secret"},
		{"halopsa with a token", partnerWithAPI("halopsa", obj{"baseUrl": "https://acme.halopsa.com", "clientId": "CRED-client", "clientSecret": "CRED-clientsecret", "token": "CRED-token"}),
			"psaApi: token is not for halopsa"},
		{"generic over plain http", partnerWithAPI("generic", obj{"baseUrl": "http://feed.example/changes", "token": "CRED-token"}),
			"baseUrl must be https (http only to a loopback address)"},
		{"no base url", partnerWithAPI("generic", obj{"token": "CRED-token"}), "baseUrl is not an absolute URL"},
		{"secret too long", partnerWithAPI("autotask", obj{"baseUrl": "https://webservices5.autotask.net/atservicesrest", "username": "CRED-user",
			"secret": strings.Repeat("s", 1025), "integrationCode": "CRED-code"}), "psaApi.secret is longer than 1024 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.lastSeq(t)
			res := f.call(t, "admin", http.MethodPut, "/v1/partners/acme", tt.body)
			env := checkError(t, res, http.StatusBadRequest, "invalid_argument")
			if env.Error == nil || !strings.Contains(env.Error.Message, tt.want) {
				t.Errorf("error: got %s, want a message with %q", res.body, tt.want)
			}
			if bytes.Contains(res.body, []byte(credMark)) {
				t.Errorf("the error holds a credential: %s", res.body)
			}
			if got := f.lastSeq(t); got != before {
				t.Errorf("audit seq %d after a refused PUT, want %d", got, before)
			}
		})
	}

	setOf := func(t *testing.T) any {
		t.Helper()
		var v map[string]any
		f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/partners/globex", nil, &v)
		return v["psaApiSet"]
	}
	f.must(t, http.StatusOK, "admin", http.MethodPut, "/v1/partners/globex", obj{"name": "Globex", "psa": "connectwise", "psaApi": cwPSAAPI()}, nil)
	seq := f.lastSeq(t)
	f.must(t, http.StatusOK, "admin", http.MethodPut, "/v1/partners/globex", obj{"name": "Globex", "psa": "connectwise"}, nil)
	f.must(t, http.StatusOK, "admin", http.MethodPut, "/v1/partners/globex", obj{"name": "Globex", "psa": "connectwise", "psaApi": nil}, nil)
	if got := setOf(t); got != true || f.lastSeq(t) != seq {
		t.Errorf("after PUTs without psaApi and with null: psaApiSet %v, audit seq %d; want true and %d (kept, nothing written)", got, f.lastSeq(t), seq)
	}
	f.must(t, http.StatusOK, "admin", http.MethodPut, "/v1/partners/globex", obj{"name": "Globex", "psa": "connectwise", "psaApi": obj{}}, nil)
	if got := setOf(t); got != false {
		t.Errorf("after PUT psaApi {}: psaApiSet %v, want false", got)
	}
}

// Nothing logs a PSA API credential: not a PUT that succeeds, not one
// refused, not one that fails inside (the store closed under it), at any
// level, with the JSON handler that would print a struct's every field.
func TestPSAAPINotLogged(t *testing.T) {
	var logs bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	store, err := boltstore.Open(filepath.Join(t.TempDir(), "switchback.db"), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	svc, err := control.New(ctx, store, control.Options{Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Bootstrap(ctx, adminSecret); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(httpapi.New(svc, logger, prometheus.NewRegistry()))
	t.Cleanup(srv.Close)
	f := &fixture{svc: svc, srv: srv, tok: map[string]string{"admin": adminSecret}}

	f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/partners/acme", partnerWithAPI("connectwise", cwPSAAPI()), nil)
	bad := cwPSAAPI()
	delete(bad, "privateKey")
	bad["token"] = "CRED-token"
	f.must(t, http.StatusBadRequest, "admin", http.MethodPut, "/v1/partners/acme", partnerWithAPI("connectwise", bad), nil)
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	other := cwPSAAPI()
	other["privateKey"] = "CRED-private-rotated"
	res := f.call(t, "admin", http.MethodPut, "/v1/partners/acme", partnerWithAPI("connectwise", other))
	if res.status < 500 {
		t.Fatalf("PUT on a closed store: got %s, want a 5xx", res)
	}
	if !strings.Contains(logs.String(), "request failed") {
		t.Fatalf("the failed PUT was not logged, so this test checks nothing: %s", logs.String())
	}
	if strings.Contains(logs.String(), credMark) {
		t.Errorf("the log holds a PSA API credential:\n%s", logs.String())
	}
}
