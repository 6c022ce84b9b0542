package domain

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

// Credentials of the tests below: each must never be printed.
var psaCredentials = []string{"CRED-company", "CRED-public", "CRED-private", "CRED-client", "CRED-user",
	"CRED-secret", "CRED-code", "CRED-clientsecret", "CRED-token", "CRED-path"}

func fullPSAAPI() PSAAPI {
	return PSAAPI{BaseURL: "https://psa.example:8443/CRED-path", Tenant: "acme-tenant",
		CompanyID: "CRED-company", PublicKey: "CRED-public", PrivateKey: "CRED-private", ClientID: "CRED-client",
		Username: "CRED-user", Secret: "CRED-secret", IntegrationCode: "CRED-code", ClientSecret: "CRED-clientsecret", Token: "CRED-token"}
}

func TestPSAAPIValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*PSAAPI)
		want string // "" for valid
	}{
		{"every field", func(*PSAAPI) {}, ""},
		{"longest base URL", func(a *PSAAPI) { a.BaseURL = "https://x.example/" + strings.Repeat("p", 2048-18) }, ""},
		{"base URL too long", func(a *PSAAPI) { a.BaseURL = "https://x.example/" + strings.Repeat("p", 2048-17) }, "psaApi.baseUrl is longer than 2048 characters"},
		{"longest credential", func(a *PSAAPI) { a.PrivateKey = strings.Repeat("k", 1024) }, ""},
		{"credential too long", func(a *PSAAPI) { a.ClientSecret = strings.Repeat("k", 1025) }, "psaApi.clientSecret is longer than 1024 characters"},
		{"newline in a secret", func(a *PSAAPI) { a.Secret = "CRED\r\nX-Injected: 1" }, "psaApi.secret holds the control character"},
		{"trailing newline", func(a *PSAAPI) { a.Token = "CRED-token\n" }, "psaApi.token holds the control character"},
		{"surrounding spaces", func(a *PSAAPI) { a.Username = " CRED-user" }, "psaApi.username must not start or end with spaces"},
		{"not UTF-8", func(a *PSAAPI) { a.IntegrationCode = "CRED\xff" }, "psaApi.integrationCode is not valid UTF-8"},
		{"tenant too long", func(a *PSAAPI) { a.Tenant = strings.Repeat("t", 1025) }, "psaApi.tenant is longer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := fullPSAAPI()
			tt.edit(&a)
			err := Partner{ID: "acme", Name: "Acme", PSA: PSAGeneric, PSAAPI: &a}.Validate()
			if tt.want == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if ErrorCode(err) != CodeInvalid || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Validate() = %v, want invalid_argument with %q", err, tt.want)
			}
			for _, c := range psaCredentials {
				if strings.Contains(err.Error(), c) {
					t.Errorf("error %q holds the credential %q", err, c)
				}
			}
		})
	}
}

func TestPSAAPIHost(t *testing.T) {
	tests := []struct {
		a    *PSAAPI
		want string
	}{
		{nil, ""},
		{&PSAAPI{BaseURL: "https://acme.halopsa.com"}, "acme.halopsa.com"},
		{&PSAAPI{BaseURL: "https://user:CRED@psa.example:8443/path?token=CRED"}, "psa.example:8443"},
		{&PSAAPI{BaseURL: "not a url"}, ""},
		{&PSAAPI{BaseURL: "%zz"}, ""},
	}
	for _, tt := range tests {
		if got := tt.a.Host(); got != tt.want {
			t.Errorf("Host(%v) = %q, want %q", tt.a, got, tt.want)
		}
	}
}

// No way of printing a PSAAPI, or a Partner holding one, shows a
// credential or the base URL's path: not fmt with any verb, not slog with
// either handler.
func TestPSAAPIRedacts(t *testing.T) {
	a := fullPSAAPI()
	p := Partner{ID: "acme", Name: "Acme", PSA: PSAConnectWise, PSAAPI: &a}
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, a), fmt.Sprintf(verb, &a), fmt.Sprintf(verb, []PSAAPI{a}),
			fmt.Sprintf(verb, p), fmt.Sprintf(verb, &p))
	}
	outs = append(outs, fmt.Sprint(a), fmt.Sprintln(struct{ A *PSAAPI }{&a}), a.String(), a.GoString())
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("psa", "api", a, "ptr", &a, "partner", p)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("psa", "api", a, "ptr", &a, "partner", p, "partnerPtr", &p)
	outs = append(outs, buf.String())
	for _, out := range outs {
		for _, c := range psaCredentials {
			if strings.Contains(out, c) {
				t.Errorf("%q holds the credential %q", out, c)
			}
		}
	}
	if s := a.String(); !strings.Contains(s, "psa.example:8443") || !strings.Contains(s, "privateKey") || !strings.Contains(s, "redacted") {
		t.Errorf("String() = %q, want the host and which credentials are set", s)
	}
	if !strings.Contains(buf.String(), `"psaApiSet":true`) {
		t.Errorf("slog JSON of a partner %s: want psaApiSet", buf.String())
	}
}
