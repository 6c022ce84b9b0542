package wire_test

import (
	"encoding/json"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

var at = time.Date(2026, 11, 30, 14, 3, 51, 887025044, time.UTC)

// snapshot is a router's copy of a snapshot with every field set: two
// migrations, one reverted, and partners with and without a secret and a
// company.
func snapshot() wire.Snapshot {
	return wire.Snapshot{
		Version: 13, BuiltAt: at, StoreID: "5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5",
		Audit: wire.AuditHead{Seq: 41, Hash: "9a1f"},
		Migrations: map[string]wire.SnapshotMigration{
			"psa-webhooks-v2": {Seq: 1, Stages: map[string]string{"globex": "new", "acme": "shadow"},
				Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://legacy:9001/apply"}, New: domain.Pipeline{URL: "http://new:9002/apply"}},
				Compare:   domain.CompareRules{Ignore: []string{"fields.updatedAt"}, Sets: []string{"tags"}},
				Guard:     domain.DefaultGuard()},
			"billing-v3": {Seq: 2, Reverted: true, Stages: map[string]string{},
				Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://legacy:9001/apply"}, New: domain.Pipeline{URL: "http://billing:9003/apply"}},
				Guard:     domain.Guard{Scope: domain.ScopeMigration, Window: 50, MaxMismatchRate: 0.02, MaxErrorRate: 0.1}},
		},
		Partners: map[string]wire.SnapshotPartner{
			"acme":    {Name: "Acme IT", PSA: domain.PSAConnectWise, Secret: "s3cret", CompanyID: "acmeit"},
			"globex":  {Name: "Globex", PSA: domain.PSAAutotask, Secret: "whsec-globex"},
			"initech": {Name: "Initech", PSA: domain.PSAHaloPSA},
		},
	}
}

// report is an ingress router's report with every field set.
func report() wire.Report {
	return wire.Report{
		Router: "ingress-1", SnapshotVersion: 13, StoreID: "5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5", Refused: 12,
		Journal: json.RawMessage(`{"events":18234,"pending":2,"sizeBytes":4194304,"oldest":"2026-11-29T14:03:00Z","commits":9120,"committed":18234,"stuck":0}`),
		Replays: []domain.ReplayJob{{ID: "rpl_5f0c2a9e1b7d4c36", Status: domain.ReplayRunning,
			Request: domain.ReplayRequest{Migration: "psa-webhooks-v2", Partners: []string{"acme"}, From: at.Add(-time.Hour), To: at,
				Pipeline: "legacy", Filter: domain.ReplayMismatched, AwaitComparisons: true},
			Total: 3, Done: 1, CreatedAt: at, AwaitUntil: at.Add(time.Minute), AwaitingComparison: 1}},
		ReportID: &wire.ReportID{Epoch: "j-7f3a", Seq: 42},
		Comparisons: []domain.ComparisonCount{{Migration: "psa-webhooks-v2", Partner: "acme", Stage: domain.StageShadow,
			EventType: "ticket", Class: domain.ClassEqual, Minute: at.Truncate(time.Minute), Count: 12}},
		Candidate: []domain.CandidateCount{{Migration: "psa-webhooks-v2", Partner: "globex", Stage: domain.StageNew, Calls: 12, Errors: 1}},
		Mismatches: []domain.Mismatch{{Migration: "psa-webhooks-v2", Partner: "acme", EventID: "evt_01", EventType: "ticket",
			Class: domain.ClassMissing, Diff: "- fields.priority", Primary: json.RawMessage(`{"priority":"high"}`), Shadow: json.RawMessage(`{}`), At: at,
			Event: &domain.SampleEvent{Type: "ticket", Action: "updated", EntityID: "T-1", Body: `{"type":"ticket.updated","data":{"id":"T-1","priority":"high"}}`, BodyBytes: 63}}},
		Guard: []domain.GuardSample{{Migration: "psa-webhooks-v2", Partner: "globex", Outcomes: []string{"equal", domain.OutcomeError}, EventID: "evt_02"}},
	}
}

// delta is a router's delta from snapshot() to the next version with
// every kind of change: a migration reverted with a stage changed and one
// back at legacy, a migration removed and one added, a partner added and
// one removed. deltaApplied is snapshot() with those changes.
func delta() wire.SnapshotDelta {
	shadow, done := "shadow", "done"
	return wire.SnapshotDelta{
		Version: 14, Base: 13, BuiltAt: at.Add(time.Second), StoreID: "5f0c1d2e3a4b5c6d7e8f90a1b2c3d4e5",
		Audit: wire.AuditHead{Seq: 42, Hash: "b7c2"},
		Migrations: map[string]*wire.MigrationDelta{
			"psa-webhooks-v2": {Seq: 1, Reverted: true,
				Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://legacy:9001/apply"}, New: domain.Pipeline{URL: "http://new:9002/apply"}},
				Compare:   domain.CompareRules{Ignore: []string{"fields.updatedAt"}, Sets: []string{"tags"}},
				Guard:     domain.DefaultGuard(),
				Stages:    map[string]*string{"globex": &done, "acme": nil}},
			"billing-v3": nil,
			"contracts-v1": {Seq: 3,
				Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://legacy:9001/apply"}, New: domain.Pipeline{URL: "http://contracts:9004/apply"}},
				Guard:     domain.DefaultGuard(),
				Stages:    map[string]*string{"hooli": &shadow}},
		},
		Partners: map[string]*wire.SnapshotPartner{
			"hooli":   {Name: "Hooli", PSA: domain.PSAGeneric, Secret: "whsec-hooli"},
			"initech": nil,
		},
	}
}

func deltaApplied() wire.Snapshot {
	s := snapshot()
	d := delta()
	s.Version, s.BuiltAt, s.Audit = d.Version, d.BuiltAt, d.Audit
	m := s.Migrations["psa-webhooks-v2"]
	m.Reverted, m.Stages = true, map[string]string{"globex": "done"}
	s.Migrations["psa-webhooks-v2"] = m
	delete(s.Migrations, "billing-v3")
	s.Migrations["contracts-v1"] = wire.SnapshotMigration{Seq: 3, Stages: map[string]string{"hooli": "shadow"},
		Pipelines: d.Migrations["contracts-v1"].Pipelines, Guard: domain.DefaultGuard()}
	s.Partners["hooli"] = *d.Partners["hooli"]
	delete(s.Partners, "initech")
	return s
}
