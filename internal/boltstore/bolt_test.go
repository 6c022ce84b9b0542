package boltstore_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/control/storetest"
	"github.com/switchbackhq/switchback/internal/domain"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) (control.Store, func() error) {
		s := bolttest.Open(t)
		return s, s.Close
	})
}

func TestOpenCreatesSchema(t *testing.T) {
	s := bolttest.Open(t)
	err := s.DB().View(func(tx *bbolt.Tx) error {
		for _, name := range []string{"meta", "partners", "migrations", "stages", "cohorts", "tokens", "audit",
			"stats", "candidate", "mismatches", "reports", "changes", "notifiers"} {
			if tx.Bucket([]byte(name)) == nil {
				t.Errorf("bucket %q is missing", name)
			}
		}
		meta := tx.Bucket([]byte("meta"))
		if meta == nil {
			return nil
		}
		if got, want := string(meta.Get([]byte("schema"))), strconv.Itoa(boltstore.SchemaVersion); got != want {
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
	s2, err := boltstore.Open(path, 100*time.Millisecond)
	if err == nil {
		s2.Close()
		t.Fatal("second Open of an open file succeeded, want ErrLocked")
	}
	if !errors.Is(err, boltstore.ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("second Open took %v with a 100ms timeout", d)
	}
}

func TestReopenAfterClose(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	s, err := boltstore.Open(path, time.Second)
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
	s, err := boltstore.Open(path, time.Second)
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

	s, err = boltstore.Open(path, 100*time.Millisecond)
	if err == nil {
		s.Close()
		t.Fatal("Open(schema 99) succeeded, want ErrNewerSchema")
	}
	if !errors.Is(err, boltstore.ErrNewerSchema) {
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
	if s, err := boltstore.Open(path, 100*time.Millisecond); err == nil {
		s.Close()
		t.Error("Open(schema \"one\") succeeded, want an error")
	}
}

func write(t *testing.T, s *boltstore.Store, d domain.Data) {
	t.Helper()
	err := s.Update(context.Background(), func(tx control.Tx) error { return storetest.Write(tx, d) })
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// sortData orders Load's slices, which follow key order, like storetest.SampleData.
var sortData = cmp.Options{
	cmpopts.SortSlices(func(a, b domain.Partner) bool { return a.ID < b.ID }),
	cmpopts.SortSlices(func(a, b domain.Migration) bool { return a.Key < b.Key }),
	cmpopts.SortSlices(func(a, b domain.PartnerStage) bool { return a.Partner < b.Partner }),
	cmpopts.SortSlices(func(a, b domain.Cohort) bool { return a.Name < b.Name }),
	cmpopts.SortSlices(func(a, b domain.Token) bool { return a.Name < b.Name }),
	cmpopts.SortSlices(func(a, b domain.ChangeRequest) bool { return a.ID < b.ID }),
}

func TestLoadAfterReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	s, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	want := storetest.SampleData()
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

// appendAudit appends n chained entries in one Update each and returns them.
func appendAudit(t *testing.T, s *boltstore.Store, n int) []domain.AuditEntry {
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

// ignoreStoreID leaves the random store id out of comparisons of loaded
// data; TestStoreID checks it.
var ignoreStoreID = cmpopts.IgnoreFields(domain.Data{}, "StoreID")

// A store has an identity from its creation on: kept when it is reopened
// or copied (a backup restored is the same store), another for another
// store.
func TestStoreID(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "switchback.db")
	s, err := boltstore.Open(path, time.Second)
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
