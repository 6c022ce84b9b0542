package journal

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	bbolt "go.etcd.io/bbolt"
)

// jobs lists the jobs of replays, in their order.
func jobs(replays []Replay) []string {
	var out []string
	for _, r := range replays {
		out = append(out, r.Job)
	}
	return out
}

// record returns the event with seq as its record in the events bucket
// holds it.
func record(t *testing.T, j *Journal, seq uint64) Event {
	t.Helper()
	var e Event
	err := j.DB().View(func(tx *bbolt.Tx) error {
		var err error
		e, err = load(tx.Bucket(bucketEvents), seq)
		return err
	})
	if err != nil {
		t.Fatalf("load(%d): %v", seq, err)
	}
	return e
}

func replayKeys(t *testing.T, j *Journal) int {
	t.Helper()
	return keys(j, bucketReplays)
}

func appliedMarks(t *testing.T, j *Journal) int {
	t.Helper()
	return keys(j, bucketApplied)
}

func keys(j *Journal, bucket []byte) int {
	n := 0
	j.DB().View(func(tx *bbolt.Tx) error {
		n = tx.Bucket(bucket).Stats().KeyN
		return nil
	})
	return n
}

// A replay is recorded beside its event, not in its record, which it
// does not rewrite, even to apply a dead letter; no rewrite of the record
// (a comparison, a duplicate delivery, an outcome) copies the replays
// into it. Every read sees them, in the order recorded, and the dead
// letter applied.
func TestReplaysAreRecordedBesideTheEvent(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	appendOK(t, j, event("acme", "dead", t0), event("acme", "applied", t0.Add(time.Second)), event("acme", "pending", t0.Add(2*time.Second)))
	complete(t, j, 1, deadLettered("legacy", "", t0))
	complete(t, j, 2, Outcome{State: StateApplied, Attempts: 1, Pipeline: "legacy", Shadow: "new", At: t0})
	before := record(t, j, 2)

	effects := json.RawMessage(`[{"kind":"ticket","op":"upsert","key":"T-1","fields":{"s":"<b>"}}]`)
	complete(t, j, 1, Outcome{Replay: &Replay{Job: "rpl_1", Pipeline: "legacy", At: t0.Add(time.Minute), Error: "still 503"}})
	complete(t, j, 2, Outcome{Replay: &Replay{Job: "rpl_1", Pipeline: "legacy", At: t0.Add(time.Minute), OK: true, Effects: effects}})
	complete(t, j, 1, Outcome{Replay: &Replay{Job: "rpl_2", Pipeline: "legacy", At: t0.Add(2 * time.Minute), OK: true, Effects: effects}})
	complete(t, j, 3, Outcome{Replay: &Replay{Job: "rpl_2", Pipeline: "legacy", At: t0.Add(2 * time.Minute), OK: true}})

	if got := record(t, j, 2); !reflect.DeepEqual(got, before) {
		t.Errorf("the record of an applied event replayed changed:\n got %+v\nwant %+v", got, before)
	}
	if got := record(t, j, 1); got.State != StateDeadLettered || len(got.Replays) != 0 || got.Effects != nil {
		t.Errorf("the record of a dead letter replayed = %s with replays %v, effects %s; want as it was", got.State, jobs(got.Replays), got.Effects)
	}
	// Rewrites of the records after the replays.
	complete(t, j, 2, Outcome{Comparison: "equal"})
	if res := appendOK(t, j, event("acme", "dead", t0)); !res[0].Duplicate {
		t.Fatalf("the delivery sent again = %+v, want a duplicate", res[0])
	}
	complete(t, j, 3, applied("legacy", t0.Add(3*time.Minute)))
	for seq := uint64(1); seq <= 3; seq++ {
		if got := record(t, j, seq).Replays; len(got) != 0 {
			t.Errorf("event %d: its record holds the replays %v", seq, jobs(got))
		}
	}

	e := mustGet(t, j, 1)
	want := []Replay{
		{Job: "rpl_1", Pipeline: "legacy", At: t0.Add(time.Minute), Error: "still 503"},
		{Job: "rpl_2", Pipeline: "legacy", At: t0.Add(2 * time.Minute), OK: true, Effects: effects},
	}
	// As stored: effects compacted and escaped as json.Marshal does.
	want[1].Effects, _ = compactRaw(json.RawMessage(`[{"kind":"ticket","op":"upsert","key":"T-1","fields":{"s":"\u003cb\u003e"}}]`))
	if diff := cmp.Diff(want, e.Replays); diff != "" {
		t.Errorf("Get(1).Replays (-want +got):\n%s", diff)
	}
	if e.State != StateApplied || e.Pipeline != "legacy" || !e.DoneAt.Equal(want[1].At) || e.Duplicates != 1 || string(e.Effects) != string(want[1].Effects) {
		t.Errorf("Get(1) = %s by %s at %v, %d duplicates, effects %s; want applied by rpl_2's replay at its time, 1 duplicate, its effects",
			e.State, e.Pipeline, e.DoneAt, e.Duplicates, e.Effects)
	}
	if got := mustGet(t, j, 2); got.Comparison != "equal" || !slices.Equal(jobs(got.Replays), []string{"rpl_1"}) {
		t.Errorf("Get(2) = comparison %q, replays %v; want equal, [rpl_1]", got.Comparison, jobs(got.Replays))
	}
	var scanned [][]string
	if err := j.Scan(t.Context(), "acme", Position{At: t0}, t0.Add(time.Hour), func(e Event) bool {
		scanned = append(scanned, jobs(e.Replays))
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if want := [][]string{{"rpl_1", "rpl_2"}, {"rpl_1"}, {"rpl_2"}}; !reflect.DeepEqual(scanned, want) {
		t.Errorf("Scan's replays = %v, want %v", scanned, want)
	}
}

// A dead letter is applied by the first replay that succeeds on it, and
// reads so until an outcome recorded after it, the latest, says else.
func TestADeadLetterIsAppliedByItsFirstSuccessfulReplay(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	appendOK(t, j, event("acme", "a", t0), event("acme", "b", t0.Add(time.Second)))
	ok := func(job, pipeline string, at time.Time) Outcome {
		return Outcome{Replay: &Replay{Job: job, Pipeline: pipeline, At: at, OK: true, Effects: json.RawMessage(`["` + job + `"]`)}}
	}
	complete(t, j, 1, deadLettered("legacy", "", t0))
	complete(t, j, 1, Outcome{Replay: &Replay{Job: "rpl_1", Pipeline: "legacy", At: t0.Add(time.Minute), Error: "503"}})
	complete(t, j, 1, ok("rpl_2", "new", t0.Add(2*time.Minute)))
	complete(t, j, 1, ok("rpl_3", "legacy", t0.Add(3*time.Minute)))
	if e := mustGet(t, j, 1); e.State != StateApplied || e.Pipeline != "new" || string(e.Effects) != `["rpl_2"]` || !e.DoneAt.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("after two successful replays: %s by %s with %s at %v; want applied by rpl_2", e.State, e.Pipeline, e.Effects, e.DoneAt)
	}
	if rec := entityOf(t, j, "acme", "ticket", "T-a"); rec.Applied == nil || rec.Applied.Pipeline != "legacy" || rec.Failed != nil {
		t.Errorf("entity T-a = %+v; want applied, by rpl_3's pipeline last", rec)
	}
	// A replay before the event was dead-lettered applies nothing.
	complete(t, j, 2, ok("rpl_1", "legacy", t0))
	complete(t, j, 2, deadLettered("legacy", "", t0.Add(time.Minute)))
	if e := mustGet(t, j, 2); e.State != StateDeadLettered {
		t.Errorf("event replayed before its dead letter = %s, want dead-lettered", e.State)
	}
	// An outcome recorded after the replay that applied it is the latest.
	complete(t, j, 1, deadLettered("legacy", "", t0.Add(4*time.Minute)))
	if e := mustGet(t, j, 1); e.State != StateDeadLettered || !e.DoneAt.Equal(t0.Add(4*time.Minute)) || len(e.Replays) != 3 {
		t.Errorf("after a later outcome: %s at %v with %d replays; want dead-lettered at its time, 3 replays", e.State, e.DoneAt, len(e.Replays))
	}
	complete(t, j, 1, ok("rpl_4", "legacy", t0.Add(5*time.Minute)))
	if e := mustGet(t, j, 1); e.State != StateApplied || string(e.Effects) != `["rpl_4"]` {
		t.Errorf("replayed again: %s with %s; want applied by rpl_4", e.State, e.Effects)
	}
	var applied []Event
	if err := j.Scan(t.Context(), "acme", Position{At: t0}, t0.Add(time.Hour), func(e Event) bool {
		applied = append(applied, e)
		return true
	}); err != nil {
		t.Fatal(err)
	}
	if len(applied) != 2 || applied[0].State != StateApplied || applied[1].State != StateDeadLettered {
		t.Errorf("Scan = %v; want 1 applied, 2 dead-lettered", seqs(applied))
	}
}

// A replay outcome for an event swept meanwhile is ErrNotFound and stores
// nothing; Sweep deletes an event's replays with it.
func TestSweepDeletesTheReplays(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	cutoff := t0.Add(time.Hour)
	appendOK(t, j, event("acme", "old", t0), event("acme", "young", cutoff.Add(time.Minute)))
	for seq := uint64(1); seq <= 2; seq++ {
		complete(t, j, seq, deadLettered("legacy", "", cutoff))
		for _, job := range []string{"rpl_1", "rpl_2"} {
			complete(t, j, seq, Outcome{Replay: &Replay{Job: job, Pipeline: "legacy", At: cutoff, OK: true, Effects: json.RawMessage(`[]`)}})
		}
	}
	if n, err := j.Sweep(t.Context(), cutoff, 100); err != nil || n != 1 {
		t.Fatalf("Sweep = %d, %v; want 1", n, err)
	}
	if got := replayKeys(t, j); got != 2 {
		t.Errorf("the replays bucket holds %d replays after the sweep, want the young event's 2", got)
	}
	if got := appliedMarks(t, j); got != 1 {
		t.Errorf("the applied bucket holds %d marks after the sweep, want the young event's", got)
	}
	if got := jobs(mustGet(t, j, 2).Replays); !slices.Equal(got, []string{"rpl_1", "rpl_2"}) {
		t.Errorf("the young event's replays = %v, want [rpl_1 rpl_2]", got)
	}
	err := j.Complete(t.Context(), 1, Outcome{Replay: &Replay{Job: "rpl_3", Pipeline: "legacy", At: cutoff, OK: true}})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("a replay of a swept event = %v, want ErrNotFound", err)
	}
	if got := replayKeys(t, j); got != 2 {
		t.Errorf("the replays bucket holds %d replays, want 2: nothing stored for the swept event", got)
	}
}

// A journal written by the release before the replays bucket (schema 2,
// testdata/schema2.db) opens and is upgraded; the replays stored in its
// records stay there and are read first, the ones recorded since after
// them; export and sweep take both.
func TestUpgradeFromSchema2KeepsTheReplaysInTheRecords(t *testing.T) {
	old, err := os.ReadFile("testdata/schema2.db")
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "journal.db")
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	db.View(func(tx *bbolt.Tx) error {
		if got := string(tx.Bucket(bucketMeta).Get(keySchema)); got != "2" {
			t.Errorf("testdata/schema2.db is of schema %q, want 2", got)
		}
		return nil
	})
	db.Close()

	j := open(t, path, Options{})
	j.DB().View(func(tx *bbolt.Tx) error {
		if got, want := string(tx.Bucket(bucketMeta).Get(keySchema)), strconv.Itoa(SchemaVersion); got != want {
			t.Errorf("schema after the upgrade = %q, want %q", got, want)
		}
		return nil
	})
	m := func(n int) time.Time { return t0.Add(time.Duration(n) * time.Minute) }
	eff := func(id string) json.RawMessage {
		return json.RawMessage(`[{"kind":"ticket","op":"upsert","key":"` + id + `","fields":{"status":"open"}}]`)
	}
	e := mustGet(t, j, 1)
	want := []Replay{
		{Job: "rpl_a", Pipeline: "legacy", At: m(20), Error: "pipeline answered 503: still down"},
		{Job: "rpl_b", Pipeline: "legacy", At: m(21), OK: true, Effects: eff("1")},
	}
	if diff := cmp.Diff(want, e.Replays); diff != "" {
		t.Errorf("event 1's replays after the upgrade (-want +got):\n%s", diff)
	}
	if e.State != StateApplied || string(e.Effects) != string(eff("1")) {
		t.Errorf("event 1 = %s with %s, want applied by its replay", e.State, e.Effects)
	}
	if got := jobs(mustGet(t, j, 2).Replays); !slices.Equal(got, []string{"rpl_b"}) {
		t.Errorf("event 2's replays = %v, want [rpl_b]", got)
	}

	// Recorded now: after the record's, which a rewrite keeps.
	complete(t, j, 1, Outcome{Replay: &Replay{Job: "rpl_c", Pipeline: "new", At: m(30), OK: true, Effects: eff("1")}})
	complete(t, j, 5, Outcome{Replay: &Replay{Job: "rpl_c", Pipeline: "new", At: m(31), OK: true, Effects: eff("5")}})
	complete(t, j, 2, Outcome{Comparison: "equal"})
	if got := jobs(mustGet(t, j, 1).Replays); !slices.Equal(got, []string{"rpl_a", "rpl_b", "rpl_c"}) {
		t.Errorf("event 1's replays = %v, want [rpl_a rpl_b rpl_c]", got)
	}
	if got := jobs(mustGet(t, j, 2).Replays); !slices.Equal(got, []string{"rpl_b"}) {
		t.Errorf("event 2's replays after its record was rewritten = %v, want [rpl_b]", got)
	}
	if got := mustGet(t, j, 5); got.State != StateApplied || got.Pipeline != "new" || !slices.Equal(jobs(got.Replays), []string{"rpl_c"}) {
		t.Errorf("event 5 = %s by %s with replays %v; want applied by new, [rpl_c]", got.State, got.Pipeline, jobs(got.Replays))
	}
	if rec := entityOf(t, j, "globex", "ticket", "5"); rec.Applied == nil || rec.Applied.Seq != 5 || rec.Failed != nil {
		t.Errorf("globex ticket 5 = %+v, want applied by its replay", rec)
	}
	closeAndCheck(t, j)

	events, res := exportLines(t, path)
	if res != (Exported{Written: 5}) {
		t.Errorf("Export = %+v, want 5 written", res)
	}
	exported := map[uint64][]string{}
	for _, e := range events {
		exported[e.Seq] = jobs(e.Replays)
		if e.Seq == 5 && (e.State != StateApplied || e.Pipeline != "new" || string(e.Effects) != string(eff("5"))) {
			t.Errorf("exported event 5 = %s by %s with %s; want applied by rpl_c", e.State, e.Pipeline, e.Effects)
		}
	}
	if want := map[uint64][]string{1: {"rpl_a", "rpl_b", "rpl_c"}, 2: {"rpl_b"}, 3: nil, 4: nil, 5: {"rpl_c"}}; !reflect.DeepEqual(exported, want) {
		t.Errorf("exported replays = %v, want %v", exported, want)
	}

	j = open(t, path, Options{})
	if n, err := j.Sweep(t.Context(), m(60), 100); err != nil || n != 4 {
		t.Fatalf("Sweep = %d, %v; want the 4 terminal events", n, err)
	}
	if got, marks := replayKeys(t, j), appliedMarks(t, j); got != 0 || marks != 0 {
		t.Errorf("the replays and applied buckets hold %d and %d keys after the sweep, want none", got, marks)
	}
}

// The replay codec stores what json.Marshal stores and reads what
// json.Unmarshal reads.
func TestReplayCodecMatchesEncodingJSON(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	for name, r := range map[string]Replay{
		"empty":         {},
		"failed":        {Job: "rpl_1", Pipeline: "legacy", At: at, Error: `"effects":0,}`},
		"effects":       {Job: "rpl_1", Pipeline: "new", At: at, OK: true, Effects: json.RawMessage(`[{"kind":"t","fields":{"effects":0,"x":"<&>"}}]`)},
		"empty effects": {Job: `"effects":0`, OK: true, Effects: json.RawMessage(`[]`)},
	} {
		t.Run(name, func(t *testing.T) {
			want, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			in := r
			if in.Effects, err = compactRaw(r.Effects); err != nil {
				t.Fatal(err)
			}
			got, err := encodeReplay(in)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("encodeReplay:\n got %s\nwant %s", got, want)
			}
			var wantR Replay
			if err := json.Unmarshal(want, &wantR); err != nil {
				t.Fatal(err)
			}
			gotR, err := decodeReplay(want)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(gotR, wantR) {
				t.Fatalf("decodeReplay:\n got %+v\nwant %+v", gotR, wantR)
			}
		})
	}
}
