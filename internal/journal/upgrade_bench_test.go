package journal

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/psa"
)

// BenchmarkOpenUpgradesSchema1 measures the first start of a router on a
// journal of 100,000 applied events written before the entity index: Open
// builds the index from every event in the transaction that upgrades the
// file. A schema 1 file is a schema 2 file without the entities bucket, so
// the benchmark makes one by removing it.
//
//	go test -run '^$' -bench OpenUpgradesSchema1 -benchtime 3x ./internal/journal/
func BenchmarkOpenUpgradesSchema1(b *testing.B) {
	const n = 100_000
	ctx := context.Background()
	path := b.TempDir() + "/schema1.db"
	j, err := Open(path, Options{})
	if err != nil {
		b.Fatal(err)
	}
	var seqs []uint64
	for start := 0; start < n; start += 4096 {
		var batch []Event
		for i := start; i < min(start+4096, n); i++ {
			batch = append(batch, stamped("acme", "d"+strconv.Itoa(i), strconv.Itoa(i%50_000), t0, t0))
		}
		res, err := j.Append(ctx, batch)
		if err != nil {
			b.Fatal(err)
		}
		for _, r := range res {
			seqs = append(seqs, r.Seq)
		}
	}
	var wg sync.WaitGroup
	work := make(chan uint64)
	for range 256 {
		wg.Go(func() {
			for seq := range work {
				if err := j.Complete(ctx, seq, Outcome{State: StateApplied, Pipeline: "legacy", At: t0.Add(time.Second)}); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for _, s := range seqs {
		work <- s
	}
	close(work)
	wg.Wait()
	if err := j.DB().Update(func(tx *bbolt.Tx) error {
		if err := tx.DeleteBucket(bucketEntities); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte("1"))
	}); err != nil {
		b.Fatal(err)
	}
	j.Close()
	old, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		if err := os.WriteFile(path, old, 0o600); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		j, err := Open(path, Options{UpdatedAt: psa.UpdatedAt})
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		rec, err := j.Entity(ctx, "acme", Entity{Type: "ticket", ID: "49999"})
		if err != nil || rec.Applied == nil || rec.Applied.Seq != n {
			b.Fatalf("after the upgrade, ticket 49999: %+v, %v; want applied %d", rec.Applied, err, n)
		}
		j.Close()
		b.StartTimer()
	}
}
