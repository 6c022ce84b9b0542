package control_test

import (
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// workingHours are Monday to Thursday, 09:00 to 16:00 in Amsterdam
// (UTC+1 in early March 2026): 08:00 to 15:00 UTC.
var workingHours = []domain.AutopilotWindow{{Days: []string{"mon", "tue", "wed", "thu"}, From: "09:00", To: "16:00", TimeZone: "Europe/Amsterdam"}}

// allDay is every hour of every day, in UTC.
var allDay = []domain.AutopilotWindow{{Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, From: "00:00", To: "24:00"}}

// autopilotEnv is migration "m" with an enabled autopilot of windows and
// maxPerDay, good comparison counts, and cohorts wave-1 (a, b) and
// wave-2 (c), all at legacy. The clock is Sunday 2026-03-01 12:00 UTC.
func autopilotEnv(t *testing.T, windows []domain.AutopilotWindow, maxPerDay int, approvals *domain.ApprovalPolicy) (*env, *switchStats) {
	t.Helper()
	stats := &switchStats{}
	e := newEnv(t, stats.StageCounts())
	m := migration("m")
	m.Autopilot = &domain.AutopilotPolicy{Enabled: true, Windows: windows, MaxAdvancesPerDay: maxPerDay}
	m.Approvals = approvals
	if _, _, err := e.svc.PutMigration(ctx, admin, m); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		e.partner(t, id)
	}
	e.cohort(t, "m", "wave-1", 1, "a", "b")
	e.cohort(t, "m", "wave-2", 2, "c")
	return e, stats
}

// step runs one autopilot step and checks the state it reported.
func (e *env) step(t *testing.T, want string) wire.AutopilotStatus {
	t.Helper()
	st, err := e.svc.AutopilotStep(ctx, "m")
	if err != nil {
		t.Fatalf("AutopilotStep at %s: %v", e.clock.Now().Format(time.RFC3339), err)
	}
	if st.State != want {
		t.Fatalf("AutopilotStep at %s: state %s (%s), want %s", e.clock.Now().Format(time.RFC3339), st.State, st.Explanation, want)
	}
	return st
}

// stages returns the stages of a, b and c.
func (e *env) stages(t *testing.T) [3]domain.Stage {
	t.Helper()
	return [3]domain.Stage{e.stage(t, "m", "a").Stage, e.stage(t, "m", "b").Stage, e.stage(t, "m", "c").Stage}
}

func TestAutopilotAdvancesInOrderInsideWindowsOnly(t *testing.T) {
	e, _ := autopilotEnv(t, workingHours, 3, nil)
	L, S, N := domain.StageLegacy, domain.StageShadow, domain.StageNew

	// Sunday: outside the windows, it waits for Monday 09:00 in Amsterdam.
	st := e.step(t, wire.AutopilotClosed)
	if want := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC); st.NextWindow == nil || !st.NextWindow.Equal(want) {
		t.Errorf("NextWindow = %v, want %s", st.NextWindow, want)
	}
	if got := e.stages(t); got != [3]domain.Stage{L, L, L} {
		t.Fatalf("stages on Sunday = %v, want all legacy", got)
	}

	// Monday 09:30 in Amsterdam: the cohort furthest behind moves, the
	// first in order among equals, one step at a time.
	e.clock.Advance(20*time.Hour + 30*time.Minute)
	if st := e.step(t, wire.AutopilotReady); st.Next.Cohort != "wave-1" || !st.InWindow {
		t.Errorf("first step = %+v, want wave-1 in a window", st)
	}
	if got := e.stages(t); got != [3]domain.Stage{S, S, L} {
		t.Fatalf("stages after the first step = %v", got)
	}
	e.step(t, wire.AutopilotReady)
	if got := e.stages(t); got != [3]domain.Stage{S, S, S} {
		t.Fatalf("stages after the second step = %v, want wave-2 in shadow before wave-1 goes further", got)
	}
	// Shadow → new waits for the bake time (an hour by default).
	if st := e.step(t, wire.AutopilotGates); st.Gate == nil || st.Gate.Pass {
		t.Errorf("step before the bake time = %+v, want the gates' report refusing", st)
	}
	e.clock.Advance(61 * time.Minute)
	e.step(t, wire.AutopilotReady)
	if got := e.stages(t); got != [3]domain.Stage{N, N, S} {
		t.Fatalf("stages after the bake time = %v", got)
	}
	// Three moves in 24 hours is its bound.
	if st := e.step(t, wire.AutopilotLimit); st.MovesToday != 3 || st.MaxAdvancesPerDay != 3 {
		t.Errorf("status at the bound = %+v", st)
	}
	// 16:00 in Amsterdam closes the window.
	e.clock.Advance(6 * time.Hour)
	e.step(t, wire.AutopilotClosed)

	// Tuesday 09:32: the two moves of Monday 09:30 are more than a day
	// old, the one of 10:31 is not.
	e.clock.Advance(17*time.Hour + 1*time.Minute)
	if st := e.step(t, wire.AutopilotReady); st.MovesToday != 1 {
		t.Errorf("moves in the last 24 hours = %d, want 1", st.MovesToday)
	}
	if got := e.stages(t); got != [3]domain.Stage{N, N, N} {
		t.Fatalf("stages on Tuesday = %v", got)
	}

	var moves int
	for _, a := range e.auditLog(t) {
		if a.Action == "cohort.advance" {
			moves++
			if a.Actor != control.AutopilotActor {
				t.Errorf("cohort.advance audited as %q, want %q", a.Actor, control.AutopilotActor)
			}
		}
	}
	if moves != 4 {
		t.Errorf("%d cohort.advance entries, want 4", moves)
	}
}

func TestAutopilotWaitsForFailingGates(t *testing.T) {
	e, stats := autopilotEnv(t, allDay, 10, nil)
	e.step(t, wire.AutopilotReady)
	e.step(t, wire.AutopilotReady)
	e.clock.Advance(2 * time.Hour)
	stats.bad.Store(true)
	v := e.svc.State().Version
	if st := e.step(t, wire.AutopilotGates); st.Next == nil || st.Next.Cohort != "wave-1" || st.Next.To != domain.StageNew {
		t.Errorf("status = %+v, want waiting on wave-1's move to new", st)
	}
	if e.svc.State().Version != v {
		t.Error("a step on failing gates changed the state")
	}
}

func TestAutopilotPausesOnGuardRevertUntilResumed(t *testing.T) {
	e, _ := autopilotEnv(t, allDay, 10, nil)
	e.step(t, wire.AutopilotReady)
	e.clock.Advance(2 * time.Hour)
	e.step(t, wire.AutopilotReady) // wave-2 to shadow
	e.step(t, wire.AutopilotReady) // wave-1 to new
	heard := hear(e.svc)
	if _, err := e.svc.IngestReport(ctx, wire.Report{Router: "r1", Guard: []domain.GuardSample{{Migration: "m", Partner: "a",
		EventID: "evt_1", Outcomes: []string{string(domain.ClassMissing)}}}}); err != nil {
		t.Fatal(err)
	}
	if got := e.stage(t, "m", "a").Stage; got != domain.StageShadow {
		t.Fatalf("a is at %s after the guard tripped, want shadow", got)
	}
	if ev := heard.events(); len(ev) != 2 || ev[0] != domain.NoticeAutopilotPaused || ev[1] != domain.NoticeGuardRevert {
		t.Errorf("notices = %v, want %s then %s", ev, domain.NoticeAutopilotPaused, domain.NoticeGuardRevert)
	}
	e.clock.Advance(2 * time.Hour)
	st := e.step(t, wire.AutopilotPaused)
	if st.Paused == nil || st.Paused.PausedBy != "guard" {
		t.Errorf("paused = %+v, want by the guard", st.Paused)
	}
	if got := e.stages(t); got != [3]domain.Stage{domain.StageShadow, domain.StageNew, domain.StageShadow} {
		t.Fatalf("stages while paused = %v", got)
	}
	// A PUT of the migration keeps the pause.
	m := e.svc.State().Migrations["m"].Migration
	m.Description = "edited"
	if _, _, err := e.svc.PutMigration(ctx, admin, m); err != nil {
		t.Fatal(err)
	}
	e.step(t, wire.AutopilotPaused)

	if _, err := e.svc.ResumeAutopilot(ctx, ops, "m"); err != nil {
		t.Fatal(err)
	}
	e.step(t, wire.AutopilotReady)
	log := e.auditLog(t)
	var pause, resume bool
	for _, a := range log {
		pause = pause || a.Action == "autopilot.pause" && a.Actor == "guard"
		resume = resume || a.Action == "autopilot.resume" && a.Actor == "ops"
	}
	if !pause || !resume {
		t.Errorf("audit has autopilot.pause by guard %v, autopilot.resume by ops %v; want both", pause, resume)
	}
}

func TestAutopilotPausedByKillSwitch(t *testing.T) {
	e, _ := autopilotEnv(t, allDay, 10, nil)
	heard := hear(e.svc)
	if _, err := e.svc.Revert(ctx, ops, "m"); err != nil {
		t.Fatal(err)
	}
	if ev := heard.events(); len(ev) != 2 || ev[0] != domain.NoticeAutopilotPaused || ev[1] != domain.NoticeRevert {
		t.Errorf("notices = %v, want %s then %s (the pause is noticed as it commits, with the revert)", ev, domain.NoticeAutopilotPaused, domain.NoticeRevert)
	}
	// The pause is in the revert's own write: its entries follow each other.
	log := lastEntries(t, e, 2)
	if log[0].Action != "migration.revert" || log[1].Action != "autopilot.pause" || log[1].Actor != "ops" {
		t.Errorf("last entries = %s by %s, %s by %s", log[0].Action, log[0].Actor, log[1].Action, log[1].Actor)
	}
	_, err := e.svc.ResumeAutopilot(ctx, ops, "m")
	wantCode(t, err, domain.CodeConflict)
	if _, err := e.svc.Resume(ctx, ops, "m"); err != nil {
		t.Fatal(err)
	}
	e.step(t, wire.AutopilotPaused) // resuming the migration leaves the autopilot paused
	if _, err := e.svc.ResumeAutopilot(ctx, ops, "m"); err != nil {
		t.Fatal(err)
	}
	e.step(t, wire.AutopilotReady)
	if got := e.stage(t, "m", "a").Stage; got != domain.StageShadow {
		t.Errorf("a at %s, want shadow", got)
	}
}

func TestAutopilotFilesChangeRequestsWhereApprovalsAreRequired(t *testing.T) {
	e, _ := autopilotEnv(t, allDay, 10, &domain.ApprovalPolicy{Required: 1, Stages: []domain.Stage{domain.StageNew}})
	e.step(t, wire.AutopilotReady) // legacy → shadow needs none
	e.step(t, wire.AutopilotReady)
	e.clock.Advance(2 * time.Hour)
	heard := hear(e.svc)
	e.step(t, wire.AutopilotReady)
	if got := e.stage(t, "m", "a").Stage; got != domain.StageShadow {
		t.Fatalf("a moved to %s, want a change request instead", got)
	}
	pending := e.svc.Changes(control.ChangeFilter{State: domain.ChangePending})
	if len(pending) != 1 || pending[0].RequestedBy != control.AutopilotActor || pending[0].Cohort != "wave-1" {
		t.Fatalf("pending changes = %+v, want wave-1's, filed by the autopilot", pending)
	}
	if ev := heard.events(); len(ev) != 1 || ev[0] != domain.NoticeChangePending {
		t.Errorf("notices = %v, want %s alone", ev, domain.NoticeChangePending)
	}
	// It waits for the approval and files nothing more.
	if st := e.step(t, wire.AutopilotApproval); st.Change != pending[0].ID || st.MovesToday != 3 {
		t.Errorf("status = %+v, want waiting on %s with 3 moves counted", st, pending[0].ID)
	}
	if got := e.svc.Changes(control.ChangeFilter{}); len(got) != 1 {
		t.Errorf("%d change requests, want 1", len(got))
	}
	ch, err := e.svc.Approve(ctx, ops, pending[0].ID)
	if err != nil || ch.State != domain.ChangeApplied {
		t.Fatalf("Approve = %s, %v", ch.State, err)
	}
	if got := e.stage(t, "m", "a").Stage; got != domain.StageNew {
		t.Errorf("a at %s after the approval, want new", got)
	}
	if a := lastEntries(t, e, 2); a[0].Action != "change.approve" || a[0].Actor != "ops" || a[1].Action != "cohort.advance" || a[1].Actor != control.AutopilotActor {
		t.Errorf("the approval is audited as %s by %s, %s by %s; want change.approve by ops, cohort.advance by the autopilot", a[0].Action, a[0].Actor, a[1].Action, a[1].Actor)
	}
}

func TestAutopilotPauseResume(t *testing.T) {
	e, _ := autopilotEnv(t, allDay, 10, nil)
	st, err := e.svc.PauseAutopilot(ctx, control.Change{Actor: "ops", Reason: "holiday freeze"}, "m")
	if err != nil || st.State != wire.AutopilotPaused || st.Paused.PausedReason != "holiday freeze" {
		t.Fatalf("PauseAutopilot = %+v, %v", st, err)
	}
	v := e.svc.State().Version
	if _, err := e.svc.PauseAutopilot(ctx, ops, "m"); err != nil || e.svc.State().Version != v {
		t.Errorf("pausing again: %v, version %d → %d; want nothing changed", err, v, e.svc.State().Version)
	}
	e.step(t, wire.AutopilotPaused)
	if _, err := e.svc.ResumeAutopilot(ctx, ops, "m"); err != nil {
		t.Fatal(err)
	}
	e.step(t, wire.AutopilotReady)

	_, err = e.svc.PauseAutopilot(ctx, control.Change{Actor: "ops"}, "m")
	wantCode(t, err, domain.CodeInvalid)
	e.migration(t, "plain")
	_, err = e.svc.PauseAutopilot(ctx, ops, "plain")
	wantCode(t, err, domain.CodeConflict)
	_, err = e.svc.AutopilotStatus(ctx, "nope")
	wantCode(t, err, domain.CodeNotFound)
	if st, err := e.svc.AutopilotStatus(ctx, "plain"); err != nil || st.State != wire.AutopilotOff {
		t.Errorf("status without a policy = %+v, %v", st, err)
	}
}

// No token takes the name of an actor switchback audits its own changes
// with.
func TestTokensCannotTakeSystemActorNames(t *testing.T) {
	e := newEnv(t, nil)
	for _, name := range []string{"autopilot", "guard", "switchback", "reconciler"} {
		_, _, err := e.svc.CreateToken(ctx, admin, name, domain.RoleOperator)
		wantCode(t, err, domain.CodeInvalid)
	}
}

// A change request the autopilot filed is applied only while the
// autopilot may move: paused (or outside its windows) it fails, and the
// audit never shows a paused autopilot moving.
func TestAutopilotChangeFailsWhileAutopilotPaused(t *testing.T) {
	e, _ := autopilotEnv(t, workingHours, 10, &domain.ApprovalPolicy{Required: 1, Stages: []domain.Stage{domain.StageNew}})
	e.clock.Advance(20*time.Hour + 30*time.Minute) // Monday 09:30 in Amsterdam
	e.step(t, wire.AutopilotReady)
	e.step(t, wire.AutopilotReady)
	e.clock.Advance(2 * time.Hour)
	e.step(t, wire.AutopilotReady) // files wave-1 shadow → new
	pending := e.svc.Changes(control.ChangeFilter{State: domain.ChangePending})
	if len(pending) != 1 {
		t.Fatalf("pending = %d, want the autopilot's", len(pending))
	}
	if _, err := e.svc.Revert(ctx, ops, "m"); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Resume(ctx, ops, "m"); err != nil {
		t.Fatal(err)
	}
	ch, err := e.svc.Approve(ctx, control.Change{Actor: "bob", Reason: "looks fine"}, pending[0].ID)
	if err != nil || ch.State != domain.ChangeFailed || !strings.Contains(ch.Failure, "Paused by ops") {
		t.Fatalf("Approve while the autopilot is paused = %s (%s), %v; want failed, saying it is paused", ch.State, ch.Failure, err)
	}
	if got := e.stage(t, "m", "a").Stage; got != domain.StageShadow {
		t.Errorf("a moved to %s", got)
	}
}
