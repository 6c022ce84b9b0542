package control

import (
	"context"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/psaapi"
)

// PartnerInput is what a client sets on a partner. A nil Secret keeps the
// partner's secret.
type PartnerInput struct {
	ID     string
	Name   string
	PSA    domain.PSA
	Secret *string
	// CompanyID binds a connectwise partner to its ConnectWise company
	// (see domain.Partner); "" leaves it unbound.
	CompanyID string
	// PSAAPI replaces the partner's PSA API access; a zero PSAAPI ({} in
	// JSON) removes it, and nil keeps it, as a nil Secret keeps the
	// secret: a client that writes back the partner it read, which never
	// holds the credentials, cannot remove them by mistake.
	PSAAPI *domain.PSAAPI
}

// PutPartner creates or updates a partner and reports whether it created it.
// It returns an invalid_argument error when a field is not valid
// (domain.Partner.Validate), when the psaApi is not usable for the
// partner's PSA (psaapi.FromPartner), or when psa changes and the partner's
// psaApi, kept, was for the old one.
func (s *Service) PutPartner(ctx context.Context, c Change, in PartnerInput) (domain.Partner, bool, error) {
	var out domain.Partner
	var created bool
	_, err := s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		p := domain.Partner{ID: in.ID, Name: in.Name, PSA: in.PSA, CompanyID: in.CompanyID, CreatedAt: now, UpdatedAt: now}
		old, exists := cur.Partners[in.ID]
		if exists {
			p.CreatedAt, p.Secret = old.CreatedAt, old.Secret
		}
		if in.Secret != nil {
			p.Secret = *in.Secret
		}
		if exists {
			p.PSAAPI = old.PSAAPI
		}
		if in.PSAAPI != nil {
			p.PSAAPI = nil
			if !in.PSAAPI.IsZero() {
				a := *in.PSAAPI
				p.PSAAPI = &a
			}
		}
		if err := p.Validate(); err != nil {
			return plan{}, err
		}
		if p.PSAAPI != nil {
			if exists && in.PSAAPI == nil && old.PSA != p.PSA {
				return plan{}, domain.Errorf(domain.CodeInvalid,
					"the partner's psaApi is for %s: send a psaApi for %s with the new psa, or {} to remove it", old.PSA, p.PSA)
			}
			if _, err := psaapi.FromPartner(p); err != nil {
				return plan{}, err
			}
		}
		created = !exists
		out = p
		if exists && old.Name == p.Name && old.PSA == p.PSA && old.Secret == p.Secret && old.CompanyID == p.CompanyID &&
			samePSAAPI(old.PSAAPI, p.PSAAPI) {
			out = *old
			return plan{}, nil
		}
		rec := record{action: "partner.create", target: "partner/" + p.ID, after: partnerView(p)}
		if exists {
			rec.action, rec.before = "partner.update", partnerView(*old)
		}
		return plan{
			next:    cur.withPartner(p),
			writes:  func(tx Tx) error { return tx.PutPartner(p) },
			records: []record{rec},
		}, nil
	})
	return out, created, err
}

func samePSAAPI(a, b *domain.PSAAPI) bool {
	if a == nil || b == nil {
		return a == b
	}
	return *a == *b
}

// partnerView is a partner as the audit log shows it: whether a secret and
// PSA API access are set, and the PSA API's host, never a credential.
func partnerView(p domain.Partner) map[string]any {
	v := map[string]any{"id": p.ID, "name": p.Name, "psa": p.PSA, "secretSet": p.Secret != "", "psaApiSet": p.PSAAPI != nil}
	if p.CompanyID != "" {
		v["companyId"] = p.CompanyID
	}
	if h := p.PSAAPI.Host(); h != "" {
		v["psaApiHost"] = h
	}
	return v
}
