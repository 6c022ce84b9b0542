package etcdstore_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

var setup = control.Change{Actor: "admin", Reason: "test setup"}

// startReplica is one control service on prefix, following the others.
func startReplica(t *testing.T, prefix string) *control.Service {
	t.Helper()
	svc, err := control.New(t.Context(), open(t, prefix), control.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatalf("control.New: %v", err)
	}
	follow(t, svc)
	return svc
}

// follow runs svc.Follow until the test ends.
func follow(t *testing.T, svc *control.Service) {
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { svc.Follow(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
}

// waitVersion waits until svc publishes version v or later.
func waitVersion(t *testing.T, svc *control.Service, v uint64) *control.State {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		st, changed := svc.Changed()
		if st.Version >= v {
			return st
		}
		select {
		case <-changed:
		case <-deadline:
			t.Fatalf("version %d never published; at %d", v, st.Version)
		}
	}
}

func replicaMigration(key string) domain.Migration {
	return domain.Migration{
		Key: key,
		Pipelines: domain.Pipelines{
			Legacy: domain.Pipeline{URL: "http://legacy.internal/apply"},
			New:    domain.Pipeline{URL: "http://new.internal/apply"},
		},
		Gates: domain.DefaultGates(),
		Guard: domain.DefaultGuard(),
	}
}

func putPartner(t *testing.T, svc *control.Service, id string) {
	t.Helper()
	secret := "whsec_" + id
	if _, _, err := svc.PutPartner(t.Context(), setup, control.PartnerInput{ID: id, Name: id, PSA: domain.PSAGeneric, Secret: &secret}); err != nil {
		t.Fatalf("PutPartner(%s): %v", id, err)
	}
}

// verifyChain reads the whole audit log through svc and checks that it is
// one chain.
func verifyChain(t *testing.T, svc *control.Service) []domain.AuditEntry {
	t.Helper()
	var all []domain.AuditEntry
	v := audit.NewVerifier(domain.AuditEntry{})
	for {
		page, err := svc.AuditLog(t.Context(), uint64(len(all)), 1000)
		if err != nil {
			t.Fatal(err)
		}
		if len(page) == 0 {
			break
		}
		if err := v.Check(page); err != nil {
			t.Fatalf("audit chain: %v", err)
		}
		all = append(all, page...)
	}
	return all
}

// A change made through one replica is published by the other at the same
// version, with the same state, so a router may move between them.
func TestReplicasFollowEachOther(t *testing.T) {
	prefix := newPrefix()
	a, b := startReplica(t, prefix), startReplica(t, prefix)
	if _, _, err := a.PutMigration(t.Context(), setup, replicaMigration("m")); err != nil {
		t.Fatal(err)
	}
	putPartner(t, a, "acme")
	stB := waitVersion(t, b, a.State().Version)
	if _, err := stB.Partner("acme"); err != nil {
		t.Errorf("replica B: %v", err)
	}
	if stB.StoreID != a.State().StoreID || stB.Version != a.State().Version {
		t.Errorf("B at %s/%d, A at %s/%d", stB.StoreID, stB.Version, a.State().StoreID, a.State().Version)
	}

	v, err := b.Revert(t.Context(), control.Change{Actor: "ops", Reason: "incident"}, "m")
	if err != nil {
		t.Fatal(err)
	}
	stA := waitVersion(t, a, v)
	if stA.Version != v || !stA.Migrations["m"].Reverted {
		t.Errorf("A at version %d, reverted %v; want %d, true", stA.Version, stA.Migrations["m"].Reverted, v)
	}
	if got, want := stA.Flags().Evaluate("m", "acme"), b.State().Flags().Evaluate("m", "acme"); got != want {
		t.Errorf("A evaluates %+v, B %+v", got, want)
	}
	// A change through A after following B's is decided on B's state.
	if _, err := a.Resume(t.Context(), setup, "m"); err != nil {
		t.Fatalf("resume through A: %v", err)
	}
	if n := len(verifyChain(t, b)); n != 4 {
		t.Errorf("%d audit entries, want 4", n)
	}
}

// Advances, stage moves, reverts and resumes through two replicas at once:
// every call either lands or answers a clean error, the audit log is one
// chain with at most an entry per call that landed (a move to where the
// partner is already changes nothing), and both replicas end at the same
// version with the state a replica started afresh loads.
func TestReplicasConcurrentChanges(t *testing.T) {
	prefix := newPrefix()
	a, b := startReplica(t, prefix), startReplica(t, prefix)
	if _, _, err := a.PutMigration(t.Context(), setup, replicaMigration("m")); err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		putPartner(t, a, fmt.Sprintf("p%d", i))
	}
	waitVersion(t, b, a.State().Version)
	before := len(verifyChain(t, a))

	var mu sync.Mutex
	landed := 0
	var wg sync.WaitGroup
	run := func(svc *control.Service, change func(i int) error) {
		wg.Go(func() {
			for i := range 15 {
				err := change(i)
				switch code := domain.ErrorCode(err); {
				case err == nil:
					mu.Lock()
					landed++
					mu.Unlock()
				case code == domain.CodeConflict || code == domain.CodeInvalidTransition || code == domain.CodeMigrationReverted:
				default:
					t.Errorf("change %d: %v (%s)", i, err, code)
				}
			}
		})
	}
	ops := control.Change{Actor: "ops", Reason: "rollout"}
	run(a, func(i int) error {
		to := domain.StageShadow
		if i%2 == 1 {
			to = domain.StageLegacy
		}
		_, err := a.SetStage(t.Context(), ops, "m", fmt.Sprintf("p%d", i%4), to, true)
		return err
	})
	run(b, func(i int) error {
		var err error
		if i%2 == 0 {
			_, err = b.Revert(t.Context(), ops, "m")
		} else {
			_, err = b.Resume(t.Context(), ops, "m")
		}
		return err
	})
	run(b, func(i int) error {
		_, err := b.SetStage(t.Context(), ops, "m", fmt.Sprintf("p%d", (i+1)%4), domain.StageShadow, true)
		return err
	})
	wg.Wait()

	entries := verifyChain(t, b)
	if got := len(entries) - before; got == 0 || got > landed {
		t.Errorf("%d audit entries for %d calls that landed", got, landed)
	}
	head := entries[len(entries)-1]
	for name, svc := range map[string]*control.Service{"A": a, "B": b} {
		deadline := time.Now().Add(10 * time.Second)
		for svc.AuditHead().Seq != head.Seq && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if h := svc.AuditHead(); h.Seq != head.Seq || h.Hash != head.Hash {
			t.Errorf("replica %s holds audit head %d %s, want %d %s", name, h.Seq, h.Hash, head.Seq, head.Hash)
		}
	}
	fresh := startReplica(t, prefix).State()
	for name, svc := range map[string]*control.Service{"A": a, "B": b} {
		st := svc.State()
		if st.Version != fresh.Version {
			t.Errorf("replica %s at version %d, the store at %d", name, st.Version, fresh.Version)
		}
		for i := range 4 {
			id := fmt.Sprintf("p%d", i)
			if got, want := st.Flags().Evaluate("m", id), fresh.Flags().Evaluate("m", id); got != want {
				t.Errorf("replica %s evaluates %s to %+v, the store to %+v", name, id, got, want)
			}
		}
	}
}

// A revert through one replica racing a forced move to new through the
// other always leaves the migration reverted: the move either landed
// first, or was decided again on the reverted state and refused.
func TestReplicasRevertWins(t *testing.T) {
	prefix := newPrefix()
	a, b := startReplica(t, prefix), startReplica(t, prefix)
	ops := control.Change{Actor: "ops", Reason: "rollout"}
	for round := range 5 {
		key := fmt.Sprintf("m%d", round)
		if _, _, err := a.PutMigration(t.Context(), setup, replicaMigration(key)); err != nil {
			t.Fatal(err)
		}
		putPartner(t, a, fmt.Sprintf("p%d", round))
		waitVersion(t, b, a.State().Version)
		var wg sync.WaitGroup
		var moveErr, revertErr error
		wg.Go(func() {
			for _, to := range []domain.Stage{domain.StageShadow, domain.StageNew} {
				if _, moveErr = a.SetStage(t.Context(), ops, key, fmt.Sprintf("p%d", round), to, true); moveErr != nil {
					return
				}
			}
		})
		wg.Go(func() { _, revertErr = b.Revert(t.Context(), ops, key) })
		wg.Wait()
		if revertErr != nil {
			t.Fatalf("round %d: revert: %v", round, revertErr)
		}
		if moveErr != nil && !errors.Is(moveErr, context.Canceled) && domain.ErrorCode(moveErr) != domain.CodeMigrationReverted && domain.ErrorCode(moveErr) != domain.CodeConflict {
			t.Errorf("round %d: move: %v", round, moveErr)
		}
		for name, svc := range map[string]*control.Service{"A": a, "B": b} {
			st := waitVersion(t, svc, max(a.State().Version, b.State().Version))
			if !st.Migrations[key].Reverted {
				t.Errorf("round %d: replica %s: migration not reverted", round, name)
			}
		}
	}
	verifyChain(t, a)
}
