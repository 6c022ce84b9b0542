package bolt_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/bolt"
	"github.com/switchbackhq/switchback/internal/bolt/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestOpenCreatesSchema(t *testing.T) {
	s := bolttest.Open(t)
	err := s.DB().View(func(tx *bbolt.Tx) error {
		for _, name := range []string{"meta", "partners", "migrations", "stages", "cohorts", "tokens", "audit"} {
			if tx.Bucket([]byte(name)) == nil {
				t.Errorf("bucket %q is missing", name)
			}
		}
		meta := tx.Bucket([]byte("meta"))
		if meta == nil {
			return nil
		}
		if got, want := string(meta.Get([]byte("schema"))), strconv.Itoa(bolt.SchemaVersion); got != want {
			t.Errorf("meta/schema = %q, want %q", got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	d, err := s.Load(context.Background())
	if err != nil {
		t.Fatalf("Load(empty) = %v", err)
	}
	want := domain.Data{Stages: map[string][]domain.PartnerStage{}, Cohorts: map[string][]domain.Cohort{}}
	if diff := cmp.Diff(want, d, ignoreStoreID); diff != "" {
		t.Errorf("Load(empty) (-want +got):\n%s", diff)
	}
}

func TestOpenTwiceIsLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	bolttest.OpenAt(t, path)
	start := time.Now()
	s2, err := bolt.Open(path, 100*time.Millisecond)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of an open file succeeded, want ErrLocked")
	}
	if !errors.Is(err, bolt.ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v with a 100ms timeout", d)
	}
}

func TestReopenAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	s, err := bolt.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	bolttest.OpenAt(t, path) // the lock was released; reopening an existing schema works
}

func TestOpenNewerSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	s, err := bolt.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()

	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error { return tx.Bucket([]byte("meta")).Put([]byte("schema"), []byte("99")) })
	if cerr := db.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatal(err)
	}

	s, err = bolt.Open(path, 100*time.Millisecond)
	if err == nil {
		s.Close()
		t.Fatal("Open(schema 99) succeeded, want ErrNewerSchema")
	}
	if !errors.Is(err, bolt.ErrNewerSchema) {
		t.Errorf("Open(schema 99) = %v, want ErrNewerSchema", err)
	}
	// The refused Open must have released the file and left it as it was.
	db, err = bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 100 * time.Millisecond, ReadOnly: true})
	if err != nil {
		t.Fatalf("file still locked after a refused Open: %v", err)
	}
	defer db.Close()
	bolttest.Check(t, db)
	db.View(func(tx *bbolt.Tx) error {
		if got := string(tx.Bucket([]byte("meta")).Get([]byte("schema"))); got != "99" {
			t.Errorf("meta/schema = %q after a refused Open, want 99", got)
		}
		return nil
	})
}

func TestOpenUnreadableSchema(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	db, err := bbolt.Open(path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucket([]byte("meta"))
		if err != nil {
			return err
		}
		return b.Put([]byte("schema"), []byte("one"))
	})
	db.Close()
	if err != nil {
		t.Fatal(err)
	}
	if s, err := bolt.Open(path, 100*time.Millisecond); err == nil {
		s.Close()
		t.Error("Open(schema \"one\") succeeded, want an error")
	}
}

func sampleData() domain.Data {
	m := domain.Migration{
		Key:       "psa-webhooks-v2",
		Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://legacy"}, New: domain.Pipeline{URL: "http://new"}},
		Gates:     domain.DefaultGates(),
		Guard:     domain.DefaultGuard(),
		Reverted:  true,
		Seq:       1,
		CreatedAt: t0,
		UpdatedAt: t0.Add(time.Minute),
	}
	m2 := m
	m2.Key, m2.Seq, m2.Reverted = "other", 2, false
	return domain.Data{
		Version: 42,
		Partners: []domain.Partner{
			{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise, Secret: "s3cret", CreatedAt: t0, UpdatedAt: t0},
			{ID: "globex", Name: "Globex", PSA: domain.PSAAutotask, CreatedAt: t0, UpdatedAt: t0},
		},
		Migrations: []domain.Migration{m2, m},
		Stages: map[string][]domain.PartnerStage{
			"psa-webhooks-v2": {
				{Partner: "acme", Stage: domain.StageNew, Since: t0.Add(time.Hour)},
				{Partner: "globex", Stage: domain.StageShadow, Since: t0.Add(2 * time.Hour)},
			},
		},
		Cohorts: map[string][]domain.Cohort{
			"psa-webhooks-v2": {{Name: "wave-1", Order: 1, Partners: []string{"acme", "globex"}, UpdatedAt: t0}},
		},
		Tokens: []domain.Token{{Name: "admin", Role: domain.RoleAdmin, Hash: []byte{1, 2, 3}, CreatedAt: t0}},
	}
}

func write(t *testing.T, s *bolt.Store, d domain.Data) {
	t.Helper()
	err := s.Update(context.Background(), func(tx control.Tx) error {
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
		return tx.SetVersion(d.Version)
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// sortData orders Load's slices, which follow key order, like sampleData.
var sortData = cmp.Options{
	cmpopts.SortSlices(func(a, b domain.Partner) bool { return a.ID < b.ID }),
	cmpopts.SortSlices(func(a, b domain.Migration) bool { return a.Key < b.Key }),
	cmpopts.SortSlices(func(a, b domain.PartnerStage) bool { return a.Partner < b.Partner }),
	cmpopts.SortSlices(func(a, b domain.Cohort) bool { return a.Name < b.Name }),
	cmpopts.SortSlices(func(a, b domain.Token) bool { return a.Name < b.Name }),
}

func TestLoadReturnsWhatWasWritten(t *testing.T) {
	s := bolttest.Open(t)
	want := sampleData()
	write(t, s, want)
	got, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	// Load gives every migration its (possibly empty) stages and cohorts.
	want.Stages["other"] = nil
	want.Cohorts["other"] = nil
	if diff := cmp.Diff(want, got, sortData, cmpopts.EquateEmpty(), ignoreStoreID); diff != "" {
		t.Errorf("Load (-want +got):\n%s", diff)
	}

	// Overwrites and deletes.
	err = s.Update(context.Background(), func(tx control.Tx) error {
		if err := tx.PutStage("psa-webhooks-v2", domain.PartnerStage{Partner: "acme", Stage: domain.StageDone, Since: t0.Add(3 * time.Hour)}); err != nil {
			return err
		}
		return tx.DeleteToken("admin")
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err = s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want.Stages["psa-webhooks-v2"][0] = domain.PartnerStage{Partner: "acme", Stage: domain.StageDone, Since: t0.Add(3 * time.Hour)}
	want.Tokens = nil
	if diff := cmp.Diff(want, got, sortData, cmpopts.EquateEmpty(), ignoreStoreID); diff != "" {
		t.Errorf("Load after overwrite (-want +got):\n%s", diff)
	}
}

func TestLoadAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	s, err := bolt.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := sampleData()
	write(t, s, want)
	log := appendAudit(t, s, 3)
	s.Close()

	s = bolttest.OpenAt(t, path)
	got, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	want.Stages["other"], want.Cohorts["other"] = nil, nil
	want.LastAudit = log[len(log)-1]
	if diff := cmp.Diff(want, got, sortData, cmpopts.EquateEmpty(), ignoreStoreID); diff != "" {
		t.Errorf("Load after reopen (-want +got):\n%s", diff)
	}
}

func TestUpdateAllOrNothing(t *testing.T) {
	s := bolttest.Open(t)
	write(t, s, domain.Data{Version: 1, Partners: []domain.Partner{{ID: "keep", Name: "Keep", PSA: domain.PSAGeneric, CreatedAt: t0}}})
	before, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	d := sampleData()
	err = s.Update(context.Background(), func(tx control.Tx) error {
		for _, p := range d.Partners {
			if err := tx.PutPartner(p); err != nil {
				return err
			}
		}
		if err := tx.PutMigration(d.Migrations[0]); err != nil {
			return err
		}
		if err := tx.PutStage("psa-webhooks-v2", d.Stages["psa-webhooks-v2"][0]); err != nil {
			return err
		}
		if err := tx.PutCohort("psa-webhooks-v2", d.Cohorts["psa-webhooks-v2"][0]); err != nil {
			return err
		}
		if err := tx.PutToken(d.Tokens[0]); err != nil {
			return err
		}
		if err := tx.SetVersion(99); err != nil {
			return err
		}
		if err := tx.AppendAudit(audit.Next(domain.AuditEntry{}, domain.AuditEntry{At: t0, Actor: "a", Action: "x"})); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("Update = %v, want the fn's error", err)
	}
	after, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(before, after); diff != "" {
		t.Errorf("a failed Update left writes behind (-before +after):\n%s", diff)
	}
	entries, err := s.AuditLog(context.Background(), 0, 10)
	if err != nil || len(entries) != 0 {
		t.Errorf("AuditLog after a failed Update = %v, %v; want no entries", entries, err)
	}
	// bbolt buckets created inside the failed transaction are gone too.
	s.DB().View(func(tx *bbolt.Tx) error {
		if tx.Bucket([]byte("stages")).Bucket([]byte("psa-webhooks-v2")) != nil {
			t.Error("stages bucket of the failed Update exists")
		}
		return nil
	})
}

func TestUpdateCanceledContext(t *testing.T) {
	s := bolttest.Open(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	err := s.Update(ctx, func(control.Tx) error { called = true; return nil })
	if !errors.Is(err, context.Canceled) || called {
		t.Errorf("Update(canceled) = %v, fn called %v; want context.Canceled and not called", err, called)
	}
}

// appendAudit appends n chained entries in one Update each and returns them.
func appendAudit(t *testing.T, s *bolt.Store, n int) []domain.AuditEntry {
	t.Helper()
	var prev domain.AuditEntry
	d, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	prev = d.LastAudit
	var out []domain.AuditEntry
	for i := range n {
		e := audit.Next(prev, domain.AuditEntry{
			At: t0.Add(time.Duration(i) * time.Second), Actor: "admin", Action: "test", Target: "t/" + strconv.Itoa(i),
			Before: json.RawMessage(`{"n":` + strconv.Itoa(i) + `}`), After: json.RawMessage(`{"n":` + strconv.Itoa(i+1) + `}`),
		})
		if err := s.Update(context.Background(), func(tx control.Tx) error { return tx.AppendAudit(e) }); err != nil {
			t.Fatalf("AppendAudit(%d): %v", e.Seq, err)
		}
		out = append(out, e)
		prev = e
	}
	return out
}

func TestAuditLogPaging(t *testing.T) {
	s := bolttest.Open(t)
	log := appendAudit(t, s, 25)
	tests := []struct {
		name         string
		after        uint64
		limit        int
		wantFirst    uint64
		wantN        int
		wantLastSeen uint64
	}{
		{"first page", 0, 10, 1, 10, 10},
		{"second page", 10, 10, 11, 10, 20},
		{"last partial page", 20, 10, 21, 5, 25},
		{"past the end", 25, 10, 0, 0, 0},
		{"far past the end", 1000, 10, 0, 0, 0},
		{"everything", 0, 1000, 1, 25, 25},
		{"one", 7, 1, 8, 1, 8},
		{"zero limit", 0, 0, 0, 0, 0},
		{"after the largest seq", math.MaxUint64, 10, 0, 0, 0},
		{"after the largest seq but one", math.MaxUint64 - 1, 10, 0, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.AuditLog(context.Background(), tt.after, tt.limit)
			if err != nil {
				t.Fatal(err)
			}
			if got == nil {
				t.Errorf("AuditLog returned nil, want an empty slice (it is JSON-encoded as [])")
			}
			if len(got) != tt.wantN {
				t.Fatalf("len = %d, want %d", len(got), tt.wantN)
			}
			if tt.wantN == 0 {
				return
			}
			if got[0].Seq != tt.wantFirst || got[len(got)-1].Seq != tt.wantLastSeen {
				t.Errorf("seqs %d..%d, want %d..%d", got[0].Seq, got[len(got)-1].Seq, tt.wantFirst, tt.wantLastSeen)
			}
			if diff := cmp.Diff(log[tt.wantFirst-1:tt.wantLastSeen], got); diff != "" {
				t.Errorf("entries (-want +got):\n%s", diff)
			}
		})
	}
	// Pages of any size read back a chain that verifies.
	for _, size := range []int{1, 3, 25, 100} {
		v := audit.NewVerifier(domain.AuditEntry{})
		var after uint64
		for {
			page, err := s.AuditLog(context.Background(), after, size)
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

func TestAppendAuditRefusesOldSeq(t *testing.T) {
	s := bolttest.Open(t)
	log := appendAudit(t, s, 3)
	err := s.Update(context.Background(), func(tx control.Tx) error { return tx.AppendAudit(log[1]) })
	if err == nil {
		t.Error("AppendAudit(seq 2 after seq 3) succeeded, want an error: the log is append-only")
	}
	got, _ := s.AuditLog(context.Background(), 0, 10)
	if diff := cmp.Diff(log, got); diff != "" {
		t.Errorf("log changed (-want +got):\n%s", diff)
	}
}

// ignoreStoreID leaves the random store id out of comparisons of loaded
// data; TestStoreID checks it.
var ignoreStoreID = cmpopts.IgnoreFields(domain.Data{}, "StoreID")

// A store has an identity from its creation on: kept when it is reopened
// or copied (a backup restored is the same store), another for another
// store.
func TestStoreID(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "switchback.db")
	s, err := bolt.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	first, err := s.Load(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(first.StoreID) != 32 {
		t.Fatalf("StoreID = %q, want 32 hex digits", first.StoreID)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	copied := filepath.Join(dir, "copy.db")
	if err := os.WriteFile(copied, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, path string
		same       bool
	}{
		{"reopened", path, true},
		{"copied", copied, true},
		{"another store", filepath.Join(dir, "other.db"), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			d, err := bolttest.OpenAt(t, tt.path).Load(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if got := d.StoreID == first.StoreID; got != tt.same || d.StoreID == "" {
				t.Errorf("StoreID = %q, first store's %q: same = %v, want %v", d.StoreID, first.StoreID, got, tt.same)
			}
		})
	}
}
