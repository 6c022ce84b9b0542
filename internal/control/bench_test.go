package control_test

import (
	"strconv"
	"testing"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

const (
	benchPartners   = 10000
	benchMigrations = 5
)

var benchStages = [...]domain.Stage{domain.StageLegacy, domain.StageShadow, domain.StageNew, domain.StageDone}

// benchService writes partners p-00000… and migrations m0… straight into a
// fresh store, in one transaction, with each partner's stage in migration
// mi being benchStages[(i+mi)%4] (legacy partners get no record), and
// returns a service loaded from it.
func benchService(b *testing.B, partners, migrations int) (*control.Service, []string, []string) {
	b.Helper()
	store := bolttest.Open(b)
	c := newClock()
	t0 := c.Now()
	ids := make([]string, partners)
	for i := range ids {
		ids[i] = "p-" + strconv.Itoa(100000 + i)[1:]
	}
	keys := make([]string, migrations)
	err := store.Update(ctx, func(tx control.Tx) error {
		for _, id := range ids {
			if err := tx.PutPartner(domain.Partner{ID: id, Name: "Partner " + id, PSA: domain.PSAConnectWise, Secret: "whsec_" + id, CreatedAt: t0, UpdatedAt: t0}); err != nil {
				return err
			}
		}
		for mi := range keys {
			keys[mi] = "m" + strconv.Itoa(mi)
			m := migration(keys[mi])
			m.Seq, m.CreatedAt, m.UpdatedAt = uint64(mi+1), t0, t0
			if err := tx.PutMigration(m); err != nil {
				return err
			}
			for i, id := range ids {
				st := benchStages[(i+mi)%len(benchStages)]
				if st == domain.StageLegacy {
					continue
				}
				if err := tx.PutStage(keys[mi], domain.PartnerStage{Partner: id, Stage: st, Since: t0}); err != nil {
					return err
				}
			}
		}
		return tx.SetVersion(1)
	})
	if err != nil {
		b.Fatalf("write fixture: %v", err)
	}
	svc, err := control.New(ctx, store, control.Options{Now: c.Now, Logger: quietLogger()})
	if err != nil {
		b.Fatalf("control.New: %v", err)
	}
	if got := len(svc.State().Partners); got != partners {
		b.Fatalf("loaded %d partners, want %d", got, partners)
	}
	return svc, ids, keys
}

// BenchmarkRevert measures a kill switch going on and off again with 10,000
// partners in 5 migrations: each op is one Revert and one Resume, each
// returning once its snapshot version is durably stored and published.
func BenchmarkRevert(b *testing.B) {
	svc, ids, keys := benchService(b, benchPartners, benchMigrations)
	probe := ids[2] // at new in m0
	c := control.Change{Actor: "bench", Reason: "benchmark"}
	var i int
	for b.Loop() {
		key := keys[i%len(keys)]
		i++
		v, err := svc.Revert(ctx, c, key)
		if err != nil {
			b.Fatal(err)
		}
		if st := svc.State(); st.Version != v || !st.Migrations[key].Reverted {
			b.Fatalf("after Revert: state at %d, reverted %v; want %d, true", st.Version, st.Migrations[key].Reverted, v)
		}
		if _, err := svc.Resume(ctx, c, key); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	// Each op is two kill-switch changes; report one change's latency too.
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(2*b.N), "ns/switch")
	if r := svc.State().Flags().Evaluate(keys[0], probe); r.Value != "new" {
		b.Fatalf("after the last Resume %s evaluates to %+v, want new", probe, r)
	}
}

// BenchmarkRevertAll measures the global kill switch with 10,000 partners in
// 5 migrations: each op is one RevertAll and five Resumes.
func BenchmarkRevertAll(b *testing.B) {
	svc, _, keys := benchService(b, benchPartners, benchMigrations)
	c := control.Change{Actor: "bench", Reason: "benchmark"}
	for b.Loop() {
		if _, err := svc.RevertAll(ctx, c); err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		for _, k := range keys {
			if _, err := svc.Resume(ctx, c, k); err != nil {
				b.Fatal(err)
			}
		}
		b.StartTimer()
	}
}

// BenchmarkSetStage measures one partner's stage change with 10,000 partners
// in 5 migrations: partners of m0 move between legacy and shadow (a forward
// move that needs no gate, and a backward one), one durable version each.
func BenchmarkSetStage(b *testing.B) {
	svc, ids, keys := benchService(b, benchPartners, benchMigrations)
	var movers []string // at legacy or shadow in m0
	for i, id := range ids {
		if st := benchStages[i%len(benchStages)]; st == domain.StageLegacy || st == domain.StageShadow {
			movers = append(movers, id)
		}
	}
	c := control.Change{Actor: "bench", Reason: "benchmark"}
	var i int
	for b.Loop() {
		id := movers[i%len(movers)]
		i++
		st := svc.State()
		to := domain.StageShadow
		if st.Migrations[keys[0]].StageOf(st.Partners[id]).Stage == domain.StageShadow {
			to = domain.StageLegacy
		}
		if _, err := svc.SetStage(ctx, c, keys[0], id, to, false); err != nil {
			b.Fatal(err)
		}
	}
}
