package control_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// Every change holds its reason to domain.CheckReason, whoever asks for it:
// the API, the UI or a caller of the service.
func TestEveryChangeChecksItsReason(t *testing.T) {
	e := newEnv(t, nil)
	e.partner(t, "acme")
	e.partner(t, "globex")
	e.migration(t, "m")
	e.cohort(t, "m", "first", 1, "acme")
	if _, _, err := e.svc.CreateToken(ctx, admin, "ci", domain.RoleViewer); err != nil {
		t.Fatal(err)
	}
	from := e.clock.Now().Add(-time.Hour)
	changes := []struct {
		name string
		do   func(c control.Change) error
	}{
		{"put partner", func(c control.Change) error {
			_, _, err := e.svc.PutPartner(ctx, c, control.PartnerInput{ID: "acme", Name: "Acme 2", PSA: domain.PSAGeneric})
			return err
		}},
		{"put migration", func(c control.Change) error {
			m := migration("m")
			m.Description = "changed"
			_, _, err := e.svc.PutMigration(ctx, c, m)
			return err
		}},
		{"put cohort", func(c control.Change) error {
			_, _, err := e.svc.PutCohort(ctx, c, "m", domain.Cohort{Name: "second", Order: 2, Partners: []string{"globex"}})
			return err
		}},
		{"set stage", func(c control.Change) error {
			_, err := e.svc.SetStage(ctx, c, "m", "globex", domain.StageShadow, false)
			return err
		}},
		{"advance", func(c control.Change) error {
			_, err := e.svc.Advance(ctx, c, "m", "first", false)
			return err
		}},
		{"revert", func(c control.Change) error { _, err := e.svc.Revert(ctx, c, "m"); return err }},
		{"revert all", func(c control.Change) error { _, err := e.svc.RevertAll(ctx, c); return err }},
		{"create token", func(c control.Change) error {
			_, _, err := e.svc.CreateToken(ctx, c, "other", domain.RoleViewer)
			return err
		}},
		{"delete token", func(c control.Change) error { return e.svc.DeleteToken(ctx, c, "ci") }},
		{"record action", func(c control.Change) error {
			return e.svc.RecordAction(ctx, c, "replay.start", "replay/rpl_1", nil)
		}},
		{"ask replay", func(c control.Change) error {
			_, err := e.svc.AskReplay(ctx, c, domain.ReplayRequest{Migration: "m", Partners: []string{"acme"},
				From: from, To: e.clock.Now(), Pipeline: "legacy", Filter: domain.ReplayAll})
			if n := len(e.svc.AskedReplays()); err != nil && n != 0 {
				t.Errorf("asked replays: got %d after a refused request, want 0", n)
			}
			return err
		}},
	}
	bad := []struct{ name, reason string }{
		{"escape sequence", "ok\x1b[2J"},
		{"bare carriage return", "approved\rdenied"},
		{"invalid UTF-8", "caf\xe9"},
		{"too long", strings.Repeat("r", domain.MaxReason+1)},
	}
	for _, ch := range changes {
		for _, b := range bad {
			t.Run(ch.name+": "+b.name, func(t *testing.T) {
				version, entries := e.svc.State().Version, len(e.auditLog(t))
				err := ch.do(control.Change{Actor: "ops", Reason: b.reason})
				wantCode(t, err, domain.CodeInvalid)
				if err != nil && !strings.Contains(err.Error(), "reason") {
					t.Errorf("error %q does not name the reason", err)
				}
				e.unchanged(t, version, entries)
			})
		}
	}
	// The resume needs a reverted migration to change anything.
	if _, err := e.svc.Revert(ctx, admin, "m"); err != nil {
		t.Fatal(err)
	}
	version, entries := e.svc.State().Version, len(e.auditLog(t))
	_, err := e.svc.Resume(ctx, control.Change{Actor: "ops", Reason: "fixed\x07"}, "m")
	wantCode(t, err, domain.CodeInvalid)
	e.unchanged(t, version, entries)
}

// The guard writes a reason of its own that quotes a router's event id,
// which may hold anything: its revert is never refused for it.
func TestGuardRevertsWhateverTheEventID(t *testing.T) {
	e := newEnv(t, nil)
	e.partner(t, "acme")
	e.migration(t, "m")
	e.moveTo(t, "m", "acme", domain.StageNew)
	eventID := "evt\x1b[2J\x1b[H\xff" + strings.Repeat("x", 3*domain.MaxReason)
	_, err := e.svc.IngestReport(ctx, wire.Report{
		Router: "r1",
		Guard: []domain.GuardSample{{Migration: "m", Partner: "acme", EventID: eventID,
			Outcomes: []string{string(domain.ClassMissing)}}},
	})
	if err != nil {
		t.Fatalf("IngestReport: %v", err)
	}
	if got := e.stage(t, "m", "acme").Stage; got != domain.StageShadow {
		t.Fatalf("acme after a zero-tolerance outcome: got %s, want shadow (reverted by the guard)", got)
	}
	log := e.auditLog(t)
	last := log[len(log)-1]
	if last.Actor != "guard" {
		t.Fatalf("last audit entry by %q, want the guard", last.Actor)
	}
	if err := domain.CheckReason(last.Reason); err != nil {
		t.Errorf("guard's reason: %v", err)
	}
	if !strings.Contains(last.Reason, `evt\x1b[2J\x1b[H\xff`) {
		t.Errorf("guard's reason %q does not name the event id, escaped", last.Reason)
	}
}

// The guard holds a partner to the zero tolerance of the gates that judge
// it: a cohort's own gates, where it has them, not the migration's.
func TestGuardKeepsTheCohortsZeroTolerance(t *testing.T) {
	e := newEnv(t, nil)
	e.partner(t, "acme")
	e.migration(t, "m")
	strict := domain.DefaultGates()
	strict.ZeroTolerance = append(strict.ZeroTolerance, domain.ClassValueDiff)
	if _, _, err := e.svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "canary", Order: 1, Partners: []string{"acme"}, Gates: &strict}); err != nil {
		t.Fatal(err)
	}
	e.moveTo(t, "m", "acme", domain.StageNew)
	if _, err := e.svc.IngestReport(ctx, wire.Report{Router: "r1", Guard: []domain.GuardSample{{Migration: "m", Partner: "acme",
		EventID: "evt_1", Outcomes: []string{string(domain.ClassValueDiff)}}}}); err != nil {
		t.Fatal(err)
	}
	if got := e.stage(t, "m", "acme").Stage; got != domain.StageShadow {
		t.Errorf("acme after a value_diff its cohort holds to zero tolerance: got %s, want shadow (reverted by the guard)", got)
	}
}

// The guard acts only on a fail: a window not yet full of outcomes is
// inconclusive and trips nothing, however bad its rate, while a
// zero-tolerance class trips at once and a full window over the limit
// trips too.
func TestGuardActsOnlyOnAFail(t *testing.T) {
	e := newEnv(t, nil)
	e.partner(t, "acme")
	e.migration(t, "m")
	e.moveTo(t, "m", "acme", domain.StageNew)
	window := e.svc.State().Migrations["m"].Guard.Window
	send := func(n int, class domain.Class) {
		t.Helper()
		outcomes := make([]string, n)
		for i := range outcomes {
			outcomes[i] = string(class)
		}
		if _, err := e.svc.IngestReport(ctx, wire.Report{Router: "r1", Guard: []domain.GuardSample{{Migration: "m", Partner: "acme",
			EventID: "evt_1", Outcomes: outcomes}}}); err != nil {
			t.Fatal(err)
		}
	}
	send(window-1, domain.ClassValueDiff) // every outcome a mismatch, one short of a window
	if got := e.stage(t, "m", "acme").Stage; got != domain.StageNew {
		t.Fatalf("acme after %d value_diffs, a window not yet full: got %s, want new (no trip)", window-1, got)
	}
	send(1, domain.ClassValueDiff)
	if got := e.stage(t, "m", "acme").Stage; got != domain.StageShadow {
		t.Errorf("acme after a full window of value_diffs: got %s, want shadow (reverted by the guard)", got)
	}
}
