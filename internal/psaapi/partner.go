package psaapi

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/switchbackhq/switchback/internal/domain"
)

// ErrNoPSAAPI is wrapped by FromPartner when a partner has no psaApi:
// switchback has no way to ask its PSA what changed.
var ErrNoPSAAPI = errors.New("the partner has no PSA API access")

// FromPartner returns the Config that reaches p's PSA API: p's PSA with
// its psaApi. It is the one rule for a partner's psaApi, applied by the
// control service when an admin sets one and by whatever asks the PSA
// before it does. The errors are domain errors of code invalid_argument
// whose messages name fields, never their values: wrapping ErrNoPSAAPI
// when p has no psaApi, and ErrInvalidConfig when Validate refuses the
// Config or the psaApi sets a field p's PSA does not use (a token on a
// connectwise partner was meant for another partner, or for another PSA).
func FromPartner(p domain.Partner) (Config, error) {
	if p.PSAAPI == nil {
		return Config{}, &domain.Error{Code: domain.CodeInvalid,
			Message: fmt.Sprintf("partner %q has no psaApi: an admin sets it with PUT /v1/partners/%s", p.ID, p.ID), Err: ErrNoPSAAPI}
	}
	a := p.PSAAPI
	c := Config{PSA: p.PSA, BaseURL: a.BaseURL, Tenant: a.Tenant,
		CompanyID: a.CompanyID, PublicKey: a.PublicKey, PrivateKey: a.PrivateKey, ClientID: a.ClientID,
		Username: a.Username, Secret: a.Secret, IntegrationCode: a.IntegrationCode,
		ClientSecret: a.ClientSecret, Token: a.Token}
	if p := c.problem(); p != "" {
		return Config{}, &domain.Error{Code: domain.CodeInvalid, Message: "psaApi: " + p, Err: ErrInvalidConfig}
	}
	if extra := c.unused(); len(extra) > 0 {
		return Config{}, &domain.Error{Code: domain.CodeInvalid, Err: ErrInvalidConfig,
			Message: fmt.Sprintf("psaApi: %s %s not for %s, which takes baseUrl, %s",
				strings.Join(extra, ", "), plural(len(extra), "is", "are"), c.PSA, strings.Join(c.fields(), ", "))}
	}
	return c, nil
}

// fields names the fields of a partner's psaApi that c's PSA takes, but
// baseUrl.
func (c Config) fields() []string {
	var names []string
	for _, f := range c.required() {
		names = append(names, f.name)
	}
	if c.PSA == domain.PSAHaloPSA {
		names = append(names, "tenant (optional)")
	}
	return names
}

// unused names the fields set in c that its PSA does not take.
func (c Config) unused() []string {
	var names []string
	for _, f := range c.credentials() {
		if f.v != "" && !slices.ContainsFunc(c.required(), func(r struct{ name, v string }) bool { return r.name == f.name }) {
			names = append(names, f.name)
		}
	}
	if c.Tenant != "" && c.PSA != domain.PSAHaloPSA {
		names = append(names, "tenant")
	}
	return names
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
