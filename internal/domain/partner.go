package domain

import (
	"log/slog"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// PSA names the partner's professional services automation tool; it picks the
// webhook format and signature scheme.
type PSA string

const (
	PSAConnectWise PSA = "connectwise"
	PSAAutotask    PSA = "autotask"
	PSAHaloPSA     PSA = "halopsa"
	PSAGeneric     PSA = "generic"
)

// Valid reports whether p is one of the known PSA kinds.
func (p PSA) Valid() bool {
	switch p {
	case PSAConnectWise, PSAAutotask, PSAHaloPSA, PSAGeneric:
		return true
	}
	return false
}

// Partner is a tenant whose PSA sends webhooks. Secret verifies them; it is
// write-only through the API and never logged. PSAAPI, when set, reaches
// the partner's PSA API; write-only and never logged too.
type Partner struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	PSA    PSA    `json:"psa"`
	Secret string `json:"secret,omitempty"`
	// CompanyID binds a ConnectWise partner to its ConnectWise company: a
	// callback is accepted only when its company identification (CompanyId,
	// else ProductInstanceId) is this one. A signature checked with a key
	// fetched from the callback's Metadata.key_url proves that ConnectWise
	// sent it, not for which company. Empty: not bound. Only for
	// connectwise partners.
	CompanyID string    `json:"companyId,omitempty"`
	PSAAPI    *PSAAPI   `json:"psaApi,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// maxCompanyIDLen bounds a partner's CompanyID.
const maxCompanyIDLen = 128

// Validate checks the partner's fields.
func (p Partner) Validate() error {
	if err := CheckID("partner", p.ID); err != nil {
		return err
	}
	if p.Name == "" {
		return Errorf(CodeInvalid, "partner name must be 1 to 200 characters")
	}
	if err := CheckText("partner name", p.Name, 200); err != nil {
		return err
	}
	if !p.PSA.Valid() {
		return Errorf(CodeInvalid, "psa %q is unknown: use connectwise, autotask, halopsa or generic", p.PSA)
	}
	if len(p.Secret) > 4096 {
		return Errorf(CodeInvalid, "secret is longer than 4096 bytes")
	}
	if p.CompanyID != "" {
		if p.PSA != PSAConnectWise {
			return Errorf(CodeInvalid, "companyId is only for connectwise partners, not %s", p.PSA)
		}
		if err := checkCompanyID(p.CompanyID); err != nil {
			return err
		}
	}
	if p.PSAAPI != nil {
		if err := p.PSAAPI.Validate(); err != nil {
			return err
		}
	}
	return nil
}

// LogValue is what a log/slog record shows of a partner: whether its
// secret and PSA API access are set, never them. Without it a JSON
// handler would print every field.
func (p Partner) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("id", p.ID),
		slog.String("psa", string(p.PSA)),
		slog.Bool("secretSet", p.Secret != ""),
		slog.Bool("psaApiSet", p.PSAAPI != nil),
	)
}

// checkCompanyID refuses a company id that no callback could carry: too
// long, not UTF-8, blank at either end, or with control characters.
func checkCompanyID(id string) error {
	if len(id) > maxCompanyIDLen {
		return Errorf(CodeInvalid, "companyId is longer than %d bytes", maxCompanyIDLen)
	}
	if !utf8.ValidString(id) || strings.TrimSpace(id) != id {
		return Errorf(CodeInvalid, "companyId must be UTF-8 without surrounding spaces")
	}
	for _, r := range id {
		if unicode.IsControl(r) {
			return Errorf(CodeInvalid, "companyId must not hold control characters")
		}
	}
	return nil
}
