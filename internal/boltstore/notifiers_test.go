package boltstore_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

var target = domain.Notifier{Name: "ops", URL: "https://hooks.example.com/switchback", Events: []string{domain.NoticeGuardRevert},
	Format: domain.FormatStandard, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", CreatedAt: t0, UpdatedAt: t0}

// A target written, then the file closed and opened again, loads as
// written, secret included; a deleted one is gone after a reopen too.
func TestNotifiersSurviveReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	reopen := func() *boltstore.Store {
		t.Helper()
		s, err := boltstore.Open(path, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	s := reopen()
	slack := domain.Notifier{Name: "chat", URL: "https://hooks.slack.com/services/T/B/X", Events: []string{domain.NoticeRevert, domain.NoticeResume},
		Format: domain.FormatSlack, CreatedAt: t0, UpdatedAt: t0}
	if err := s.Update(t.Context(), func(tx control.Tx) error {
		if err := tx.PutNotifier(target); err != nil {
			return err
		}
		return tx.PutNotifier(slack)
	}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = reopen()
	d, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]domain.Notifier{slack, target}, d.Notifiers); diff != "" {
		t.Errorf("Load after reopen (-want +got):\n%s", diff)
	}
	if err := s.Update(t.Context(), func(tx control.Tx) error { return tx.DeleteNotifier("chat") }); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s = reopen()
	defer s.Close()
	d, err = s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]domain.Notifier{target}, d.Notifiers); diff != "" {
		t.Errorf("Load after delete and reopen (-want +got):\n%s", diff)
	}
}

// A file written before notification targets (schema 2 without their
// bucket, and the schema 1 file of testdata) opens read only with no
// targets, and Open adds the bucket, without changing the schema.
func TestNotifiersBucketAddedToOlderFiles(t *testing.T) {
	dir := t.TempDir()
	older := filepath.Join(dir, "older.db")
	s, err := boltstore.Open(older, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.DB().Update(func(tx *bbolt.Tx) error { return tx.DeleteBucket([]byte("notifiers")) }); err != nil {
		t.Fatal(err)
	}
	s.Close()

	ro, err := boltstore.OpenReadOnly(older, time.Second)
	if err != nil {
		t.Fatalf("OpenReadOnly of a file without the notifiers bucket: %v", err)
	}
	d, err := ro.Load(t.Context())
	ro.Close()
	if err != nil || len(d.Notifiers) != 0 {
		t.Fatalf("Load of a file without the notifiers bucket = %v targets, %v; want none and no error", d.Notifiers, err)
	}

	schema1 := filepath.Join(dir, "schema1.db")
	b, err := os.ReadFile("testdata/schema1.db")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(schema1, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{older, schema1} {
		s, err := boltstore.Open(path, time.Second)
		if err != nil {
			t.Fatalf("Open(%s): %v", filepath.Base(path), err)
		}
		s.DB().View(func(tx *bbolt.Tx) error {
			if tx.Bucket([]byte("notifiers")) == nil {
				t.Errorf("%s: no notifiers bucket after Open", filepath.Base(path))
			}
			if got := string(tx.Bucket([]byte("meta")).Get([]byte("schema"))); got != "2" {
				t.Errorf("%s: schema %q after Open, want 2", filepath.Base(path), got)
			}
			return nil
		})
		if err := s.Update(t.Context(), func(tx control.Tx) error { return tx.PutNotifier(target) }); err != nil {
			t.Errorf("%s: PutNotifier: %v", filepath.Base(path), err)
		}
		s.Close()
	}
}
