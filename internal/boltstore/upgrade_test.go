package boltstore_test

import (
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/control/storetest"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
	"github.com/switchbackhq/switchback/internal/wire"
)

// schema1 is what the release that wrote testdata/schema1.db (schema 1,
// commit 00956ea) answered for it: a migration with three partners (acme
// in shadow, globex in new, initech in legacy), a cohort, a token, nine
// audit entries, and one router report with comparisons, candidate calls,
// 24 mismatches (20 kept of one class) and report id r1/ep1/7. That
// release built the file through control.Service and wrote this alongside.
type schema1 struct {
	Data   domain.Data
	Audit  []domain.AuditEntry
	Stages map[string]struct {
		Counts      gate.Counts
		Comparisons domain.Comparisons
		Timeline    []domain.MinuteCount
	}
}

// A file written by the previous release opens, is upgraded to the
// current schema, and answers as it did: same data, audit log, gate counts,
// comparisons and timelines, and its report ids still stop a resend.
func TestUpgradeFromSchema1(t *testing.T) {
	b, err := os.ReadFile("testdata/schema1.json")
	if err != nil {
		t.Fatal(err)
	}
	var want schema1
	if err := json.Unmarshal(b, &want); err != nil {
		t.Fatal(err)
	}
	old, err := os.ReadFile("testdata/schema1.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "switchback.db")
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	s := bolttest.OpenAt(t, path)

	s.DB().View(func(tx *bbolt.Tx) error {
		if got := string(tx.Bucket([]byte("meta")).Get([]byte("schema"))); got != "2" {
			t.Errorf("schema after the upgrade = %q, want 2", got)
		}
		tx.Bucket([]byte("stats")).ForEach(func(k, _ []byte) error {
			if strings.Contains(string(k), "\x00~") {
				t.Errorf("stats still holds the pseudo-class row %q", k)
			}
			return nil
		})
		return nil
	})

	now := want.Data.LastAudit.At.Add(time.Minute)
	svc, err := control.New(t.Context(), s, control.Options{Now: func() time.Time { return now }, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatalf("control.New: %v", err)
	}
	got, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(jsonOf(t, want.Data), jsonOf(t, got)); diff != "" {
		t.Errorf("Load (-schema 1 +now):\n%s", diff)
	}
	log, err := s.AuditLog(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(jsonOf(t, want.Audit), jsonOf(t, log)); diff != "" {
		t.Errorf("AuditLog (-schema 1 +now):\n%s", diff)
	}
	st := svc.State()
	ms := st.Migrations["psa-webhooks-v2"]
	// Schema 1 had no reconcile setting: its migration has none, and is
	// never reconciled on its own.
	if ms.Reconcile != nil {
		t.Errorf("the schema 1 migration has reconcile %+v, want none", *ms.Reconcile)
	}
	for id, w := range want.Stages {
		ps := ms.StageOf(st.Partners[id])
		counts, err := svc.StageCounts(t.Context(), ms.Key, ps)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(jsonOf(t, w.Counts), jsonOf(t, counts)); diff != "" {
			t.Errorf("%s: StageCounts (-schema 1 +now):\n%s", id, diff)
		}
		c, err := svc.Comparisons(t.Context(), ms.Key, id)
		if err != nil {
			t.Fatal(err)
		}
		// Schema 1 left the order of mismatches made in the same instant
		// to an unstable sort; compare them by time, then event id.
		byTime := func(a, b domain.Mismatch) int {
			if c := b.At.Compare(a.At); c != 0 {
				return c
			}
			return strings.Compare(a.EventID, b.EventID)
		}
		slices.SortFunc(w.Comparisons.Mismatches, byTime)
		slices.SortFunc(c.Mismatches, byTime)
		if diff := cmp.Diff(jsonOf(t, w.Comparisons), jsonOf(t, c)); diff != "" {
			t.Errorf("%s: Comparisons (-schema 1 +now):\n%s", id, diff)
		}
		tl, err := svc.Timeline(t.Context(), ms.Key, id)
		if err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(jsonOf(t, w.Timeline), jsonOf(t, tl)); diff != "" {
			t.Errorf("%s: Timeline (-schema 1 +now):\n%s", id, diff)
		}
	}

	resend := wire.Report{Router: "r1", SnapshotVersion: st.Version, StoreID: st.StoreID,
		ReportID: &wire.ReportID{Epoch: "ep1", Seq: 7},
		Comparisons: []domain.ComparisonCount{{Migration: ms.Key, Partner: "acme", Stage: domain.StageShadow, EventType: "ticket",
			Class: domain.ClassEqual, Minute: now.Truncate(time.Minute), Count: 5}}}
	if dup, err := svc.IngestReport(t.Context(), resend); err != nil || !dup {
		t.Errorf("IngestReport(r1/ep1/7 again) = duplicate %v, %v; want a duplicate", dup, err)
	}
}

// jsonOf compares values as their JSON: what the API answers.
func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A file of schema 2 written before change requests has no changes
// bucket: read-only it loads with none, and Open creates the bucket, so
// that the first change request is stored; its other data is untouched.
func TestFileWithoutChangesBucket(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	s, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d := storetest.SampleData()
	d.Changes = nil
	if err := s.Update(t.Context(), func(tx control.Tx) error { return storetest.Write(tx, d) }); err != nil {
		t.Fatal(err)
	}
	if err := s.DB().Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("changes")) }); err != nil {
		t.Fatalf("drop the changes bucket, as a file of an older release: %v", err)
	}
	s.Close()

	ro, err := boltstore.OpenReadOnly(path, time.Second)
	if err != nil {
		t.Fatalf("OpenReadOnly of a file without the changes bucket: %v", err)
	}
	got, err := ro.Load(t.Context())
	ro.Close()
	if err != nil || len(got.Changes) != 0 || len(got.Partners) != len(d.Partners) {
		t.Fatalf("Load read-only = %d changes, %d partners, %v; want none and the partners", len(got.Changes), len(got.Partners), err)
	}

	rw := bolttest.OpenAt(t, path)
	c := storetest.SampleChanges()[1]
	if err := rw.Update(t.Context(), func(tx control.Tx) error { return tx.PutChange(c) }); err != nil {
		t.Fatalf("PutChange after Open: %v", err)
	}
	got, err = rw.Load(t.Context())
	if err != nil || len(got.Changes) != 1 || got.Changes[0].ID != c.ID || len(got.Migrations) != len(d.Migrations) {
		t.Errorf("Load after Open = %+v, %v; want the change request and the migrations", got.Changes, err)
	}
}
