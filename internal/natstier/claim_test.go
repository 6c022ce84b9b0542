package natstier_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/natstest"
	"github.com/switchbackhq/switchback/internal/natstier"
)

func openLeased(t *testing.T, urls, name string, lease time.Duration) *natstier.Tier {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tr, err := natstier.Open(ctx, natstier.Options{URLs: urls, Name: name, Replicas: 1, Shards: 4, ClaimLease: lease,
		AckWait: 500 * time.Millisecond, PinnedTTL: 800 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tr.Close() })
	return tr
}

// claimUntil asks tr for job's claim until cond holds or 10 s pass.
func claimUntil(t *testing.T, tr *natstier.Tier, job string, cond func(domain.ReplayClaim) bool) domain.ReplayClaim {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := tr.Claim(context.Background(), job)
		if err != nil {
			t.Fatal(err)
		}
		if cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s's claim is still %+v after 10 s", job, c)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A claim its router stops renewing is taken over once a lease has
// passed, by one of the routers watching it; the router it was taken
// from learns it at its next renewal, and the taker's claim is marked
// done when its job ends, never taken over again.
func TestClaimUnrenewedIsTakenOverByOne(t *testing.T) {
	nc := natstest.Start(t, 1)
	const lease = 300 * time.Millisecond
	a, b, c := openLeased(t, nc.URLs(), "a", lease), openLeased(t, nc.URLs(), "b", lease), openLeased(t, nc.URLs(), "c", lease)
	ctx := context.Background()
	if got, err := a.Claim(ctx, "rpl_1"); err != nil || got.Router != "a" {
		t.Fatalf("the first claim: %+v, %v; want a's", got, err)
	}
	var wg sync.WaitGroup
	taken := make([]domain.ReplayClaim, 2)
	for i, tr := range []*natstier.Tier{b, c} {
		wg.Go(func() {
			taken[i] = claimUntil(t, tr, "rpl_1", func(c domain.ReplayClaim) bool { return c.Router != "a" })
		})
	}
	wg.Wait()
	if taken[0] != taken[1] || taken[0].Takeover != 1 || taken[0].From != "a" || (taken[0].Router != "b" && taken[0].Router != "c") {
		t.Fatalf("b sees %+v and c %+v: want one of them to hold the claim, taken from a once", taken[0], taken[1])
	}
	if got, err := a.Renew(ctx, "rpl_1"); err != nil || got != taken[0] {
		t.Fatalf("a's renewal after the takeover answered %+v, %v; want the taker's claim %+v", got, err, taken[0])
	}
	if err := a.Finished(ctx, "rpl_1"); err != nil {
		t.Fatal(err)
	}
	taker := map[string]*natstier.Tier{"b": b, "c": c}[taken[0].Router]
	if err := taker.Finished(ctx, "rpl_1"); err != nil {
		t.Fatal(err)
	}
	// Watched for three leases by the router it was taken from: a claim
	// marked done stays its runner's.
	start := time.Now()
	for time.Since(start) < 3*lease {
		got, err := a.Claim(ctx, "rpl_1")
		if err != nil || got.Router != taken[0].Router || !got.Done {
			t.Fatalf("a finished claim read %+v, %v; want %s's, done", got, err, taken[0].Router)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A claim its router renews is never taken over, however long others
// watch it; once its router stops, it is.
func TestClaimRenewedIsNotTakenOver(t *testing.T) {
	nc := natstest.Start(t, 1)
	const lease = time.Second
	a, b := openLeased(t, nc.URLs(), "a", lease), openLeased(t, nc.URLs(), "b", lease)
	ctx := context.Background()
	if got, err := a.Claim(ctx, "rpl_1"); err != nil || got.Router != "a" {
		t.Fatalf("the first claim: %+v, %v", got, err)
	}
	renewing, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		for renewing.Err() == nil {
			if got, err := a.Renew(ctx, "rpl_1"); err != nil || got.Router != "a" {
				t.Errorf("a's renewal answered %+v, %v", got, err)
				return
			}
			select {
			case <-time.After(lease / 3):
			case <-renewing.Done():
			}
		}
	})
	start := time.Now()
	for time.Since(start) < 4*lease {
		got, err := b.Claim(ctx, "rpl_1")
		if err != nil || got.Router != "a" {
			stop()
			wg.Wait()
			t.Fatalf("b read a renewed claim as %+v, %v; want a's", got, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	stop()
	wg.Wait()
	if got := claimUntil(t, b, "rpl_1", func(c domain.ReplayClaim) bool { return c.Router != "a" }); got.Router != "b" {
		t.Fatalf("once a stopped renewing, the claim went to %+v; want b's", got)
	}
}

// A claim written by a router from before claims were renewed (its name
// alone) reads as that router's, and is taken over like any.
func TestClaimWrittenAsANameAlone(t *testing.T) {
	nc := natstest.Start(t, 1)
	b := openLeased(t, nc.URLs(), "b", 200*time.Millisecond)
	ctx := context.Background()
	conn, err := nats.Connect(nc.URLs())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	js, err := jetstream.New(conn)
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, natstier.DefaultOutcomes)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Create(ctx, "job.rpl_old", []byte("a")); err != nil {
		t.Fatal(err)
	}
	if got, err := b.Claim(ctx, "rpl_old"); err != nil || got != (domain.ReplayClaim{Router: "a"}) {
		t.Fatalf("an old claim read %+v, %v; want a's", got, err)
	}
	if got := claimUntil(t, b, "rpl_old", func(c domain.ReplayClaim) bool { return c.Router != "a" }); got.Router != "b" || got.From != "a" {
		t.Fatalf("an old claim unrenewed went to %+v; want b's, from a", got)
	}
}
