package control_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

func TestRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	store, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	svc, err := control.New(ctx, store, control.Options{Now: c.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{svc: svc, store: store, clock: c}
	adminSecret, created, err := svc.Bootstrap(ctx, "sbk_bootstrap-secret")
	if err != nil || !created || adminSecret != "sbk_bootstrap-secret" {
		t.Fatalf("Bootstrap = %q, %v, %v", adminSecret, created, err)
	}
	_, opsSecret, err := svc.CreateToken(ctx, admin, "ops", domain.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	setupStages(t, e)
	e.cohort(t, "m", "wave-1", 1, "p-shadow", "p-new")
	e.cohort(t, "m", "wave-0", 0, "p-done")
	c.Advance(time.Hour)
	if _, err := svc.Revert(ctx, ops, "n"); err != nil {
		t.Fatal(err)
	}

	before := svc.State()
	tokensBefore := svc.Tokens()
	logBefore := e.auditLog(t)
	evalBefore := map[string]map[string]flags.Resolution{"m": evaluateAll(before, "m"), "n": evaluateAll(before, "n")}

	bolttest.Check(t, store.DB())
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	c.Advance(time.Hour)
	store2 := bolttest.OpenAt(t, path)
	svc2, err := control.New(ctx, store2, control.Options{Now: c.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("control.New after restart: %v", err)
	}
	e2 := &env{svc: svc2, store: store2, clock: c}
	after := svc2.State()

	if after.Version != before.Version {
		t.Errorf("version after restart = %d, want %d", after.Version, before.Version)
	}
	if diff := cmp.Diff(before.Partners, after.Partners); diff != "" {
		t.Errorf("partners after restart (-before +after):\n%s", diff)
	}
	if diff := cmp.Diff(before.MigrationKeys(), after.MigrationKeys()); diff != "" {
		t.Errorf("migration order after restart (-before +after):\n%s", diff)
	}
	for _, k := range before.MigrationKeys() {
		b, a := before.Migrations[k], after.Migrations[k]
		if a == nil {
			t.Errorf("migration %s lost", k)
			continue
		}
		if diff := cmp.Diff(b.Migration, a.Migration); diff != "" {
			t.Errorf("migration %s after restart (-before +after):\n%s", k, diff)
		}
		if diff := cmp.Diff(b.Stages, a.Stages); diff != "" {
			t.Errorf("stages of %s, with since, after restart (-before +after):\n%s", k, diff)
		}
		if diff := cmp.Diff(b.Cohorts, a.Cohorts, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("cohorts of %s after restart (-before +after):\n%s", k, diff)
		}
		for _, p := range before.PartnerIDs() {
			if b.CohortOf(p) != a.CohortOf(p) {
				t.Errorf("CohortOf(%s) in %s = %q after restart, want %q", p, k, a.CohortOf(p), b.CohortOf(p))
			}
			if diff := cmp.Diff(b.StageOf(before.Partners[p]), a.StageOf(after.Partners[p])); diff != "" {
				t.Errorf("StageOf(%s) in %s after restart (-before +after):\n%s", p, k, diff)
			}
		}
		if diff := cmp.Diff(evalBefore[k], evaluateAll(after, k)); diff != "" {
			t.Errorf("evaluations of %s after restart (-before +after):\n%s", k, diff)
		}
	}
	if !after.Migrations["n"].Reverted || after.Migrations["m"].Reverted {
		t.Errorf("kill switches after restart: m %v n %v, want false, true", after.Migrations["m"].Reverted, after.Migrations["n"].Reverted)
	}
	if diff := cmp.Diff(tokensBefore, svc2.Tokens()); diff != "" {
		t.Errorf("tokens after restart (-before +after):\n%s", diff)
	}
	for secret, name := range map[string]string{adminSecret: "admin", opsSecret: "ops"} {
		tok, err := svc2.Authenticate(secret)
		if err != nil || tok.Name != name {
			t.Errorf("Authenticate(%s's secret) after restart = %+v, %v", name, tok, err)
		}
	}
	if _, err := svc2.Authenticate("sbk_wrong"); domain.ErrorCode(err) != domain.CodeUnauthenticated {
		t.Errorf("Authenticate(wrong) after restart = %v", err)
	}
	if _, created, err := svc2.Bootstrap(ctx, "other"); err != nil || created {
		t.Errorf("Bootstrap after restart created a token: %v, %v", created, err)
	}
	if diff := cmp.Diff(logBefore, e2.auditLog(t)); diff != "" {
		t.Errorf("audit log after restart (-before +after):\n%s", diff)
	}

	// More changes: versions and the audit chain continue.
	if _, err := svc2.Resume(ctx, ops, "n"); err != nil {
		t.Fatal(err)
	}
	if _, err := svc2.SetStage(ctx, ops, "m", "p-done", domain.StageShadow, false); err != nil {
		t.Fatal(err)
	}
	e2.partner(t, "p-after")
	if err := svc2.DeleteToken(ctx, admin, "ops"); err != nil {
		t.Fatal(err)
	}
	if got, want := svc2.State().Version, before.Version+3; got != want {
		t.Errorf("version after three more changes = %d, want %d", got, want)
	}
	log := e2.auditLog(t) // verifies the whole chain from seq 1
	if got, want := len(log), len(logBefore)+4; got != want {
		t.Fatalf("audit entries = %d, want %d", got, want)
	}
	if log[len(logBefore)].PrevHash != logBefore[len(logBefore)-1].Hash {
		t.Errorf("first entry after restart does not chain to the last before it")
	}
	if _, err := svc2.Authenticate(opsSecret); domain.ErrorCode(err) != domain.CodeUnauthenticated {
		t.Errorf("Authenticate(revoked) = %v, want unauthenticated", err)
	}
}
