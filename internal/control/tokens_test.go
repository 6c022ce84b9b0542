package control_test

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchbackhq/switchback/internal/domain"
)

func TestTokens(t *testing.T) {
	e := newEnv(t, nil)
	if got := e.svc.Tokens(); len(got) != 0 {
		t.Errorf("Tokens() on an empty store = %v", got)
	}
	secret, created, err := e.svc.Bootstrap(ctx, "")
	if err != nil || !created || !strings.HasPrefix(secret, "sbk_") || len(secret) < 40 {
		t.Fatalf("Bootstrap = %q, %v, %v; want a fresh sbk_ secret", secret, created, err)
	}
	if again, created, err := e.svc.Bootstrap(ctx, "x"); err != nil || created || again != "" {
		t.Errorf("second Bootstrap = %q, %v, %v; want nothing created", again, created, err)
	}
	v := e.svc.State().Version

	for range 3 { // the same answer each time
		tok, err := e.svc.Authenticate(secret)
		if err != nil {
			t.Fatalf("Authenticate(admin) = %v", err)
		}
		want := domain.Token{Name: "admin", Role: domain.RoleAdmin, CreatedAt: e.clock.Now()}
		if diff := cmp.Diff(want, tok, cmpopts.IgnoreFields(domain.Token{}, "Hash")); diff != "" {
			t.Errorf("Authenticate (-want +got):\n%s", diff)
		}
	}

	tok, opsSecret, err := e.svc.CreateToken(ctx, admin, "ops", domain.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	if tok.Hash != nil || tok.Name != "ops" || tok.Role != domain.RoleOperator || opsSecret == secret {
		t.Errorf("CreateToken = %+v, %q", tok, opsSecret)
	}
	if got, err := e.svc.Authenticate(opsSecret); err != nil || got.Name != "ops" || got.Role != domain.RoleOperator {
		t.Errorf("Authenticate(ops) = %+v, %v", got, err)
	}

	wrong := []struct{ name, secret string }{
		{"empty", ""},
		{"one character changed", secret[:len(secret)-1] + string(rune(secret[len(secret)-1])^1)},
		{"prefix", secret[:len(secret)-1]},
		{"suffix added", secret + "x"},
		{"another token's hash", "sbk_nothing"},
	}
	for _, tt := range wrong {
		t.Run("unauthenticated: "+tt.name, func(t *testing.T) {
			_, err := e.svc.Authenticate(tt.secret)
			wantCode(t, err, domain.CodeUnauthenticated)
		})
	}

	t.Run("list has no hashes", func(t *testing.T) {
		want := []domain.Token{
			{Name: "admin", Role: domain.RoleAdmin, CreatedAt: e.clock.Now()},
			{Name: "ops", Role: domain.RoleOperator, CreatedAt: e.clock.Now()},
		}
		if diff := cmp.Diff(want, e.svc.Tokens()); diff != "" {
			t.Errorf("Tokens() (-want +got):\n%s", diff)
		}
	})
	t.Run("create errors", func(t *testing.T) {
		_, _, err := e.svc.CreateToken(ctx, admin, "ops", domain.RoleViewer)
		wantCode(t, err, domain.CodeConflict)
		_, _, err = e.svc.CreateToken(ctx, admin, "Bad Name", domain.RoleViewer)
		wantCode(t, err, domain.CodeInvalid)
		_, _, err = e.svc.CreateToken(ctx, admin, "x", domain.Role("root"))
		wantCode(t, err, domain.CodeInvalid)
	})
	t.Run("revoke", func(t *testing.T) {
		if err := e.svc.DeleteToken(ctx, admin, "ops"); err != nil {
			t.Fatal(err)
		}
		_, err := e.svc.Authenticate(opsSecret)
		wantCode(t, err, domain.CodeUnauthenticated)
		wantCode(t, e.svc.DeleteToken(ctx, admin, "ops"), domain.CodeNotFound)
	})
	t.Run("last admin", func(t *testing.T) {
		wantCode(t, e.svc.DeleteToken(ctx, admin, "admin"), domain.CodeConflict)
		if _, err := e.svc.Authenticate(secret); err != nil {
			t.Errorf("the last admin token stopped working after a refused revoke: %v", err)
		}
		_, admin2, err := e.svc.CreateToken(ctx, admin, "admin2", domain.RoleAdmin)
		if err != nil {
			t.Fatal(err)
		}
		if err := e.svc.DeleteToken(ctx, admin, "admin"); err != nil {
			t.Errorf("revoke one of two admins = %v", err)
		}
		wantCode(t, e.svc.DeleteToken(ctx, admin, "admin2"), domain.CodeConflict)
		if _, err := e.svc.Authenticate(admin2); err != nil {
			t.Errorf("Authenticate(admin2) = %v", err)
		}
	})

	t.Run("audited without secrets, no snapshot version", func(t *testing.T) {
		log := e.auditLog(t)
		var actions []string
		for _, entry := range log {
			actions = append(actions, entry.Action)
			raw := string(entry.Before) + string(entry.After) + entry.Reason
			for _, s := range []string{secret, opsSecret} {
				if strings.Contains(raw, s) {
					t.Errorf("audit entry %d holds a token secret", entry.Seq)
				}
			}
		}
		want := []string{"token.create", "token.create", "token.revoke", "token.create", "token.revoke"}
		if !slices.Equal(actions, want) {
			t.Errorf("audit actions = %v, want %v", actions, want)
		}
		if got := e.svc.State().Version; got != v {
			t.Errorf("version = %d, want %d: tokens are not in the snapshot", got, v)
		}
	})
}
