package control_test

import (
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/domain"
)

func TestPutMigration(t *testing.T) {
	e := newEnv(t, nil)
	m, created, err := e.svc.PutMigration(ctx, admin, migration("m1"))
	if err != nil || !created {
		t.Fatalf("create: created %v, err %v; want true, nil", created, err)
	}
	if m.Seq != 1 || !m.CreatedAt.Equal(e.clock.Now()) || m.Reverted {
		t.Errorf("created migration: seq %d createdAt %v reverted %v; want 1, now, false", m.Seq, m.CreatedAt, m.Reverted)
	}
	e.clock.Advance(time.Second)
	m2, created, err := e.svc.PutMigration(ctx, admin, migration("m0"))
	if err != nil || !created || m2.Seq != 2 {
		t.Fatalf("create second: seq %d created %v err %v; want 2, true, nil", m2.Seq, created, err)
	}
	if got, want := e.svc.State().MigrationKeys(), []string{"m1", "m0"}; !slices.Equal(got, want) {
		t.Errorf("MigrationKeys() = %v, want %v (oldest first)", got, want)
	}

	e.clock.Advance(time.Second)
	upd := migration("m1")
	upd.Description = "changed"
	got, created, err := e.svc.PutMigration(ctx, admin, upd)
	if err != nil || created {
		t.Fatalf("update: created %v err %v; want false, nil", created, err)
	}
	if got.Description != "changed" || got.Seq != 1 || !got.CreatedAt.Equal(m.CreatedAt) || !got.UpdatedAt.Equal(e.clock.Now()) {
		t.Errorf("updated migration = %+v; want description changed, seq 1, createdAt kept, updatedAt now", got)
	}
	if got := e.svc.State().Version; got != 3 {
		t.Errorf("version = %d, want 3", got)
	}

	t.Run("no-op", func(t *testing.T) {
		e.clock.Advance(time.Second)
		again, created, err := e.svc.PutMigration(ctx, admin, upd)
		if err != nil || created {
			t.Fatalf("created %v err %v; want false, nil", created, err)
		}
		if diff := cmp.Diff(got, again); diff != "" {
			t.Errorf("no-op returns the stored migration (-want +got):\n%s", diff)
		}
		e.unchanged(t, 3, 3)
	})

	t.Run("update keeps the kill switch and stages", func(t *testing.T) {
		e.partner(t, "acme")
		e.moveTo(t, "m1", "acme", domain.StageNew)
		if _, err := e.svc.Revert(ctx, ops, "m1"); err != nil {
			t.Fatal(err)
		}
		upd.Description = "changed again"
		got, _, err := e.svc.PutMigration(ctx, admin, upd)
		if err != nil {
			t.Fatal(err)
		}
		if !got.Reverted || !e.svc.State().Migrations["m1"].Reverted {
			t.Errorf("update turned the kill switch off")
		}
		if st := e.stage(t, "m1", "acme").Stage; st != domain.StageNew {
			t.Errorf("stage after update = %s, want new", st)
		}
		if r := e.svc.State().Flags().Evaluate("m1", "acme"); r.Reason != flags.ReasonDisabled {
			t.Errorf("evaluation after update: reason %s, want DISABLED", r.Reason)
		}
	})

	t.Run("invalid", func(t *testing.T) {
		v, n := e.svc.State().Version, len(e.auditLog(t))
		bad := migration("m1")
		bad.Pipelines.New.URL = "ftp://x"
		_, _, err := e.svc.PutMigration(ctx, admin, bad)
		wantCode(t, err, domain.CodeInvalid)
		_, _, err = e.svc.PutMigration(ctx, admin, migration("M!"))
		wantCode(t, err, domain.CodeInvalid)
		e.unchanged(t, v, n)
	})
}

func TestPutCohort(t *testing.T) {
	e := newEnv(t, nil)
	e.migration(t, "m")
	for _, id := range []string{"a", "b", "c"} {
		e.partner(t, id)
	}
	co, created, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-1", Order: 1, Partners: []string{"a", "b"}})
	if err != nil || !created {
		t.Fatalf("create: created %v err %v; want true, nil", created, err)
	}
	if !co.UpdatedAt.Equal(e.clock.Now()) {
		t.Errorf("UpdatedAt = %v, want now", co.UpdatedAt)
	}
	v, n := e.svc.State().Version, len(e.auditLog(t))

	t.Run("a partner in two cohorts is a conflict", func(t *testing.T) {
		_, _, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-2", Order: 2, Partners: []string{"c", "b"}})
		wantCode(t, err, domain.CodeConflict)
		e.unchanged(t, v, n)
	})
	t.Run("unknown partner", func(t *testing.T) {
		_, _, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-2", Partners: []string{"nobody"}})
		wantCode(t, err, domain.CodeNotFound)
	})
	t.Run("unknown migration", func(t *testing.T) {
		_, _, err := e.svc.PutCohort(ctx, admin, "nope", domain.Cohort{Name: "wave-2", Partners: []string{"c"}})
		wantCode(t, err, domain.CodeNotFound)
	})
	t.Run("invalid", func(t *testing.T) {
		_, _, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-2", Partners: []string{"c", "c"}})
		wantCode(t, err, domain.CodeInvalid)
		e.unchanged(t, v, n)
	})

	t.Run("update", func(t *testing.T) {
		e.clock.Advance(time.Minute)
		_, created, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-1", Order: 1, Partners: []string{"a"}})
		if err != nil || created {
			t.Fatalf("update: created %v err %v; want false, nil", created, err)
		}
		v, n = v+1, n+1
		e.unchanged(t, v, n) // exactly one version and one entry more
		// b left wave-1, so it may join another cohort.
		_, created, err = e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-2", Order: 2, Partners: []string{"b", "c"}})
		if err != nil || !created {
			t.Fatalf("create wave-2: created %v err %v; want true, nil", created, err)
		}
		v, n = v+1, n+1
		ms := e.svc.State().Migrations["m"]
		for p, want := range map[string]string{"a": "wave-1", "b": "wave-2", "c": "wave-2"} {
			if got := ms.CohortOf(p); got != want {
				t.Errorf("CohortOf(%s) = %q, want %q", p, got, want)
			}
		}
		var names []string
		for _, c := range ms.Cohorts {
			names = append(names, c.Name)
		}
		if want := []string{"wave-1", "wave-2"}; !slices.Equal(names, want) {
			t.Errorf("cohorts = %v, want %v in order", names, want)
		}
		log := e.auditLog(t)
		if got := log[len(log)-2].Action; got != "cohort.update" {
			t.Errorf("audit action = %q, want cohort.update", got)
		}
	})

	t.Run("no-op update", func(t *testing.T) {
		e.clock.Advance(time.Minute)
		_, created, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave-2", Order: 2, Partners: []string{"b", "c"}})
		if err != nil || created {
			t.Fatalf("created %v err %v; want false, nil", created, err)
		}
		e.unchanged(t, v, n)
	})
}
