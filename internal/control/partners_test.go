package control_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

func TestPutPartner(t *testing.T) {
	e := newEnv(t, nil)
	secret := "s1"
	p, created, err := e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise, Secret: &secret})
	if err != nil || !created {
		t.Fatalf("create: created %v, err %v; want true, nil", created, err)
	}
	want := domain.Partner{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise, Secret: "s1", CreatedAt: e.clock.Now(), UpdatedAt: e.clock.Now()}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("created partner (-want +got):\n%s", diff)
	}
	if got := e.svc.State().Version; got != 1 {
		t.Errorf("version after create = %d, want 1", got)
	}

	later := e.clock.Advance(time.Minute)
	p, created, err = e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "acme", Name: "Acme Corp", PSA: domain.PSAAutotask})
	if err != nil || created {
		t.Fatalf("update: created %v, err %v; want false, nil", created, err)
	}
	want = domain.Partner{ID: "acme", Name: "Acme Corp", PSA: domain.PSAAutotask, Secret: "s1", CreatedAt: want.CreatedAt, UpdatedAt: later}
	if diff := cmp.Diff(want, p); diff != "" {
		t.Errorf("updated partner, nil secret keeps it (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(&want, e.svc.State().Partners["acme"]); diff != "" {
		t.Errorf("state's partner (-want +got):\n%s", diff)
	}
	if got := e.svc.State().Version; got != 2 {
		t.Errorf("version after update = %d, want 2", got)
	}

	tests := []struct {
		name string
		in   control.PartnerInput
	}{
		{"same fields, secret kept", control.PartnerInput{ID: "acme", Name: "Acme Corp", PSA: domain.PSAAutotask}},
		{"same fields, same secret", control.PartnerInput{ID: "acme", Name: "Acme Corp", PSA: domain.PSAAutotask, Secret: &secret}},
	}
	for _, tt := range tests {
		t.Run("no-op: "+tt.name, func(t *testing.T) {
			e.clock.Advance(time.Minute)
			got, created, err := e.svc.PutPartner(ctx, admin, tt.in)
			if err != nil || created {
				t.Fatalf("created %v, err %v; want false, nil", created, err)
			}
			if diff := cmp.Diff(want, got); diff != "" {
				t.Errorf("no-op returns the stored partner (-want +got):\n%s", diff)
			}
			e.unchanged(t, 2, 2)
		})
	}

	log := e.auditLog(t)
	if got, want := []string{log[0].Action, log[1].Action}, []string{"partner.create", "partner.update"}; !slices.Equal(got, want) {
		t.Errorf("audit actions = %v, want %v", got, want)
	}
	for _, entry := range log {
		if strings.Contains(string(entry.Before)+string(entry.After), "s1") {
			t.Errorf("audit entry %d shows the secret: before %s after %s", entry.Seq, entry.Before, entry.After)
		}
		if entry.Actor != "admin" || entry.Reason != "test setup" || entry.Target != "partner/acme" {
			t.Errorf("audit entry %d: actor %q reason %q target %q", entry.Seq, entry.Actor, entry.Reason, entry.Target)
		}
	}

	t.Run("invalid", func(t *testing.T) {
		_, _, err := e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "Bad", Name: "x", PSA: domain.PSAGeneric})
		wantCode(t, err, domain.CodeInvalid)
		_, _, err = e.svc.PutPartner(ctx, admin, control.PartnerInput{ID: "ok", Name: "x", PSA: "servicenow"})
		wantCode(t, err, domain.CodeInvalid)
		e.unchanged(t, 2, 2)
	})
}
