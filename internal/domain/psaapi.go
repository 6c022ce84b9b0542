package domain

import (
	"fmt"
	"log/slog"
	"net/url"
	"strings"
)

// PSAAPI is how switchback reaches a partner's PSA API to ask it what
// changed (reconciliation): the API's base URL and the credentials the
// partner's PSA needs. Which fields a PSA uses and what base URL it
// accepts is package psaapi's rule (psaapi.FromPartner), not this type's:
// Validate checks only what holds for every PSA.
//
// Every field but BaseURL and Tenant is a credential. The API never
// returns a PSAAPI, the audit log shows only whether a partner has one and
// its host, and String, GoString, Format and LogValue print the host and
// the names of the credentials that are set, never a value nor the rest of
// the URL (a feed's path may hold a token).
type PSAAPI struct {
	BaseURL string `json:"baseUrl"`
	// Tenant is the HaloPSA tenant, for hosted instances that need one.
	Tenant string `json:"tenant,omitempty"`

	CompanyID       string `json:"companyId,omitempty"`       // connectwise
	PublicKey       string `json:"publicKey,omitempty"`       // connectwise
	PrivateKey      string `json:"privateKey,omitempty"`      // connectwise
	ClientID        string `json:"clientId,omitempty"`        // connectwise, halopsa
	Username        string `json:"username,omitempty"`        // autotask
	Secret          string `json:"secret,omitempty"`          // autotask
	IntegrationCode string `json:"integrationCode,omitempty"` // autotask
	ClientSecret    string `json:"clientSecret,omitempty"`    // halopsa
	Token           string `json:"token,omitempty"`           // generic
}

// Bounds of a PSAAPI's fields, in characters: far above any vendor's
// (ConnectWise keys have 16, an Autotask secret a few dozen), low enough
// that a partner stays a small record.
const (
	maxPSAAPIURL   = 2048
	maxPSAAPIField = 1024
)

// psaAPIField is one field of a PSAAPI, by its JSON name.
type psaAPIField struct{ name, value string }

// credentials returns a's credential fields, set or not, by their JSON
// names, in the order of the type.
func (a PSAAPI) credentials() []psaAPIField {
	return []psaAPIField{
		{"companyId", a.CompanyID}, {"publicKey", a.PublicKey}, {"privateKey", a.PrivateKey},
		{"clientId", a.ClientID}, {"username", a.Username}, {"secret", a.Secret},
		{"integrationCode", a.IntegrationCode}, {"clientSecret", a.ClientSecret}, {"token", a.Token},
	}
}

// IsZero reports whether every field of a is empty: a PUT with such a
// psaApi removes the partner's.
func (a PSAAPI) IsZero() bool { return a == PSAAPI{} }

// Validate checks what every PSA asks of its fields: UTF-8 text without
// control characters (they go into HTTP headers and forms) or surrounding
// spaces (a pasted credential with a trailing newline would be refused by
// the PSA at every reconciliation), the base URL at most 2048 characters
// and every other field at most 1024. It returns an invalid_argument
// error naming the field, never its value.
func (a PSAAPI) Validate() error {
	fields := append([]psaAPIField{{"baseUrl", a.BaseURL}, {"tenant", a.Tenant}}, a.credentials()...)
	for _, f := range fields {
		max := maxPSAAPIField
		if f.name == "baseUrl" {
			max = maxPSAAPIURL
		}
		if err := CheckText("psaApi."+f.name, f.value, max); err != nil {
			return err
		}
		if strings.TrimSpace(f.value) != f.value {
			return Errorf(CodeInvalid, "psaApi.%s must not start or end with spaces", f.name)
		}
	}
	return nil
}

// Host returns the host (and port) of a's base URL, "" when a is nil or
// its URL has none. It is all of a that the audit log and the UI show.
func (a *PSAAPI) Host() string {
	if a == nil {
		return ""
	}
	u, err := url.Parse(a.BaseURL)
	if err != nil {
		return ""
	}
	return u.Host
}

// set names the credentials a holds.
func (a PSAAPI) set() []string {
	var names []string
	for _, f := range a.credentials() {
		if f.value != "" {
			names = append(names, f.name)
		}
	}
	return names
}

// String prints the base URL's host, the tenant and which credentials are
// set.
func (a PSAAPI) String() string {
	return fmt.Sprintf("PSAAPI{host: %s, tenant: %s, credentials set: [%s] (redacted)}", a.Host(), a.Tenant, strings.Join(a.set(), " "))
}

// GoString is String, so that %#v redacts too.
func (a PSAAPI) GoString() string { return a.String() }

// Format makes every verb print String: without it, %+v and %x of a
// PSAAPI would print its fields.
func (a PSAAPI) Format(s fmt.State, _ rune) { _, _ = s.Write([]byte(a.String())) }

// LogValue redacts the credentials in log/slog records, whatever the
// handler.
func (a PSAAPI) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("host", a.Host()),
		slog.String("tenant", a.Tenant),
		slog.String("credentialsSet", strings.Join(a.set(), " ")),
	)
}
