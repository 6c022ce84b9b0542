package main

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchbackhq/switchback/internal/config"
	"github.com/switchbackhq/switchback/internal/control/storetest"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/etcdstore"
)

func storeReseal(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append([]string{"store", "reseal"}, args...), func(string) string { return "" }, &stdout, &stderr)
	return stderr.String(), err
}

// writeKeys writes a secrets key file of keys, the first sealing.
func writeKeys(t *testing.T, keys ...[]byte) string {
	t.Helper()
	var b strings.Builder
	b.WriteString("# switchback secrets keys: the first seals\n")
	for _, k := range keys {
		b.WriteString(hex.EncodeToString(k) + "\n\n")
	}
	path := filepath.Join(t.TempDir(), "secrets.keys")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// sealedRecords counts SampleData's partners and notification targets
// whose secrets (or, for a target, its URL) a store seals.
func sealedRecords() int {
	n := 0
	for _, p := range storetest.SampleData().Partners {
		if p.Secret != "" || p.PSAAPI != nil { // both are sealed
			n++
		}
	}
	for _, nt := range storetest.SampleData().Notifiers {
		if nt.Secret != "" || nt.URL != "" {
			n++
		}
	}
	return n
}

// A key rotation through the commands: a store sealed with the fixture's
// key A, resealed with [B, A], is read back whole with B alone.
func TestStoreReseal(t *testing.T) {
	f := newStoreCopyFixture(t)
	keyA, keyB := bytes.Repeat([]byte{9}, 32), bytes.Repeat([]byte{0xb2}, 32)
	if out, err := storeCopy(t, nil, "--from", "bolt://"+f.data, "--to", f.etcd, "--etcd-prefix", "/r/", "--secrets-key-file", f.keyFile); err != nil {
		t.Fatalf("copy to etcd: %v\n%s", err, out)
	}
	rotated := writeKeys(t, keyB, keyA)
	out, err := storeReseal(t, "--store", f.etcd, "--etcd-prefix", "/r/", "--secrets-key-file", rotated)
	if want := fmt.Sprintf(": %d partners and notification targets resealed with key %s\n", sealedRecords(), etcdstore.KeyID(keyB)); err != nil || !strings.HasSuffix(out, want) {
		t.Fatalf("store reseal = %v, %q; want it to end with %q", err, out, want)
	}
	if out, err := storeReseal(t, "--store", f.etcd, "--etcd-prefix", "/r/", "--secrets-key-file", rotated); err != nil || !strings.Contains(out, ": 0 partners and notification targets resealed") {
		t.Errorf("store reseal again = %v, %q; want 0 partners", err, out)
	}

	back := filepath.Join(t.TempDir(), "back")
	if out, err := storeCopy(t, nil, "--from", f.etcd, "--etcd-prefix", "/r/", "--secrets-key-file", writeKeys(t, keyB), "--to", "bolt://"+back); err != nil {
		t.Fatalf("copy back with the new key alone: %v\n%s", err, out)
	}
	want, _ := loadBolt(t, f.data)
	got, _ := loadBolt(t, back)
	byID := cmpopts.SortSlices(func(a, b domain.Partner) bool { return a.ID < b.ID })
	if diff := cmp.Diff(want.Partners, got.Partners, byID); diff != "" {
		t.Errorf("partners after the rotation (-before +after):\n%s", diff)
	}

	// With the old key alone, the command names the key it lacks.
	_, err = storeReseal(t, "--store", f.etcd, "--etcd-prefix", "/r/", "--secrets-key-file", f.keyFile)
	if err == nil || !strings.Contains(err.Error(), etcdstore.KeyID(keyB)) || strings.Contains(err.Error(), hex.EncodeToString(keyB)) {
		t.Errorf("store reseal with the old key = %v; want an error naming key %s, not the key", err, etcdstore.KeyID(keyB))
	}
}

func TestStoreResealErrors(t *testing.T) {
	f := newStoreCopyFixture(t)
	for _, tt := range []struct {
		name   string
		args   []string
		errHas string
		usage  bool
	}{
		{"no store", []string{"--secrets-key-file", f.keyFile}, "", true},
		{"no key file", []string{"--store", f.etcd}, "", true},
		{"bolt", []string{"--store", "bolt://" + f.data, "--secrets-key-file", f.keyFile}, "only etcd", true},
		{"an argument", []string{"--store", f.etcd, "--secrets-key-file", f.keyFile, "extra"}, "", true},
		{"no store under the prefix", []string{"--store", f.etcd, "--etcd-prefix", "/nothing/", "--secrets-key-file", f.keyFile}, "no switchback store", false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := storeReseal(t, tt.args...)
			if err == nil {
				t.Fatal("store reseal succeeded")
			}
			if got := errors.Is(err, errUsage); got != tt.usage {
				t.Errorf("usage error = %v, want %v (%v)", got, tt.usage, err)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("error = %q, want it to contain %q", err, tt.errHas)
			}
		})
	}
}

// serve reseals when it opens an etcd store, and logs how many partners.
func TestServeReseals(t *testing.T) {
	f := newStoreCopyFixture(t)
	keyA, keyB := bytes.Repeat([]byte{9}, 32), bytes.Repeat([]byte{0xb2}, 32)
	if out, err := storeCopy(t, nil, "--from", "bolt://"+f.data, "--to", f.etcd, "--etcd-prefix", "/s/", "--secrets-key-file", f.keyFile); err != nil {
		t.Fatalf("copy to etcd: %v\n%s", err, out)
	}
	open := func(keyFile string) string {
		var logs bytes.Buffer
		cfg := config.Serve{Store: f.etcd, EtcdPrefix: "/s/", SecretsKeyFile: keyFile}
		store, _, closeStore, err := openStore(t.Context(), cfg, "", slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatalf("openStore: %v", err)
		}
		defer closeStore()
		d, err := store.Load(t.Context())
		if err != nil || len(d.Partners) != len(storetest.SampleData().Partners) {
			t.Fatalf("Load = %d partners, %v", len(d.Partners), err)
		}
		return logs.String()
	}
	logs := open(writeKeys(t, keyB, keyA))
	if want := fmt.Sprintf("resealed=%d sealingKey=%s", sealedRecords(), etcdstore.KeyID(keyB)); !strings.Contains(logs, want) {
		t.Errorf("serve's log lacks %q:\n%s", want, logs)
	}
	if logs := open(writeKeys(t, keyB)); strings.Contains(logs, "resealed") {
		t.Errorf("serve resealed again after the rotation:\n%s", logs)
	}
}
