package domain

import "time"

// Role is what a token may do. Viewer, operator and admin each include the
// ones before them; router stands apart.
type Role string

const (
	RoleViewer   Role = "viewer"
	RoleOperator Role = "operator"
	RoleAdmin    Role = "admin"
	// RoleRouter reads the snapshot with webhook secrets and posts reports.
	RoleRouter Role = "router"
)

// ParseRole returns the role named s or an invalid_argument error.
func ParseRole(s string) (Role, error) {
	switch r := Role(s); r {
	case RoleViewer, RoleOperator, RoleAdmin, RoleRouter:
		return r, nil
	}
	return "", Errorf(CodeInvalid, "role %q is unknown: use viewer, operator, admin or router", s)
}

// Allows reports whether a token of role r may act where need is required.
// A router may also read like a viewer, so one token serves an ingress router;
// only a router is given partners' secrets, not even an admin.
func (r Role) Allows(need Role) bool {
	if need == RoleRouter {
		return r == RoleRouter
	}
	if r == RoleRouter {
		return need == RoleViewer
	}
	rank := map[Role]int{RoleViewer: 1, RoleOperator: 2, RoleAdmin: 3}
	return rank[r] >= rank[need] && rank[need] > 0
}

// Token is an API credential. Only the SHA-256 of its secret is stored.
type Token struct {
	Name      string    `json:"name"`
	Role      Role      `json:"role"`
	Hash      []byte    `json:"hash"`
	CreatedAt time.Time `json:"createdAt"`
}
