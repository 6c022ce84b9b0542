package journal

import (
	"context"
	"path/filepath"
	"testing"
)

// Two routers that each journal the same delivery give it the same id, so
// that the pipeline, which deduplicates on the Idempotency-Key, applies it
// once; another partner's delivery of the same key is another event.
func TestEventIDIsTheDeliverysWhicheverRouter(t *testing.T) {
	ids := func(path string, events ...Event) []string {
		j := open(t, path, Options{})
		res, err := j.Append(context.Background(), events)
		if err != nil {
			t.Fatal(err)
		}
		out := make([]string, len(res))
		for i, r := range res {
			out[i] = r.ID
		}
		return out
	}
	dir := t.TempDir()
	a := ids(filepath.Join(dir, "a.db"), event("acme", "whd_01", t0), event("globex", "whd_01", t0))
	b := ids(filepath.Join(dir, "b.db"), event("acme", "whd_01", t0.Add(3)))
	if a[0] != b[0] {
		t.Errorf("the same delivery on two routers: %s and %s, want one id", a[0], b[0])
	}
	if a[0] == a[1] {
		t.Errorf("two partners' deliveries of the same key share id %s", a[0])
	}
	// The derivation is a contract (docs/api.md): pinned.
	if want := "evt_a8a6d9421ffb7027cbdb00af"; a[0] != want {
		t.Errorf("EventID(acme, whd_01) = %s, want %s", a[0], want)
	}
	// An id given (a backfill's) is kept.
	given := event("acme", "whd_02", t0)
	given.ID = "evt_backfill"
	if got := ids(filepath.Join(dir, "c.db"), given); got[0] != "evt_backfill" {
		t.Errorf("a given id became %s", got[0])
	}
}
