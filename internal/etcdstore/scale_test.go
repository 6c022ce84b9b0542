package etcdstore_test

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/etcdstore"
)

var t0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

var change = control.Change{Actor: "test", Reason: "scale test"}

func migration(key string, seq uint64) domain.Migration {
	return domain.Migration{
		Key: key,
		Pipelines: domain.Pipelines{
			Legacy: domain.Pipeline{URL: "http://legacy.internal/apply"},
			New:    domain.Pipeline{URL: "http://new.internal/apply"},
		},
		Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(),
		Seq: seq, CreatedAt: t0, UpdatedAt: t0,
	}
}

// fixture writes n partners p-0000… and migrations m0… into s, 100 rows an
// Update (each under etcd's 128 operations), and returns the partner ids.
func fixture(tb testing.TB, s *etcdstore.Store, n, migrations int) []string {
	tb.Helper()
	ids := make([]string, n)
	for i := range ids {
		ids[i] = fmt.Sprintf("p-%04d", i)
	}
	for start := 0; start < n; start += 100 {
		err := s.Update(tb.Context(), func(tx control.Tx) error {
			for _, id := range ids[start:min(start+100, n)] {
				p := domain.Partner{ID: id, Name: "Partner " + id, PSA: domain.PSAConnectWise, Secret: "whsec_" + id, CreatedAt: t0, UpdatedAt: t0}
				if err := tx.PutPartner(p); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			tb.Fatalf("write partners: %v", err)
		}
	}
	err := s.Update(tb.Context(), func(tx control.Tx) error {
		for i := range migrations {
			if err := tx.PutMigration(migration(fmt.Sprintf("m%d", i), uint64(i+1))); err != nil {
				return err
			}
		}
		return tx.SetVersion(1)
	})
	if err != nil {
		tb.Fatalf("write migrations: %v", err)
	}
	return ids
}

func newService(tb testing.TB, s control.Store) *control.Service {
	tb.Helper()
	svc, err := control.New(tb.Context(), s, control.Options{Now: func() time.Time { return t0 }, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		tb.Fatalf("control.New: %v", err)
	}
	return svc
}

// A cohort of 1,000 partners advances in one call, one etcd transaction:
// after a reload from etcd, every partner is at the new stage.
func TestAdvanceThousandPartners(t *testing.T) {
	prefix := newPrefix()
	s := open(t, prefix, etcdstore.WithSecretsKey(testKey))
	ids := fixture(t, s, 1000, 1)
	svc := newService(t, s)
	if _, _, err := svc.PutCohort(t.Context(), change, "m0", domain.Cohort{Name: "all", Order: 1, Partners: ids}); err != nil {
		t.Fatalf("PutCohort: %v", err)
	}
	before := s.Commits()
	res, err := svc.Advance(t.Context(), change, "m0", "all", false)
	if err != nil {
		t.Fatalf("Advance: %v", err)
	}
	if got := s.Commits() - before; got != 1 {
		t.Errorf("Advance committed %d etcd transactions, want 1", got)
	}
	if res.To != domain.StageShadow || len(res.Partners) != len(ids) {
		t.Errorf("Advance moved %d partners to %s, want %d to shadow", len(res.Partners), res.To, len(ids))
	}

	reloaded, err := etcdstore.Open(t.Context(), client, prefix, etcdstore.WithSecretsKey(testKey))
	if err != nil {
		t.Fatalf("Open again: %v", err)
	}
	defer reloaded.Close()
	d, err := reloaded.Load(t.Context())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	at := map[string]domain.Stage{}
	for _, ps := range d.Stages["m0"] {
		at[ps.Partner] = ps.Stage
	}
	for _, id := range ids {
		if at[id] != domain.StageShadow {
			t.Fatalf("partner %s is at %q after the reload, want shadow (%d stages loaded)", id, at[id], len(at))
		}
	}
	if d.LastAudit.Action != "cohort.advance" {
		t.Errorf("last audit action = %q, want cohort.advance", d.LastAudit.Action)
	}
}

// The kill switch over 10 migrations is one call and one etcd
// transaction; a reload sees every migration reverted.
func TestRevertAllTenMigrations(t *testing.T) {
	prefix := newPrefix()
	s := open(t, prefix)
	fixture(t, s, 10, 10)
	svc := newService(t, s)
	before := s.Commits()
	if _, err := svc.RevertAll(t.Context(), change); err != nil {
		t.Fatalf("RevertAll: %v", err)
	}
	if got := s.Commits() - before; got != 1 {
		t.Errorf("RevertAll committed %d etcd transactions, want 1", got)
	}
	d, err := open(t, prefix).Load(t.Context())
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	if len(d.Migrations) != 10 {
		t.Fatalf("loaded %d migrations, want 10", len(d.Migrations))
	}
	for _, m := range d.Migrations {
		if !m.Reverted {
			t.Errorf("migration %s is not reverted after the reload", m.Key)
		}
	}
}

// The bound the package doc gives: the stages of 11,000 partners with the
// longest ids fit in one transaction; 13,000 do not, and are refused whole
// with an error saying what to do.
func TestStagesLimit(t *testing.T) {
	put := func(s *etcdstore.Store, n int) error {
		since := time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)
		return s.Update(t.Context(), func(tx control.Tx) error {
			if err := tx.PutMigration(migration("m", 1)); err != nil {
				return err
			}
			for i := range n {
				id := fmt.Sprintf("%063d", i)
				if err := tx.PutStage("m", domain.PartnerStage{Partner: id, Stage: domain.StageShadow, Since: since}); err != nil {
					return err
				}
			}
			return nil
		})
	}
	s := open(t, newPrefix())
	if err := put(s, 11000); err != nil {
		t.Fatalf("11,000 stages: %v", err)
	}
	d, err := s.Load(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if got := len(d.Stages["m"]); got != 11000 {
		t.Errorf("Load listed %d stages, want 11,000", got)
	}
	err = put(open(t, newPrefix()), 13000)
	if !errors.Is(err, etcdstore.ErrTooLarge) {
		t.Fatalf("13,000 stages: %v, want ErrTooLarge", err)
	}
	// The domain error shows clients "internal error"; its cause, logged
	// by the server, says what to do.
	if cause := errors.Unwrap(err); cause == nil || !strings.Contains(cause.Error(), "--max-request-bytes") {
		t.Errorf("cause %v does not say what to do", cause)
	}
}

// BenchmarkAdvance1000Partners measures one cohort advance of 1,000
// partners through control.Service on etcd; txns/op counts the etcd
// transactions it commits.
func BenchmarkAdvance1000Partners(b *testing.B) {
	s := open(b, newPrefix())
	ids := fixture(b, s, 1000, 0)
	svc := newService(b, s)
	var txns uint64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		key := fmt.Sprintf("bench-%d", i)
		if _, _, err := svc.PutMigration(b.Context(), change, migration(key, 0)); err != nil {
			b.Fatalf("PutMigration: %v", err)
		}
		if _, _, err := svc.PutCohort(b.Context(), change, key, domain.Cohort{Name: "all", Order: 1, Partners: ids}); err != nil {
			b.Fatalf("PutCohort: %v", err)
		}
		before := s.Commits()
		b.StartTimer()
		if _, err := svc.Advance(b.Context(), change, key, "all", false); err != nil {
			b.Fatalf("Advance: %v", err)
		}
		txns += s.Commits() - before
	}
	b.ReportMetric(float64(txns)/float64(b.N), "txns/op")
}

// BenchmarkRevert10Migrations measures the global kill switch over 10
// migrations through control.Service on etcd (the resumes between ops are
// not timed); txns/op counts the etcd transactions it commits.
func BenchmarkRevert10Migrations(b *testing.B) {
	s := open(b, newPrefix())
	fixture(b, s, 10, 10)
	svc := newService(b, s)
	var txns uint64
	for i := 0; i < b.N; i++ {
		before := s.Commits()
		if _, err := svc.RevertAll(b.Context(), change); err != nil {
			b.Fatalf("RevertAll: %v", err)
		}
		txns += s.Commits() - before
		b.StopTimer()
		for m := range 10 {
			if _, err := svc.Resume(b.Context(), change, fmt.Sprintf("m%d", m)); err != nil {
				b.Fatalf("Resume: %v", err)
			}
		}
		b.StartTimer()
	}
	b.ReportMetric(float64(txns)/float64(b.N), "txns/op")
}
