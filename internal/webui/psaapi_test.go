package webui_test

import (
	"strings"
	"testing"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// The UI says whether a partner's PSA API is configured and on which
// host, and shows nothing else of it on any page, to any role.
func TestPagesShowNoPSAAPICredential(t *testing.T) {
	f := newFixture(t, fixtureOptions{})
	api := domain.PSAAPI{BaseURL: "https://api-na.myconnectwise.net/CRED-path", CompanyID: "CRED-company",
		PublicKey: "CRED-public", PrivateKey: "CRED-private", ClientID: "CRED-client"}
	if _, _, err := f.svc.PutPartner(ctx, setup, control.PartnerInput{ID: "acme", Name: "Acme MSP", PSA: domain.PSAConnectWise, PSAAPI: &api}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"/migrations/" + mig + "/partners/acme":   "<dt>PSA API</dt><dd>configured (api-na.myconnectwise.net)</dd>",
		"/migrations/" + mig + "/partners/globex": "<dt>PSA API</dt><dd>not configured</dd>",
	}
	for _, role := range []string{"viewer", "operator", "admin"} {
		c := f.client(t)
		c.login(role)
		for _, path := range []string{"/", "/migrations/" + mig, "/migrations/" + mig + "/partners/acme",
			"/migrations/" + mig + "/partners/globex", "/audit", "/ui/state.json"} {
			res := c.get(path)
			if res.status != 200 {
				t.Fatalf("%s as %s: status %d", path, role, res.status)
			}
			if strings.Contains(res.body, "CRED-") {
				t.Errorf("%s as %s shows a PSA API credential", path, role)
			}
			if w, ok := want[path]; ok && !strings.Contains(res.body, w) {
				t.Errorf("%s as %s lacks %q", path, role, w)
			}
		}
	}
}
