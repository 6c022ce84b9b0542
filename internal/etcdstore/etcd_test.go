package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/control/storetest"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/etcdstore"
	"github.com/switchbackhq/switchback/internal/etcdstore/etcdtest"
)

// client is the test binary's one etcd, started by TestMain; each test
// takes a prefix of its own (newPrefix).
var client *clientv3.Client

var prefixes atomic.Int64

func newPrefix() string { return fmt.Sprintf("/test-%d/", prefixes.Add(1)) }

func TestMain(m *testing.M) {
	os.Exit(etcdtest.Main(m, &client))
}

func open(t testing.TB, prefix string, opts ...etcdstore.Option) *etcdstore.Store {
	t.Helper()
	s, err := etcdstore.Open(t.Context(), client, prefix, opts...)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

func TestConformance(t *testing.T) {
	for _, tt := range []struct {
		name string
		opts []etcdstore.Option
	}{
		{"plain secrets", nil},
		{"sealed secrets", []etcdstore.Option{etcdstore.WithSecretsKey(testKey)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			storetest.Run(t, func(t *testing.T) (control.Store, func() error) {
				s := open(t, newPrefix(), tt.opts...)
				return s, s.Close
			})
		})
	}
}

// With a key, a partner's secret and PSA API access (every credential,
// and the base URL with its path) are not in etcd in plain text, and the
// store reads them back; without the key, it cannot. A partner with PSA
// API access and no secret is sealed too.
func TestSecretsSealed(t *testing.T) {
	prefix := newPrefix()
	s := open(t, prefix, etcdstore.WithSecretsKey(testKey))
	plain := []string{"whsec_plaintext", "cw-company-plaintext", "cw-public-plaintext", "cw-private-plaintext", "cw-client-plaintext",
		"/path-plaintext", "at-user-plaintext", "at-secret-plaintext", "at-code-plaintext"}
	acme := domain.Partner{ID: "acme", Name: "Acme", PSA: domain.PSAConnectWise, Secret: "whsec_plaintext",
		PSAAPI: &domain.PSAAPI{BaseURL: "https://api-na.myconnectwise.net/path-plaintext", CompanyID: "cw-company-plaintext",
			PublicKey: "cw-public-plaintext", PrivateKey: "cw-private-plaintext", ClientID: "cw-client-plaintext"}}
	globex := domain.Partner{ID: "globex", Name: "Globex", PSA: domain.PSAAutotask,
		PSAAPI: &domain.PSAAPI{BaseURL: "https://webservices5.autotask.net/atservicesrest", Username: "at-user-plaintext",
			Secret: "at-secret-plaintext", IntegrationCode: "at-code-plaintext"}}
	err := s.Update(t.Context(), func(tx control.Tx) error {
		if err := tx.PutPartner(acme); err != nil {
			return err
		}
		return tx.PutPartner(globex)
	})
	if err != nil {
		t.Fatal(err)
	}
	resp, err := client.Get(t.Context(), prefix, clientv3.WithPrefix())
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range resp.Kvs {
		for _, p := range plain {
			if strings.Contains(string(kv.Value), p) {
				t.Errorf("key %s holds %q in plain text: %s", kv.Key, p, kv.Value)
			}
		}
	}
	d, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]domain.Partner{acme, globex}, d.Partners); diff != "" {
		t.Errorf("Load: partners (-want +got):\n%s", diff)
	}
	if _, err := open(t, prefix).Load(t.Context()); err == nil {
		t.Error("Load without the key succeeded, want an error")
	}
	other := []byte(strings.Repeat("x", 32))
	if _, err := open(t, prefix, etcdstore.WithSecretsKey(other)).Load(t.Context()); err == nil {
		t.Error("Load with another key succeeded, want an error")
	}
}

// Two replicas on one prefix: an Update that loses a race runs again from
// fresh reads, and none of the adds is lost.
func TestReplicasRetry(t *testing.T) {
	prefix := newPrefix()
	a, b := open(t, prefix), open(t, prefix)
	since := time.Unix(0, 0)
	add := func(s *etcdstore.Store, n uint64, pause func()) error {
		return s.Update(t.Context(), func(tx control.Tx) error {
			if err := tx.AddCandidate(since, domain.CandidateCount{Migration: "m", Partner: "acme", Stage: domain.StageShadow, Calls: n}); err != nil {
				return err
			}
			pause()
			return nil
		})
	}
	runs := 0
	err := add(a, 1, func() {
		runs++
		if runs == 1 { // b commits between a's read and a's commit
			if err := add(b, 10, func() {}); err != nil {
				t.Errorf("b: %v", err)
			}
		}
	})
	if err != nil {
		t.Fatalf("a: %v", err)
	}
	if runs != 2 {
		t.Errorf("a's fn ran %d times, want 2 (once more after losing the race)", runs)
	}
	rows, err := a.StageRows(t.Context(), "m", "acme", domain.StageShadow, since)
	if err != nil || rows.CandidateCalls != 11 {
		t.Errorf("calls = %d, %v; want 11", rows.CandidateCalls, err)
	}
}

// Two replicas appending the same audit seq: one wins, the other gets a
// conflict.
func TestReplicasAuditConflict(t *testing.T) {
	prefix := newPrefix()
	a, b := open(t, prefix), open(t, prefix)
	e := domain.AuditEntry{Seq: 1, At: time.Unix(1, 0).UTC(), Actor: "x", Action: "y"}
	err := a.Update(t.Context(), func(tx control.Tx) error {
		if err := tx.AppendAudit(e); err != nil {
			return err
		}
		if err := b.Update(t.Context(), func(tx control.Tx) error { return tx.AppendAudit(e) }); err != nil {
			t.Errorf("b: %v", err)
		}
		return nil
	})
	if domain.ErrorCode(err) != domain.CodeConflict {
		t.Errorf("a = %v (code %s), want a conflict", err, domain.ErrorCode(err))
	}
	log, err := a.AuditLog(t.Context(), 0, 10)
	if err != nil || len(log) != 1 {
		t.Errorf("AuditLog = %v, %v; want one entry", log, err)
	}
}

// An Update over etcd's limits is refused whole, with ErrTooLarge.
func TestTooLarge(t *testing.T) {
	s := open(t, newPrefix())
	err := s.Update(t.Context(), func(tx control.Tx) error {
		for i := range 200 {
			if err := tx.PutPartner(domain.Partner{ID: fmt.Sprintf("p%d", i), Name: "P", PSA: domain.PSAGeneric}); err != nil {
				return err
			}
		}
		return nil
	})
	if !errors.Is(err, etcdstore.ErrTooLarge) {
		t.Errorf("Update of 200 partners = %v, want ErrTooLarge", err)
	}
	d, err := s.Load(t.Context())
	if err != nil || len(d.Partners) != 0 {
		t.Errorf("Load = %v, %v; want no partners", d.Partners, err)
	}
}

func TestOpenNewerSchema(t *testing.T) {
	prefix := newPrefix()
	open(t, prefix)
	if _, err := client.Put(context.Background(), prefix+"meta/schema", "99"); err != nil {
		t.Fatal(err)
	}
	if _, err := etcdstore.Open(t.Context(), client, prefix); !errors.Is(err, etcdstore.ErrNewerSchema) {
		t.Errorf("Open = %v, want ErrNewerSchema", err)
	}
}

// Two replicas adding to the same rows at once lose no add: each lost
// race runs again, and a conflict is returned only after Attempts of them.
func TestReplicasConcurrentAdds(t *testing.T) {
	prefix := newPrefix()
	stores := []*etcdstore.Store{open(t, prefix), open(t, prefix)}
	const each = 25
	since := time.Unix(0, 0)
	var ok, conflicts atomic.Uint64
	var wg sync.WaitGroup
	for _, s := range stores {
		for range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for range each {
					err := s.Update(t.Context(), func(tx control.Tx) error {
						return tx.AddCandidate(since, domain.CandidateCount{Migration: "m", Partner: "acme", Stage: domain.StageShadow, Calls: 1})
					})
					switch {
					case err == nil:
						ok.Add(1)
					case errors.Is(err, etcdstore.ErrConflict):
						conflicts.Add(1)
					default:
						t.Errorf("Update: %v", err)
					}
				}
			}()
		}
	}
	wg.Wait()
	rows, err := stores[0].StageRows(t.Context(), "m", "acme", domain.StageShadow, since)
	if err != nil || rows.CandidateCalls != ok.Load() {
		t.Errorf("calls = %d, %v; want %d, one per Update that succeeded", rows.CandidateCalls, err, ok.Load())
	}
	t.Logf("%d succeeded, %d gave up on conflicts", ok.Load(), conflicts.Load())
}
