package control_test

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// Two operators besides the admin: alice asks, bob and carol approve.
var (
	alice = control.Change{Actor: "alice", Reason: "wave-1 looks clean"}
	bob   = control.Change{Actor: "bob", Reason: "checked the dashboards"}
	carol = control.Change{Actor: "carol"}
)

// switchStats are comparison counts a test turns bad between filing a
// change request and approving it.
type switchStats struct{ bad atomic.Bool }

func (s *switchStats) StageCounts() control.ComparisonStats {
	return fakeStats{counts: func(_, _ string, _ domain.Stage, _ time.Time) (gate.Counts, error) {
		if s.bad.Load() {
			return badCounts(), nil
		}
		return goodCounts(), nil
	}}
}

// approvalsEnv is a migration "m" whose moves into new and done need
// required approvals within a day, with cohort wave-1 (a, b) in shadow
// for two hours on good counts: its gates pass.
func approvalsEnv(t *testing.T, required int) (*env, *switchStats, *notices) {
	t.Helper()
	return movesEnv(t, &domain.ApprovalPolicy{Required: required, Stages: []domain.Stage{domain.StageNew, domain.StageDone}})
}

// movesEnv is approvalsEnv with approvals policy pol: nil for none.
func movesEnv(t *testing.T, pol *domain.ApprovalPolicy) (*env, *switchStats, *notices) {
	t.Helper()
	stats := &switchStats{}
	e := newEnv(t, stats.StageCounts())
	m := migration("m")
	m.Approvals = pol
	if _, _, err := e.svc.PutMigration(ctx, admin, m); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b"} {
		e.partner(t, id)
	}
	e.cohort(t, "m", "wave-1", 1, "a", "b")
	if _, err := e.svc.Advance(ctx, ops, "m", "wave-1", false); err != nil {
		t.Fatalf("Advance(legacy → shadow), which needs no approval: %v", err)
	}
	e.clock.Advance(2 * time.Hour)
	return e, stats, hear(e.svc)
}

func lastEntries(t *testing.T, e *env, n int) []domain.AuditEntry {
	t.Helper()
	log := e.auditLog(t)
	return log[max(0, len(log)-n):]
}

func TestChangeRequestFiledAndApproved(t *testing.T) {
	e, _, heard := approvalsEnv(t, 1)
	if got := e.svc.State().Migrations["m"].Approvals.TTL; got != domain.DefaultApprovalTTL {
		t.Errorf("stored ttl = %s, want the default %s written out", got, domain.DefaultApprovalTTL)
	}
	v, n := e.svc.State().Version, len(e.auditLog(t))

	res, err := e.svc.Advance(ctx, alice, "m", "wave-1", false)
	if err != nil {
		t.Fatalf("Advance(shadow → new) with approvals required = %v, want a change request", err)
	}
	ch := res.Change
	if ch == nil {
		t.Fatalf("Advance = %+v, want its Change set", res)
	}
	if ch.State != domain.ChangePending || ch.RequestedBy != "alice" || ch.Required != 1 || ch.From != domain.StageShadow || ch.To != domain.StageNew ||
		ch.Kind != domain.ChangeAdvance || ch.Cohort != "wave-1" || !ch.ExpiresAt.Equal(ch.RequestedAt.Add(24*time.Hour)) || !domain.ValidChangeID(ch.ID) {
		t.Errorf("filed change = %+v", *ch)
	}
	if got := e.svc.State().Version; got != v {
		t.Errorf("version = %d after filing, want %d: nothing moved", got, v)
	}
	for _, p := range []string{"a", "b"} {
		if got := e.stage(t, "m", p).Stage; got != domain.StageShadow {
			t.Errorf("%s at %s after filing, want shadow", p, got)
		}
	}
	log := e.auditLog(t)
	if len(log) != n+1 || log[n].Action != "change.request" || log[n].Actor != "alice" || log[n].Target != "migration/m/change/"+ch.ID {
		t.Errorf("audit after filing: %d entries, last %+v; want one change.request by alice", len(log)-n, log[len(log)-1])
	}
	if got := heard.events(); len(got) != 1 || got[0] != domain.NoticeChangePending {
		t.Errorf("notices after filing = %v, want one %s", got, domain.NoticeChangePending)
	}

	// The same move asked again, by anyone, is the same request.
	again, err := e.svc.Advance(ctx, carol, "m", "wave-1", false)
	if err != nil || again.Change == nil || again.Change.ID != ch.ID {
		t.Fatalf("Advance again = %+v, %v; want the pending change %s", again.Change, err, ch.ID)
	}
	if got := len(e.auditLog(t)); got != n+1 {
		t.Errorf("audit entries after asking again = %d, want %d: nothing filed", got, n+1)
	}
	if got := heard.events(); len(got) != 1 {
		t.Errorf("notices after asking again = %v, want still one", got)
	}
	if got := e.svc.Changes(control.ChangeFilter{State: domain.ChangePending, Migration: "m"}); len(got) != 1 || got[0].ID != ch.ID {
		t.Errorf("Changes(pending, m) = %d, want the one request", len(got))
	}

	// Four eyes: the requester's approval is refused.
	_, err = e.svc.Approve(ctx, alice, ch.ID)
	wantCode(t, err, domain.CodePermissionDenied)

	e.clock.Advance(time.Minute)
	got, err := e.svc.Approve(ctx, bob, ch.ID)
	if err != nil {
		t.Fatalf("Approve by bob = %v", err)
	}
	if got.State != domain.ChangeApplied || got.Ended == nil || got.Ended.By != "bob" || len(got.Approvals) != 1 || got.EndedAt == nil {
		t.Errorf("approved change = %+v, want applied, ended by bob", got)
	}
	var result control.AdvanceResult
	if err := json.Unmarshal(got.Result, &result); err != nil || result.To != domain.StageNew || strings.Join(result.Partners, ",") != "a,b" {
		t.Errorf("result = %s (%v), want the advance of a and b to new", got.Result, err)
	}
	for _, p := range []string{"a", "b"} {
		if st := e.stage(t, "m", p); st.Stage != domain.StageNew || !st.Since.Equal(e.clock.Now()) {
			t.Errorf("%s at %+v after the approval, want new since now", p, st)
		}
	}
	if got := e.svc.State().Version; got != v+1 {
		t.Errorf("version = %d after the approval, want %d", got, v+1)
	}
	tail := lastEntries(t, e, 2)
	if tail[0].Action != "change.approve" || tail[0].Actor != "bob" || tail[0].Reason != bob.Reason {
		t.Errorf("approval audited as %+v, want change.approve by bob with his reason", tail[0])
	}
	if tail[1].Action != "cohort.advance" || tail[1].Actor != "alice" || !strings.Contains(tail[1].Reason, ch.ID) ||
		!strings.Contains(tail[1].Reason, "approved by bob") || !strings.Contains(tail[1].Reason, alice.Reason) {
		t.Errorf("the move audited as %+v, want cohort.advance by alice, naming the change, its approver and her reason", tail[1])
	}
	if got := heard.events(); len(got) != 2 || got[1] != domain.NoticeAdvance {
		t.Errorf("notices after the approval = %v, want %s then %s", got, domain.NoticeChangePending, domain.NoticeAdvance)
	}

	// An ended change takes no more approvals, nor a rejection.
	_, err = e.svc.Approve(ctx, carol, ch.ID)
	wantCode(t, err, domain.CodeConflict)
	_, err = e.svc.Reject(ctx, control.Change{Actor: "carol", Reason: "too late"}, ch.ID)
	wantCode(t, err, domain.CodeConflict)
	_, err = e.svc.Approve(ctx, carol, "chg_000000000000000000000000")
	wantCode(t, err, domain.CodeNotFound)
}

// Each token counts once: with two approvals required, the second from
// the same token is refused and the change waits for another.
func TestChangeRequestNeedsDistinctApprovers(t *testing.T) {
	e, _, _ := approvalsEnv(t, 2)
	res, err := e.svc.Advance(ctx, alice, "m", "wave-1", false)
	if err != nil || res.Change == nil {
		t.Fatalf("Advance = %+v, %v", res, err)
	}
	id := res.Change.ID
	got, err := e.svc.Approve(ctx, bob, id)
	if err != nil || got.State != domain.ChangePending || len(got.Approvals) != 1 {
		t.Fatalf("first approval = %+v, %v; want still pending with one approval", got, err)
	}
	_, err = e.svc.Approve(ctx, control.Change{Actor: "bob", Reason: "really"}, id)
	wantCode(t, err, domain.CodeConflict)
	if got := e.stage(t, "m", "a").Stage; got != domain.StageShadow {
		t.Fatalf("a at %s after one of two approvals, want shadow", got)
	}
	got, err = e.svc.Approve(ctx, carol, id)
	if err != nil || got.State != domain.ChangeApplied || len(got.Approvals) != 2 {
		t.Fatalf("second approval = %+v, %v; want applied with two approvals", got, err)
	}
	if tail := lastEntries(t, e, 1); !strings.Contains(tail[0].Reason, "approved by bob, carol") {
		t.Errorf("the move's reason = %q, want both approvers", tail[0].Reason)
	}
}

// The gates are judged again when the last approval comes in: a gate that
// started failing since the change was filed makes it fail, with the
// report, and nothing moves.
func TestChangeRequestFailsWhenGatesFailMeanwhile(t *testing.T) {
	e, stats, heard := approvalsEnv(t, 1)
	res, err := e.svc.Advance(ctx, alice, "m", "wave-1", false)
	if err != nil || res.Change == nil {
		t.Fatalf("Advance = %+v, %v", res, err)
	}
	stats.bad.Store(true)
	v := e.svc.State().Version
	got, err := e.svc.Approve(ctx, bob, res.Change.ID)
	if err != nil {
		t.Fatalf("Approve = %v, want the approval taken and the change failed", err)
	}
	if got.State != domain.ChangeFailed || !strings.Contains(got.Failure, "the gates refuse") || got.Ended == nil || got.Ended.By != "bob" {
		t.Errorf("change = %s, failure %q, ended %+v; want failed by the gates", got.State, got.Failure, got.Ended)
	}
	var report gate.Report
	if err := json.Unmarshal(got.Report, &report); err != nil || report.Pass || len(report.Partners) != 2 {
		t.Errorf("report = %s (%v), want the failing report of both partners", got.Report, err)
	}
	if got.Result != nil {
		t.Errorf("a failed change has a result: %s", got.Result)
	}
	if got := e.svc.State().Version; got != v {
		t.Errorf("version = %d, want %d: nothing moved", got, v)
	}
	if got := e.stage(t, "m", "a").Stage; got != domain.StageShadow {
		t.Errorf("a at %s, want shadow", got)
	}
	tail := lastEntries(t, e, 2)
	if tail[0].Action != "change.approve" || tail[1].Action != "change.fail" || tail[1].Actor != domain.ChangeActor {
		t.Errorf("audit = %s by %s, %s by %s; want change.approve then change.fail by switchback", tail[0].Action, tail[0].Actor, tail[1].Action, tail[1].Actor)
	}
	if ev := heard.events(); ev[len(ev)-1] != domain.NoticeGateRefused {
		t.Errorf("notices = %v, want the last %s", ev, domain.NoticeGateRefused)
	}
	stored, err := e.svc.ChangeRequest(got.ID)
	if err != nil || stored.State != domain.ChangeFailed {
		t.Errorf("ChangeRequest = %s, %v; want failed", stored.State, err)
	}
}

// A move the gates refuse now is refused now: nothing is filed.
func TestChangeRequestNotFiledWhenGatesRefuse(t *testing.T) {
	e, stats, heard := approvalsEnv(t, 1)
	stats.bad.Store(true)
	v, n := e.svc.State().Version, len(e.auditLog(t))
	_, err := e.svc.Advance(ctx, alice, "m", "wave-1", false)
	wantCode(t, err, domain.CodeGateRefused)
	e.unchanged(t, v, n)
	if got := e.svc.Changes(control.ChangeFilter{}); len(got) != 0 {
		t.Errorf("Changes = %d after a refusal, want none", len(got))
	}
	if got := heard.events(); len(got) != 1 || got[0] != domain.NoticeGateRefused {
		t.Errorf("notices = %v, want the refusal's %s alone (no %s)", got, domain.NoticeGateRefused, domain.NoticeChangePending)
	}
	// Forced, it is filed (with a reason), and its approval skips the gates.
	res, err := e.svc.Advance(ctx, alice, "m", "wave-1", true)
	if err != nil || res.Change == nil || !res.Change.Force {
		t.Fatalf("forced Advance = %+v, %v; want a forced change request", res, err)
	}
	got, err := e.svc.Approve(ctx, bob, res.Change.ID)
	if err != nil || got.State != domain.ChangeApplied {
		t.Fatalf("Approve(forced) = %+v, %v; want applied past the refusing gates", got, err)
	}
}

// The kill switch stays instant: revert, revert-all and resume, and moving
// a partner back, never wait for approvals, even with every forward stage
// needing them; and a change approved while the migration is reverted
// fails.
func TestRevertNeedsNoApproval(t *testing.T) {
	e, _, _ := approvalsEnv(t, 1)
	m := e.svc.State().Migrations["m"].Migration
	m.Approvals = &domain.ApprovalPolicy{Required: 3, Stages: []domain.Stage{domain.StageShadow, domain.StageNew, domain.StageDone}}
	if _, _, err := e.svc.PutMigration(ctx, admin, m); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Advance(ctx, alice, "m", "wave-1", false)
	if err != nil || res.Change == nil {
		t.Fatalf("Advance = %+v, %v", res, err)
	}
	v := e.svc.State().Version
	if _, err := e.svc.Revert(ctx, ops, "m"); err != nil {
		t.Fatalf("Revert = %v", err)
	}
	if !e.svc.State().Migrations["m"].Reverted || e.svc.State().Version != v+1 {
		t.Fatalf("Revert did not turn the kill switch on at once")
	}
	if _, err := e.svc.RevertAll(ctx, ops); err != nil {
		t.Fatalf("RevertAll = %v", err)
	}
	// The change approved meanwhile cannot move a reverted migration.
	got, err := e.svc.Approve(ctx, bob, res.Change.ID)
	if err != nil || got.State != domain.ChangePending {
		t.Fatalf("first of three approvals = %+v, %v", got, err)
	}
	if _, err := e.svc.Approve(ctx, carol, res.Change.ID); err != nil {
		t.Fatal(err)
	}
	got, err = e.svc.Approve(ctx, control.Change{Actor: "dave"}, res.Change.ID)
	if err != nil || got.State != domain.ChangeFailed || !strings.Contains(got.Failure, "reverted") || got.Report != nil {
		t.Errorf("approval of a reverted migration's change = %s (%q), %v; want failed, reverted, no report", got.State, got.Failure, err)
	}
	if _, err := e.svc.Resume(ctx, ops, "m"); err != nil {
		t.Fatalf("Resume = %v", err)
	}
	if e.svc.State().Migrations["m"].Reverted {
		t.Fatalf("Resume did not turn the kill switch off at once")
	}
	// Backward: no approval either.
	e.moveTo(t, "m", "a", domain.StageLegacy)
	if got := e.stage(t, "m", "a").Stage; got != domain.StageLegacy {
		t.Errorf("a at %s after moving back, want legacy", got)
	}
	if got := e.svc.Changes(control.ChangeFilter{State: domain.ChangePending}); len(got) != 0 {
		t.Errorf("pending changes = %+v, want none: nothing here waits", got)
	}
}

// A partner's stage change into a stage that needs approvals: MoveStage
// files it, SetStage refuses it without filing anything.
func TestMoveStageFilesChangeRequest(t *testing.T) {
	e, _, _ := approvalsEnv(t, 1)
	_, err := e.svc.SetStage(ctx, alice, "m", "a", domain.StageNew, false)
	wantCode(t, err, domain.CodeConflict)
	if got := e.svc.Changes(control.ChangeFilter{}); len(got) != 0 {
		t.Fatalf("SetStage filed %d change requests, want none", len(got))
	}
	res, err := e.svc.MoveStage(ctx, alice, "m", "a", domain.StageNew, false)
	if err != nil || res.Change == nil || res.Change.Kind != domain.ChangeStage || res.Change.Partner != "a" || res.Stage.Stage != domain.StageShadow {
		t.Fatalf("MoveStage = %+v, %v; want a's change request and a still in shadow", res, err)
	}
	got, err := e.svc.Approve(ctx, bob, res.Change.ID)
	if err != nil || got.State != domain.ChangeApplied {
		t.Fatalf("Approve = %+v, %v", got, err)
	}
	var moved domain.PartnerStage
	if err := json.Unmarshal(got.Result, &moved); err != nil || moved.Partner != "a" || moved.Stage != domain.StageNew {
		t.Errorf("result = %s, want a at new", got.Result)
	}
	if got := e.stage(t, "m", "a").Stage; got != domain.StageNew {
		t.Errorf("a at %s, want new", got)
	}
	if got := e.stage(t, "m", "b").Stage; got != domain.StageShadow {
		t.Errorf("b at %s, want shadow: the change moved a only", got)
	}
	if tail := lastEntries(t, e, 1); tail[0].Action != "stage.set" || tail[0].Actor != "alice" {
		t.Errorf("the move audited as %s by %s, want stage.set by alice", tail[0].Action, tail[0].Actor)
	}
}

// A change that is no longer the cohort's move fails: the cohort moved
// meanwhile.
func TestChangeRequestFailsWhenCohortMoved(t *testing.T) {
	e, _, _ := approvalsEnv(t, 1)
	res, err := e.svc.Advance(ctx, alice, "m", "wave-1", false)
	if err != nil || res.Change == nil {
		t.Fatal(err)
	}
	e.moveTo(t, "m", "a", domain.StageLegacy)
	got, err := e.svc.Approve(ctx, bob, res.Change.ID)
	if err != nil || got.State != domain.ChangeFailed || !strings.Contains(got.Failure, "cohort \"wave-1\" is at legacy now") {
		t.Errorf("Approve = %s (%q), %v; want failed: the cohort is no longer in shadow", got.State, got.Failure, err)
	}
}

func TestRejectChangeRequest(t *testing.T) {
	e, _, _ := approvalsEnv(t, 1)
	res, err := e.svc.Advance(ctx, alice, "m", "wave-1", false)
	if err != nil || res.Change == nil {
		t.Fatal(err)
	}
	_, err = e.svc.Reject(ctx, control.Change{Actor: "bob"}, res.Change.ID)
	wantCode(t, err, domain.CodeInvalid)
	got, err := e.svc.Reject(ctx, control.Change{Actor: "bob", Reason: "not during the freeze"}, res.Change.ID)
	if err != nil || got.State != domain.ChangeRejected || got.Ended.By != "bob" || got.Ended.Reason != "not during the freeze" {
		t.Fatalf("Reject = %+v, %v", got, err)
	}
	if tail := lastEntries(t, e, 1); tail[0].Action != "change.reject" || tail[0].Actor != "bob" {
		t.Errorf("audited as %s by %s, want change.reject by bob", tail[0].Action, tail[0].Actor)
	}
	_, err = e.svc.Approve(ctx, carol, res.Change.ID)
	wantCode(t, err, domain.CodeConflict)
	if got := e.stage(t, "m", "a").Stage; got != domain.StageShadow {
		t.Errorf("a at %s after a rejection, want shadow", got)
	}
	// After a rejection the same move may be asked for again.
	again, err := e.svc.Advance(ctx, alice, "m", "wave-1", false)
	if err != nil || again.Change == nil || again.Change.ID == res.Change.ID {
		t.Errorf("Advance after a rejection = %+v, %v; want a new change request", again.Change, err)
	}
}

// Expiry, on the injected clock: a request past its ttl reads expired at
// once, takes no approval, and ExpireChanges stores it so, audited by
// switchback.
func TestChangeRequestExpires(t *testing.T) {
	e, _, _ := approvalsEnv(t, 1)
	m := e.svc.State().Migrations["m"].Migration
	m.Approvals = &domain.ApprovalPolicy{Required: 1, Stages: []domain.Stage{domain.StageNew}, TTL: time.Hour}
	if _, _, err := e.svc.PutMigration(ctx, admin, m); err != nil {
		t.Fatal(err)
	}
	res, err := e.svc.Advance(ctx, alice, "m", "wave-1", false)
	if err != nil || res.Change == nil {
		t.Fatal(err)
	}
	id := res.Change.ID
	if n, err := e.svc.ExpireChanges(ctx); n != 0 || err != nil {
		t.Errorf("ExpireChanges before the ttl = %d, %v; want 0", n, err)
	}
	e.clock.Advance(time.Hour - time.Second)
	if got, _ := e.svc.ChangeRequest(id); got.State != domain.ChangePending {
		t.Errorf("a second before its expiry the change is %s, want pending", got.State)
	}
	e.clock.Advance(time.Second)
	got, err := e.svc.ChangeRequest(id)
	if err != nil || got.State != domain.ChangeExpired || got.Ended == nil || got.Ended.By != domain.ChangeActor {
		t.Errorf("at its expiry the change reads %s (%+v), %v; want expired by switchback", got.State, got.Ended, err)
	}
	if got := e.svc.Changes(control.ChangeFilter{State: domain.ChangePending}); len(got) != 0 {
		t.Errorf("pending changes at the expiry = %d, want none", len(got))
	}
	_, err = e.svc.Approve(ctx, bob, id)
	wantCode(t, err, domain.CodeConflict)

	n, err := e.svc.ExpireChanges(ctx)
	if n != 1 || err != nil {
		t.Fatalf("ExpireChanges = %d, %v; want 1", n, err)
	}
	if tail := lastEntries(t, e, 1); tail[0].Action != "change.expire" || tail[0].Actor != domain.ChangeActor || tail[0].Target != "migration/m/change/"+id {
		t.Errorf("expiry audited as %+v", tail[0])
	}
	if n, err := e.svc.ExpireChanges(ctx); n != 0 || err != nil {
		t.Errorf("ExpireChanges again = %d, %v; want 0", n, err)
	}
	if got := e.stage(t, "m", "a").Stage; got != domain.StageShadow {
		t.Errorf("a at %s, want shadow", got)
	}
	// An expired request no longer holds the move: asking again files anew.
	again, err := e.svc.Advance(ctx, alice, "m", "wave-1", false)
	if err != nil || again.Change == nil || again.Change.ID == id {
		t.Errorf("Advance after the expiry = %+v, %v; want a new change request", again.Change, err)
	}
}

// Change requests survive a restart on the same bbolt file, and are
// approved after it.
func TestChangeRequestAfterRestart(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	store, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	stats := (&switchStats{}).StageCounts()
	svc, err := control.New(ctx, store, control.Options{Now: c.Now, Stats: stats, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{svc: svc, store: store, clock: c}
	m := migration("m")
	m.Approvals = &domain.ApprovalPolicy{Required: 1, Stages: []domain.Stage{domain.StageNew}}
	if _, _, err := svc.PutMigration(ctx, admin, m); err != nil {
		t.Fatal(err)
	}
	e.partner(t, "a")
	e.moveTo(t, "m", "a", domain.StageShadow)
	c.Advance(2 * time.Hour)
	res, err := svc.MoveStage(ctx, alice, "m", "a", domain.StageNew, false)
	if err != nil || res.Change == nil {
		t.Fatal(err)
	}
	if err := store.Close(); err != nil {
		t.Fatal(err)
	}

	store2 := bolttest.OpenAt(t, path)
	svc2, err := control.New(ctx, store2, control.Options{Now: c.Now, Stats: stats, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	got, err := svc2.ChangeRequest(res.Change.ID)
	if err != nil || got.State != domain.ChangePending || got.RequestedBy != "alice" || !got.RequestedAt.Equal(res.Change.RequestedAt) {
		t.Fatalf("after restart ChangeRequest = %+v, %v; want alice's pending request", got, err)
	}
	if got, err = svc2.Approve(ctx, bob, got.ID); err != nil || got.State != domain.ChangeApplied {
		t.Fatalf("Approve after restart = %+v, %v", got, err)
	}
	e2 := &env{svc: svc2, store: store2, clock: c}
	if got := e2.stage(t, "m", "a").Stage; got != domain.StageNew {
		t.Errorf("a at %s, want new", got)
	}
}

// A store keeps every pending change request and the latest 500 ended
// ones: ending one more deletes the oldest, in the same transaction.
func TestEndedChangeRequestsBounded(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	store := bolttest.OpenAt(t, path)
	t0 := time.Date(2026, 2, 1, 0, 0, 0, 0, time.UTC)
	err := store.Update(ctx, func(tx control.Tx) error {
		for i := range control.MaxEndedChanges {
			c := domain.ChangeRequest{ID: fmt.Sprintf("chg_%024x", i+1), Migration: "m", Kind: domain.ChangeAdvance, Cohort: "wave-1",
				From: domain.StageShadow, To: domain.StageNew, RequestedBy: "alice", RequestedAt: t0.Add(time.Duration(i) * time.Minute),
				ExpiresAt: t0.Add(time.Duration(i)*time.Minute + time.Hour), State: domain.ChangePending, Required: 1, Approvals: []domain.Approval{}}
			if err := tx.PutChange(c.End(domain.ChangeRejected, domain.ChangeEnd{By: "bob", At: c.RequestedAt.Add(time.Second), Reason: "no"})); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c := newClock()
	svc, err := control.New(ctx, store, control.Options{Now: c.Now, Stats: (&switchStats{}).StageCounts(), Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{svc: svc, store: store, clock: c}
	m := migration("m")
	m.Approvals = &domain.ApprovalPolicy{Required: 1, Stages: []domain.Stage{domain.StageNew}}
	if _, _, err := svc.PutMigration(ctx, admin, m); err != nil {
		t.Fatal(err)
	}
	e.partner(t, "a")
	e.moveTo(t, "m", "a", domain.StageShadow)
	c.Advance(2 * time.Hour)
	res, err := svc.MoveStage(ctx, alice, "m", "a", domain.StageNew, false)
	if err != nil || res.Change == nil {
		t.Fatal(err)
	}
	if got := len(svc.Changes(control.ChangeFilter{})); got != control.MaxEndedChanges+1 {
		t.Errorf("changes with one pending = %d, want %d: pending ones are kept beside the ended", got, control.MaxEndedChanges+1)
	}
	if _, err := svc.Reject(ctx, control.Change{Actor: "bob", Reason: "no"}, res.Change.ID); err != nil {
		t.Fatal(err)
	}
	d, err := store.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Changes) != control.MaxEndedChanges {
		t.Errorf("stored changes = %d, want %d", len(d.Changes), control.MaxEndedChanges)
	}
	for _, x := range d.Changes {
		if x.ID == fmt.Sprintf("chg_%024x", 1) {
			t.Errorf("the oldest ended change is still stored")
		}
	}
	if _, err := svc.ChangeRequest(res.Change.ID); err != nil {
		t.Errorf("the newest ended change is gone: %v", err)
	}
	if got := len(svc.Changes(control.ChangeFilter{})); got != control.MaxEndedChanges {
		t.Errorf("Changes = %d, want %d", got, control.MaxEndedChanges)
	}
}

// Asking with force for a move whose request is pending without force (or
// the reverse) is a conflict: the pending request would drop the force.
func TestChangeRequestOfAnotherForceIsAConflict(t *testing.T) {
	e, _, _ := approvalsEnv(t, 1)
	res, err := e.svc.Advance(ctx, alice, "m", "wave-1", false)
	if err != nil || res.Change == nil {
		t.Fatalf("Advance = %+v, %v; want a change request", res, err)
	}
	_, err = e.svc.Advance(ctx, control.Change{Actor: "bob", Reason: "skip the gates"}, "m", "wave-1", true)
	wantCode(t, err, domain.CodeConflict)
	if again, err := e.svc.Advance(ctx, control.Change{Actor: "bob"}, "m", "wave-1", false); err != nil || again.Change == nil || again.Change.ID != res.Change.ID {
		t.Errorf("the same move without force = %+v, %v; want the pending %s", again.Change, err, res.Change.ID)
	}
}
