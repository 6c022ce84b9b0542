package journal

// These tests run against real bbolt files in t.TempDir(), checked for
// consistency at cleanup. They live in the package itself for one reason:
// to make the committer's queue observable (its length, a write enqueued
// without waiting), so that ErrBusy, group commit and the drain on Close
// are shown deterministically, without a single timing assertion. Every
// other check goes through the exported API.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
	"go.uber.org/goleak"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// t0 is the time the tests' events are received around.
var t0 = time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)

// open opens the journal at path. At cleanup, if the test left it open, it
// checks the file's consistency and closes it.
func open(t *testing.T, path string, opts Options) *Journal {
	t.Helper()
	j, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() {
		bolttest.Check(t, j.DB())
		if err := j.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return j
}

// closeAndCheck checks the file's consistency, then closes the journal.
func closeAndCheck(t *testing.T, j *Journal) {
	t.Helper()
	bolttest.Check(t, j.DB())
	if err := j.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
}

func tempPath(t *testing.T) string { return filepath.Join(t.TempDir(), "journal.db") }

// event is a webhook event of partner with delivery id, received at at.
func event(partner, delivery string, at time.Time) Event {
	return Event{Partner: partner, PSA: "generic", Type: "ticket", SourceType: "ticket", Action: "updated",
		EntityID: "T-" + delivery, DeliveryID: delivery, ReceivedAt: at,
		Headers: map[string]string{"Webhook-Id": delivery},
		Payload: json.RawMessage(`{"type":"ticket.updated","data":{"id":"T-` + delivery + `"}}`)}
}

func appendOK(t *testing.T, j *Journal, events ...Event) []Appended {
	t.Helper()
	res, err := j.Append(context.Background(), events)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	if len(res) != len(events) {
		t.Fatalf("Append returned %d results for %d events", len(res), len(events))
	}
	return res
}

func complete(t *testing.T, j *Journal, seq uint64, out Outcome) {
	t.Helper()
	if err := j.Complete(context.Background(), seq, out); err != nil {
		t.Fatalf("Complete(%d): %v", seq, err)
	}
}

func mustGet(t *testing.T, j *Journal, seq uint64) Event {
	t.Helper()
	e, err := j.Get(t.Context(), seq)
	if err != nil {
		t.Fatalf("Get(%d): %v", seq, err)
	}
	return e
}

func stats(t *testing.T, j *Journal) Stats {
	t.Helper()
	s, err := j.Stats(t.Context())
	if err != nil {
		t.Fatalf("Stats: %v", err)
	}
	return s
}

func seqs(events []Event) []uint64 {
	out := make([]uint64, len(events))
	for i, e := range events {
		out[i] = e.Seq
	}
	return out
}

// holdWriter starts a bbolt write transaction, which keeps the committer
// from starting its own until release is called: writes queue up behind
// it. release is idempotent and runs at cleanup at the latest.
func holdWriter(t *testing.T, j *Journal) (release func()) {
	t.Helper()
	tx, err := j.DB().Begin(true)
	if err != nil {
		t.Fatalf("begin a write transaction: %v", err)
	}
	var once sync.Once
	release = func() { once.Do(func() { tx.Rollback() }) }
	t.Cleanup(release)
	return release
}

// waitUntil polls cond. It is no timing assertion: the deadline only turns
// a broken invariant into a failure rather than a hung test.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// enqueueAppend queues an append without waiting for it, as Append does
// before it waits.
func enqueueAppend(t *testing.T, j *Journal, events ...Event) *op {
	t.Helper()
	o := &op{events: events, done: make(chan struct{})}
	if err := j.enqueue(o); err != nil {
		t.Fatalf("enqueue: %v", err)
	}
	return o
}

func waitOp(t *testing.T, o *op) {
	t.Helper()
	select {
	case <-o.done:
	case <-time.After(10 * time.Second):
		t.Fatal("a queued write was never committed")
	}
}

func TestAppendAssignsSeqIDAndStateAndIsOnDiskWhenItReturns(t *testing.T) {
	path := tempPath(t)
	j := open(t, path, Options{})
	in := []Event{event("acme", "msg-1", t0), event("acme", "msg-2", t0.Add(time.Second))}
	res := appendOK(t, j, in...)

	for i, a := range res {
		if want := uint64(i + 1); a.Seq != want {
			t.Errorf("result %d: seq = %d, want %d", i, a.Seq, want)
		}
		if !strings.HasPrefix(a.ID, "evt_") || len(a.ID) != len("evt_")+24 {
			t.Errorf("result %d: id = %q, want evt_ and 24 hex digits", i, a.ID)
		}
		if a.Duplicate {
			t.Errorf("result %d: duplicate on first delivery", i)
		}
	}
	if res[0].ID == res[1].ID {
		t.Errorf("both events got id %s", res[0].ID)
	}
	for i, a := range res {
		got := mustGet(t, j, a.Seq)
		want := in[i]
		want.Seq, want.ID, want.State = a.Seq, a.ID, StateJournaled
		if !got.ReceivedAt.Equal(want.ReceivedAt) {
			t.Errorf("event %d: receivedAt = %v, want %v", a.Seq, got.ReceivedAt, want.ReceivedAt)
		}
		got.ReceivedAt = want.ReceivedAt
		gj, _ := json.Marshal(got)
		wj, _ := json.Marshal(want)
		if string(gj) != string(wj) {
			t.Errorf("event %d:\n got %s\nwant %s", a.Seq, gj, wj)
		}
	}

	// The file as it is on disk now, while the journal is still open and
	// before any Close could flush anything, already holds both events.
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	snapshot := filepath.Join(t.TempDir(), "copy.db")
	if err := os.WriteFile(snapshot, data, 0o600); err != nil {
		t.Fatal(err)
	}
	c := open(t, snapshot, Options{})
	for _, a := range res {
		if got := mustGet(t, c, a.Seq); got.ID != a.ID || got.State != StateJournaled {
			t.Errorf("copy of the file taken after Append: event %d = %s %s, want %s journaled", a.Seq, got.ID, got.State, a.ID)
		}
	}

	closeAndCheck(t, j)
	r := open(t, path, Options{})
	for _, a := range res {
		if got := mustGet(t, r, a.Seq); got.ID != a.ID {
			t.Errorf("after reopening: event %d id = %s, want %s", a.Seq, got.ID, a.ID)
		}
	}
	if next := appendOK(t, r, event("acme", "msg-3", t0)); next[0].Seq != 3 {
		t.Errorf("first seq after reopening = %d, want 3", next[0].Seq)
	}
}

func TestAppendRecognizesDuplicateDeliveries(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	first := appendOK(t, j, event("acme", "msg-1", t0))[0]

	tests := []struct {
		name          string
		ev            Event
		wantDuplicate bool
	}{
		{"same partner and delivery id", event("acme", "msg-1", t0.Add(time.Minute)), true},
		{"same again", event("acme", "msg-1", t0.Add(2*time.Minute)), true},
		{"another partner, same delivery id", event("globex", "msg-1", t0), false},
		{"same partner, another delivery id", event("acme", "msg-2", t0), false},
		// A partner id that extends another must not collide in the index.
		{"partner whose id extends the first's", event("acme2", "msg-1", t0), false},
	}
	dups := 0
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := appendOK(t, j, tt.ev)[0]
			if got.Duplicate != tt.wantDuplicate {
				t.Fatalf("duplicate = %v, want %v", got.Duplicate, tt.wantDuplicate)
			}
			if tt.wantDuplicate {
				dups++
				if got.Seq != first.Seq || got.ID != first.ID {
					t.Errorf("duplicate answered seq %d id %s, want the first's: %d %s", got.Seq, got.ID, first.Seq, first.ID)
				}
			} else if got.Seq == first.Seq {
				t.Errorf("a distinct delivery got the first's seq %d", got.Seq)
			}
		})
	}
	orig := mustGet(t, j, first.Seq)
	if orig.Duplicates != dups {
		t.Errorf("first event counts %d duplicates, want %d", orig.Duplicates, dups)
	}
	if !orig.ReceivedAt.Equal(t0) {
		t.Errorf("a duplicate changed the first's receivedAt to %v", orig.ReceivedAt)
	}
	if got, want := stats(t, j).Events, 4; got != want {
		t.Errorf("journal holds %d events, want %d", got, want)
	}

	// Within one delivery, a repeated id is a duplicate of the first one.
	res := appendOK(t, j, event("initech", "msg-9", t0), event("initech", "msg-9", t0))
	if res[0].Duplicate || !res[1].Duplicate || res[1].Seq != res[0].Seq {
		t.Errorf("one delivery carrying msg-9 twice = %+v, want the second a duplicate of the first", res)
	}
}

// Holds tells the deliveries the journal has, by partner and delivery id,
// from those it does not: another partner's delivery with the same id is
// not held.
func TestHolds(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	appendOK(t, j, event("acme", "msg-1", t0))
	got, err := j.Holds(t.Context(), []Event{event("acme", "msg-1", t0), event("acme", "msg-2", t0), event("globex", "msg-1", t0)})
	if err != nil {
		t.Fatal(err)
	}
	if want := []bool{true, false, false}; !slices.Equal(got, want) {
		t.Errorf("holds = %v, want %v", got, want)
	}
}

func TestConcurrentAppendsJournalEachDeliveryOnce(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	const goroutines, perGoroutine, distinct = 64, 40, 300
	type key struct{ partner, delivery string }
	results := make([][]Appended, goroutines)
	keys := make([][]key, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				// Overlapping ids: every key is sent by several goroutines,
				// some of them in the same delivery.
				n := (g*7 + i*13) % distinct
				k := key{[]string{"acme", "globex"}[n%2], "msg-" + strconv.Itoa(n/2)}
				res, err := j.Append(context.Background(), []Event{event(k.partner, k.delivery, t0)})
				if err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				results[g] = append(results[g], res[0])
				keys[g] = append(keys[g], k)
			}
		})
	}
	wg.Wait()

	firsts := map[key]uint64{}
	sent := map[key]int{}
	for g := range goroutines {
		for i, a := range results[g] {
			k := keys[g][i]
			sent[k]++
			if !a.Duplicate {
				if prev, ok := firsts[k]; ok {
					t.Errorf("%v journaled twice: seqs %d and %d", k, prev, a.Seq)
				}
				firsts[k] = a.Seq
			}
		}
	}
	if len(firsts) != len(sent) {
		t.Errorf("%d keys journaled, want %d: every key exactly once", len(firsts), len(sent))
	}
	for g := range goroutines {
		for i, a := range results[g] {
			if k := keys[g][i]; a.Seq != firsts[k] {
				t.Errorf("%v answered seq %d, want the first's %d", k, a.Seq, firsts[k])
			}
		}
	}
	for k, seq := range firsts {
		e := mustGet(t, j, seq)
		if e.Partner != k.partner || e.DeliveryID != k.delivery {
			t.Errorf("seq %d holds %s/%s, want %v", seq, e.Partner, e.DeliveryID, k)
		}
		if e.Duplicates != sent[k]-1 {
			t.Errorf("%v: %d duplicates recorded, want %d", k, e.Duplicates, sent[k]-1)
		}
	}
	if got := stats(t, j).Events; got != len(sent) {
		t.Errorf("journal holds %d events, want %d", got, len(sent))
	}
}

func TestGroupCommit(t *testing.T) {
	t.Run("writes queued during a transaction share the next one", func(t *testing.T) {
		j := open(t, tempPath(t), Options{})
		release := holdWriter(t, j)
		first := enqueueAppend(t, j, event("acme", "msg-0", t0))
		// The committer takes the first write and waits for the held
		// transaction; everything queued now waits for the next one.
		waitUntil(t, "the committer takes the first write", func() bool { return len(j.queue) == 0 })
		var ops []*op
		for i := 1; i < 64; i++ {
			ops = append(ops, enqueueAppend(t, j, event("acme", fmt.Sprintf("msg-%d", i), t0)))
		}
		release()
		waitOp(t, first)
		for _, o := range ops {
			waitOp(t, o)
			if o.err != nil {
				t.Fatalf("queued append: %v", o.err)
			}
		}
		// The committer's fill loop may still have picked a few of them up
		// into the first transaction: two transactions at most.
		if s := stats(t, j); s.Committed != 64 || s.Commits > 2 {
			t.Errorf("commits = %d for %d writes, want at most 2 for 64", s.Commits, s.Committed)
		}
	})

	concurrent := func(t *testing.T, j *Journal) Stats {
		var wg sync.WaitGroup
		for g := range 64 {
			wg.Go(func() {
				for i := range 20 {
					if _, err := j.Append(context.Background(), []Event{event("acme", fmt.Sprintf("msg-%d-%d", g, i), t0)}); err != nil {
						t.Errorf("Append: %v", err)
						return
					}
				}
			})
		}
		wg.Wait()
		return stats(t, j)
	}
	t.Run("64 concurrent appenders", func(t *testing.T) {
		s := concurrent(t, open(t, tempPath(t), Options{}))
		t.Logf("%d writes in %d transactions", s.Committed, s.Commits)
		if s.Committed != 64*20 || s.Commits >= s.Committed {
			t.Errorf("commits = %d for %d writes, want fewer transactions than writes", s.Commits, s.Committed)
		}
	})
	t.Run("MaxBatch 1 gives one transaction per write", func(t *testing.T) {
		s := concurrent(t, open(t, tempPath(t), Options{MaxBatch: 1}))
		if s.Committed != 64*20 || s.Commits != s.Committed {
			t.Errorf("commits = %d for %d writes, want one each", s.Commits, s.Committed)
		}
	})
}

func TestAFailingWriteDoesNotFailTheOthersInItsTransaction(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	release := holdWriter(t, j)
	first := enqueueAppend(t, j, event("acme", "msg-0", t0))
	waitUntil(t, "the committer takes the first write", func() bool { return len(j.queue) == 0 })
	before := enqueueAppend(t, j, event("acme", "msg-1", t0))
	bad := &op{seq: 999, outcome: Outcome{State: StateApplied}, done: make(chan struct{})}
	if err := j.enqueue(bad); err != nil {
		t.Fatal(err)
	}
	after := enqueueAppend(t, j, event("acme", "msg-2", t0))
	release()
	for _, o := range []*op{first, before, bad, after} {
		waitOp(t, o)
	}
	if !errors.Is(bad.err, ErrNotFound) {
		t.Errorf("completing an unknown seq: err = %v, want ErrNotFound", bad.err)
	}
	for _, o := range []*op{first, before, after} {
		if o.err != nil || len(o.result) != 1 {
			t.Fatalf("append in the same batch: result %v, err %v", o.result, o.err)
		}
		if _, err := j.Get(t.Context(), o.result[0].Seq); err != nil {
			t.Errorf("event %d of the batch: %v", o.result[0].Seq, err)
		}
	}
	if got := seqs(mustPending(t, j)); !slices.Equal(got, []uint64{1, 2, 3}) {
		t.Errorf("pending = %v, want [1 2 3]", got)
	}
}

func mustPending(t *testing.T, j *Journal) []Event {
	t.Helper()
	p, err := j.Pending(t.Context())
	if err != nil {
		t.Fatalf("Pending: %v", err)
	}
	return p
}

func TestCompleteRecordsTheOutcome(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	appendOK(t, j, event("acme", "m1", t0), event("acme", "m2", t0), event("acme", "m3", t0), event("acme", "m4", t0))
	done := t0.Add(time.Second)
	effects := json.RawMessage(`[{"kind":"ticket","op":"upsert","key":"T-m2"}]`)

	complete(t, j, 2, Outcome{State: StateApplied, Attempts: 1, Pipeline: "legacy", SnapshotVersion: 7, Effects: effects, At: done})
	complete(t, j, 3, Outcome{State: StateDeadLettered, Attempts: 8, Pipeline: "new", Error: "pipeline answered 500", At: done})
	// A non-terminal outcome is recorded but keeps the event pending.
	complete(t, j, 4, Outcome{State: StateJournaled, Attempts: 2, Pipeline: "legacy", Error: "timed out", At: done})

	if got := seqs(mustPending(t, j)); !slices.Equal(got, []uint64{1, 4}) {
		t.Errorf("pending = %v, want [1 4]", got)
	}
	if got := stats(t, j).Pending; got != 2 {
		t.Errorf("Stats().Pending = %d, want 2", got)
	}
	e := mustGet(t, j, 2)
	if e.State != StateApplied || e.Attempts != 1 || e.Pipeline != "legacy" || e.SnapshotVersion != 7 ||
		string(e.Effects) != string(effects) || !e.DoneAt.Equal(done) || e.LastError != "" {
		t.Errorf("applied event = %+v", e)
	}
	if e := mustGet(t, j, 3); e.State != StateDeadLettered || e.Attempts != 8 || e.LastError != "pipeline answered 500" {
		t.Errorf("dead-lettered event = %+v", e)
	}
	if e := mustGet(t, j, 4); e.State != StateJournaled || e.Attempts != 2 || e.LastError != "timed out" {
		t.Errorf("retried event = %+v", e)
	}
	if err := j.Complete(context.Background(), 99, Outcome{State: StateApplied}); !errors.Is(err, ErrNotFound) {
		t.Errorf("Complete(99) = %v, want ErrNotFound", err)
	}
	if _, err := j.Get(t.Context(), 99); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get(99) = %v, want ErrNotFound", err)
	}
}

// Outcomes queued with CompleteLater are written in the order queued,
// and each caller hears of its own: done is called once, in that order,
// with ErrNotFound for an unknown seq and nil for the others.
func TestCompleteLaterWritesInOrderAndAnswersEach(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	for i := range 40 {
		appendOK(t, j, event("acme", fmt.Sprintf("m%d", i), t0))
	}
	release := holdWriter(t, j)
	var mu sync.Mutex
	var heard []uint64
	errs := map[uint64]error{}
	queue := func(seq uint64) {
		err := j.CompleteLater(t.Context(), seq, Outcome{State: StateApplied, Attempts: 1, Pipeline: "legacy", At: t0}, func(err error) {
			mu.Lock()
			defer mu.Unlock()
			heard = append(heard, seq)
			errs[seq] = err
		})
		if err != nil {
			t.Fatalf("CompleteLater(%d): %v", seq, err)
		}
	}
	var want []uint64
	for seq := uint64(1); seq <= 40; seq++ {
		queue(seq)
		want = append(want, seq)
		if seq == 20 {
			queue(999) // fails its transaction, which is then retried op by op
			want = append(want, 999)
		}
	}
	release()
	waitUntil(t, "every outcome is answered", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return len(heard) == len(want)
	})
	if !slices.Equal(heard, want) {
		t.Errorf("answered in the order %v, want %v", heard, want)
	}
	for seq, err := range errs {
		if wantErr := seq == 999; errors.Is(err, ErrNotFound) != wantErr || (!wantErr && err != nil) {
			t.Errorf("outcome of %d: err = %v", seq, err)
		}
	}
	if p := mustPending(t, j); len(p) != 0 {
		t.Errorf("pending = %v, want none", seqs(p))
	}
	closeAndCheck(t, j)
	called := false
	if err := j.CompleteLater(t.Context(), 1, Outcome{State: StateApplied}, func(error) { called = true }); !errors.Is(err, ErrClosed) || called {
		t.Errorf("CompleteLater after Close = %v (done called: %v), want ErrClosed and no call", err, called)
	}
}

func TestReplayOutcomes(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	appendOK(t, j, event("acme", "dead", t0), event("acme", "applied", t0), event("acme", "pending", t0))
	orig := json.RawMessage(`[{"kind":"ticket","op":"upsert","key":"T-applied"}]`)
	complete(t, j, 1, Outcome{State: StateDeadLettered, Attempts: 8, Pipeline: "legacy", Error: "boom", At: t0})
	complete(t, j, 2, Outcome{State: StateApplied, Attempts: 1, Pipeline: "legacy", Effects: orig, At: t0})

	failed := Replay{Job: "rpl_1", Pipeline: "legacy", At: t0.Add(time.Minute), OK: false, Error: "still 500"}
	fixed := Replay{Job: "rpl_2", Pipeline: "new", At: t0.Add(2 * time.Minute), OK: true,
		Effects: json.RawMessage(`[{"kind":"ticket","op":"upsert","key":"T-dead"}]`)}

	complete(t, j, 1, Outcome{Replay: &failed})
	if e := mustGet(t, j, 1); e.State != StateDeadLettered || len(e.Replays) != 1 || e.Replays[0].Error != "still 500" {
		t.Errorf("after a failed replay: state %s, replays %+v; want dead-lettered with the failure appended", e.State, e.Replays)
	}
	complete(t, j, 1, Outcome{Replay: &fixed})
	e := mustGet(t, j, 1)
	if e.State != StateApplied || e.Pipeline != "new" || string(e.Effects) != string(fixed.Effects) || !e.DoneAt.Equal(fixed.At) {
		t.Errorf("after a successful replay: state %s pipeline %s effects %s doneAt %v; want applied by new with the replay's effects at %v",
			e.State, e.Pipeline, e.Effects, e.DoneAt, fixed.At)
	}
	if len(e.Replays) != 2 || e.Replays[0].Job != "rpl_1" || e.Replays[1].Job != "rpl_2" || !e.Replays[1].OK {
		t.Errorf("replays = %+v, want rpl_1 failed then rpl_2 ok", e.Replays)
	}
	if e.Attempts != 8 {
		t.Errorf("attempts = %d, want the live delivery's 8 kept", e.Attempts)
	}

	// Replaying an applied event records the replay and keeps its outcome.
	complete(t, j, 2, Outcome{Replay: &fixed})
	if e := mustGet(t, j, 2); e.State != StateApplied || e.Pipeline != "legacy" || string(e.Effects) != string(orig) || len(e.Replays) != 1 {
		t.Errorf("replayed applied event = %s by %s with %s and replays %+v; want its own outcome kept and the replay appended",
			e.State, e.Pipeline, e.Effects, e.Replays)
	}
	// A replay's outcome is not a delivery's: a pending event stays pending.
	complete(t, j, 3, Outcome{Replay: &fixed})
	if got := seqs(mustPending(t, j)); !slices.Equal(got, []uint64{3}) {
		t.Errorf("pending = %v, want [3]", got)
	}
}

func TestComparisonOutcomeOnlyRecordsTheClass(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	appendOK(t, j, event("acme", "applied", t0), event("acme", "pending", t0))
	effects := json.RawMessage(`[{"kind":"ticket","op":"upsert","key":"T-applied"}]`)
	complete(t, j, 1, Outcome{State: StateApplied, Attempts: 1, Pipeline: "legacy", Effects: effects, At: t0})

	complete(t, j, 1, Outcome{Comparison: "equal"})
	// A comparison may land before the primary's outcome: it keeps the
	// event pending.
	complete(t, j, 2, Outcome{Comparison: "mismatch"})

	if e := mustGet(t, j, 1); e.Comparison != "equal" || e.State != StateApplied || e.Pipeline != "legacy" || string(e.Effects) != string(effects) {
		t.Errorf("applied event after its comparison = %s %s %s %s, want equal, applied by legacy with its effects", e.Comparison, e.State, e.Pipeline, e.Effects)
	}
	if e := mustGet(t, j, 2); e.Comparison != "mismatch" || e.State != StateJournaled {
		t.Errorf("pending event after its comparison = %s %s, want mismatch, journaled", e.Comparison, e.State)
	}
	if got := seqs(mustPending(t, j)); !slices.Equal(got, []uint64{2}) {
		t.Errorf("pending = %v, want [2]", got)
	}
}

func TestPendingSurvivesReopen(t *testing.T) {
	path := tempPath(t)
	j := open(t, path, Options{})
	for i := range 5 {
		appendOK(t, j, event("acme", fmt.Sprintf("m%d", i), t0.Add(time.Duration(i)*time.Second)))
	}
	complete(t, j, 2, Outcome{State: StateApplied, At: t0})
	complete(t, j, 4, Outcome{State: StateDeadLettered, At: t0})
	closeAndCheck(t, j)

	r := open(t, path, Options{})
	p := mustPending(t, r)
	if got := seqs(p); !slices.Equal(got, []uint64{1, 3, 5}) {
		t.Fatalf("pending after reopening = %v, want [1 3 5], oldest first", got)
	}
	if p[1].DeliveryID != "m2" || p[1].State != StateJournaled {
		t.Errorf("pending event 3 = %s %s, want m2 journaled", p[1].DeliveryID, p[1].State)
	}
}

func TestScan(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	// Received out of seq order, with ties, and interleaved with other
	// partners, one of whose ids extends acme's.
	at := func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	appendOK(t, j, event("acme", "a1", at(5)))     // seq 1
	appendOK(t, j, event("globex", "g1", at(1)))   // seq 2
	appendOK(t, j, event("acme", "a2", at(1)))     // seq 3
	appendOK(t, j, event("acme", "a3", at(3)))     // seq 4
	appendOK(t, j, event("acmecorp", "x1", at(3))) // seq 5
	appendOK(t, j, event("acme", "a4", at(3)))     // seq 6
	appendOK(t, j, event("acme", "a5", at(9)))     // seq 7
	appendOK(t, j, event("acme", "a6", at(0)))     // seq 8

	scan := func(t *testing.T, partner string, start Position, to time.Time, limit int) []Event {
		t.Helper()
		var out []Event
		err := j.Scan(t.Context(), partner, start, to, func(e Event) bool {
			out = append(out, e)
			return len(out) < limit
		})
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		return out
	}
	tests := []struct {
		name    string
		partner string
		start   Position
		to      time.Time
		want    []uint64
	}{
		{"everything, by time then seq", "acme", Position{At: at(0)}, at(100), []uint64{8, 3, 4, 6, 1, 7}},
		{"window [1s, 5s): from included, to excluded", "acme", Position{At: at(1)}, at(5), []uint64{3, 4, 6}},
		{"window ending exactly at an event", "acme", Position{At: at(0)}, at(3), []uint64{8, 3}},
		{"after an event with a tie", "acme", Position{At: at(3), Seq: 4}.After(), at(100), []uint64{6, 1, 7}},
		{"after the last of a tie", "acme", Position{At: at(3), Seq: 6}.After(), at(100), []uint64{1, 7}},
		{"another partner", "globex", Position{At: at(0)}, at(100), []uint64{2}},
		{"partner whose id extends acme's", "acmecorp", Position{At: at(0)}, at(100), []uint64{5}},
		{"unknown partner", "initech", Position{At: at(0)}, at(100), nil},
		{"empty window", "acme", Position{At: at(6)}, at(9), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := seqs(scan(t, tt.partner, tt.start, tt.to, 1<<30)); !slices.Equal(got, tt.want) {
				t.Errorf("seqs = %v, want %v", got, tt.want)
			}
			n, err := j.Count(t.Context(), tt.partner, tt.start, tt.to)
			if err != nil || n != len(tt.want) {
				t.Errorf("Count = %d, %v; want %d, nil", n, err, len(tt.want))
			}
		})
	}

	t.Run("resuming from the position of the last event seen", func(t *testing.T) {
		var got []uint64
		pos := Position{At: at(0)}
		for range 10 {
			page := scan(t, "acme", pos, at(100), 2)
			if len(page) == 0 {
				break
			}
			got = append(got, seqs(page)...)
			last := page[len(page)-1]
			pos = Position{At: last.ReceivedAt, Seq: last.Seq}.After()
		}
		if want := []uint64{8, 3, 4, 6, 1, 7}; !slices.Equal(got, want) {
			t.Errorf("pages of 2 = %v, want %v", got, want)
		}
	})
}

func TestSweep(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	cutoff := t0.Add(time.Hour)
	old, young := t0, cutoff.Add(time.Minute)
	// seqs 1-6 old: 1, 2, 4, 5 terminal, 3 and 6 pending; 7-8 young and terminal.
	for i := 1; i <= 6; i++ {
		appendOK(t, j, event("acme", fmt.Sprintf("old-%d", i), old.Add(time.Duration(i)*time.Second)))
	}
	appendOK(t, j, event("acme", "young-7", young), event("globex", "young-8", young))
	for _, seq := range []uint64{1, 2, 4, 7, 8} {
		complete(t, j, seq, Outcome{State: StateApplied, At: young})
	}
	complete(t, j, 5, Outcome{State: StateDeadLettered, At: young})

	n, err := j.Sweep(t.Context(), cutoff, 2)
	if err != nil {
		t.Fatal(err)
	}
	if n != 2 {
		t.Fatalf("Sweep with limit 2 deleted %d, want 2", n)
	}
	if s := stats(t, j); s.Events != 6 {
		t.Errorf("after sweeping 2: %d events, want 6", s.Events)
	}
	if n, err = j.Sweep(t.Context(), cutoff, 100); err != nil || n != 2 {
		t.Fatalf("second Sweep = %d, %v; want the 2 terminal old events left", n, err)
	}
	if n, err = j.Sweep(t.Context(), cutoff, 100); err != nil || n != 0 {
		t.Fatalf("third Sweep = %d, %v; want nothing left to sweep", n, err)
	}

	for seq := uint64(1); seq <= 8; seq++ {
		_, err := j.Get(t.Context(), seq)
		swept := seq == 1 || seq == 2 || seq == 4 || seq == 5
		if swept != errors.Is(err, ErrNotFound) {
			t.Errorf("event %d: Get = %v; swept should be %v", seq, err, swept)
		}
	}
	if got := seqs(mustPending(t, j)); !slices.Equal(got, []uint64{3, 6}) {
		t.Errorf("pending = %v, want the old pending [3 6] kept", got)
	}
	var scanned []uint64
	if err := j.Scan(t.Context(), "acme", Position{At: old}, young.Add(time.Hour), func(e Event) bool { scanned = append(scanned, e.Seq); return true }); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(scanned, []uint64{3, 6, 7}) {
		t.Errorf("Scan after sweep = %v, want [3 6 7]", scanned)
	}
	// The indexes shrink with the events.
	j.DB().View(func(tx *bbolt.Tx) error {
		for _, b := range [][]byte{bucketPartner, bucketDedup} {
			if got := tx.Bucket(b).Stats().KeyN; got != 4 {
				t.Errorf("bucket %s holds %d keys after the sweep, want 4", b, got)
			}
		}
		return nil
	})

	// A swept delivery id is forgotten: sent again, it is journaled anew.
	// One kept is still recognized.
	res := appendOK(t, j, event("acme", "old-1", young), event("acme", "old-3", young))
	if res[0].Duplicate || res[0].Seq != 9 {
		t.Errorf("swept delivery sent again = %+v, want journaled anew as seq 9", res[0])
	}
	if !res[1].Duplicate || res[1].Seq != 3 {
		t.Errorf("kept delivery sent again = %+v, want a duplicate of seq 3", res[1])
	}
}

func TestFullQueueIsRefusedAtOnce(t *testing.T) {
	j := open(t, tempPath(t), Options{QueueSize: 1, MaxBatch: 1})
	release := holdWriter(t, j)
	held := enqueueAppend(t, j, event("acme", "held", t0))
	waitUntil(t, "the committer takes the first write", func() bool { return len(j.queue) == 0 })
	queued := enqueueAppend(t, j, event("acme", "queued", t0))

	// The queue is full and the committer is busy: refused, not waited for.
	if res, err := j.Append(context.Background(), []Event{event("acme", "refused", t0)}); !errors.Is(err, ErrBusy) || res != nil {
		t.Fatalf("Append on a full queue = %v, %v; want nil, ErrBusy", res, err)
	}
	// An outcome waits for room instead: it must not be lost to a burst.
	completed := make(chan error, 1)
	go func() { completed <- j.Complete(context.Background(), 1, Outcome{State: StateApplied, At: t0}) }()

	release()
	waitOp(t, held)
	waitOp(t, queued)
	if err := <-completed; err != nil {
		t.Errorf("Complete behind a full queue: %v", err)
	}
	if held.err != nil || queued.err != nil {
		t.Fatalf("accepted appends failed: %v, %v", held.err, queued.err)
	}
	if e := mustGet(t, j, 1); e.DeliveryID != "held" || e.State != StateApplied {
		t.Errorf("event 1 = %s %s, want held applied", e.DeliveryID, e.State)
	}
	if e := mustGet(t, j, 2); e.DeliveryID != "queued" {
		t.Errorf("event 2 = %s, want queued", e.DeliveryID)
	}
	if got := stats(t, j).Events; got != 2 {
		t.Errorf("journal holds %d events, want 2: the refused one is not journaled", got)
	}
	// The refused delivery, retried once there is room, is journaled.
	if res := appendOK(t, j, event("acme", "refused", t0)); res[0].Duplicate || res[0].Seq != 3 {
		t.Errorf("retried delivery = %+v, want journaled as seq 3", res[0])
	}
}

func TestTinyQueueUnderLoadEitherJournalsOrRefuses(t *testing.T) {
	path := tempPath(t)
	j := open(t, path, Options{QueueSize: 1})
	var mu sync.Mutex
	accepted := map[string]Appended{}
	busy := 0
	var wg sync.WaitGroup
	for g := range 64 {
		wg.Go(func() {
			for i := range 20 {
				id := fmt.Sprintf("m-%d-%d", g, i)
				res, err := j.Append(context.Background(), []Event{event("acme", id, t0)})
				mu.Lock()
				switch {
				case err == nil:
					accepted[id] = res[0]
				case errors.Is(err, ErrBusy):
					busy++
				default:
					t.Errorf("Append: %v, want success or ErrBusy", err)
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	t.Logf("%d journaled, %d refused with ErrBusy", len(accepted), busy)
	if len(accepted)+busy != 64*20 {
		t.Errorf("%d answers, want %d", len(accepted)+busy, 64*20)
	}
	closeAndCheck(t, j)
	r := open(t, path, Options{})
	for id, a := range accepted {
		if e, err := r.Get(t.Context(), a.Seq); err != nil || e.DeliveryID != id || e.ID != a.ID {
			t.Errorf("accepted %s as %d: after reopening %+v, %v", id, a.Seq, e, err)
		}
	}
	if got := stats(t, r).Events; got != len(accepted) {
		t.Errorf("journal holds %d events, want the %d accepted", got, len(accepted))
	}
}

func TestCloseWritesWhatWasQueuedThenRefuses(t *testing.T) {
	path := tempPath(t)
	j, err := Open(path, Options{})
	if err != nil {
		t.Fatal(err)
	}
	release := holdWriter(t, j)
	first := enqueueAppend(t, j, event("acme", "m0", t0))
	waitUntil(t, "the committer takes the first write", func() bool { return len(j.queue) == 0 })
	var queued []*op
	for i := 1; i <= 10; i++ {
		queued = append(queued, enqueueAppend(t, j, event("acme", fmt.Sprintf("m%d", i), t0)))
	}
	closed := make(chan error, 1)
	go func() { closed <- j.Close() }()
	waitUntil(t, "Close refuses new writes", func() bool {
		j.mu.RLock()
		defer j.mu.RUnlock()
		return j.closed
	})
	if _, err := j.Append(context.Background(), []Event{event("acme", "late", t0)}); !errors.Is(err, ErrClosed) {
		t.Errorf("Append while closing = %v, want ErrClosed", err)
	}
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close: %v", err)
	}
	for _, o := range append(queued, first) {
		waitOp(t, o)
		if o.err != nil {
			t.Errorf("write queued before Close: %v", o.err)
		}
	}
	if _, err := j.Append(context.Background(), []Event{event("acme", "late", t0)}); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v, want ErrClosed", err)
	}
	if err := j.Complete(context.Background(), 1, Outcome{State: StateApplied}); !errors.Is(err, ErrClosed) {
		t.Errorf("Complete after Close = %v, want ErrClosed", err)
	}
	if err := j.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}

	r := open(t, path, Options{})
	if got := stats(t, r).Events; got != 11 {
		t.Errorf("after reopening: %d events, want the 11 queued before Close", got)
	}
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	for _, v := range []string{strconv.Itoa(SchemaVersion + 1), "not-a-number"} {
		t.Run(v, func(t *testing.T) {
			path := tempPath(t)
			db, err := bbolt.Open(path, 0o600, nil)
			if err != nil {
				t.Fatal(err)
			}
			err = db.Update(func(tx *bbolt.Tx) error {
				b, err := tx.CreateBucket(bucketMeta)
				if err != nil {
					return err
				}
				return b.Put(keySchema, []byte(v))
			})
			db.Close()
			if err != nil {
				t.Fatal(err)
			}
			if j, err := Open(path, Options{}); err == nil {
				j.Close()
				t.Fatalf("Open of a schema %q file succeeded, want an error", v)
			} else if !strings.Contains(err.Error(), "schema") {
				t.Errorf("error = %q, want it to name the schema", err)
			}
			// The refusal left the file as it was.
			db, err = bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			db.View(func(tx *bbolt.Tx) error {
				if got := string(tx.Bucket(bucketMeta).Get(keySchema)); got != v {
					t.Errorf("schema = %q after the refusal, want %q", got, v)
				}
				if tx.Bucket(bucketEvents) != nil {
					t.Error("the refusal created the events bucket")
				}
				return nil
			})
		})
	}
}

func TestOpenWritesTheSchemaVersion(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	j.DB().View(func(tx *bbolt.Tx) error {
		if got, want := string(tx.Bucket(bucketMeta).Get(keySchema)), strconv.Itoa(SchemaVersion); got != want {
			t.Errorf("schema = %q, want %q", got, want)
		}
		// Every bucket of the layout exists from Open on, so no read
		// has to allow for a missing one.
		for _, name := range []string{"meta", "events", "replays", "applied", "partner", "dedup", "pending", "compare", "jobs", "owed", "reports", "entities"} {
			if tx.Bucket([]byte(name)) == nil {
				t.Errorf("bucket %q is missing", name)
			}
		}
		return nil
	})
}

func TestSecondOpenIsLocked(t *testing.T) {
	path := tempPath(t)
	open(t, path, Options{})
	j, err := Open(path, Options{LockTimeout: 50 * time.Millisecond})
	if err == nil {
		j.Close()
		t.Fatal("a second Open of a file in use succeeded")
	}
	if !errors.Is(err, ErrLocked) {
		t.Errorf("second Open = %v, want ErrLocked", err)
	}
}

func TestJobs(t *testing.T) {
	path := tempPath(t)
	j := open(t, path, Options{})
	got, err := j.Jobs(t.Context())
	if err != nil || got == nil || len(got) != 0 {
		t.Fatalf("Jobs on a new journal = %v, %v; want an empty map", got, err)
	}
	for _, kv := range [][2]string{{"rpl_1", `{"status":"queued"}`}, {"rpl_2", `{"status":"running"}`}, {"rpl_1", `{"status":"done"}`}} {
		if err := j.PutJob(t.Context(), kv[0], []byte(kv[1])); err != nil {
			t.Fatalf("PutJob(%s): %v", kv[0], err)
		}
	}
	closeAndCheck(t, j)
	r := open(t, path, Options{})
	got, err = r.Jobs(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]string{"rpl_1": `{"status":"done"}`, "rpl_2": `{"status":"running"}`}
	if len(got) != len(want) {
		t.Errorf("Jobs = %d jobs, want %d", len(got), len(want))
	}
	for id, w := range want {
		if string(got[id]) != w {
			t.Errorf("job %s = %s, want %s", id, got[id], w)
		}
	}
}

func TestStats(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	if s := stats(t, j); s.Events != 0 || s.Pending != 0 || !s.Oldest.IsZero() || s.SizeBytes <= 0 {
		t.Errorf("empty journal stats = %+v", s)
	}
	appendOK(t, j, event("acme", "m1", t0), event("acme", "m2", t0.Add(time.Second)))
	complete(t, j, 1, Outcome{State: StateApplied, At: t0})
	appendOK(t, j, event("acme", "m1", t0)) // a duplicate: no event
	s := stats(t, j)
	if s.Events != 2 || s.Pending != 1 || !s.Oldest.Equal(t0) {
		t.Errorf("stats = %+v, want 2 events, 1 pending, oldest %v", s, t0)
	}
	if s.Committed != 3 || s.Commits != 3 {
		t.Errorf("stats = %d writes in %d commits, want 3 in 3", s.Committed, s.Commits)
	}
}

// TestAppendOfNoEventsIsHarmless: a delivery that decodes to no events must
// journal nothing and answer nothing, and above all must not fail the
// other writes that share its transaction.
func TestAppendOfNoEventsIsHarmless(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	for _, events := range [][]Event{{}, nil} {
		res, err := j.Append(context.Background(), events)
		if err != nil || len(res) != 0 {
			t.Errorf("Append(%#v) = %v, %v; want no results and no error", events, res, err)
		}
	}
	if got := stats(t, j); got.Events != 0 {
		t.Errorf("journal holds %d events, want 0", got.Events)
	}
}

// An outcome whose shadow comparison was asked leaves the comparison due,
// durably, until it is recorded; an outcome without a shadow, or a swept
// event, leaves nothing due.
func TestComparisonsDueUntilRecorded(t *testing.T) {
	path := tempPath(t)
	j := open(t, path, Options{})
	ctx := context.Background()
	res := appendOK(t, j, event("acme", "a", t0), event("acme", "b", t0), event("acme", "c", t0))
	applied := Outcome{State: StateApplied, Attempts: 1, Pipeline: "legacy", Effects: json.RawMessage(`[]`), At: t0}
	withShadow := applied
	withShadow.Shadow = "new"
	for _, o := range []struct {
		seq uint64
		out Outcome
	}{{res[0].Seq, withShadow}, {res[1].Seq, withShadow}, {res[2].Seq, applied}} {
		if err := j.Complete(ctx, o.seq, o.out); err != nil {
			t.Fatal(err)
		}
	}
	due := func() []uint64 {
		t.Helper()
		evs, err := j.ComparisonsDue(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		var seqs []uint64
		for _, e := range evs {
			seqs = append(seqs, e.Seq)
		}
		return seqs
	}
	if got, want := due(), []uint64{res[0].Seq, res[1].Seq}; !slices.Equal(got, want) {
		t.Fatalf("due = %v, want %v", got, want)
	}
	if err := j.Complete(ctx, res[0].Seq, Outcome{Comparison: "equal"}); err != nil {
		t.Fatal(err)
	}
	j.Close()
	j = open(t, path, Options{})
	if got, want := due(), []uint64{res[1].Seq}; !slices.Equal(got, want) {
		t.Fatalf("due after recording one and reopening = %v, want %v", got, want)
	}
	if _, err := j.Sweep(t.Context(), t0.Add(time.Hour), 100); err != nil {
		t.Fatal(err)
	}
	if got := due(); len(got) != 0 {
		t.Errorf("due after the sweep = %v, want none", got)
	}
}

// A comparison recorded twice for one event (resumed at a start while the
// live one was being made) is owed once, and the first class stands.
func TestComparisonRecordedTwiceIsOwedOnce(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	ctx := context.Background()
	res := appendOK(t, j, event("acme", "a", t0))
	if err := j.Complete(ctx, res[0].Seq, Outcome{State: StateApplied, Attempts: 1, Pipeline: "legacy", Shadow: "new", At: t0}); err != nil {
		t.Fatal(err)
	}
	for _, class := range []string{"equal", "value_diff"} {
		if err := j.Complete(ctx, res[0].Seq, Outcome{Comparison: class, Tallies: []Tally{{Key: "k", N: 1}}}); err != nil {
			t.Fatal(err)
		}
	}
	owed, err := j.Owed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if owed["k"] != 1 {
		t.Errorf("owed = %v, want k: 1", owed)
	}
	ev, err := j.Get(t.Context(), res[0].Seq)
	if err != nil {
		t.Fatal(err)
	}
	if ev.Comparison != "equal" {
		t.Errorf("comparison = %q, want the first, equal", ev.Comparison)
	}
}

// A comparison decided before its event's outcome is written (shed by a
// router whose shadow work fell behind) is recorded with the outcome, in
// its transaction, with its tallies: it is never due, and a comparison
// recorded later for the event is owed nothing.
func TestComparisonWithTheOutcomeIsNeverDue(t *testing.T) {
	path := tempPath(t)
	j := open(t, path, Options{})
	ctx := context.Background()
	res := appendOK(t, j, event("acme", "a", t0))
	out := Outcome{State: StateApplied, Attempts: 1, Pipeline: "legacy", Effects: json.RawMessage(`[]`), At: t0,
		Shadow: "new", Comparison: "skipped", Tallies: []Tally{{Key: "skipped", N: 1}}}
	if err := j.CompleteLater(ctx, res[0].Seq, out, func(error) {}); err != nil {
		t.Fatal(err)
	}
	if err := j.Complete(ctx, res[0].Seq, Outcome{Comparison: "equal", Tallies: []Tally{{Key: "equal", N: 1}}}); err != nil {
		t.Fatal(err)
	}
	closeAndCheck(t, j)
	j = open(t, path, Options{})
	ev := mustGet(t, j, res[0].Seq)
	if ev.State != StateApplied || ev.Shadow != "new" || ev.Comparison != "skipped" {
		t.Errorf("event = %s, shadow %q, comparison %q; want applied, shadow new, skipped", ev.State, ev.Shadow, ev.Comparison)
	}
	due, err := j.ComparisonsDue(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if len(due) != 0 {
		t.Errorf("%d comparisons due, want none", len(due))
	}
	owed, err := j.Owed(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if want := map[string]uint64{"skipped": 1}; !maps.Equal(owed, want) {
		t.Errorf("owed = %v, want %v", owed, want)
	}
}

func TestACancelledCallerGetsItsErrorAndChangesNothing(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	appendOK(t, j, event("acme", "d-1", t0), event("acme", "d-2", t0.Add(time.Second)))
	complete(t, j, 1, Outcome{State: StateApplied, At: t0})
	if err := j.PutJob(t.Context(), "rpl_1", []byte(`{"id":"rpl_1"}`)); err != nil {
		t.Fatal(err)
	}
	if err := j.Tally(t.Context(), []Tally{{Key: "equal", N: 3}}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	cancel()

	// bbolt takes no context: each read and write looks at ctx itself.
	for _, tt := range []struct {
		name string
		call func() error
	}{
		{"Get", func() error { _, err := j.Get(ctx, 1); return err }},
		{"Pending", func() error { _, err := j.Pending(ctx); return err }},
		{"ComparisonsDue", func() error { _, err := j.ComparisonsDue(ctx); return err }},
		{"Scan", func() error {
			return j.Scan(ctx, "acme", Position{}, t0.Add(time.Hour), func(Event) bool { return true })
		}},
		{"Stats", func() error { _, err := j.Stats(ctx); return err }},
		{"Sweep", func() error { _, err := j.Sweep(ctx, t0.Add(time.Hour), 100); return err }},
		{"PutJob", func() error { return j.PutJob(ctx, "rpl_2", []byte(`{}`)) }},
		{"Jobs", func() error { _, err := j.Jobs(ctx); return err }},
		{"Seal", func() error { _, _, err := j.Seal(ctx, 10); return err }},
		{"Acknowledge", func() error { return j.Acknowledge(ctx, 1) }},
		{"Owed", func() error { _, err := j.Owed(ctx); return err }},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.call(); !errors.Is(err, context.Canceled) {
				t.Errorf("%s with a cancelled context = %v, want context.Canceled", tt.name, err)
			}
		})
	}

	if s := stats(t, j); s.Events != 2 || s.Pending != 1 {
		t.Errorf("after the cancelled calls: %d events, %d pending; want 2 and 1 (nothing swept)", s.Events, s.Pending)
	}
	jobs, err := j.Jobs(t.Context())
	if err != nil || len(jobs) != 1 {
		t.Errorf("jobs after the cancelled PutJob = %d, %v; want only rpl_1", len(jobs), err)
	}
	owed, err := j.Owed(t.Context())
	if err != nil || owed["equal"] != 3 {
		t.Errorf("owed after the cancelled Seal = %v, %v; want equal: 3", owed, err)
	}
}

func TestScanStopsBetweenEventsWhenItsCallerGivesUp(t *testing.T) {
	j := open(t, tempPath(t), Options{})
	for i := range 5 {
		appendOK(t, j, event("acme", fmt.Sprintf("d-%d", i), t0.Add(time.Duration(i)*time.Second)))
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	seen := 0
	err := j.Scan(ctx, "acme", Position{}, t0.Add(time.Hour), func(Event) bool {
		seen++
		cancel() // the caller gives up after its first event
		return true
	})
	if !errors.Is(err, context.Canceled) || seen != 1 {
		t.Errorf("Scan cancelled in its first event = %v after %d events; want context.Canceled after 1", err, seen)
	}
}
