package psaapi

import (
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Config is how to reach one partner's PSA API. Which fields are needed
// depends on PSA (see Validate). Every field but PSA, BaseURL and Tenant is
// a credential: String, GoString and LogValue print none of them, so a
// Config may be logged or formatted with %v, %+v or %#v.
type Config struct {
	PSA domain.PSA
	// BaseURL: ConnectWise, the site's API host (e.g.
	// https://api-na.myconnectwise.net), or a URL that already ends in
	// /v4_6_release/apis/3.0 (or another codebase's /apis/3.0); Autotask,
	// the zone's REST URL (e.g.
	// https://webservices5.autotask.net/atservicesrest); HaloPSA, the
	// instance (e.g. https://acme.halopsa.com), under which /auth/token
	// and /api are; generic, the change feed's URL itself. https, or http
	// to a loopback address only: credentials never cross a network in
	// clear.
	BaseURL string
	// Tenant is the HaloPSA tenant, sent as ?tenant= to the token
	// endpoint; hosted Halo instances may need it, self-hosted ones do not.
	Tenant string

	CompanyID       string // connectwise: the company id of the login
	PublicKey       string // connectwise: the API member's public key
	PrivateKey      string // connectwise: the API member's private key
	ClientID        string // connectwise: the clientId header; halopsa: client_id
	Username        string // autotask: the API user (UserName header)
	Secret          string // autotask: the API user's secret (Secret header)
	IntegrationCode string // autotask: the tracking identifier (ApiIntegrationCode)
	ClientSecret    string // halopsa: client_secret
	Token           string // generic: the bearer token
}

// required names, per PSA, the credential fields Validate asks for, by
// their names in the partner's psaApi object.
func (c Config) required() []struct {
	name string
	v    string
} {
	type f = struct {
		name string
		v    string
	}
	switch c.PSA {
	case domain.PSAConnectWise:
		return []f{{"companyId", c.CompanyID}, {"publicKey", c.PublicKey}, {"privateKey", c.PrivateKey}, {"clientId", c.ClientID}}
	case domain.PSAAutotask:
		return []f{{"username", c.Username}, {"secret", c.Secret}, {"integrationCode", c.IntegrationCode}}
	case domain.PSAHaloPSA:
		return []f{{"clientId", c.ClientID}, {"clientSecret", c.ClientSecret}}
	case domain.PSAGeneric:
		return []f{{"token", c.Token}}
	}
	return nil
}

// Validate checks that the configuration names a known PSA, a usable
// BaseURL and every credential that PSA needs. The error wraps
// ErrInvalidConfig and names the missing fields, never their values.
func (c Config) Validate() error {
	if p := c.problem(); p != "" {
		return fmt.Errorf("psaapi: %w: %s", ErrInvalidConfig, p)
	}
	return nil
}

// problem says what Validate refuses in c, "" when nothing, in words that
// name fields and never print a credential.
func (c Config) problem() string {
	if !c.PSA.Valid() {
		return fmt.Sprintf("psa %q is unknown: use connectwise, autotask, halopsa or generic", truncate(string(c.PSA)))
	}
	if _, err := parseBaseURL(c.BaseURL); err != nil {
		return fmt.Sprintf("%s: baseUrl %v", c.PSA, err)
	}
	var missing []string
	for _, f := range c.required() {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.name)
		}
	}
	if len(missing) > 0 {
		return fmt.Sprintf("%s needs %s", c.PSA, strings.Join(missing, ", "))
	}
	return ""
}

// parseBaseURL accepts an absolute https URL, or http to a loopback host
// (a simulator or a test), without user info, query or fragment.
func parseBaseURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("is not an absolute URL")
	}
	if u.User != nil || u.RawQuery != "" || u.Fragment != "" {
		return nil, fmt.Errorf("must hold no user info, query or fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !loopback(u.Hostname()) {
			return nil, fmt.Errorf("must be https (http only to a loopback address)")
		}
	default:
		return nil, fmt.Errorf("must be https")
	}
	return u, nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// host is the base URL's host only: a feed's path may hold a token.
func (c Config) host() string {
	if u, err := url.Parse(c.BaseURL); err == nil {
		return u.Host
	}
	return "(unparsable)"
}

// String prints the PSA, the base URL's host and which credentials are set.
func (c Config) String() string {
	var set []string
	for _, f := range c.credentials() {
		if f.v != "" {
			set = append(set, f.name)
		}
	}
	return fmt.Sprintf("psaapi.Config{PSA: %s, host: %s, Tenant: %s, credentials set: [%s] (redacted)}",
		c.PSA, c.host(), c.Tenant, strings.Join(set, " "))
}

// GoString is String, so that %#v redacts too.
func (c Config) GoString() string { return c.String() }

// Format makes every verb print String: without it, %+v and %d of a
// Config would print its fields.
func (c Config) Format(s fmt.State, _ rune) { _, _ = s.Write([]byte(c.String())) }

// LogValue redacts the credentials in log/slog records.
func (c Config) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("psa", string(c.PSA)),
		slog.String("host", c.host()),
		slog.String("tenant", c.Tenant),
		slog.String("credentials", "redacted"),
	)
}

func (c Config) credentials() []struct {
	name string
	v    string
} {
	return []struct {
		name string
		v    string
	}{
		{"companyId", c.CompanyID}, {"publicKey", c.PublicKey}, {"privateKey", c.PrivateKey},
		{"clientId", c.ClientID}, {"username", c.Username}, {"secret", c.Secret},
		{"integrationCode", c.IntegrationCode}, {"clientSecret", c.ClientSecret}, {"token", c.Token},
	}
}

// New returns the Source of cfg's PSA, calling it with hc
// (http.DefaultClient when nil; give one with a timeout). Redirects are
// not followed, so credentials go to BaseURL's host only. It returns an
// error wrapping ErrInvalidConfig when cfg does not Validate.
func New(cfg Config, hc *http.Client) (Source, error) {
	return newSource(cfg, hc, defaultRetry())
}

func newSource(cfg Config, hc *http.Client, r retryPolicy) (Source, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	base, _ := parseBaseURL(cfg.BaseURL)
	if hc == nil {
		hc = http.DefaultClient
	}
	// A copy that refuses redirects: a PSA (or whatever answers in its
	// place) must not be able to send the Authorization header, or
	// Autotask's Secret, to another host.
	noRedirect := *hc
	noRedirect.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c := &caller{hc: &noRedirect, retry: r, psa: cfg.PSA}
	switch cfg.PSA {
	case domain.PSAConnectWise:
		return newConnectWise(c, base, cfg), nil
	case domain.PSAAutotask:
		return newAutotask(c, base, cfg), nil
	case domain.PSAHaloPSA:
		return newHalo(c, base, cfg), nil
	default:
		return newGeneric(c, base, cfg), nil
	}
}
