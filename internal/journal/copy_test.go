package journal

import (
	"context"
	"errors"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/boltfile"
)

// Imported events keep their outcome: a journal reopened on them holds
// pending only those without one, indexes the applied and dead-lettered
// ones as their outcomes would have, and knows every delivery.
func TestImportWritesOutcomesAndPendingOnlyTheRest(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	j := open(t, path, Options{})

	applied := event("acme", "d-1", t0)
	applied.ID, applied.EntityID = "evt_applied", "T-1"
	applied.State, applied.Pipeline, applied.Attempts, applied.DoneAt = StateApplied, "new", 2, t0.Add(time.Second)
	applied.Shadow = "legacy" // its comparison stays behind
	failed := event("acme", "d-2", t0.Add(time.Second))
	failed.ID, failed.EntityID = "evt_failed", "T-2"
	failed.State, failed.Pipeline, failed.Attempts, failed.LastError, failed.DoneAt = StateDeadLettered, "new", 5, "503", t0.Add(time.Minute)
	later := event("acme", "d-3", t0.Add(2*time.Second))
	later.ID, later.EntityID = "evt_later", "T-1"
	stale := event("globex", "d-1", t0.Add(3*time.Second))
	stale.ID, stale.State, stale.Attempts, stale.Pipeline = "evt_stale", StateJournaled, 3, "new"

	res, err := j.Import(ctx, []Event{applied, failed, later, stale})
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Duplicate || r.Seq != uint64(i+1) {
			t.Fatalf("Import result %d = %+v, want seq %d, not a duplicate", i, r, i+1)
		}
	}
	closeAndCheck(t, j)

	j = open(t, path, Options{})
	pending, err := j.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, e := range pending {
		ids = append(ids, e.ID)
		if e.State != StateJournaled || e.Attempts != 0 || e.Pipeline != "" {
			t.Errorf("pending %s: state %s, attempts %d, pipeline %q: want a fresh journaled event", e.ID, e.State, e.Attempts, e.Pipeline)
		}
	}
	if !slices.Equal(ids, []string{"evt_later", "evt_stale"}) {
		t.Fatalf("Pending = %v, want the two without an outcome", ids)
	}
	got, err := j.Get(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "evt_applied" || got.State != StateApplied || got.Pipeline != "new" || got.Attempts != 2 ||
		!got.DoneAt.Equal(applied.DoneAt) || !got.ReceivedAt.Equal(t0) || string(got.Payload) != string(applied.Payload) || got.Shadow != "" {
		t.Fatalf("the applied event reads %+v", got)
	}
	if due, err := j.ComparisonsDue(ctx); err != nil || len(due) != 0 {
		t.Fatalf("ComparisonsDue = %v, %v: an imported event's comparison is not due", due, err)
	}
	rec, err := j.Entity(ctx, "acme", Entity{Type: "ticket", ID: "T-1"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Applied == nil || rec.Applied.ID != "evt_applied" || rec.Applied.Pipeline != "new" || !rec.Applied.DoneAt.Equal(applied.DoneAt) {
		t.Fatalf("entity T-1: applied %+v, want the imported applied event", rec.Applied)
	}
	if len(rec.Pending) != 1 || rec.Pending[0].ID != "evt_later" {
		t.Fatalf("entity T-1: pending %+v, want evt_later", rec.Pending)
	}
	rec, err = j.Entity(ctx, "acme", Entity{Type: "ticket", ID: "T-2"})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Applied != nil || rec.Failed == nil || rec.Failed.ID != "evt_failed" {
		t.Fatalf("entity T-2: %+v, want the dead-lettered event as its failure", rec)
	}

	// The deliveries are known: a resend, or the same import again, is a
	// duplicate of the imported event.
	dup := appendOK(t, j, event("acme", "d-1", t0.Add(time.Hour)))
	if !dup[0].Duplicate || dup[0].Seq != 1 || dup[0].ID != "evt_applied" {
		t.Fatalf("a resend of an imported delivery: %+v, want a duplicate of seq 1", dup[0])
	}
	again, err := j.Import(ctx, []Event{failed, later})
	if err != nil {
		t.Fatal(err)
	}
	if !again[0].Duplicate || again[0].Seq != 2 || !again[1].Duplicate || again[1].Seq != 3 {
		t.Fatalf("the same import again: %+v, want duplicates of seqs 2 and 3", again)
	}
}

// A Reader reads every event of a file no router holds, in seq order, and
// refuses a file held by a router or damaged before reading anything.
func TestReaderReadsInOrderAndRefusesLockedOrDamagedFiles(t *testing.T) {
	ctx := context.Background()
	path := journalOf(t, 300)

	j := open(t, path, Options{})
	if _, err := OpenReader(path); !errors.Is(err, ErrLocked) {
		t.Fatalf("OpenReader on a journal a router holds = %v, want ErrLocked", err)
	}
	closeAndCheck(t, j)

	r, err := OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	if r.Len() != 300 {
		t.Fatalf("Len = %d, want 300", r.Len())
	}
	var seqs []uint64
	if err := r.Each(ctx, func(e Event) error { seqs = append(seqs, e.Seq); return nil }); err != nil {
		t.Fatal(err)
	}
	r.Close()
	if len(seqs) != 300 || !slices.IsSorted(seqs) || seqs[0] != 1 {
		t.Fatalf("Each read %d events, first %v: want 300 in seq order", len(seqs), seqs[:min(3, len(seqs))])
	}

	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, st.Size()/2); err != nil {
		t.Fatal(err)
	}
	if _, err := OpenReader(path); !errors.Is(err, boltfile.ErrDamaged) {
		t.Fatalf("OpenReader on a truncated journal = %v, want ErrDamaged", err)
	}
}
