package control

import (
	"context"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
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
}

// PutPartner creates or updates a partner and reports whether it created it.
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
		if err := p.Validate(); err != nil {
			return plan{}, err
		}
		created = !exists
		out = p
		if exists && old.Name == p.Name && old.PSA == p.PSA && old.Secret == p.Secret && old.CompanyID == p.CompanyID {
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

// partnerView is a partner as the audit log shows it: whether a secret is
// set, never the secret.
func partnerView(p domain.Partner) map[string]any {
	v := map[string]any{"id": p.ID, "name": p.Name, "psa": p.PSA, "secretSet": p.Secret != ""}
	if p.CompanyID != "" {
		v["companyId"] = p.CompanyID
	}
	return v
}
