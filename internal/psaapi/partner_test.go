package psaapi

import (
	"errors"
	"strings"
	"testing"

	"github.com/switchbackhq/switchback/internal/domain"
)

// A partner's psaApi is usable when it has what the partner's PSA needs
// and nothing it does not; every refusal names the fields, never a value.
func TestFromPartner(t *testing.T) {
	cw := domain.PSAAPI{BaseURL: "https://api-na.myconnectwise.net", CompanyID: cwCompany, PublicKey: cwPublic, PrivateKey: cwPrivate, ClientID: cwClientID}
	at := domain.PSAAPI{BaseURL: "https://webservices5.autotask.net/atservicesrest", Username: atUser, Secret: atSecret, IntegrationCode: atCode}
	halo := domain.PSAAPI{BaseURL: "https://acme.halopsa.com", ClientID: haloClientID, ClientSecret: haloSecret}
	gen := domain.PSAAPI{BaseURL: "https://feed.example/changes", Token: genToken}
	with := func(a domain.PSAAPI, edit func(*domain.PSAAPI)) *domain.PSAAPI {
		edit(&a)
		return &a
	}
	cases := []struct {
		name string
		psa  domain.PSA
		api  *domain.PSAAPI
		want string // "" for usable
	}{
		{"connectwise", domain.PSAConnectWise, &cw, ""},
		{"autotask", domain.PSAAutotask, &at, ""},
		{"halopsa", domain.PSAHaloPSA, &halo, ""},
		{"halopsa with a tenant", domain.PSAHaloPSA, with(halo, func(a *domain.PSAAPI) { a.Tenant = "acme" }), ""},
		{"generic", domain.PSAGeneric, &gen, ""},
		{"generic on loopback http", domain.PSAGeneric, with(gen, func(a *domain.PSAAPI) { a.BaseURL = "http://127.0.0.1:8081/changes" }), ""},

		{"connectwise without keys", domain.PSAConnectWise, with(cw, func(a *domain.PSAAPI) { a.PublicKey, a.PrivateKey = "", "" }),
			"psaApi: connectwise needs publicKey, privateKey"},
		{"autotask without integration code", domain.PSAAutotask, with(at, func(a *domain.PSAAPI) { a.IntegrationCode = "" }),
			"psaApi: autotask needs integrationCode"},
		{"halopsa without anything", domain.PSAHaloPSA, &domain.PSAAPI{BaseURL: halo.BaseURL}, "psaApi: halopsa needs clientId, clientSecret"},
		{"generic without token", domain.PSAGeneric, &domain.PSAAPI{BaseURL: gen.BaseURL}, "psaApi: generic needs token"},
		{"no base url", domain.PSAGeneric, with(gen, func(a *domain.PSAAPI) { a.BaseURL = "" }), "baseUrl is not an absolute URL"},
		{"http to another host", domain.PSAConnectWise, with(cw, func(a *domain.PSAAPI) { a.BaseURL = "http://api-na.myconnectwise.net" }),
			"baseUrl must be https (http only to a loopback address)"},
		{"credentials in the url", domain.PSAGeneric, with(gen, func(a *domain.PSAAPI) { a.BaseURL = "https://" + genToken + ":x@feed.example/changes" }),
			"must hold no user info"},
		{"autotask fields on connectwise", domain.PSAConnectWise, with(cw, func(a *domain.PSAAPI) { a.Username, a.Secret = atUser, atSecret }),
			"psaApi: username, secret are not for connectwise, which takes baseUrl, companyId, publicKey, privateKey, clientId"},
		{"token on halopsa", domain.PSAHaloPSA, with(halo, func(a *domain.PSAAPI) { a.Token = genToken }),
			"psaApi: token is not for halopsa, which takes baseUrl, clientId, clientSecret, tenant (optional)"},
		{"tenant on generic", domain.PSAGeneric, with(gen, func(a *domain.PSAAPI) { a.Tenant = "acme" }), "psaApi: tenant is not for generic"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p := domain.Partner{ID: "acme", Name: "Acme", PSA: tc.psa, PSAAPI: tc.api}
			cfg, err := FromPartner(p)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("FromPartner: %v", err)
				}
				if cfg.PSA != tc.psa || cfg.BaseURL != tc.api.BaseURL || cfg.Tenant != tc.api.Tenant {
					t.Errorf("FromPartner = %v, want the partner's PSA, base URL and tenant", cfg)
				}
				if _, err := New(cfg, nil); err != nil {
					t.Errorf("New(FromPartner) = %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || domain.ErrorCode(err) != domain.CodeInvalid || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("FromPartner = %v (code %s), want invalid_argument wrapping ErrInvalidConfig with %q", err, domain.ErrorCode(err), tc.want)
			}
			noSecret(t, err.Error())
		})
	}
}

// The credentials each PSA needs reach the Config the clients are made
// from, field by field.
func TestFromPartnerCarriesEveryCredential(t *testing.T) {
	cases := []struct {
		psa  domain.PSA
		api  domain.PSAAPI
		want Config
	}{
		{domain.PSAConnectWise,
			domain.PSAAPI{BaseURL: "https://cw.example", CompanyID: cwCompany, PublicKey: cwPublic, PrivateKey: cwPrivate, ClientID: cwClientID},
			Config{PSA: domain.PSAConnectWise, BaseURL: "https://cw.example", CompanyID: cwCompany, PublicKey: cwPublic, PrivateKey: cwPrivate, ClientID: cwClientID}},
		{domain.PSAAutotask,
			domain.PSAAPI{BaseURL: "https://at.example", Username: atUser, Secret: atSecret, IntegrationCode: atCode},
			Config{PSA: domain.PSAAutotask, BaseURL: "https://at.example", Username: atUser, Secret: atSecret, IntegrationCode: atCode}},
		{domain.PSAHaloPSA,
			domain.PSAAPI{BaseURL: "https://halo.example", Tenant: "acme", ClientID: haloClientID, ClientSecret: haloSecret},
			Config{PSA: domain.PSAHaloPSA, BaseURL: "https://halo.example", Tenant: "acme", ClientID: haloClientID, ClientSecret: haloSecret}},
		{domain.PSAGeneric,
			domain.PSAAPI{BaseURL: "https://feed.example", Token: genToken},
			Config{PSA: domain.PSAGeneric, BaseURL: "https://feed.example", Token: genToken}},
	}
	for _, tc := range cases {
		got, err := FromPartner(domain.Partner{ID: "acme", PSA: tc.psa, PSAAPI: &tc.api})
		// Config's String redacts, so compare fields, not printouts.
		if err != nil || got != tc.want {
			t.Errorf("%s: FromPartner does not carry the credentials as given (err %v)", tc.psa, err)
		}
	}
}

// A partner without psaApi is a clear error, not a Config that fails later.
func TestFromPartnerWithoutAPI(t *testing.T) {
	_, err := FromPartner(domain.Partner{ID: "acme", Name: "Acme", PSA: domain.PSAGeneric})
	if !errors.Is(err, ErrNoPSAAPI) || domain.ErrorCode(err) != domain.CodeInvalid || !strings.Contains(err.Error(), `partner "acme" has no psaApi`) {
		t.Errorf("FromPartner(no psaApi) = %v, want invalid_argument wrapping ErrNoPSAAPI naming the partner", err)
	}
}
