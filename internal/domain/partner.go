package domain

import "time"

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
// write-only through the API and never logged.
type Partner struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	PSA       PSA       `json:"psa"`
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

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
	return nil
}
