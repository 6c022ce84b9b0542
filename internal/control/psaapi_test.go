package control_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

func cwAPI(suffix string) domain.PSAAPI {
	return domain.PSAAPI{BaseURL: "https://api-na.myconnectwise.net", CompanyID: "CRED-company" + suffix,
		PublicKey: "CRED-public" + suffix, PrivateKey: "CRED-private" + suffix, ClientID: "CRED-client" + suffix}
}

// noCredential fails t when s holds any of the credentials the tests below
// set ("CRED-…").
func noCredential(t *testing.T, what, s string) {
	t.Helper()
	if strings.Contains(s, "CRED-") {
		t.Errorf("%s holds a PSA API credential: %s", what, s)
	}
}

// An admin sets a partner's PSA API access, replaces it, keeps it by
// leaving it out, and removes it with {}; the audit log shows whether it
// is set and its host, never a credential, and the snapshot never holds
// it, not even the routers'.
func TestPutPartnerPSAAPI(t *testing.T) {
	e := newEnv(t, nil)
	first := cwAPI("-1")
	in := control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise, PSAAPI: &first}
	p, created, err := e.svc.PutPartner(ctx, admin, in)
	if err != nil || !created {
		t.Fatalf("create with psaApi: created %v, err %v", created, err)
	}
	if diff := cmp.Diff(&first, p.PSAAPI); diff != "" {
		t.Errorf("created partner's psaApi (-want +got):\n%s", diff)
	}
	first.PrivateKey = "changed by the caller afterwards"
	if got := e.svc.State().Partners["acme"].PSAAPI.PrivateKey; got != "CRED-private-1" {
		t.Errorf("state's private key = %q after the caller changed its input: the state must own its copy", got)
	}

	t.Run("left out: kept, a no-op", func(t *testing.T) {
		got, _, err := e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise})
		if err != nil || got.PSAAPI == nil || got.PSAAPI.PrivateKey != "CRED-private-1" {
			t.Fatalf("PUT without psaApi = %v, %v; want the psaApi kept", got.PSAAPI, err)
		}
		same := cwAPI("-1")
		if _, _, err := e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise, PSAAPI: &same}); err != nil {
			t.Fatal(err)
		}
		e.unchanged(t, 1, 1)
	})

	t.Run("refused: nothing written, no credential in the error", func(t *testing.T) {
		tests := []struct {
			name string
			in   control.PartnerInput
			want string
		}{
			{"missing keys", control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise,
				PSAAPI: &domain.PSAAPI{BaseURL: "https://api-na.myconnectwise.net", CompanyID: "CRED-c", ClientID: "CRED-x"}},
				"psaApi: connectwise needs publicKey, privateKey"},
			{"plain http", control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise,
				PSAAPI: func() *domain.PSAAPI { a := cwAPI("-2"); a.BaseURL = "http://cw.example"; return &a }()},
				"baseUrl must be https"},
			{"another PSA's fields", control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise,
				PSAAPI: func() *domain.PSAAPI { a := cwAPI("-2"); a.Token = "CRED-token"; return &a }()},
				"token is not for connectwise"},
			{"control character", control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise,
				PSAAPI: func() *domain.PSAAPI { a := cwAPI("-2"); a.PrivateKey = "CRED\nX: y"; return &a }()},
				"psaApi.privateKey holds the control character"},
			{"psa changed, psaApi kept", control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAGeneric},
				"the partner's psaApi is for connectwise: send a psaApi for generic"},
			{"new partner with an incomplete psaApi", control.PartnerInput{ID: "globex", Name: "Globex", PSA: domain.PSAGeneric,
				PSAAPI: &domain.PSAAPI{BaseURL: "https://feed.example"}}, "psaApi: generic needs token"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				_, _, err := e.svc.PutPartner(ctx, admin, tt.in)
				wantCode(t, err, domain.CodeInvalid)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("err = %v, want it to say %q", err, tt.want)
				} else {
					noCredential(t, "the error", err.Error())
				}
				e.unchanged(t, 1, 1)
			})
		}
	})

	second := cwAPI("-2")
	if _, _, err := e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise, PSAAPI: &second}); err != nil {
		t.Fatalf("replace: %v", err)
	}
	if got := e.svc.State().Partners["acme"].PSAAPI.PublicKey; got != "CRED-public-2" {
		t.Errorf("public key after replacing = %q, want CRED-public-2", got)
	}
	gen := domain.PSAAPI{BaseURL: "http://127.0.0.1:9000/changes", Token: "CRED-token"}
	if _, _, err := e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAGeneric, PSAAPI: &gen}); err != nil {
		t.Fatalf("psa and psaApi changed together: %v", err)
	}
	snapshots := string(e.svc.State().SnapshotJSON(true)) + string(e.svc.State().SnapshotJSON(false))
	if _, _, err := e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAGeneric, PSAAPI: &domain.PSAAPI{}}); err != nil {
		t.Fatalf("remove: %v", err)
	}
	if got := e.svc.State().Partners["acme"].PSAAPI; got != nil {
		t.Errorf("psaApi after PUT {} = %v, want none", got)
	}
	noCredential(t, "the snapshots", snapshots)

	log := e.auditLog(t)
	if len(log) != 4 {
		t.Fatalf("audit entries = %d, want 4 (create, replace, change of psa, removal)", len(log))
	}
	type view struct {
		PSAAPISet  bool   `json:"psaApiSet"`
		PSAAPIHost string `json:"psaApiHost"`
	}
	wantAfter := []view{{true, "api-na.myconnectwise.net"}, {true, "api-na.myconnectwise.net"}, {true, "127.0.0.1:9000"}, {false, ""}}
	for i, entry := range log {
		noCredential(t, "audit entry "+entry.Action, string(entry.Before)+string(entry.After))
		var got view
		if err := json.Unmarshal(entry.After, &got); err != nil {
			t.Fatal(err)
		}
		if got != wantAfter[i] {
			t.Errorf("audit entry %d (%s) after = %s, want %+v", entry.Seq, entry.Action, entry.After, wantAfter[i])
		}
	}
}
