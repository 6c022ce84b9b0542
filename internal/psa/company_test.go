package psa

import (
	"context"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// TestDecodeConnectWiseCompany: a partner bound to a ConnectWise company
// takes only callbacks for that company, whether the key is configured or
// fetched from Metadata.key_url (which proves that ConnectWise signed the
// callback, not for which of its tenants).
func TestDecodeConnectWiseCompany(t *testing.T) {
	srv, _ := keyServer(t, connectWiseKey)
	d := testDecoder()
	d.Keys = NewKeyCache([]string{"127.0.0.1"}, srv.Client(), 0)
	d.Keys.Timeout = 10 * time.Second // shared test machines are slow under -race

	callback := func(company string) string {
		return `{"MessageId":"m-1",` + company + `"Type":"ticket","Action":"updated","ID":98765,"Entity":null,` +
			`"Metadata":{"key_url":"` + srv.URL + `/key"}}`
	}
	tests := []struct {
		name      string
		companyID string
		body      string
		code      string // "" when accepted
	}{
		{"its company", "acmemsp", callback(`"CompanyId":"acmemsp",`), ""},
		{"its company in another case", "acmemsp", callback(`"CompanyId":"AcmeMSP",`), ""},
		{"its product instance", "2b4f6a9e-1c3d", callback(`"ProductInstanceId":"2b4f6a9e-1c3d",`), ""},
		{"another company", "acmemsp", callback(`"CompanyId":"globexmsp",`), domain.CodeWrongCompany},
		{"a company id that only starts with it", "acmemsp", callback(`"CompanyId":"acmemsp2",`), domain.CodeWrongCompany},
		{"CompanyId decides over ProductInstanceId", "2b4f6a9e-1c3d",
			callback(`"CompanyId":"globexmsp","ProductInstanceId":"2b4f6a9e-1c3d",`), domain.CodeWrongCompany},
		{"another product instance", "2b4f6a9e-1c3d", callback(`"ProductInstanceId":"9f8e",`), domain.CodeWrongCompany},
		{"no company", "acmemsp", callback(``), domain.CodeMissingCompany},
		{"blank company", "acmemsp", callback(`"CompanyId":" ",`), domain.CodeMissingCompany},
		{"company not a scalar", "acmemsp", callback(`"CompanyId":{"id":"acmemsp"},`), domain.CodeMissingCompany},
		{"malformed for another company", "acmemsp", `{"MessageId":"m-1","CompanyId":"globexmsp","Type":"ticket",` +
			`"Metadata":{"key_url":"` + srv.URL + `/key"}}`, domain.CodeWrongCompany},
		{"unbound partner, any company", "", callback(`"CompanyId":"globexmsp",`), ""},
		{"unbound partner, no company", "", callback(``), ""},
	}
	for _, key := range []struct{ name, secret string }{{"configured key", connectWiseKey}, {"fetched key", ""}} {
		for _, tt := range tests {
			t.Run(key.name+"/"+tt.name, func(t *testing.T) {
				body := []byte(tt.body)
				p := Partner{Kind: KindConnectWise, Secret: key.secret, CompanyID: tt.companyID}
				envs, err := d.DecodePartner(context.Background(), p, connectWiseHeaders(connectWiseKey, body), body)
				if tt.code == "" {
					if err != nil {
						t.Fatalf("DecodePartner: %v", err)
					}
					checkEnvelopes(t, envs)
					return
				}
				if envs != nil {
					t.Errorf("DecodePartner returned envelopes with an error: %v", envs)
				}
				wantError(t, err, 401, tt.code, connectWiseKey)
			})
		}
	}

	// The signature is checked first: a forged callback naming the right
	// company is refused as forged.
	body := []byte(callback(`"CompanyId":"acmemsp",`))
	forged := connectWiseHeaders("not-the-key", body)
	_, err := d.DecodePartner(context.Background(), Partner{Kind: KindConnectWise, Secret: connectWiseKey, CompanyID: "acmemsp"}, forged, body)
	wantError(t, err, 401, domain.CodeBadSignature)
}
