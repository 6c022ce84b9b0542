package journal

import (
	"context"
	"errors"
	"maps"
	"path/filepath"
	"testing"

	bbolt "go.etcd.io/bbolt"
)

func seal(t *testing.T, j *Journal, maxKeys int) (Sealed, bool) {
	t.Helper()
	s, ok, err := j.Seal(t.Context(), maxKeys)
	if err != nil {
		t.Fatalf("Seal: %v", err)
	}
	return s, ok
}

// Counts owed in the journal outlive a restart, are sealed into a report
// that carries the same seq and counts until it is acknowledged, and only
// then make room for the next seq.
func TestTalliesAreOwedUntilAcknowledged(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	j := open(t, path, Options{})
	if _, ok := seal(t, j, 100); ok {
		t.Fatal("Seal of a new journal found something owed")
	}
	res := appendOK(t, j, event("acme", "d1", t0), event("acme", "d2", t0))
	complete(t, j, res[0].Seq, Outcome{Comparison: "equal", Tallies: []Tally{{Key: "equal", N: 1}, {Key: "calls", N: 1}}})
	complete(t, j, res[1].Seq, Outcome{Comparison: "missing", Tallies: []Tally{{Key: "missing", N: 1}, {Key: "calls", N: 1}}})
	if err := j.Tally(ctx, []Tally{{Key: "calls", N: 1}, {Key: "errors", N: 1}}); err != nil {
		t.Fatalf("Tally: %v", err)
	}
	// An outcome that fails for its event still owes what it counted: the
	// comparison was made.
	if err := j.Complete(ctx, 999, Outcome{Comparison: "equal", Tallies: []Tally{{Key: "equal", N: 1}}}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Complete(unknown) = %v, want ErrNotFound", err)
	}
	want := map[string]uint64{"equal": 2, "missing": 1, "calls": 3, "errors": 1}

	first, ok := seal(t, j, 100)
	if !ok || first.Seq != 1 || first.Epoch == "" || !maps.Equal(first.Counts, want) {
		t.Fatalf("Seal = %+v, %v; want an epoch and seq 1 with %v", first, ok, want)
	}
	// Counted after the seal: owed for the next report, not this one.
	if err := j.Tally(ctx, []Tally{{Key: "equal", N: 4}}); err != nil {
		t.Fatal(err)
	}
	closeAndCheck(t, j)

	j = open(t, path, Options{})
	again, ok := seal(t, j, 100)
	if !ok || again.Seq != 1 || again.Epoch != first.Epoch || !maps.Equal(again.Counts, want) {
		t.Fatalf("Seal after a restart = %+v, %v; want %s/1 again with %v", again, ok, first.Epoch, want)
	}
	owed, err := j.Owed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if w := map[string]uint64{"equal": 6, "missing": 1, "calls": 3, "errors": 1}; !maps.Equal(owed, w) {
		t.Errorf("Owed = %v, want %v", owed, w)
	}
	if err := j.Acknowledge(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	next, ok := seal(t, j, 100)
	if w := map[string]uint64{"equal": 4}; !ok || next.Seq != 2 || !maps.Equal(next.Counts, w) {
		t.Fatalf("Seal after the acknowledgement = %+v, %v; want seq 2 with %v", next, ok, w)
	}
	// Sealed by another session: named apart from the reports of the one
	// before, whatever its seq.
	if next.Epoch == first.Epoch {
		t.Errorf("a report sealed after a restart has the epoch %q of the session before", next.Epoch)
	}
	if err := j.Acknowledge(t.Context(), 2); err != nil {
		t.Fatal(err)
	}
	if s, ok := seal(t, j, 100); ok {
		t.Errorf("Seal with nothing owed = %+v, want nothing", s)
	}
}

// A journal restored from a backup seals its new reports with seqs the
// control service has applied already; its new session's epoch keeps them
// apart, so they are not taken for reports sent again.
func TestRestoredJournalNamesItsReportsApart(t *testing.T) {
	ctx := context.Background()
	path := tempPath(t)
	j := open(t, path, Options{})
	backup := filepath.Join(t.TempDir(), "backup.db")
	if err := j.DB().View(func(tx *bbolt.Tx) error { return tx.CopyFile(backup, 0o600) }); err != nil {
		t.Fatal(err)
	}
	if err := j.Tally(ctx, []Tally{{Key: "equal", N: 1}}); err != nil {
		t.Fatal(err)
	}
	applied, _ := seal(t, j, 100) // sent, applied, acknowledged
	if err := j.Acknowledge(t.Context(), applied.Seq); err != nil {
		t.Fatal(err)
	}
	closeAndCheck(t, j)

	restored := open(t, backup, Options{})
	if err := restored.Tally(ctx, []Tally{{Key: "equal", N: 2}}); err != nil {
		t.Fatal(err)
	}
	fresh, ok := seal(t, restored, 100)
	if !ok || fresh.Seq != applied.Seq {
		t.Fatalf("Seal of the restored journal = %+v, %v; want the seq %d again", fresh, ok, applied.Seq)
	}
	if fresh.Epoch == applied.Epoch {
		t.Errorf("the restored journal's report is %s/%d, the id of the report applied before the restore", fresh.Epoch, fresh.Seq)
	}
}

// A report seals at most maxKeys keys; the rest wait for the next one.
func TestSealIsBounded(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	if err := j.Tally(context.Background(), []Tally{{Key: "a", N: 1}, {Key: "b", N: 2}, {Key: "c", N: 3}, {Key: "zero", N: 0}}); err != nil {
		t.Fatal(err)
	}
	total := map[string]uint64{}
	for seq := uint64(1); seq <= 2; seq++ {
		s, ok := seal(t, j, 2)
		if !ok || s.Seq != seq || len(s.Counts) > 2 {
			t.Fatalf("Seal %d = %+v, %v; want seq %d with at most 2 keys", seq, s, ok, seq)
		}
		maps.Copy(total, s.Counts)
		if err := j.Acknowledge(t.Context(), s.Seq); err != nil {
			t.Fatal(err)
		}
	}
	if want := map[string]uint64{"a": 1, "b": 2, "c": 3}; !maps.Equal(total, want) {
		t.Errorf("sealed %v, want %v", total, want)
	}
	if s, ok := seal(t, j, 2); ok {
		t.Errorf("a third report = %+v, want nothing owed", s)
	}
}
