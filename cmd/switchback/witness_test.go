package main

import (
	"bytes"
	"context"
	byteorder "encoding/binary"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/domain"
)

// auditCLI runs "switchback audit ARGS" against url and returns its error
// and output.
func auditCLI(url string, args ...string) (string, error) {
	var out bytes.Buffer
	env := map[string]string{"SWITCHBACK_TOKEN": crashAdmin, "SWITCHBACK_SERVER": url}
	err := run(context.Background(), append([]string{"audit"}, args...), func(k string) string { return env[k] }, &out, &out)
	return out.String(), err
}

// editAudit rewrites the audit bucket of the control db at path with fn,
// as someone with write access to the file could.
func editAudit(t *testing.T, path string, fn func([]domain.AuditEntry) []domain.AuditEntry) {
	t.Helper()
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	err = db.Update(func(tx *bbolt.Tx) error {
		b := tx.Bucket([]byte("audit"))
		var log []domain.AuditEntry
		if err := b.ForEach(func(_, v []byte) error {
			var e domain.AuditEntry
			err := json.Unmarshal(v, &e)
			log = append(log, e)
			return err
		}); err != nil {
			return err
		}
		if err := tx.DeleteBucket([]byte("audit")); err != nil {
			return err
		}
		if b, err = tx.CreateBucket([]byte("audit")); err != nil {
			return err
		}
		for _, e := range fn(log) {
			v, _ := json.Marshal(e)
			if err := b.Put(byteorder.BigEndian.AppendUint64(nil, e.Seq), v); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// The audit chain is anchored outside the database: a rewrite with the
// hashes recomputed, or a cut tail, still verifies on its own, but not
// against the heads a router kept in its snapshot file or a head exported
// with "audit head".
func TestAuditVerifyWithWitnesses(t *testing.T) {
	for _, tt := range []struct {
		name   string
		tamper func([]domain.AuditEntry) []domain.AuditEntry
		want   string
	}{
		{"tail cut", func(log []domain.AuditEntry) []domain.AuditEntry { return log[:len(log)-2] }, "entries were removed from its tail"},
		{"rewritten with hashes recomputed", func(log []domain.AuditEntry) []domain.AuditEntry {
			out := log[:1]
			for _, e := range log[1:] {
				if e.Seq == 2 {
					e.Reason = "nothing to see here"
				}
				out = append(out, audit.Next(out[len(out)-1], e))
			}
			return out
		}, "the log was rewritten"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", dir)
			setupMigration(t, s.url, crashAdmin, "http://127.0.0.1:1")
			for _, id := range []string{"globex", "initech"} {
				call(t, "PUT", s.url+"/v1/partners/"+id, crashAdmin, map[string]any{"name": id, "psa": "generic", "secret": crashSecret}, nil)
			}
			headOut, err := auditCLI(s.url, "head")
			if err != nil {
				t.Fatalf("audit head: %v\n%s", err, headOut)
			}
			var head struct {
				StoreID string
				Seq     uint64
				Hash    string
			}
			if err := json.Unmarshal([]byte(headOut), &head); err != nil || head.Seq < 4 || head.StoreID == "" {
				t.Fatalf("audit head printed %q (%v), want the head as JSON", headOut, err)
			}
			witnesses := t.TempDir()
			headFile, snapFile := filepath.Join(witnesses, "head.json"), filepath.Join(witnesses, "snapshot.json")
			if err := os.WriteFile(headFile, []byte(headOut), 0o600); err != nil {
				t.Fatal(err)
			}
			// The embedded router writes its snapshot file with the heads
			// it saw: wait for the latest.
			routerFile := filepath.Join(dir, "ingress", "snapshot.json")
			waitUntil(t, "the router's snapshot file to witness the head", func() bool {
				heads, err := flags.ReadAuditHeads(routerFile)
				return err == nil && len(heads) > 0 && heads[len(heads)-1].Seq == head.Seq
			})
			b, _ := os.ReadFile(routerFile)
			os.WriteFile(snapFile, b, 0o600)
			if out, err := auditCLI(s.url, "verify", "--witness", snapFile, "--witness", headFile); err != nil ||
				!strings.Contains(out, "holds all") {
				t.Fatalf("verify before tampering = %v\n%s", err, out)
			}
			if err := s.stop(); err != nil {
				t.Fatal(err)
			}

			editAudit(t, filepath.Join(dir, "switchback.db"), tt.tamper)
			s = startServe(t, nil, "--data", dir, "--no-ingress")
			if out, err := auditCLI(s.url, "verify"); err != nil {
				t.Fatalf("verify without witnesses = %v\n%s: the tampering should pass the chain alone", err, out)
			}
			for _, w := range []string{snapFile, headFile} {
				out, err := auditCLI(s.url, "verify", "--witness", w)
				if err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Errorf("verify --witness %s = %v\n%s\nwant an error saying %q", filepath.Base(w), err, out, tt.want)
				}
			}
		})
	}
}

// A witness of another store (the store was replaced or reset) fails.
func TestAuditVerifyWitnessOfAnotherStore(t *testing.T) {
	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", t.TempDir(), "--no-ingress")
	setupMigration(t, s.url, crashAdmin, "http://127.0.0.1:1")
	w := filepath.Join(t.TempDir(), "head.json")
	os.WriteFile(w, []byte(`{"storeId":"0123456789abcdef0123456789abcdef","seq":1,"hash":"aa"}`), 0o600)
	if _, err := auditCLI(s.url, "verify", "--witness", w); err == nil || !strings.Contains(err.Error(), "replaced or reset") {
		t.Errorf("verify with another store's witness = %v, want an error naming the other store", err)
	}
}
