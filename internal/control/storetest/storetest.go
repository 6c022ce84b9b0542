// Package storetest is the conformance suite of control.Store: what every
// store must do, checked the same way for each. A store runs it from its
// own tests:
//
//	func TestConformance(t *testing.T) {
//		storetest.Run(t, func(t *testing.T) (control.Store, func() error) {
//			s := open(t) // a new, empty store, released by t.Cleanup
//			return s, s.Close
//		})
//	}
package storetest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// Opener returns a new, empty store for one test and the function that
// closes it. The suite calls close at most once, and only in the tests of a
// closed store; releasing everything else (files, connections, a store
// left open) is the opener's, through t.Cleanup.
type Opener func(t *testing.T) (store control.Store, close func() error)

// Run runs the suite against the stores open returns, each test on a store
// of its own.
func Run(t *testing.T, open Opener) {
	tests := []struct {
		name string
		run  func(*testing.T, Opener)
	}{
		{"EmptyStore", testEmpty},
		{"LoadReturnsWhatWasWritten", testLoad},
		{"MigrationReconcileSetting", testReconcileSetting},
		{"MigrationApprovalsSetting", testApprovalsSetting},
		{"ChangeRequests", testChanges},
		{"UpdateAllOrNothing", testAllOrNothing},
		{"UpdateCanceledContext", testCanceled},
		{"AuditOrder", testAuditOrder},
		{"AuditAppendOnly", testAuditAppendOnly},
		{"StageRows", testStageRows},
		{"CountsSaturate", testSaturate},
		{"Mismatches", testMismatches},
		{"AppliedReports", testAppliedReports},
		{"Noise", testNoise},
		{"Notifiers", testNotifiers},
		{"StoreID", testStoreID},
		{"Export", testExport},
		{"ConcurrentWriters", testConcurrentWriters},
		{"ClosedStore", testClosed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { tt.run(t, open) })
	}
}

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func mustOpen(t *testing.T, open Opener) control.Store {
	t.Helper()
	s, _ := open(t)
	return s
}

func update(t *testing.T, s control.Store, fn func(control.Tx) error) {
	t.Helper()
	if err := s.Update(t.Context(), fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

func load(t *testing.T, s control.Store) domain.Data {
	t.Helper()
	d, err := s.Load(t.Context())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return d
}

// normalized orders Load's slices and drops the empty entries of its maps:
// a store may or may not list a migration without stages or cohorts.
func normalized(d domain.Data) domain.Data {
	d.StoreID = ""
	slices.SortFunc(d.Partners, func(a, b domain.Partner) int { return compare(a.ID, b.ID) })
	slices.SortFunc(d.Migrations, func(a, b domain.Migration) int { return compare(a.Key, b.Key) })
	slices.SortFunc(d.Tokens, func(a, b domain.Token) int { return compare(a.Name, b.Name) })
	slices.SortFunc(d.Changes, func(a, b domain.ChangeRequest) int { return compare(a.ID, b.ID) })
	slices.SortFunc(d.Notifiers, func(a, b domain.Notifier) int { return compare(a.Name, b.Name) })
	stages, cohorts := map[string][]domain.PartnerStage{}, map[string][]domain.Cohort{}
	for k, v := range d.Stages {
		if len(v) > 0 {
			stages[k] = slices.SortedFunc(slices.Values(v), func(a, b domain.PartnerStage) int { return compare(a.Partner, b.Partner) })
		}
	}
	for k, v := range d.Cohorts {
		if len(v) > 0 {
			cohorts[k] = slices.SortedFunc(slices.Values(v), func(a, b domain.Cohort) int { return compare(a.Name, b.Name) })
		}
	}
	d.Stages, d.Cohorts = stages, cohorts
	return d
}

func compare(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// SampleData is a store's worth of rows for a test to write and load
// back: partners (with webhook secrets and PSA API access, whose
// credentials all hold "s3cret"), two migrations (one with an approvals
// policy), stages, a cohort, a token, two change requests (one pending
// and one applied) and notification targets (by name; the secret holds
// "s3cret" too).
func SampleData() domain.Data {
	m := domain.Migration{
		Key:       "psa-webhooks-v2",
		Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://legacy"}, New: domain.Pipeline{URL: "http://new"}},
		Gates:     domain.DefaultGates(),
		Guard:     domain.DefaultGuard(),
		Compare:   domain.CompareRules{Ignore: []string{"fields.updatedAt"}, AllowExtraKinds: []string{"contact"}},
		Reconcile: &domain.ReconcilePolicy{AfterRevert: true, Every: time.Hour, Window: 2 * time.Hour},
		Approvals: &domain.ApprovalPolicy{Required: 2, Stages: []domain.Stage{domain.StageNew, domain.StageDone}, TTL: 24 * time.Hour},
		Reverted:  true,
		Seq:       1,
		CreatedAt: t0,
		UpdatedAt: t0.Add(time.Minute),
	}
	m2 := m
	m2.Key, m2.Seq, m2.Reverted, m2.Reconcile, m2.Approvals = "other", 2, false, nil, nil
	return domain.Data{
		Version: 42,
		Partners: []domain.Partner{
			{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise, Secret: "s3cret", CreatedAt: t0, UpdatedAt: t0,
				PSAAPI: &domain.PSAAPI{BaseURL: "https://api-na.myconnectwise.net", CompanyID: "acme-company-s3cret",
					PublicKey: "acme-public-s3cret", PrivateKey: "acme-private-s3cret", ClientID: "acme-client-s3cret"}},
			// globex has PSA API access and no webhook secret.
			{ID: "globex", Name: "Globex", PSA: domain.PSAAutotask, CreatedAt: t0, UpdatedAt: t0,
				PSAAPI: &domain.PSAAPI{BaseURL: "https://webservices5.autotask.net/atservicesrest", Username: "globex-user-s3cret",
					Secret: "globex-secret-s3cret", IntegrationCode: "globex-code-s3cret"}},
		},
		Migrations: []domain.Migration{m, m2},
		Stages: map[string][]domain.PartnerStage{
			"psa-webhooks-v2": {
				{Partner: "acme", Stage: domain.StageNew, Since: t0.Add(time.Hour)},
				{Partner: "globex", Stage: domain.StageShadow, Since: t0.Add(2 * time.Hour)},
			},
		},
		Cohorts: map[string][]domain.Cohort{
			"psa-webhooks-v2": {{Name: "wave-1", Order: 1, Partners: []string{"acme", "globex"}, UpdatedAt: t0}},
		},
		Tokens:  []domain.Token{{Name: "admin", Role: domain.RoleAdmin, Hash: []byte{1, 2, 3}, CreatedAt: t0}},
		Changes: SampleChanges(),
		Notifiers: []domain.Notifier{
			{Name: "chat", URL: "https://hooks.slack.com/services/T0/B0/X0", Events: []string{domain.NoticeRevert, domain.NoticeResume},
				Format: domain.FormatSlack, CreatedAt: t0, UpdatedAt: t0},
			{Name: "ops", URL: "https://hooks.example.com/switchback", Events: []string{domain.NoticeGuardRevert},
				Format: domain.FormatStandard, Secret: sampleNotifierSecret, CreatedAt: t0, UpdatedAt: t0.Add(time.Minute)},
		},
	}
}

// sampleNotifierSecret is the secret of SampleData's standard target:
// "whsec_" and the base64 of 24 bytes, holding "s3cret".
const sampleNotifierSecret = "whsec_s3cretAAAAAAAAAAAAAAAAAAAAAAAAAA"

// SampleChanges are two change requests of SampleData's first migration:
// chg_…01 applied (with its result), chg_…02 pending with one approval.
func SampleChanges() []domain.ChangeRequest {
	applied := domain.ChangeRequest{ID: "chg_000000000000000000000001", Migration: "psa-webhooks-v2", Kind: domain.ChangeAdvance,
		Cohort: "wave-1", From: domain.StageShadow, To: domain.StageNew, RequestedBy: "alice", Reason: "wave 1 to new",
		RequestedAt: t0, ExpiresAt: t0.Add(24 * time.Hour), State: domain.ChangePending, Required: 2,
		Approvals: []domain.Approval{{By: "bob", At: t0.Add(time.Minute)}, {By: "carol", At: t0.Add(2 * time.Minute), Reason: "looks good"}}}
	applied = applied.End(domain.ChangeApplied, domain.ChangeEnd{By: "carol", At: t0.Add(2 * time.Minute), Reason: "looks good"})
	applied.Result = json.RawMessage(`{"cohort":"wave-1","from":"shadow","to":"new","partners":["acme"]}`)
	pending := domain.ChangeRequest{ID: "chg_000000000000000000000002", Migration: "psa-webhooks-v2", Kind: domain.ChangeStage,
		Partner: "globex", From: domain.StageShadow, To: domain.StageNew, Force: true, RequestedBy: "alice", Reason: "forced: the gate waits for data",
		RequestedAt: t0.Add(time.Hour), ExpiresAt: t0.Add(25 * time.Hour), State: domain.ChangePending, Required: 2,
		Approvals: []domain.Approval{{By: "bob", At: t0.Add(61 * time.Minute)}}}
	return []domain.ChangeRequest{applied, pending}
}

// Write puts everything of d but its audit entry and statistics, for
// tests that fill a store with SampleData.
func Write(tx control.Tx, d domain.Data) error {
	for _, p := range d.Partners {
		if err := tx.PutPartner(p); err != nil {
			return err
		}
	}
	for _, m := range d.Migrations {
		if err := tx.PutMigration(m); err != nil {
			return err
		}
	}
	for k, sts := range d.Stages {
		for _, ps := range sts {
			if err := tx.PutStage(k, ps); err != nil {
				return err
			}
		}
	}
	for k, cs := range d.Cohorts {
		for _, c := range cs {
			if err := tx.PutCohort(k, c); err != nil {
				return err
			}
		}
	}
	for _, tok := range d.Tokens {
		if err := tx.PutToken(tok); err != nil {
			return err
		}
	}
	for _, c := range d.Changes {
		if err := tx.PutChange(c); err != nil {
			return err
		}
	}
	for _, n := range d.Notifiers {
		if err := tx.PutNotifier(n); err != nil {
			return err
		}
	}
	return tx.SetVersion(d.Version)
}

// A new store holds nothing, at version 0, with an identity.
func testEmpty(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	d := load(t, s)
	if d.StoreID == "" {
		t.Error("StoreID is empty: a store has an identity from its creation on")
	}
	want := domain.Data{Stages: map[string][]domain.PartnerStage{}, Cohorts: map[string][]domain.Cohort{}}
	if diff := cmp.Diff(want, normalized(d), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Load(empty) (-want +got):\n%s", diff)
	}
	entries, err := s.AuditLog(t.Context(), 0, 10)
	if err != nil || entries == nil || len(entries) != 0 {
		t.Errorf("AuditLog(empty) = %v, %v; want an empty, non-nil slice", entries, err)
	}
}

// Load returns what was written, with stages (records of a partner in a
// migration) and cohorts by migration; a later write replaces an earlier
// one of the same key, and a deleted token is gone.
func testLoad(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	want := SampleData()
	update(t, s, func(tx control.Tx) error { return Write(tx, want) })
	if diff := cmp.Diff(normalized(want), normalized(load(t, s)), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}

	moved := domain.PartnerStage{Partner: "acme", Stage: domain.StageDone, Since: t0.Add(3 * time.Hour)}
	update(t, s, func(tx control.Tx) error {
		if err := tx.PutStage("psa-webhooks-v2", moved); err != nil {
			return err
		}
		if err := tx.PutStage("other", domain.PartnerStage{Partner: "acme", Stage: domain.StageShadow, Since: t0}); err != nil {
			return err
		}
		if err := tx.DeleteToken("admin"); err != nil {
			return err
		}
		if err := tx.DeleteToken("nobody"); err != nil {
			return fmt.Errorf("deleting a token that does not exist: %w", err)
		}
		return tx.SetVersion(43)
	})
	want.Stages["psa-webhooks-v2"][0] = moved
	want.Stages["other"] = []domain.PartnerStage{{Partner: "acme", Stage: domain.StageShadow, Since: t0}}
	want.Tokens = nil
	want.Version = 43
	if diff := cmp.Diff(normalized(want), normalized(load(t, s)), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Load after overwrites (-want +got):\n%s", diff)
	}
}

// A migration's reconcile setting reads back as written, durations to the
// nanosecond; a later write of the migration replaces it, and a write
// without one leaves none behind rather than the earlier one.
func testReconcileSetting(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	m := SampleData().Migrations[0]
	reconcileOf := func(t *testing.T) *domain.ReconcilePolicy {
		t.Helper()
		for _, got := range load(t, s).Migrations {
			if got.Key == m.Key {
				return got.Reconcile
			}
		}
		t.Fatalf("Load lacks migration %q", m.Key)
		return nil
	}
	for _, want := range []*domain.ReconcilePolicy{
		{AfterRevert: true, Every: time.Hour, Window: 2 * time.Hour},
		{Every: 90*time.Minute + time.Nanosecond},
		{AfterRevert: true},
		nil,
		{AfterRevert: true, Every: 5 * time.Minute, Window: 31 * 24 * time.Hour},
	} {
		m.Reconcile = want
		update(t, s, func(tx control.Tx) error { return tx.PutMigration(m) })
		if diff := cmp.Diff(want, reconcileOf(t)); diff != "" {
			t.Errorf("Load after writing reconcile %+v (-want +got):\n%s", want, diff)
		}
	}
}

// A migration's approvals setting reads back as written, its TTL to the
// nanosecond; a later write without one leaves none behind.
func testApprovalsSetting(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	m := SampleData().Migrations[0]
	for _, want := range []*domain.ApprovalPolicy{
		{Required: 2, Stages: []domain.Stage{domain.StageNew, domain.StageDone}, TTL: 24 * time.Hour},
		{Required: 10, Stages: []domain.Stage{domain.StageShadow}, TTL: 90*time.Minute + time.Nanosecond},
		nil,
		{Required: 1, Stages: []domain.Stage{domain.StageDone}, TTL: 720 * time.Hour},
	} {
		m.Approvals = want
		update(t, s, func(tx control.Tx) error { return tx.PutMigration(m) })
		var got *domain.ApprovalPolicy
		for _, x := range load(t, s).Migrations {
			if x.Key == m.Key {
				got = x.Approvals
			}
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("Load after writing approvals %+v (-want +got):\n%s", want, diff)
		}
	}
}

// Change requests read back as written, every field; a later write of an
// id replaces it, a deleted one is gone (deleting one that does not exist
// is not an error), and an Update that fails leaves none of its change
// requests behind.
func testChanges(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	changesOf := func(t *testing.T) []domain.ChangeRequest {
		t.Helper()
		return normalized(load(t, s)).Changes
	}
	want := SampleChanges()
	update(t, s, func(tx control.Tx) error {
		for _, c := range want {
			if err := tx.PutChange(c); err != nil {
				return err
			}
		}
		return nil
	})
	if diff := cmp.Diff(want, changesOf(t), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}

	failed := want[1]
	failed.Approvals = append(slices.Clone(failed.Approvals), domain.Approval{By: "carol", At: t0.Add(2 * time.Hour)})
	failed = failed.End(domain.ChangeFailed, domain.ChangeEnd{By: "carol", At: t0.Add(2 * time.Hour)})
	failed.Failure = "the gates refuse: globex (zeroTolerance)"
	failed.Report = json.RawMessage(`{"verdict":"fail","pass":false,"partners":[{"partner":"globex","stage":"shadow","verdict":"fail","pass":false,"checks":[]}]}`)
	update(t, s, func(tx control.Tx) error {
		if err := tx.PutChange(failed); err != nil {
			return err
		}
		if err := tx.DeleteChange(want[0].ID); err != nil {
			return err
		}
		if err := tx.DeleteChange("chg_ffffffffffffffffffffffff"); err != nil {
			return fmt.Errorf("deleting a change request that does not exist: %w", err)
		}
		return nil
	})
	if diff := cmp.Diff([]domain.ChangeRequest{failed}, changesOf(t), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Load after a replace and a delete (-want +got):\n%s", diff)
	}

	boom := errors.New("boom")
	err := s.Update(t.Context(), func(tx control.Tx) error {
		if err := tx.PutChange(want[0]); err != nil {
			return err
		}
		if err := tx.DeleteChange(failed.ID); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want boom", err)
	}
	if diff := cmp.Diff([]domain.ChangeRequest{failed}, changesOf(t), cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("Load after a failed Update (-want +got):\n%s", diff)
	}
}

// An fn that fails after writing leaves nothing of it behind, statistics
// included, and Update returns its error.
func testAllOrNothing(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	keep := domain.Partner{ID: "keep", Name: "Keep", PSA: domain.PSAGeneric, CreatedAt: t0}
	update(t, s, func(tx control.Tx) error {
		if err := tx.PutPartner(keep); err != nil {
			return err
		}
		return tx.SetVersion(1)
	})
	before := load(t, s)

	boom := errors.New("boom")
	since := t0.Add(-time.Hour)
	err := s.Update(t.Context(), func(tx control.Tx) error {
		if err := Write(tx, SampleData()); err != nil {
			return err
		}
		if err := tx.AppendAudit(audit.Next(domain.AuditEntry{}, domain.AuditEntry{At: t0, Actor: "a", Action: "x"})); err != nil {
			return err
		}
		if err := tx.AddComparisons(since, comparison("acme", "ticket", domain.ClassEqual, t0, 5)); err != nil {
			return err
		}
		if err := tx.AddCandidate(since, candidate("acme", 5, 1)); err != nil {
			return err
		}
		if err := tx.PutMismatch(mismatch("acme", "ticket", domain.ClassValueDiff, t0, "evt_1"), 20); err != nil {
			return err
		}
		if err := tx.PutAppliedReport("r1", "epoch", 7); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the fn's error", err)
	}
	if diff := cmp.Diff(before, load(t, s)); diff != "" {
		t.Errorf("a failed Update left writes behind (-before +after):\n%s", diff)
	}
	if entries, err := s.AuditLog(t.Context(), 0, 10); err != nil || len(entries) != 0 {
		t.Errorf("AuditLog after a failed Update = %v, %v; want no entries", entries, err)
	}
	if rows := stageRows(t, s, "acme", since); len(rows.Comparisons) != 0 || rows.CandidateCalls != 0 || rows.CandidateErrors != 0 {
		t.Errorf("StageRows after a failed Update = %+v, want none", rows)
	}
	if ms := mismatches(t, s, "acme", time.Time{}, 10); len(ms) != 0 {
		t.Errorf("Mismatches after a failed Update = %v, want none", ms)
	}
	if seq := appliedReport(t, s, "r1", "epoch"); seq != 0 {
		t.Errorf("AppliedReport after a failed Update = %d, want 0", seq)
	}
}

// With its context already done, Update does not run fn.
func testCanceled(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	called := false
	err := s.Update(ctx, func(control.Tx) error { called = true; return nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("Update(canceled) = %v, fn called %v; want context.Canceled and not called", err, called)
	}
}

// appendAudit appends n chained entries, one Update each, and returns them.
func appendAudit(t *testing.T, s control.Store, n int) []domain.AuditEntry {
	t.Helper()
	prev := load(t, s).LastAudit
	var out []domain.AuditEntry
	for i := range n {
		e := audit.Next(prev, domain.AuditEntry{
			At: t0.Add(time.Duration(i) * time.Second), Actor: "admin", Action: "test", Target: "t/" + strconv.Itoa(i),
			Before: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`), After: json.RawMessage(`{"n":` + strconv.Itoa(i+1) + `}`),
		})
		update(t, s, func(tx control.Tx) error { return tx.AppendAudit(e) })
		out = append(out, e)
		prev = e
	}
	return out
}

// AuditLog pages through the log in seq order; Load's LastAudit is the
// last entry.
func testAuditOrder(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	log := appendAudit(t, s, 25)
	if diff := cmp.Diff(log[24], load(t, s).LastAudit); diff != "" {
		t.Errorf("LastAudit (-want +got):\n%s", diff)
	}
	tests := []struct {
		name             string
		after            uint64
		limit            int
		wantFirst, wantN int
	}{
		{"first page", 0, 10, 1, 10},
		{"second page", 10, 10, 11, 10},
		{"last partial page", 20, 10, 21, 5},
		{"past the end", 25, 10, 0, 0},
		{"far past the end", 1000, 10, 0, 0},
		{"everything", 0, 1000, 1, 25},
		{"one", 7, 1, 8, 1},
		{"zero limit", 0, 0, 0, 0},
		{"after the largest seq", math.MaxUint64, 10, 0, 0},
		{"after the largest seq but one", math.MaxUint64 - 1, 10, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.AuditLog(t.Context(), tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Errorf("AuditLog returned nil, want an empty slice (it is JSON-encoded as [])")
			}
			var want []domain.AuditEntry
			if tt.wantN > 0 {
				want = log[tt.wantFirst-1 : tt.wantFirst-1+tt.wantN]
			}
			if diff := cmp.Diff(want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
	// Pages of any size read back a chain that verifies.
	for _, size := range []int{1, 3, 25, 100} {
		v := audit.NewVerifier(domain.AuditEntry{})
		var after uint64
		for {
			page, err := s.AuditLog(t.Context(), after, size)
			if err != nil {
				t.Fatal(err)
			}
			if len(page) == 0 {
				break
			}
			if err := v.Check(page); err != nil {
				t.Fatalf("page size %d: %v", size, err)
			}
			after = page[len(page)-1].Seq
		}
		if v.Checked != 25 {
			t.Errorf("page size %d: checked %d entries, want 25", size, v.Checked)
		}
	}
}

// An entry that does not follow the last one is refused: the log is
// append-only.
func testAuditAppendOnly(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	log := appendAudit(t, s, 3)
	for _, e := range []domain.AuditEntry{log[1], log[2]} {
		if err := s.Update(t.Context(), func(tx control.Tx) error { return tx.AppendAudit(e) }); err == nil {
			t.Errorf("AppendAudit(seq %d after seq 3) succeeded, want an error", e.Seq)
		}
	}
	got, err := s.AuditLog(t.Context(), 0, 10)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(log, got); diff != "" {
		t.Errorf("log changed (-want +got):\n%s", diff)
	}
}

func comparison(partner, typ string, class domain.Class, minute time.Time, n uint64) domain.ComparisonCount {
	return domain.ComparisonCount{Migration: "m", Partner: partner, Stage: domain.StageShadow, EventType: typ, Class: class, Minute: minute, Count: n}
}

func candidate(partner string, calls, errs uint64) domain.CandidateCount {
	return domain.CandidateCount{Migration: "m", Partner: partner, Stage: domain.StageShadow, Calls: calls, Errors: errs}
}

func mismatch(partner, typ string, class domain.Class, at time.Time, id string) domain.Mismatch {
	event := domain.NewSampleEvent(typ, "updated", "T-"+id, []byte(`{"data":{"id":"T-`+id+`","note":"<b>&</b>"}}`))
	return domain.Mismatch{Migration: "m", Partner: partner, EventID: id, EventType: typ, Class: class, Diff: "fields.status",
		Primary: json.RawMessage(`{"a":1}`), Shadow: json.RawMessage(`{"a":2}`), At: at, Event: &event}
}

func stageRows(t *testing.T, s control.Store, partner string, since time.Time) domain.StageRows {
	t.Helper()
	rows, err := s.StageRows(t.Context(), "m", partner, domain.StageShadow, since)
	if err != nil {
		t.Fatalf("StageRows: %v", err)
	}
	return rows
}

func mismatches(t *testing.T, s control.Store, partner string, since time.Time, limit int) []domain.Mismatch {
	t.Helper()
	ms, err := s.Mismatches(t.Context(), "m", partner, since, limit)
	if err != nil {
		t.Fatalf("Mismatches: %v", err)
	}
	return ms
}

func appliedReport(t *testing.T, s control.Store, router, epoch string) uint64 {
	t.Helper()
	var seq uint64
	update(t, s, func(tx control.Tx) error {
		var err error
		seq, err = tx.AppliedReport(router, epoch)
		return err
	})
	return seq
}

// sortRows orders rows the way the suite's wants are written.
var sortRows = cmpopts.SortSlices(func(a, b domain.MinuteCount) bool {
	if !a.Minute.Equal(b.Minute) {
		return a.Minute.Before(b.Minute)
	}
	if a.EventType != b.EventType {
		return a.EventType < b.EventType
	}
	return a.Class < b.Class
})

// A row is one stint's count of one event type, class and minute: adds to
// it sum, and other stints (even of the same partner and stage), stages and
// partners have rows of their own.
func testStageRows(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	since := t0.Add(-time.Hour)
	update(t, s, func(tx control.Tx) error {
		for _, c := range []domain.ComparisonCount{
			comparison("acme", "ticket", domain.ClassEqual, t0.Add(time.Minute), 5),
			comparison("acme", "ticket", domain.ClassEqual, t0.Add(time.Minute), 2), // same row: added
			comparison("acme", "company", domain.ClassSkipped, t0.Add(time.Minute), 1),
			comparison("acme", "ticket", domain.ClassValueDiff, t0, 3),
			comparison("acme", "ticket", domain.ClassEqual, t0, 0), // nothing
			comparison("globex", "ticket", domain.ClassEqual, t0, 9),
		} {
			if err := tx.AddComparisons(since, c); err != nil {
				return err
			}
		}
		other := comparison("acme", "ticket", domain.ClassEqual, t0, 9)
		other.Stage = domain.StageNew
		if err := tx.AddComparisons(since, other); err != nil {
			return err
		}
		if err := tx.AddComparisons(since.Add(-time.Hour), comparison("acme", "ticket", domain.ClassEqual, t0, 9)); err != nil {
			return err // an earlier stint in shadow
		}
		for _, c := range []domain.CandidateCount{candidate("acme", 11, 1), candidate("acme", 4, 2), candidate("globex", 9, 0)} {
			if err := tx.AddCandidate(since, c); err != nil {
				return err
			}
		}
		return nil
	})
	want := domain.StageRows{
		Comparisons: []domain.MinuteCount{
			{Minute: t0, EventType: "ticket", Class: domain.ClassValueDiff, Count: 3},
			{Minute: t0.Add(time.Minute), EventType: "company", Class: domain.ClassSkipped, Count: 1},
			{Minute: t0.Add(time.Minute), EventType: "ticket", Class: domain.ClassEqual, Count: 7},
		},
		CandidateCalls:  15,
		CandidateErrors: 3,
	}
	if diff := cmp.Diff(want, stageRows(t, s, "acme", since), sortRows); diff != "" {
		t.Errorf("StageRows (-want +got):\n%s", diff)
	}
	for _, r := range stageRows(t, s, "acme", since).Comparisons {
		if r.Minute.Location() != time.UTC {
			t.Errorf("row minute %v is not in UTC", r.Minute)
		}
	}
	empty := stageRows(t, s, "nobody", since)
	if empty.Comparisons == nil || len(empty.Comparisons) != 0 || empty.CandidateCalls != 0 {
		t.Errorf("StageRows of a partner with no rows = %+v; want an empty, non-nil slice and no calls", empty)
	}
}

// A row near its maximum saturates instead of wrapping: a wrapped
// type_mismatch count would pass its zero-tolerance gate.
func testSaturate(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	since := t0.Add(-time.Hour)
	tests := []struct {
		name      string
		add, want uint64
	}{
		{"three", 3, 3},
		{"to one below the maximum", math.MaxUint64 - 4, math.MaxUint64 - 1},
		{"past the maximum", 5, math.MaxUint64},
		{"once more", 1, math.MaxUint64},
	}
	for _, tt := range tests {
		update(t, s, func(tx control.Tx) error {
			if err := tx.AddComparisons(since, comparison("acme", "ticket", domain.ClassTypeMismatch, t0, tt.add)); err != nil {
				return err
			}
			return tx.AddCandidate(since, candidate("acme", tt.add, tt.add))
		})
		rows := stageRows(t, s, "acme", since)
		if len(rows.Comparisons) != 1 || rows.Comparisons[0].Count != tt.want {
			t.Errorf("%s: rows = %+v, want one of count %d", tt.name, rows.Comparisons, tt.want)
		}
		if rows.CandidateCalls != tt.want || rows.CandidateErrors != tt.want {
			t.Errorf("%s: candidate calls %d, errors %d; want %d each", tt.name, rows.CandidateCalls, rows.CandidateErrors, tt.want)
		}
	}
}

// PutMismatch keeps the newest keep of a partner's event type and class;
// Mismatches answers those at or after since, newest first, up to limit.
func testMismatches(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	var all []domain.Mismatch
	for i := range 5 {
		all = append(all, mismatch("acme", "ticket", domain.ClassValueDiff, t0.Add(time.Duration(i)*time.Second), "evt_v"+strconv.Itoa(i)))
	}
	typeMismatch := mismatch("acme", "ticket", domain.ClassTypeMismatch, t0, "evt_t")
	company := mismatch("acme", "company", domain.ClassValueDiff, t0.Add(-time.Minute), "evt_c")
	company.Event = nil // kept by a router that predates events in samples
	other := mismatch("globex", "ticket", domain.ClassValueDiff, t0, "evt_g")
	update(t, s, func(tx control.Tx) error {
		for _, m := range append(slices.Clone(all), typeMismatch, company, other) {
			if err := tx.PutMismatch(m, 3); err != nil {
				return err
			}
		}
		return nil
	})
	// Of acme's ticket value_diffs, the oldest two went; its other type
	// and class keep theirs, and ties at t0 order by event id.
	want := []domain.Mismatch{all[4], all[3], all[2], typeMismatch, company}
	if diff := cmp.Diff(want, mismatches(t, s, "acme", time.Time{}, 10)); diff != "" {
		t.Errorf("Mismatches (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[:2], mismatches(t, s, "acme", time.Time{}, 2)); diff != "" {
		t.Errorf("Mismatches(limit 2) (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(want[:4], mismatches(t, s, "acme", t0, 10)); diff != "" {
		t.Errorf("Mismatches(since t0) (-want +got):\n%s", diff)
	}
	if got := mismatches(t, s, "nobody", time.Time{}, 10); got == nil || len(got) != 0 {
		t.Errorf("Mismatches of a partner with none = %v, want an empty, non-nil slice", got)
	}
	// The same mismatch put again is kept once.
	update(t, s, func(tx control.Tx) error { return tx.PutMismatch(all[4], 3) })
	if diff := cmp.Diff(want, mismatches(t, s, "acme", time.Time{}, 10)); diff != "" {
		t.Errorf("Mismatches after a resend (-want +got):\n%s", diff)
	}
}

// Each router's journal epoch has its own last applied report seq.
func testAppliedReports(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	if got := appliedReport(t, s, "r1", "e1"); got != 0 {
		t.Errorf("AppliedReport(none) = %d, want 0", got)
	}
	update(t, s, func(tx control.Tx) error {
		for _, r := range []struct {
			router, epoch string
			seq           uint64
		}{{"r1", "e1", 3}, {"r1", "e1", 4}, {"r1", "e2", 1}, {"r2", "e1", 9}} {
			if err := tx.PutAppliedReport(r.router, r.epoch, r.seq); err != nil {
				return err
			}
		}
		return nil
	})
	for _, tt := range []struct {
		router, epoch string
		want          uint64
	}{{"r1", "e1", 4}, {"r1", "e2", 1}, {"r2", "e1", 9}, {"r2", "e2", 0}, {"r1e", "1", 0}} {
		if got := appliedReport(t, s, tt.router, tt.epoch); got != tt.want {
			t.Errorf("AppliedReport(%q, %q) = %d, want %d", tt.router, tt.epoch, got, tt.want)
		}
	}
}

// A store's identity stays what it was at creation, through writes; another
// store has another.
func testStoreID(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	first := load(t, s).StoreID
	update(t, s, func(tx control.Tx) error { return Write(tx, SampleData()) })
	if got := load(t, s).StoreID; got != first || got == "" {
		t.Errorf("StoreID after a write = %q, want %q", got, first)
	}
	if other := load(t, mustOpen(t, open)).StoreID; other == first {
		t.Errorf("two stores have the same StoreID %q", other)
	}
}

// Concurrent Updates are serialized: none loses another's adds, and a
// reader meanwhile sees each transaction whole, never a count ahead of its
// partners.
func testConcurrentWriters(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	const writers, each = 8, 25
	since := t0.Add(-time.Hour)
	var wg sync.WaitGroup
	errs := make(chan error, writers+1)
	done := make(chan struct{})
	var reader sync.WaitGroup
	reader.Add(1)
	go func() {
		defer reader.Done()
		var last uint64
		for {
			select {
			case <-done:
				return
			default:
			}
			rows, err := s.StageRows(t.Context(), "m", "acme", domain.StageShadow, since)
			if err != nil {
				errs <- err
				return
			}
			if rows.CandidateCalls < last {
				errs <- fmt.Errorf("calls went back from %d to %d", last, rows.CandidateCalls)
				return
			}
			last = rows.CandidateCalls
			var compared uint64
			for _, r := range rows.Comparisons {
				compared += r.Count
			}
			if compared != rows.CandidateCalls {
				errs <- fmt.Errorf("a reader saw %d comparisons and %d calls, added in the same transactions", compared, rows.CandidateCalls)
				return
			}
		}
	}()
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				err := s.Update(t.Context(), func(tx control.Tx) error {
					if err := tx.PutPartner(domain.Partner{ID: fmt.Sprintf("p%d-%d", w, i), Name: "P", PSA: domain.PSAGeneric, CreatedAt: t0}); err != nil {
						return err
					}
					if err := tx.AddComparisons(since, comparison("acme", "ticket", domain.ClassEqual, t0, 1)); err != nil {
						return err
					}
					return tx.AddCandidate(since, candidate("acme", 1, 0))
				})
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(done)
	reader.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("Update: %v", err)
	}
	if got := len(load(t, s).Partners); got != writers*each {
		t.Errorf("partners = %d, want %d", got, writers*each)
	}
	rows := stageRows(t, s, "acme", since)
	if len(rows.Comparisons) != 1 || rows.Comparisons[0].Count != writers*each || rows.CandidateCalls != writers*each {
		t.Errorf("rows = %+v, want one count and %d calls of %d", rows, writers*each, writers*each)
	}
}

// A closed store answers every call with an error, and never panics.
func testClosed(t *testing.T, open Opener) {
	s, closeStore := open(t)
	if err := closeStore(); err != nil {
		t.Fatalf("close: %v", err)
	}
	ctx := t.Context()
	called := false
	calls := []struct {
		name string
		call func() error
	}{
		{"Load", func() error { _, err := s.Load(ctx); return err }},
		{"Update", func() error {
			return s.Update(ctx, func(tx control.Tx) error { called = true; return tx.SetVersion(1) })
		}},
		{"AuditLog", func() error { _, err := s.AuditLog(ctx, 0, 10); return err }},
		{"StageRows", func() error { _, err := s.StageRows(ctx, "m", "acme", domain.StageShadow, t0); return err }},
		{"Mismatches", func() error { _, err := s.Mismatches(ctx, "m", "acme", t0, 10); return err }},
		{"Noise", func() error { _, err := s.Noise(ctx, "m"); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			defer func() {
				if p := recover(); p != nil {
					t.Errorf("%s on a closed store panicked: %v", c.name, p)
				}
			}()
			if err := c.call(); err == nil {
				t.Errorf("%s on a closed store succeeded, want an error", c.name)
			}
		})
	}
	if called {
		t.Error("Update on a closed store ran its fn")
	}
}

// SampleRows are statistics rows, mismatches and applied report marks of
// several stints, partners and routers, one count saturated, as Export
// would return them from a store they were put in (Row.Put).
func SampleRows() []control.Row {
	later := t0.Add(time.Hour)
	c := func(partner, typ string, class domain.Class, minute time.Time, n uint64) *domain.ComparisonCount {
		x := comparison(partner, typ, class, minute, n)
		return &x
	}
	cand := func(partner string, calls, errs uint64) *domain.CandidateCount {
		x := candidate(partner, calls, errs)
		return &x
	}
	m := func(partner, typ string, class domain.Class, at time.Time, id string) *domain.Mismatch {
		x := mismatch(partner, typ, class, at, id)
		return &x
	}
	return []control.Row{
		{Since: t0, Comparison: c("acme", "ticket.created", domain.ClassEqual, t0, 5)},
		{Since: t0, Comparison: c("acme", "ticket/updated", domain.ClassValueDiff, t0.Add(time.Minute), 2)},
		{Since: later, Comparison: c("acme", "ticket.created", domain.ClassEqual, later, math.MaxUint64)},
		{Since: t0, Comparison: c("globex", "ticket.created", domain.ClassEqual, t0, 1)},
		{Since: t0, Candidate: cand("acme", 7, 1)},
		{Since: later, Candidate: cand("globex", 3, 0)},
		{Mismatch: m("acme", "ticket.created", domain.ClassValueDiff, t0, "ev-1")},
		{Mismatch: m("acme", "ticket.created", domain.ClassValueDiff, later, "ev-2")},
		{Mismatch: m("globex", "ticket/updated", domain.ClassValueDiff, t0, "ev 3")},
		{Report: &control.AppliedReport{Router: "r1", Epoch: "e1", Seq: 4}},
		{Report: &control.AppliedReport{Router: "r2", Epoch: "e/2", Seq: 9}},
		{Noise: &domain.NoiseObservation{Migration: "m", Partner: "acme", EventType: "ticket/updated", Path: "fields.processedAt", Count: 3}},
		{Noise: &domain.NoiseObservation{Migration: "m", Partner: "acme", EventType: "ticket/updated", Path: `fields["a/b"]`, Count: math.MaxUint64}},
	}
}

// PutRows writes rows into s in one Update.
func PutRows(t *testing.T, s control.Store, rows []control.Row) {
	t.Helper()
	update(t, s, func(tx control.Tx) error {
		for _, r := range rows {
			if err := r.Put(tx); err != nil {
				return err
			}
		}
		return nil
	})
}

// ExportAll returns every row s exports.
func ExportAll(t *testing.T, s control.Copyable) []control.Row {
	t.Helper()
	rows := []control.Row{}
	if err := s.Export(t.Context(), func(r control.Row) error { rows = append(rows, r); return nil }); err != nil {
		t.Fatalf("Export: %v", err)
	}
	return rows
}

// SortRows orders exported rows for comparing them: Export's order is the
// store's.
var SortRows = cmpopts.SortSlices(func(a, b control.Row) bool {
	ka, _ := json.Marshal(a)
	kb, _ := json.Marshal(b)
	return string(ka) < string(kb)
})

// A Copyable store exports every row put in it, exactly; another store
// given those rows answers StageRows, Mismatches and AppliedReport as the
// first does, and SetStoreID gives it the first's identity.
func testExport(t *testing.T, open Opener) {
	src, ok := mustOpen(t, open).(control.Copyable)
	if !ok {
		t.Skip("the store is not control.Copyable")
	}
	if rows := ExportAll(t, src); len(rows) != 0 {
		t.Errorf("Export of an empty store = %v, want nothing", rows)
	}
	want := SampleRows()
	PutRows(t, src, want)
	got := ExportAll(t, src)
	if diff := cmp.Diff(want, got, SortRows); diff != "" {
		t.Errorf("Export (-want +got):\n%s", diff)
	}

	dst := mustOpen(t, open).(control.Copyable)
	PutRows(t, dst, got)
	if diff := cmp.Diff(want, ExportAll(t, dst), SortRows); diff != "" {
		t.Errorf("Export of the copy (-want +got):\n%s", diff)
	}
	for _, p := range []string{"acme", "globex"} {
		for _, since := range []time.Time{t0, t0.Add(time.Hour)} {
			if diff := cmp.Diff(stageRows(t, src, p, since), stageRows(t, dst, p, since), sortRows); diff != "" {
				t.Errorf("StageRows(%s, %v) of the copy (-original +copy):\n%s", p, since, diff)
			}
		}
		if diff := cmp.Diff(mismatches(t, src, p, time.Time{}, 10), mismatches(t, dst, p, time.Time{}, 10)); diff != "" {
			t.Errorf("Mismatches(%s) of the copy (-original +copy):\n%s", p, diff)
		}
	}
	if got := appliedReport(t, dst, "r2", "e/2"); got != 9 {
		t.Errorf("AppliedReport of the copy = %d, want 9", got)
	}
	srcNoise, err1 := src.Noise(t.Context(), "m")
	dstNoise, err2 := dst.Noise(t.Context(), "m")
	if err := errors.Join(err1, err2); err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(srcNoise, dstNoise); diff != "" || len(dstNoise) != 2 {
		t.Errorf("Noise of the copy (-original +copy):\n%s", diff)
	}

	id := load(t, src).StoreID
	if err := dst.SetStoreID(t.Context(), id); err != nil {
		t.Fatalf("SetStoreID: %v", err)
	}
	if got := load(t, dst).StoreID; got != id {
		t.Errorf("StoreID after SetStoreID = %q, want %q", got, id)
	}
	if err := dst.SetStoreID(t.Context(), ""); err == nil {
		t.Error("SetStoreID(\"\") succeeded, want an error")
	}
}

// testNoise: counts add up per migration, partner, event type and path,
// saturate, stay within keep paths per partner and event type (the probes
// row, domain.NoiseProbesPath, kept beside them), and a failed Update
// leaves none behind.
func testNoise(t *testing.T, open Opener) {
	s := mustOpen(t, open)
	obs := func(mig, partner, typ, path string, n uint64) domain.NoiseObservation {
		return domain.NoiseObservation{Migration: mig, Partner: partner, EventType: typ, Path: path, Count: n}
	}
	if got, err := s.Noise(t.Context(), "m"); err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Noise of an empty store = %#v, %v; want an empty, non-nil slice", got, err)
	}
	update(t, s, func(tx control.Tx) error {
		for _, o := range []domain.NoiseObservation{
			obs("m", "acme", "ticket", "fields.processedAt", 2),
			obs("m", "acme", "ticket", "fields.processedAt", 1),
			obs("m", "acme", "ticket", `fields["odd/name"]`, math.MaxUint64),
			obs("m", "acme", "ticket", `fields["odd/name"]`, 1),
			obs("m", "acme", "company", "fields.lines[].id", 1),
			obs("m", "globex/x", "ticket", "fields.requestId", 4),
			obs("m2", "acme", "ticket", "fields.processedAt", 9),
			// Past keep (3) paths of acme's tickets: dropped.
			obs("m", "acme", "ticket", "fields.a", 1),
			obs("m", "acme", "ticket", "fields.b", 1),
			// The probes are kept whatever the paths, and add up.
			obs("m", "acme", "ticket", domain.NoiseProbesPath, 5),
			obs("m", "acme", "ticket", domain.NoiseProbesPath, 2),
			obs("m", "acme", "ticket", "fields.c", 1),
		} {
			if err := tx.AddNoise(o, 3); err != nil {
				return err
			}
		}
		return nil
	})
	boom := errors.New("boom")
	err := s.Update(t.Context(), func(tx control.Tx) error {
		if err := tx.AddNoise(obs("m", "acme", "ticket", "fields.processedAt", 100), 3); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the fn's error", err)
	}
	got, err := s.Noise(t.Context(), "m")
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.NoiseObservation{
		obs("m", "acme", "company", "fields.lines[].id", 1),
		obs("m", "acme", "ticket", "fields.a", 1),
		obs("m", "acme", "ticket", "fields.processedAt", 3),
		obs("m", "acme", "ticket", `fields["odd/name"]`, math.MaxUint64),
		obs("m", "acme", "ticket", domain.NoiseProbesPath, 7),
		obs("m", "globex/x", "ticket", "fields.requestId", 4),
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Noise(m) (-want +got):\n%s", diff)
	}
}
