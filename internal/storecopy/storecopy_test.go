package storecopy_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/control/storetest"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/etcdstore"
	"github.com/switchbackhq/switchback/internal/etcdstore/etcdtest"
	"github.com/switchbackhq/switchback/internal/storecopy"
)

var client *clientv3.Client

func TestMain(m *testing.M) {
	os.Exit(etcdtest.Main(m, &client))
}

var key = bytes.Repeat([]byte{7}, 32)

func openEtcd(t *testing.T, prefix string) *etcdstore.Store {
	t.Helper()
	s, err := etcdstore.Open(t.Context(), client, prefix, etcdstore.WithSecretsKey(key))
	if err != nil {
		t.Fatalf("etcdstore.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openBolt(t *testing.T, path string) *boltstore.Store {
	t.Helper()
	s, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatalf("boltstore.Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

// sourceFile writes storetest.SampleData, its rows and an audit log of n
// entries into a new bbolt file, and returns its path.
func sourceFile(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "switchback.db")
	s, err := boltstore.Open(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	d := storetest.SampleData()
	var prev domain.AuditEntry
	err = s.Update(t.Context(), func(tx control.Tx) error {
		if err := storetest.Write(tx, d); err != nil {
			return err
		}
		for i := range n {
			prev = audit.Next(prev, domain.AuditEntry{
				At: time.Date(2026, 3, 1, 12, 0, i, 0, time.UTC), Actor: "alice", Action: "partner.update", Target: fmt.Sprintf("partner/p%d", i),
				Before: json.RawMessage(`{"name":"old"}`), After: json.RawMessage(`{"name": "new", "n": ` + fmt.Sprint(i) + `}`), Reason: "test",
			})
			if err := tx.AppendAudit(prev); err != nil {
				return err
			}
		}
		for _, r := range storetest.SampleRows() {
			if err := r.Put(tx); err != nil {
				return err
			}
		}
		return tx.SetVersion(d.Version)
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

func auditLog(t *testing.T, s control.Store) []domain.AuditEntry {
	t.Helper()
	var out []domain.AuditEntry
	for {
		var after uint64
		if len(out) > 0 {
			after = out[len(out)-1].Seq
		}
		page, err := s.AuditLog(t.Context(), after, 77)
		if err != nil {
			t.Fatalf("AuditLog: %v", err)
		}
		if len(page) == 0 {
			return out
		}
		out = append(out, page...)
	}
}

func exported(t *testing.T, s control.Copyable) []control.Row {
	t.Helper()
	var rows []control.Row
	if err := s.Export(t.Context(), func(r control.Row) error { rows = append(rows, r); return nil }); err != nil {
		t.Fatalf("Export: %v", err)
	}
	return rows
}

var sortData = cmp.Options{
	cmpopts.SortSlices(func(a, b domain.Partner) bool { return a.ID < b.ID }),
	cmpopts.SortSlices(func(a, b domain.Migration) bool { return a.Key < b.Key }),
	cmpopts.SortSlices(func(a, b domain.PartnerStage) bool { return a.Partner < b.Partner }),
	cmpopts.SortSlices(func(a, b domain.Cohort) bool { return a.Name < b.Name }),
	cmpopts.SortSlices(func(a, b domain.ChangeRequest) bool { return a.ID < b.ID }),
	cmpopts.EquateEmpty(),
}

// bbolt → etcd → bbolt keeps everything: the data as loaded, the store's
// identity, every audit entry byte for byte with a chain that verifies,
// and the statistics rows. The source file is not written.
func TestRoundTrip(t *testing.T) {
	path := sourceFile(t, 300)
	before, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	src, err := boltstore.OpenReadOnly(path, time.Second)
	if err != nil {
		t.Fatalf("OpenReadOnly: %v", err)
	}
	defer src.Close()
	mid := openEtcd(t, "/roundtrip/")
	var progress bytes.Buffer
	n, err := storecopy.Copy(t.Context(), src, mid, &progress)
	if err != nil {
		t.Fatalf("Copy bbolt → etcd: %v", err)
	}
	want := storecopy.Counts{Partners: 2, Migrations: 2, Stages: 2, Cohorts: 1, Tokens: 1, Changes: 2, Notifiers: 2, Audit: 300, Rows: len(storetest.SampleRows())}
	if n != want {
		t.Errorf("Copy counts = %+v, want %+v", n, want)
	}
	if !strings.Contains(progress.String(), "300 audit entries, the chain verified") {
		t.Errorf("progress = %q, want the audit count", progress.String())
	}
	// The copy seals the partners' secrets and PSA API access as any
	// write to the store does (SampleData's credentials hold "s3cret").
	raw, err := client.Get(t.Context(), "/roundtrip/partners/", clientv3.WithPrefix())
	if err != nil || len(raw.Kvs) != 2 {
		t.Fatalf("read the copied partners: %d, %v", len(raw.Kvs), err)
	}
	for _, kv := range raw.Kvs {
		if bytes.Contains(kv.Value, []byte("s3cret")) || !bytes.Contains(kv.Value, []byte(`"sealedPsaApi"`)) {
			t.Errorf("%s as copied into etcd: %s; want its PSA API access sealed, no credential in plain text", kv.Key, kv.Value)
		}
	}
	// So are the notification targets' secrets.
	raw, err = client.Get(t.Context(), "/roundtrip/notifiers/", clientv3.WithPrefix())
	if err != nil || len(raw.Kvs) != 2 {
		t.Fatalf("read the copied notification targets: %d, %v", len(raw.Kvs), err)
	}
	for _, kv := range raw.Kvs {
		if bytes.Contains(kv.Value, []byte("s3cret")) || bytes.Contains(kv.Value, []byte("whsec_")) {
			t.Errorf("%s as copied into etcd: %s; want its secret sealed", kv.Key, kv.Value)
		}
	}
	dst := openBolt(t, filepath.Join(t.TempDir(), "switchback.db"))
	if _, err := storecopy.Copy(t.Context(), mid, dst, nil); err != nil {
		t.Fatalf("Copy etcd → bbolt: %v", err)
	}

	wantData, err := src.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range wantData.Partners {
		if p.PSAAPI == nil {
			t.Fatalf("source partner %s has no PSA API access: the copy of it would not be checked", p.ID)
		}
	}
	wantLog := auditLog(t, src)
	wantRows := exported(t, src)
	for _, s := range []struct {
		name  string
		store control.Copyable
	}{{"etcd", mid}, {"bbolt", dst}} {
		got, err := s.store.Load(t.Context())
		if err != nil {
			t.Fatalf("%s: Load: %v", s.name, err)
		}
		if diff := cmp.Diff(wantData, got, sortData); diff != "" {
			t.Errorf("%s: Load (-source +copy):\n%s", s.name, diff)
		}
		log := auditLog(t, s.store)
		if diff := cmp.Diff(wantLog, log); diff != "" {
			t.Errorf("%s: audit log (-source +copy):\n%s", s.name, diff)
		}
		if err := audit.NewVerifier(domain.AuditEntry{}).Check(log); err != nil {
			t.Errorf("%s: the copied chain does not verify: %v", s.name, err)
		}
		if diff := cmp.Diff(wantRows, exported(t, s.store), storetest.SortRows); diff != "" {
			t.Errorf("%s: statistics rows (-source +copy):\n%s", s.name, diff)
		}
	}
	if src.Close() != nil {
		t.Fatal("close the source")
	}
	after, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(before, after) {
		t.Errorf("the source file changed during the copy (%v)", err)
	}
}

// A destination with anything in it is refused before anything is written.
func TestRefusesNonEmptyDestination(t *testing.T) {
	src, err := boltstore.OpenReadOnly(sourceFile(t, 3), time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for _, tt := range []struct {
		name string
		fill func(control.Tx) error
	}{
		{"a partner", func(tx control.Tx) error {
			return tx.PutPartner(domain.Partner{ID: "x", Name: "X", PSA: domain.PSAGeneric})
		}},
		{"a version", func(tx control.Tx) error { return tx.SetVersion(1) }},
		{"an audit entry", func(tx control.Tx) error {
			return tx.AppendAudit(audit.Next(domain.AuditEntry{}, domain.AuditEntry{Action: "x"}))
		}},
		{"a statistics row", storetest.SampleRows()[0].Put},
		{"an applied report", func(tx control.Tx) error { return tx.PutAppliedReport("r", "e", 1) }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			dst := openEtcd(t, "/full-"+strings.ReplaceAll(tt.name, " ", "-")+"/")
			if err := dst.Update(t.Context(), tt.fill); err != nil {
				t.Fatal(err)
			}
			before := exported(t, dst)
			_, err := storecopy.Copy(t.Context(), src, dst, nil)
			if !errors.Is(err, storecopy.ErrNotEmpty) {
				t.Fatalf("Copy = %v, want ErrNotEmpty", err)
			}
			d, err := dst.Load(t.Context())
			if err != nil || len(d.Migrations) != 0 || !slices.EqualFunc(before, exported(t, dst), func(a, b control.Row) bool { return cmp.Equal(a, b) }) {
				t.Errorf("the refused destination was written: %+v, %v", d, err)
			}
		})
	}
}

// A source whose audit chain is broken is not copied: the copy would carry
// the break.
func TestRefusesBrokenChain(t *testing.T) {
	path := filepath.Join(t.TempDir(), "switchback.db")
	s := openBolt(t, path)
	e1 := audit.Next(domain.AuditEntry{}, domain.AuditEntry{Action: "a"})
	e2 := audit.Next(e1, domain.AuditEntry{Action: "b"})
	e2.Reason = "rewritten"
	if err := s.Update(t.Context(), func(tx control.Tx) error {
		if err := tx.AppendAudit(e1); err != nil {
			return err
		}
		return tx.AppendAudit(e2)
	}); err != nil {
		t.Fatal(err)
	}
	_, err := storecopy.Copy(t.Context(), s, openEtcd(t, "/broken/"), nil)
	var br *audit.Break
	if !errors.As(err, &br) || br.Seq != 2 {
		t.Errorf("Copy = %v, want an audit break at seq 2", err)
	}
}
