package etcdstore_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/etcdstore"
)

var (
	keyA = bytes.Repeat([]byte{0xa1}, 32)
	keyB = bytes.Repeat([]byte{0xb2}, 32)
	keyC = bytes.Repeat([]byte{0xc3}, 32)
)

func secretOf(id string) string { return "whsec_secret-of-" + id }

// psaAPIOf is the PSA API access of partner id; its token and URL path
// hold "whsec_" too, so that rawPartners finds them if they are in plain
// text.
func psaAPIOf(id string) *domain.PSAAPI {
	return &domain.PSAAPI{BaseURL: "https://feed.example/whsec_path-of-" + id, Token: "whsec_token-of-" + id}
}

// partnerOf is partner id named name, with its secret and PSA API access.
func partnerOf(id, name string) domain.Partner {
	return domain.Partner{ID: id, Name: name, PSA: domain.PSAGeneric, Secret: secretOf(id), PSAAPI: psaAPIOf(id)}
}

// putPartners writes n partners acme-0… with their secrets and PSA API
// access, and one partner without either, through s.
func putPartners(t *testing.T, s *etcdstore.Store, n int) {
	t.Helper()
	for lo := 0; lo < n; lo += 100 {
		err := s.Update(t.Context(), func(tx control.Tx) error {
			for i := lo; i < min(n, lo+100); i++ {
				id := fmt.Sprintf("acme-%d", i)
				if err := tx.PutPartner(partnerOf(id, "Acme")); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := s.Update(t.Context(), func(tx control.Tx) error {
		return tx.PutPartner(domain.Partner{ID: "nosecret", Name: "No secret", PSA: domain.PSAGeneric})
	})
	if err != nil {
		t.Fatal(err)
	}
}

// checkSecrets loads s and checks that every partner has its secret and
// PSA API access.
func checkSecrets(t *testing.T, s *etcdstore.Store, want int) {
	t.Helper()
	d, err := s.Load(t.Context())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(d.Partners) != want+1 {
		t.Fatalf("Load: %d partners, want %d", len(d.Partners), want+1)
	}
	for _, p := range d.Partners {
		wantSecret, wantAPI := secretOf(p.ID), psaAPIOf(p.ID)
		if p.ID == "nosecret" {
			wantSecret, wantAPI = "", nil
		}
		if p.Secret != wantSecret {
			t.Errorf("partner %s: secret %q, want %q", p.ID, p.Secret, wantSecret)
		}
		if (p.PSAAPI == nil) != (wantAPI == nil) || p.PSAAPI != nil && *p.PSAAPI != *wantAPI {
			t.Errorf("partner %s: PSA API access %v, want %v", p.ID, p.PSAAPI, wantAPI)
		}
	}
}

// rawPartners returns the partner records as etcd holds them.
func rawPartners(t *testing.T, prefix string) map[string]map[string]any {
	t.Helper()
	resp, err := client.Get(t.Context(), prefix+"partners/", clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]map[string]any{}
	for _, kv := range resp.Kvs {
		var rec map[string]any
		if err := json.Unmarshal(kv.Value, &rec); err != nil {
			t.Fatalf("%s: %v", kv.Key, err)
		}
		if strings.Contains(string(kv.Value), "whsec_") {
			t.Errorf("%s holds a secret in plain text: %s", kv.Key, kv.Value)
		}
		out[string(kv.Key)] = rec
	}
	return out
}

// metaOf returns the snapshot version, audit head and the whole audit
// log as etcd holds them.
func metaOf(t *testing.T, prefix string) string {
	t.Helper()
	var b strings.Builder
	for _, p := range []string{prefix + "meta/", prefix + "audit/"} {
		resp, err := client.Get(t.Context(), p, clientv3.WithPrefix())
		if err != nil {
			t.Fatal(err)
		}
		for _, kv := range resp.Kvs {
			fmt.Fprintf(&b, "%s=%s@%d\n", kv.Key, kv.Value, kv.ModRevision)
		}
	}
	return b.String()
}

// A store written with key A is read with [B, A], resealed with B, and
// then read with B alone; resealing writes neither the version nor the
// audit log.
func TestRotateSecretsKey(t *testing.T) {
	prefix := newPrefix()
	const n = 300 // more than one transaction's 128 operations
	a := open(t, prefix, etcdstore.WithSecretsKey(keyA))
	putPartners(t, a, n)
	err := a.Update(t.Context(), func(tx control.Tx) error {
		if err := tx.SetVersion(7); err != nil {
			return err
		}
		return tx.AppendAudit(domain.AuditEntry{Seq: 1, Action: "partner.put"})
	})
	if err != nil {
		t.Fatal(err)
	}
	meta := metaOf(t, prefix)

	ba := open(t, prefix, etcdstore.WithSecretsKeys(keyB, keyA))
	checkSecrets(t, ba, n)
	got, err := ba.Reseal(t.Context())
	if err != nil || got != n {
		t.Fatalf("Reseal = %d, %v; want %d, nil", got, err, n)
	}
	for key, rec := range rawPartners(t, prefix) {
		if strings.HasSuffix(key, "/nosecret") {
			if _, ok := rec["secretKeyId"]; ok {
				t.Errorf("%s: a key id without a secret: %v", key, rec)
			}
			continue
		}
		if rec["secretKeyId"] != etcdstore.KeyID(keyB) {
			t.Errorf("%s: secretKeyId %v, want B's %s", key, rec["secretKeyId"], etcdstore.KeyID(keyB))
		}
	}
	if after := metaOf(t, prefix); after != meta {
		t.Errorf("Reseal changed the meta keys or the audit log:\nbefore %s\nafter  %s", meta, after)
	}
	if got, err := ba.Reseal(t.Context()); err != nil || got != 0 {
		t.Errorf("Reseal again = %d, %v; want 0, nil", got, err)
	}
	checkSecrets(t, open(t, prefix, etcdstore.WithSecretsKeys(keyB)), n)
	if _, err := open(t, prefix, etcdstore.WithSecretsKey(keyA)).Load(t.Context()); err == nil {
		t.Error("Load with the old key alone succeeded after resealing")
	}
}

// Secrets sealed before key ids, and secrets in plain text, are opened
// and resealed too.
func TestResealOldRecords(t *testing.T) {
	prefix := newPrefix()
	putPartners(t, open(t, prefix, etcdstore.WithSecretsKey(keyA)), 3)
	// acme-0 as sealed before key ids: the same record without the id.
	key := prefix + "partners/acme-0"
	resp, err := client.Get(t.Context(), key)
	if err != nil || len(resp.Kvs) != 1 {
		t.Fatalf("get %s: %v", key, err)
	}
	var rec map[string]any
	json.Unmarshal(resp.Kvs[0].Value, &rec)
	delete(rec, "secretKeyId")
	old, _ := json.Marshal(rec)
	if _, err := client.Put(t.Context(), key, string(old)); err != nil {
		t.Fatal(err)
	}
	// acme-3 in plain text, as a store without a key wrote it.
	err = open(t, prefix).Update(t.Context(), func(tx control.Tx) error {
		return tx.PutPartner(partnerOf("acme-3", "Acme"))
	})
	if err != nil {
		t.Fatal(err)
	}

	ba := open(t, prefix, etcdstore.WithSecretsKeys(keyB, keyA))
	checkSecrets(t, ba, 4)
	if got, err := ba.Reseal(t.Context()); err != nil || got != 4 {
		t.Fatalf("Reseal = %d, %v; want 4, nil", got, err)
	}
	rawPartners(t, prefix)
	checkSecrets(t, open(t, prefix, etcdstore.WithSecretsKeys(keyB)), 4)

	if _, err := open(t, prefix).Reseal(t.Context()); !errors.Is(err, etcdstore.ErrNoSecretsKey) {
		t.Errorf("Reseal without a key = %v, want ErrNoSecretsKey", err)
	}
}

// A secret sealed with a key the store lacks is an error naming that
// key's id, never the key; Reseal rewrites the other partners and says so.
func TestUnknownSecretsKey(t *testing.T) {
	prefix := newPrefix()
	putPartners(t, open(t, prefix, etcdstore.WithSecretsKey(keyA)), 2)
	err := open(t, prefix, etcdstore.WithSecretsKey(keyC)).Update(t.Context(), func(tx control.Tx) error {
		return tx.PutPartner(partnerOf("globex", "Globex"))
	})
	if err != nil {
		t.Fatal(err)
	}
	ba := open(t, prefix, etcdstore.WithSecretsKeys(keyB, keyA))
	_, err = ba.Load(t.Context())
	if err == nil {
		t.Fatal("Load with a partner under an unknown key succeeded")
	}
	noKeys := func(err error) {
		t.Helper()
		for _, k := range [][]byte{keyA, keyB, keyC} {
			if strings.Contains(err.Error(), hex.EncodeToString(k)) || strings.Contains(err.Error(), string(k)) {
				t.Errorf("error %q holds a key", err)
			}
		}
	}
	for _, want := range []string{`"globex"`, etcdstore.KeyID(keyC)} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Load error %q does not name %s", err, want)
		}
	}
	noKeys(err)

	got, err := ba.Reseal(t.Context())
	if got != 2 || err == nil || !strings.Contains(err.Error(), etcdstore.KeyID(keyC)) {
		t.Errorf("Reseal = %d, %v; want 2 and an error naming key %s", got, err, etcdstore.KeyID(keyC))
	} else {
		noKeys(err)
	}
	if rec := rawPartners(t, prefix)[prefix+"partners/globex"]; rec["secretKeyId"] != etcdstore.KeyID(keyC) {
		t.Errorf("globex after Reseal: %v, want it left sealed with C", rec)
	}
}

// Two replicas resealing at once, while a third changes partners: every
// partner is resealed once, and no change or secret is lost.
func TestResealConcurrent(t *testing.T) {
	prefix := newPrefix()
	const n, changed = 300, 40
	putPartners(t, open(t, prefix, etcdstore.WithSecretsKey(keyA)), n)
	// Small transactions, so that the replicas meet on many of them.
	limits := etcdstore.WithLimits(16, 8*1024)
	r1 := open(t, prefix, etcdstore.WithSecretsKeys(keyB, keyA), limits)
	r2 := open(t, prefix, etcdstore.WithSecretsKeys(keyB, keyA), limits)
	writer := open(t, prefix, etcdstore.WithSecretsKeys(keyB, keyA))
	var wg sync.WaitGroup
	counts := make([]int, 2)
	errs := make([]error, 3)
	for i, s := range []*etcdstore.Store{r1, r2} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			counts[i], errs[i] = s.Reseal(t.Context())
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := n - 1; i >= n-changed; i-- {
			id := fmt.Sprintf("acme-%d", i)
			err := writer.Update(t.Context(), func(tx control.Tx) error {
				return tx.PutPartner(partnerOf(id, "Renamed"))
			})
			if err != nil {
				errs[2] = err
				return
			}
		}
	}()
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("goroutine %d: %v", i, err)
		}
	}
	if sum := counts[0] + counts[1]; sum < n-changed || sum > n {
		t.Errorf("resealed %d + %d = %d partners, want from %d to %d", counts[0], counts[1], sum, n-changed, n)
	}
	b := open(t, prefix, etcdstore.WithSecretsKeys(keyB))
	checkSecrets(t, b, n)
	d, err := b.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	renamed := 0
	for _, p := range d.Partners {
		if p.Name == "Renamed" {
			renamed++
		}
	}
	if renamed != changed {
		t.Errorf("%d partners renamed after the reseals, want %d", renamed, changed)
	}
}

func TestReadKeysFile(t *testing.T) {
	a, b := hex.EncodeToString(keyA), hex.EncodeToString(keyB)
	for _, tt := range []struct {
		name    string
		content string
		want    [][]byte
		errHas  string
	}{
		{"one key", a + "\n", [][]byte{keyA}, ""},
		{"two keys", b + "\n" + a + "\n", [][]byte{keyB, keyA}, ""},
		{"comments and blank lines", "# new, from 2026-12-03\n" + b + "  # sealing\n\n\t" + a + "\r\n# old\n", [][]byte{keyB, keyA}, ""},
		{"base64", base64.StdEncoding.EncodeToString(keyB) + "\n", [][]byte{keyB}, ""},
		{"short base64", "ALs=\n" + b, nil, "line 1:"},
		{"bad line", b + "\n\n" + a[:40] + "\n", nil, "line 3:"},
		{"duplicate", b + "\n" + a + "\n" + b + "\n", nil, "line 3 repeats the key of line 1"},
		{"only comments", "# nothing\n\n", nil, "no key"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := etcdstore.ReadKeysFile(path)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("ReadKeysFile = %x, %v; want an error with %q", got, err, tt.errHas)
				}
				if strings.Contains(err.Error(), a[:40]) || strings.Contains(err.Error(), b) {
					t.Errorf("error %q quotes the file", err)
				}
				return
			}
			if err != nil || len(got) != len(tt.want) {
				t.Fatalf("ReadKeysFile = %x, %v; want %x", got, err, tt.want)
			}
			for i := range got {
				if !bytes.Equal(got[i], tt.want[i]) {
					t.Errorf("key %d = %x, want %x", i+1, got[i], tt.want[i])
				}
			}
		})
	}
	path := filepath.Join(t.TempDir(), "keys")
	os.WriteFile(path, []byte(hex.EncodeToString(keyB)+"\n"+hex.EncodeToString(keyA)+"\n"), 0o600)
	if _, err := etcdstore.ReadKeyFile(path); err == nil {
		t.Error("ReadKeyFile of a file of two keys succeeded, want an error")
	}
}

func TestWithSecretsKeys(t *testing.T) {
	for _, tt := range []struct {
		name   string
		keys   [][]byte
		errHas string
	}{
		{"none", nil, "none given"},
		{"short", [][]byte{keyA, keyB[:16]}, "secrets key 2: 16 bytes"},
		{"twice", [][]byte{keyA, keyB, keyA}, "secrets keys 1 and 3"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := etcdstore.Open(t.Context(), client, newPrefix(), etcdstore.WithSecretsKeys(tt.keys...))
			if err == nil || !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("Open = %v, want an error with %q", err, tt.errHas)
			}
		})
	}
}
