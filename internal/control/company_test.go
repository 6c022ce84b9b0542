package control_test

import (
	"encoding/json"
	"path/filepath"
	"testing"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// TestPartnerCompanyID: a connectwise partner's companyId is stored,
// survives a restart, is in every snapshot (the router checks callbacks
// against it), and a change of it alone is a change of the partner.
func TestPartnerCompanyID(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	store := bolttest.OpenAt(t, path)
	svc, err := control.New(ctx, store, control.Options{Now: newClock().Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	key := "cw-signing-key"
	in := control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise, Secret: &key, CompanyID: "acmemsp"}
	if _, created, err := svc.PutPartner(ctx, admin, in); err != nil || !created {
		t.Fatalf("PutPartner = created %v, %v", created, err)
	}
	for _, withSecrets := range []bool{false, true} {
		var s wire.Snapshot
		if err := json.Unmarshal(svc.State().SnapshotJSON(withSecrets), &s); err != nil {
			t.Fatal(err)
		}
		if got := s.Partners["acme"].CompanyID; got != "acmemsp" {
			t.Errorf("snapshot (secrets %v): companyId = %q, want acmemsp", withSecrets, got)
		}
	}

	v := svc.State().Version
	if _, _, err := svc.PutPartner(ctx, admin, in); err != nil || svc.State().Version != v {
		t.Errorf("the same PUT again: err %v, version %d, want %d", err, svc.State().Version, v)
	}
	in.CompanyID = "acme-msp"
	if _, _, err := svc.PutPartner(ctx, admin, in); err != nil || svc.State().Version != v+1 {
		t.Errorf("a new companyId: err %v, version %d, want %d", err, svc.State().Version, v+1)
	}

	bad := control.PartnerInput{ID: "globex", Name: "Globex", PSA: domain.PSAAutotask, CompanyID: "globexmsp"}
	if _, _, err := svc.PutPartner(ctx, admin, bad); domain.ErrorCode(err) != domain.CodeInvalid {
		t.Errorf("companyId on an autotask partner: err %v, want %s", err, domain.CodeInvalid)
	}

	if err := store.Close(); err != nil {
		t.Fatal(err)
	}
	svc2, err := control.New(ctx, bolttest.OpenAt(t, path), control.Options{Now: newClock().Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	p, err := svc2.State().Partner("acme")
	if err != nil {
		t.Fatal(err)
	}
	if p.CompanyID != "acme-msp" {
		t.Errorf("companyId after restart = %q, want acme-msp", p.CompanyID)
	}
}
