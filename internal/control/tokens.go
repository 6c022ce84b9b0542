package control

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// tokenPrefix marks switchback tokens so secret scanners can find leaked ones.
const tokenPrefix = "sbk_"

// NewSecret returns a fresh random token secret.
func NewSecret() string {
	b := make([]byte, 32)
	rand.Read(b) // never fails, per crypto/rand
	return tokenPrefix + base64.RawURLEncoding.EncodeToString(b)
}

func hashSecret(secret string) []byte {
	h := sha256.Sum256([]byte(secret))
	return h[:]
}

func (s *Service) setTokens(ts []domain.Token) {
	m := make(map[string]domain.Token, len(ts))
	for _, t := range ts {
		m[hex.EncodeToString(t.Hash)] = t
	}
	s.tokens.Store(&m)
}

// Authenticate returns the token whose secret is secret, or an
// unauthenticated error.
func (s *Service) Authenticate(secret string) (domain.Token, error) {
	h := hashSecret(secret)
	// The lookup is by hash, so its timing tells nothing about the secret;
	// the comparison is constant-time all the same.
	key := hex.EncodeToString(h)
	t, ok := (*s.tokens.Load())[key]
	if !ok {
		if eph := s.ephemeral.Load(); eph != nil {
			t, ok = (*eph)[key]
		}
	}
	if !ok || subtle.ConstantTimeCompare(t.Hash, h) != 1 {
		return domain.Token{}, domain.Errorf(domain.CodeUnauthenticated, "the token is not valid")
	}
	return t, nil
}

// Tokens lists the tokens, by name, without their hashes.
func (s *Service) Tokens() []domain.Token {
	ts := slices.Collect(maps.Values(*s.tokens.Load()))
	for i := range ts {
		ts[i].Hash = nil
	}
	slices.SortFunc(ts, func(a, b domain.Token) int { return strings.Compare(a.Name, b.Name) })
	return ts
}

// systemActors are the audit actors of what switchback does itself: no
// token may take their names, so that the audit log never leaves in doubt
// whether a person or switchback acted (and an approval of the
// autopilot's change request never counts as the autopilot's own).
var systemActors = []string{"guard", "control", "bootstrap", "reconciler", AutopilotActor, domain.ChangeActor}

// CreateToken creates a token and returns it with its secret, which is
// shown only here. An existing name is a conflict.
func (s *Service) CreateToken(ctx context.Context, c Change, name string, role domain.Role) (domain.Token, string, error) {
	return s.createToken(ctx, c, name, role, NewSecret())
}

func (s *Service) createToken(ctx context.Context, c Change, name string, role domain.Role, secret string) (domain.Token, string, error) {
	if err := domain.CheckID("token", name); err != nil {
		return domain.Token{}, "", err
	}
	if slices.Contains(systemActors, name) {
		return domain.Token{}, "", domain.Errorf(domain.CodeInvalid, "token name %q is the actor switchback audits its own changes with: choose another name", name)
	}
	if _, err := domain.ParseRole(string(role)); err != nil {
		return domain.Token{}, "", err
	}
	var out domain.Token
	_, err := s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		tokens := maps.Clone(*s.tokens.Load())
		for _, t := range tokens {
			if t.Name == name {
				return plan{}, domain.Errorf(domain.CodeConflict, "token %q exists: revoke it first to replace it", name)
			}
		}
		h := hashSecret(secret)
		if _, taken := tokens[hex.EncodeToString(h)]; taken {
			return plan{}, domain.Errorf(domain.CodeConflict, "that secret is already in use")
		}
		out = domain.Token{Name: name, Role: role, Hash: h, CreatedAt: now}
		tokens[hex.EncodeToString(h)] = out
		return plan{
			writes:  func(tx Tx) error { return tx.PutToken(out) },
			records: []record{{action: "token.create", target: "token/" + name, after: map[string]any{"name": name, "role": role}}},
			tokens:  &tokens,
		}, nil
	})
	out.Hash = nil
	return out, secret, err
}

// DeleteToken revokes the named token.
func (s *Service) DeleteToken(ctx context.Context, c Change, name string) error {
	_, err := s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		tokens := maps.Clone(*s.tokens.Load())
		admins := 0
		for _, t := range tokens {
			if t.Role == domain.RoleAdmin {
				admins++
			}
		}
		for h, t := range tokens {
			if t.Name == name {
				if t.Role == domain.RoleAdmin && admins == 1 {
					return plan{}, domain.Errorf(domain.CodeConflict, "token %q is the last admin token: create another admin token before revoking it", name)
				}
				delete(tokens, h)
				return plan{
					writes:  func(tx Tx) error { return tx.DeleteToken(name) },
					records: []record{{action: "token.revoke", target: "token/" + name, before: map[string]any{"name": name, "role": t.Role}}},
					tokens:  &tokens,
				}, nil
			}
		}
		return plan{}, domain.Errorf(domain.CodeNotFound, "token %q does not exist", name)
	})
	return err
}

// Bootstrap creates the admin token "admin" when the store holds no token.
// It uses secret when given, else a random one, and returns the secret and
// true only when it created the token.
func (s *Service) Bootstrap(ctx context.Context, secret string) (string, bool, error) {
	if len(*s.tokens.Load()) > 0 {
		return "", false, nil
	}
	if secret == "" {
		secret = NewSecret()
	}
	_, sec, err := s.createToken(ctx, Change{Actor: "bootstrap", Reason: "first start"}, "admin", domain.RoleAdmin, secret)
	if domain.ErrorCode(err) == domain.CodeConflict && len(*s.tokens.Load()) > 0 {
		return "", false, nil // another replica, starting at the same time, made it
	}
	if err != nil {
		return "", false, err
	}
	return sec, true, nil
}

// AddEphemeralToken registers a token that lives in this process's memory
// only, and returns its secret: the credential of an ingress router
// embedded in the same process. It is never stored, listed or audited, and
// is gone when the process exits.
func (s *Service) AddEphemeralToken(name string, role domain.Role) string {
	secret := NewSecret()
	h := hashSecret(secret)
	s.mu.Lock()
	defer s.mu.Unlock()
	m := map[string]domain.Token{}
	if eph := s.ephemeral.Load(); eph != nil {
		m = maps.Clone(*eph)
	}
	m[hex.EncodeToString(h)] = domain.Token{Name: name, Role: role, Hash: h, CreatedAt: s.now().UTC()}
	s.ephemeral.Store(&m)
	return secret
}
