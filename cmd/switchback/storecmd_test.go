package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/control/storetest"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/etcdstore/etcdtest"
)

// storeCopyFixture is a serve data directory holding storetest.SampleData
// and an audit log of 200 entries, an etcd, and a secrets key file.
type storeCopyFixture struct {
	data, etcd, keyFile string
}

func newStoreCopyFixture(t *testing.T) storeCopyFixture {
	t.Helper()
	e, err := etcdtest.StartOne(t.TempDir())
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	t.Cleanup(e.Close)
	f := storeCopyFixture{data: t.TempDir(), etcd: "etcd://" + e.Clients[0].Addr().String(), keyFile: filepath.Join(t.TempDir(), "secrets.key")}
	if err := os.WriteFile(f.keyFile, []byte(hex.EncodeToString(bytes.Repeat([]byte{9}, 32))+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s, err := boltstore.Open(filepath.Join(f.data, controlDBFile), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d := storetest.SampleData()
	err = s.Update(t.Context(), func(tx control.Tx) error {
		if err := storetest.Write(tx, d); err != nil {
			return err
		}
		var prev domain.AuditEntry
		for i := range 200 {
			prev = audit.Next(prev, domain.AuditEntry{At: time.Unix(int64(i), 0).UTC(), Actor: "alice", Action: "x", Target: fmt.Sprint(i), Reason: "test"})
			if err := tx.AppendAudit(prev); err != nil {
				return err
			}
		}
		return tx.SetVersion(d.Version)
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func storeCopy(t *testing.T, env map[string]string, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append([]string{"store", "copy"}, args...), func(k string) string { return env[k] }, &stdout, &stderr)
	return stderr.String(), err
}

func loadBolt(t *testing.T, dir string) (domain.Data, []domain.AuditEntry) {
	t.Helper()
	s, err := boltstore.OpenReadOnly(filepath.Join(dir, controlDBFile), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	d, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	log, err := s.AuditLog(t.Context(), 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	return d, log
}

// bolt:// → etcd:// → bolt:// through the command keeps the store: its
// data, identity and audit log.
func TestStoreCopyRoundTrip(t *testing.T) {
	f := newStoreCopyFixture(t)
	out, err := storeCopy(t, nil, "--from", "bolt://"+f.data, "--to", f.etcd, "--etcd-prefix", "/copy/", "--secrets-key-file", f.keyFile)
	if err != nil {
		t.Fatalf("copy to etcd: %v\n%s", err, out)
	}
	if !strings.Contains(out, "200 audit entries") {
		t.Errorf("stderr = %q, want the counts", out)
	}
	back := filepath.Join(t.TempDir(), "new-data")
	if out, err := storeCopy(t, nil, "--from", f.etcd, "--etcd-prefix", "/copy/", "--secrets-key-file", f.keyFile, "--to", "bolt://"+back); err != nil {
		t.Fatalf("copy back: %v\n%s", err, out)
	}
	wantData, wantLog := loadBolt(t, f.data)
	gotData, gotLog := loadBolt(t, back)
	opts := cmp.Options{
		cmpopts.SortSlices(func(a, b domain.Partner) bool { return a.ID < b.ID }),
		cmpopts.SortSlices(func(a, b domain.Migration) bool { return a.Key < b.Key }),
		cmpopts.SortSlices(func(a, b domain.PartnerStage) bool { return a.Partner < b.Partner }),
		cmpopts.EquateEmpty(),
	}
	if diff := cmp.Diff(wantData, gotData, opts); diff != "" {
		t.Errorf("data after the round trip (-source +copy):\n%s", diff)
	}
	if diff := cmp.Diff(wantLog, gotLog); diff != "" {
		t.Errorf("audit log after the round trip (-source +copy):\n%s", diff)
	}

	// The same etcd prefix again is not empty any more.
	_, err = storeCopy(t, nil, "--from", "bolt://"+f.data, "--to", f.etcd, "--etcd-prefix", "/copy/", "--secrets-key-file", f.keyFile)
	if err == nil || !strings.Contains(err.Error(), "not empty") {
		t.Errorf("copy into a used prefix = %v, want a not-empty error", err)
	}
	// Nor is a data directory with a control database.
	_, err = storeCopy(t, nil, "--from", f.etcd, "--etcd-prefix", "/copy/", "--secrets-key-file", f.keyFile, "--to", "bolt://"+back)
	if err == nil || !strings.Contains(err.Error(), "exists") {
		t.Errorf("copy into a used data directory = %v, want an exists error", err)
	}
}

func TestStoreCopyErrors(t *testing.T) {
	f := newStoreCopyFixture(t)
	bad := filepath.Join(t.TempDir(), "bad.key")
	os.WriteFile(bad, []byte("short"), 0o600)
	empty := t.TempDir()
	for _, tt := range []struct {
		name   string
		env    map[string]string
		args   []string
		errHas string
		usage  bool
	}{
		{"no --to", nil, []string{"--from", "bolt://" + f.data}, "usage", true},
		{"unknown scheme", nil, []string{"--from", "file://" + f.data, "--to", "bolt://" + t.TempDir()}, "want bolt://DIR or etcd://", true},
		{"bolt without a directory", nil, []string{"--from", "bolt://", "--to", "bolt://" + t.TempDir()}, "needs a directory", true},
		{"no control database", nil, []string{"--from", "bolt://" + empty, "--to", "bolt://" + t.TempDir()}, "no control database", false},
		{"etcd without a key file", nil, []string{"--from", "bolt://" + f.data, "--to", f.etcd}, "--secrets-key-file is required", true},
		{"bad key file", nil, []string{"--from", "bolt://" + f.data, "--to", f.etcd, "--secrets-key-file", bad}, "64 hex digits", false},
		{"etcds", nil, []string{"--from", "bolt://" + f.data, "--to", "etcds://127.0.0.1:1", "--secrets-key-file", f.keyFile}, "TLS comes from", true},
		{"etcd path", nil, []string{"--from", "bolt://" + f.data, "--to", f.etcd + "/x", "--secrets-key-file", f.keyFile}, "path", true},
		{"no store under the prefix", nil, []string{"--from", f.etcd, "--etcd-prefix", "/nothing/", "--secrets-key-file", f.keyFile, "--to", "bolt://" + t.TempDir()}, "no switchback store", false},
		{"password kept out", map[string]string{"SWITCHBACK_ETCD_USERNAME": "root", "SWITCHBACK_ETCD_PASSWORD": "hunter2"},
			[]string{"--from", "bolt://" + f.data, "--to", "etcd://root:hunter2@127.0.0.1:1", "--secrets-key-file", f.keyFile}, "credentials in the URL", true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := storeCopy(t, tt.env, tt.args...)
			if err == nil {
				t.Fatal("store copy succeeded")
			}
			if got := errors.Is(err, errUsage); got != tt.usage {
				t.Errorf("usage error = %v, want %v (%v)", got, tt.usage, err)
			}
			if tt.errHas == "usage" {
				return
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error = %q, want it to contain %q", err, tt.errHas)
			}
			if strings.Contains(err.Error()+out, "hunter2") {
				t.Errorf("the password is in the output: %q %q", err, out)
			}
		})
	}
	// A failed copy (a source whose audit chain breaks) leaves no half-made
	// control database behind.
	broken := t.TempDir()
	s, err := boltstore.Open(filepath.Join(broken, controlDBFile), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	e1 := audit.Next(domain.AuditEntry{}, domain.AuditEntry{Action: "a"})
	e2 := audit.Next(e1, domain.AuditEntry{Action: "b"})
	e2.Reason = "rewritten"
	err = s.Update(t.Context(), func(tx control.Tx) error {
		if err := tx.PutPartner(domain.Partner{ID: "p", Name: "P", PSA: domain.PSAGeneric}); err != nil {
			return err
		}
		if err := tx.AppendAudit(e1); err != nil {
			return err
		}
		return tx.AppendAudit(e2)
	})
	s.Close()
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "d")
	if _, err := storeCopy(t, nil, "--from", "bolt://"+broken, "--to", "bolt://"+dest); err == nil || !strings.Contains(err.Error(), "audit chain breaks at seq 2") {
		t.Fatalf("copy of a broken chain = %v, want the break named", err)
	}
	if _, err := os.Stat(filepath.Join(dest, controlDBFile)); err == nil {
		t.Error("a failed copy left a control database")
	}
}
