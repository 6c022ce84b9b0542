// Package bolttest opens real bbolt stores for tests.
package bolttest

import (
	"path/filepath"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/boltstore"
)

// Open opens a store in a fresh t.TempDir(). At cleanup it closes the store
// after checking the file's consistency with bbolt's own check.
func Open(t testing.TB) *boltstore.Store {
	t.Helper()
	return OpenAt(t, filepath.Join(t.TempDir(), "switchback.db"))
}

// OpenAt opens the store at path, with the same cleanup as Open.
func OpenAt(t testing.TB, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	t.Cleanup(func() {
		Check(t, s.DB())
		if err := s.Close(); err != nil {
			t.Errorf("close store: %v", err)
		}
	})
	return s
}

// Check fails t if the database is not consistent.
func Check(t testing.TB, db *bbolt.DB) {
	t.Helper()
	if db.Path() == "" {
		return // already closed
	}
	err := db.View(func(tx *bbolt.Tx) error {
		for err := range tx.Check() {
			t.Errorf("bbolt consistency: %v", err)
		}
		return nil
	})
	if err != nil {
		t.Errorf("bbolt consistency check: %v", err)
	}
}
