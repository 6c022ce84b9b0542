package journal

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/psa"
)

// stamped is a generic event about ticket id whose body says the ticket
// was updated at updated (none when zero).
func stamped(partner, delivery, id string, at, updated time.Time) Event {
	data := map[string]any{"id": id}
	if !updated.IsZero() {
		data["updatedAt"] = updated.Format(time.RFC3339Nano)
	}
	body, _ := json.Marshal(map[string]any{"type": "ticket.updated", "data": data})
	return Event{Partner: partner, PSA: "generic", Type: "ticket", SourceType: "ticket", Action: "updated",
		EntityID: id, DeliveryID: delivery, ReceivedAt: at, Payload: body}
}

func entityOf(t *testing.T, j *Journal, partner, typ, id string) EntityRecord {
	t.Helper()
	rec, err := j.Entity(t.Context(), partner, Entity{Type: typ, ID: id})
	if err != nil {
		t.Fatalf("Entity(%s, %s, %s): %v", partner, typ, id, err)
	}
	return rec
}

// seqOf is a record's seqs, for short comparisons: applied, failed,
// pending (0 for none).
func seqOf(rec EntityRecord) []uint64 {
	out := []uint64{0, 0}
	if rec.Applied != nil {
		out[0] = rec.Applied.Seq
	}
	if rec.Failed != nil {
		out[1] = rec.Failed.Seq
	}
	for _, p := range rec.Pending {
		out = append(out, p.Seq)
	}
	return out
}

func applied(pipeline string, at time.Time) Outcome {
	return Outcome{State: StateApplied, Attempts: 1, Pipeline: pipeline, At: at}
}

func deadLettered(pipeline, shadow string, at time.Time) Outcome {
	return Outcome{State: StateDeadLettered, Attempts: 8, Pipeline: pipeline, Shadow: shadow, Error: "503", At: at}
}

func TestEntityIndexKeepsTheLatestAppliedAndTheFailureAfterIt(t *testing.T) {
	j := open(t, tempPath(t), Options{UpdatedAt: psa.UpdatedAt})
	at := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	res := appendOK(t, j,
		stamped("acme", "d1", "1", at(0), at(0).Add(-time.Second)),
		stamped("acme", "d2", "1", at(1), at(1).Add(-time.Second)),
		stamped("acme", "d3", "1", at(2), time.Time{}),
		stamped("acme", "d4", "1", at(3), at(3)),
		stamped("globex", "d5", "1", at(4), at(4)),
	)
	s := func(i int) uint64 { return res[i].Seq }
	// The stamp is read at Append, into the journaled event only.
	if got := mustGet(t, j, s(0)).EntityUpdatedAt; !got.Equal(at(0).Add(-time.Second)) {
		t.Errorf("EntityUpdatedAt = %v, want %v", got, at(0).Add(-time.Second))
	}
	if got := mustGet(t, j, s(2)).EntityUpdatedAt; !got.IsZero() {
		t.Errorf("EntityUpdatedAt of an unstamped body = %v, want none", got)
	}

	if got := seqOf(entityOf(t, j, "acme", "ticket", "1")); !cmp.Equal(got, []uint64{0, 0, s(0), s(1), s(2), s(3)}) {
		t.Errorf("before any outcome: applied, failed, pending = %v, want none, none and all four", got)
	}

	// Outcomes out of order: the later event's application stands.
	complete(t, j, s(1), applied("legacy", at(10)))
	complete(t, j, s(0), applied("legacy", at(11)))
	rec := entityOf(t, j, "acme", "ticket", "1")
	want := &Seen{Seq: s(1), ID: res[1].ID, Action: "updated", State: StateApplied, Pipeline: "legacy",
		ReceivedAt: at(1), DoneAt: at(10), UpdatedAt: at(1).Add(-time.Second)}
	if diff := cmp.Diff(want, rec.Applied); diff != "" {
		t.Errorf("Applied (-want +got):\n%s", diff)
	}

	// A failure after it is kept beside it, with the shadow that ran.
	complete(t, j, s(2), deadLettered("new", "legacy", at(12)))
	rec = entityOf(t, j, "acme", "ticket", "1")
	if got := seqOf(rec); !cmp.Equal(got, []uint64{s(1), s(2), s(3)}) {
		t.Errorf("after a dead letter: %v, want applied %d, failed %d, pending %d", got, s(1), s(2), s(3))
	}
	if rec.Failed.Shadow != "legacy" || rec.Failed.Pipeline != "new" || !rec.Failed.UpdatedAt.IsZero() {
		t.Errorf("Failed = %+v, want pipeline new, shadow legacy, no stamp", *rec.Failed)
	}

	// A later application clears it; a replay of the older failure then
	// changes nothing.
	complete(t, j, s(3), applied("new", at(13)))
	complete(t, j, s(2), Outcome{Replay: &Replay{Job: "rpl_1", Pipeline: "legacy", At: at(14), OK: true}})
	if got := seqOf(entityOf(t, j, "acme", "ticket", "1")); !cmp.Equal(got, []uint64{s(3), 0}) {
		t.Errorf("after a later application: %v, want applied %d only", got, s(3))
	}
	// Partners are kept apart.
	if got := seqOf(entityOf(t, j, "globex", "ticket", "1")); !cmp.Equal(got, []uint64{0, 0, s(4)}) {
		t.Errorf("globex's ticket 1: %v, want only its pending %d", got, s(4))
	}
}

func TestEntityIndexReplays(t *testing.T) {
	j := open(t, tempPath(t), Options{UpdatedAt: psa.UpdatedAt})
	evs := []Event{stamped("acme", "d1", "7", t0, t0), stamped("acme", "d2", "8", t0, t0)}
	res := appendOK(t, j, evs...)
	if !evs[0].EntityUpdatedAt.IsZero() {
		t.Errorf("Append changed its caller's event: EntityUpdatedAt = %v", evs[0].EntityUpdatedAt)
	}
	// A dead letter replayed successfully is applied by the replay's
	// pipeline, then.
	complete(t, j, res[0].Seq, deadLettered("new", "", t0.Add(time.Minute)))
	complete(t, j, res[0].Seq, Outcome{Replay: &Replay{Job: "rpl_1", Pipeline: "legacy", At: t0.Add(time.Hour), OK: false}})
	if got := seqOf(entityOf(t, j, "acme", "ticket", "7")); !cmp.Equal(got, []uint64{0, res[0].Seq}) {
		t.Errorf("after a failed replay: %v, want still failed", got)
	}
	complete(t, j, res[0].Seq, Outcome{Replay: &Replay{Job: "rpl_2", Pipeline: "legacy", At: t0.Add(2 * time.Hour), OK: true}})
	rec := entityOf(t, j, "acme", "ticket", "7")
	if rec.Applied == nil || rec.Failed != nil || rec.Applied.Pipeline != "legacy" || !rec.Applied.DoneAt.Equal(t0.Add(2*time.Hour)) {
		t.Errorf("after a replay: %+v, want applied by legacy at the replay, no failure", rec)
	}
	// The revert's replay of an applied event: legacy applied it last.
	complete(t, j, res[1].Seq, applied("new", t0.Add(time.Minute)))
	complete(t, j, res[1].Seq, Outcome{Replay: &Replay{Job: "rpl_3", Pipeline: "legacy", At: t0.Add(3 * time.Hour), OK: true}})
	if rec := entityOf(t, j, "acme", "ticket", "8"); rec.Applied == nil || rec.Applied.Pipeline != "legacy" {
		t.Errorf("after a revert's replay: %+v, want applied by legacy", rec.Applied)
	}
}

func TestEntityIndexLeavesOutWhatNamesNoEntity(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	unknown := stamped("acme", "d1", "9", t0, t0)
	unknown.Type = "unknown"
	noID := stamped("acme", "d2", "", t0, t0)
	res := appendOK(t, j, unknown, noID)
	for _, r := range res {
		complete(t, j, r.Seq, applied("legacy", t0))
	}
	j.DB().View(func(tx *bbolt.Tx) error {
		if n := tx.Bucket(bucketEntities).Stats().KeyN; n != 0 {
			t.Errorf("the index holds %d entries, want none", n)
		}
		return nil
	})
}

// Sweeping an event keeps its entity's entry: an entity changed now may
// have been applied last before retention's cutoff.
func TestSweepKeepsTheEntityIndex(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	res := appendOK(t, j, stamped("acme", "d1", "1", t0, time.Time{}))
	complete(t, j, res[0].Seq, applied("legacy", t0.Add(time.Second)))
	if n, err := j.Sweep(t.Context(), t0.Add(time.Hour), 100); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if _, err := j.Get(t.Context(), res[0].Seq); err != ErrNotFound {
		t.Fatalf("Get of the swept event: %v, want ErrNotFound", err)
	}
	rec := entityOf(t, j, "acme", "ticket", "1")
	if rec.Applied == nil || rec.Applied.Seq != res[0].Seq || !rec.Applied.DoneAt.Equal(t0.Add(time.Second)) {
		t.Errorf("after the sweep: %+v, want the swept event still the latest applied", rec.Applied)
	}
}

func TestEntitiesLooksUpManyInChunks(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	// Tickets on either side of each chunk's bounds, and a few others.
	ids := []int{0, 1, 2, entityLookupChunk - 1, entityLookupChunk, entityLookupChunk + 1, 2*entityLookupChunk - 1, 2 * entityLookupChunk, 2*entityLookupChunk + 1}
	var evs []Event
	for _, id := range ids {
		evs = append(evs, stamped("acme", "d"+strconv.Itoa(id), strconv.Itoa(id), t0, time.Time{}))
	}
	res := appendOK(t, j, evs...)
	seqOfID := map[int]uint64{}
	for i, r := range res {
		seqOfID[ids[i]] = r.Seq
		if i%2 == 0 {
			complete(t, j, r.Seq, applied("legacy", t0))
		}
	}
	var ask []Entity
	for i := range 2*entityLookupChunk + 10 {
		ask = append(ask, Entity{Type: "ticket", ID: strconv.Itoa(i)})
	}
	recs, err := j.Entities(t.Context(), "acme", ask)
	if err != nil {
		t.Fatal(err)
	}
	for id, rec := range recs {
		i := slices.Index(ids, id)
		switch {
		case i < 0:
			if rec.Applied != nil || rec.Pending != nil {
				t.Fatalf("ticket %d, never received: %+v", id, rec)
			}
		case i%2 == 0:
			if rec.Applied == nil || rec.Applied.Seq != seqOfID[id] || rec.Pending != nil {
				t.Fatalf("ticket %d: %+v, want applied %d", id, rec, seqOfID[id])
			}
		default:
			if rec.Applied != nil || len(rec.Pending) != 1 || rec.Pending[0].Seq != seqOfID[id] {
				t.Fatalf("ticket %d: %+v, want pending %d", id, rec, seqOfID[id])
			}
		}
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := j.Entities(ctx, "acme", ask); err != context.Canceled {
		t.Errorf("Entities with an ended context: %v, want context.Canceled", err)
	}
}

func TestEntityEntryRoundTripsAndRefusesDamage(t *testing.T) {
	rec := EntityRecord{
		Applied: &Seen{Seq: 7, ID: "evt_1", Action: "updated", State: StateApplied, Pipeline: "legacy",
			ReceivedAt: t0, DoneAt: t0.Add(time.Second), UpdatedAt: time.Unix(0, 0).UTC()},
		Failed: &Seen{Seq: 9, ID: "evt_2", Action: "deleted", State: StateDeadLettered, Pipeline: "new", Shadow: "legacy",
			ReceivedAt: t0.Add(time.Minute), DoneAt: t0.Add(time.Hour)},
	}
	b := encodeEntry(rec)
	got, err := decodeEntry(b)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(rec, got); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
	for n := range len(b) {
		if _, err := decodeEntry(b[:n]); err == nil {
			t.Errorf("decodeEntry of the first %d of %d bytes succeeded", n, len(b))
		}
	}
	if _, err := decodeEntry(append(b, 0)); err == nil {
		t.Error("decodeEntry with a trailing byte succeeded")
	}
}

// A journal written by the release before the entity index (schema 1,
// testdata/schema1.db) opens, is upgraded, and its index holds what
// recording those outcomes now would have.
func TestUpgradeFromSchema1BuildsTheEntityIndex(t *testing.T) {
	old, err := os.ReadFile("testdata/schema1.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "journal.db")
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	j := open(t, path, Options{UpdatedAt: psa.UpdatedAt})
	j.DB().View(func(tx *bbolt.Tx) error {
		if got, want := string(tx.Bucket(bucketMeta).Get(keySchema)), strconv.Itoa(SchemaVersion); got != want {
			t.Errorf("schema after the upgrade = %q, want %q", got, want)
		}
		return nil
	})
	if s := stats(t, j); s.Events != 10 || s.Pending != 1 {
		t.Errorf("Stats = %d events, %d pending; want 10 and 1", s.Events, s.Pending)
	}
	at := func(s string) time.Time {
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	m := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	type short struct {
		Seq              uint64
		Pipeline, Shadow string
		DoneAt, Updated  time.Time
	}
	shorten := func(s *Seen) *short {
		if s == nil {
			return nil
		}
		return &short{s.Seq, s.Pipeline, s.Shadow, s.DoneAt, s.UpdatedAt}
	}
	for _, tc := range []struct {
		partner string
		e       Entity
		applied *short
		failed  *short
		pending []uint64
	}{
		{"acme", Entity{"ticket", "1"}, &short{2, "legacy", "", m(10).Add(time.Second), at("2026-03-02T09:09:59Z")}, nil, nil},
		{"acme", Entity{"ticket", "2"}, &short{3, "legacy", "", m(11).Add(time.Second), at("2026-03-02T09:10:30Z")},
			&short{4, "legacy", "", m(13), at("2026-03-02T09:11:30Z")}, nil},
		{"acme", Entity{"ticket", "3"}, nil, nil, []uint64{5}},
		{"acme", Entity{"ticket", "4"}, &short{6, "legacy", "", m(30), m(14)}, nil, nil}, // stamped by its timestamp
		{"acme", Entity{"contact", "1"}, &short{7, "new", "", m(15).Add(time.Second), m(15)}, nil, nil},
		{"acme", Entity{"unknown", "9"}, nil, nil, nil},
		{"globex", Entity{"ticket", "7"}, &short{9, "legacy", "", m(17).Add(time.Second), at("2026-03-02T09:16:40Z")}, nil, nil},
		{"acme", Entity{"ticket", "7"}, nil, nil, nil},
		{"acme", Entity{"ticket", "5"}, nil, &short{10, "legacy", "new", m(19), at("2026-03-02T09:17:00Z")}, nil},
	} {
		rec := entityOf(t, j, tc.partner, tc.e.Type, tc.e.ID)
		var pending []uint64
		for _, p := range rec.Pending {
			pending = append(pending, p.Seq)
		}
		if diff := cmp.Diff(tc.applied, shorten(rec.Applied)); diff != "" {
			t.Errorf("%s %v: Applied (-want +got):\n%s", tc.partner, tc.e, diff)
		}
		if diff := cmp.Diff(tc.failed, shorten(rec.Failed)); diff != "" {
			t.Errorf("%s %v: Failed (-want +got):\n%s", tc.partner, tc.e, diff)
		}
		if diff := cmp.Diff(tc.pending, pending); diff != "" {
			t.Errorf("%s %v: Pending (-want +got):\n%s", tc.partner, tc.e, diff)
		}
	}
	// The upgraded file keeps working: the pending event's outcome is
	// indexed as any other.
	complete(t, j, 5, applied("legacy", m(40)))
	if rec := entityOf(t, j, "acme", "ticket", "3"); rec.Applied == nil || rec.Applied.Seq != 5 {
		t.Errorf("after the pending event's outcome: %+v, want applied 5", rec)
	}
}
