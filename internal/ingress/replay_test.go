package ingress_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"slices"
	"sync"
	"testing"
	"time"

	"go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// callLog passes a pipeline's calls on to next and records, per entity,
// the event ids it was called with, in the order called. It fails the test
// if two calls for one entity overlap. Until together calls are in flight
// at once, every call waits (up to 10 s, a liveness bound): a replay
// that sends one event at a time fails there.
type callLog struct {
	t        testing.TB
	next     http.Handler
	together int
	met      chan struct{} // closed once together calls were in flight at once
	wasMet   bool          // guarded by mu

	mu       sync.Mutex
	inFlight map[string]bool
	current  int
	phase    int
	calls    []map[string][]string // per phase: entity → event ids
}

func newCallLog(t testing.TB, next http.Handler, together int) *callLog {
	return &callLog{t: t, next: next, together: together, met: make(chan struct{}),
		inFlight: map[string]bool{}, calls: []map[string][]string{{}}}
}

// nextPhase records the calls from now on apart, and returns the phase's
// calls so far.
func (l *callLog) nextPhase() map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.phase++
	l.calls = append(l.calls, map[string][]string{})
	return l.calls[l.phase-1]
}

func (l *callLog) phaseCalls(p int) map[string][]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.calls[p]
}

func (l *callLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	var ev struct {
		ID       string `json:"id"`
		Partner  string `json:"partner"`
		EntityID string `json:"entityId"`
	}
	json.Unmarshal(body, &ev)
	entity := ev.Partner + "/" + ev.EntityID
	if r.Context().Err() != nil {
		return // the sender gave up on it (a router stopping): not a send
	}
	l.mu.Lock()
	if l.inFlight[entity] {
		l.t.Errorf("two events of entity %s sent at once (%s among them)", entity, ev.ID)
	}
	l.inFlight[entity] = true
	l.calls[l.phase][entity] = append(l.calls[l.phase][entity], ev.ID)
	if l.current++; l.current == l.together && !l.wasMet {
		l.wasMet = true
		close(l.met)
	}
	l.mu.Unlock()
	select {
	case <-l.met:
	case <-r.Context().Done():
	case <-time.After(10 * time.Second):
		l.t.Errorf("fewer than %d events were sent at once", l.together)
	}
	r.Body = io.NopCloser(bytes.NewReader(body))
	l.next.ServeHTTP(w, r)
	l.mu.Lock()
	delete(l.inFlight, entity)
	l.current--
	l.mu.Unlock()
}

// windowEvents returns the window's events per entity ("partner/id"), in
// the order received, read from the journal file at path.
func windowEvents(t testing.TB, j *journal.Journal, partners []string, from, to time.Time) map[string][]journal.Event {
	t.Helper()
	out := map[string][]journal.Event{}
	for _, p := range partners {
		err := j.Scan(context.Background(), p, journal.Position{At: from}, to, func(ev journal.Event) bool {
			out[p+"/"+ev.EntityID] = append(out[p+"/"+ev.EntityID], ev)
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func ids(evs []journal.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.ID
	}
	return out
}

// replayedOnce checks that each event carries exactly one of job's
// outcomes, a success.
func replayedOnce(t testing.TB, byEntity map[string][]journal.Event, job string) {
	t.Helper()
	for entity, evs := range byEntity {
		for _, ev := range evs {
			n := 0
			for _, r := range ev.Replays {
				if r.Job == job {
					n++
					if !r.OK {
						t.Errorf("%s: event %s replay failed: %s", entity, ev.ID, r.Error)
					}
				}
			}
			if n != 1 {
				t.Errorf("%s: event %s carries %d outcomes of the job, want 1", entity, ev.ID, n)
			}
		}
	}
}

func waitReplay(t testing.TB, rt interface {
	Replay(string) (domain.ReplayJob, error)
}, id string, done func(domain.ReplayJob) bool) domain.ReplayJob {
	t.Helper()
	var j domain.ReplayJob
	deadline := time.Now().Add(30 * time.Second)
	for {
		// A restarted router knows its jobs once its runner has read them.
		var err error
		if j, err = rt.Replay(id); err == nil && done(j) {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for replay %s: %+v (%v)", id, j, err)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func replayDone(j domain.ReplayJob) bool {
	return j.Status == domain.ReplayDone || j.Status == domain.ReplayFailedS
}

// A replay sends several entities' events at once, and each entity's in
// the order received, one at a time, through a pipeline that answers
// after a random delay of up to 2 ms: two partners, 40 entities each,
// their events interleaved.
func TestReplaySendsEntitiesAtOnceEachInOrder(t *testing.T) {
	const workers = 8
	e := newEnv(t, withWorkers(workers), withFaults(refpipe.Faults{LatencyMax: 2 * time.Millisecond}, refpipe.Faults{}))
	e.stop()
	partners := []string{"acme", "globex"}
	from, to := time.Now().UTC().Add(-time.Hour), time.Time{}
	for _, p := range partners {
		to = fillReplayWindow(t, e.journalPath, p, from, 600, 40)
	}
	e.start(t)
	log := newCallLog(t, e.legacy, workers)
	e.legacyAt.set(log)
	job, err := e.router.StartReplay(context.Background(), domain.ReplayRequest{Migration: "psa-webhooks-v2", Partners: partners,
		From: from, To: to, Pipeline: "legacy", Filter: domain.ReplayAll, Rate: 100_000})
	if err != nil {
		t.Fatal(err)
	}
	got := waitReplay(t, e.router, job.ID, replayDone)
	if got.Status != domain.ReplayDone || got.Total != 1200 || got.Done != 1200 || got.Failed != 0 {
		t.Errorf("replay = %s, %d of %d done, %d failed; want done, 1200 of 1200, none failed", got.Status, got.Done, got.Total, got.Failed)
	}
	want := windowEvents(t, e.journal, partners, from, to)
	if len(want) != 80 {
		t.Fatalf("the window holds %d entities, want 80", len(want))
	}
	calls := log.phaseCalls(0)
	for entity, evs := range want {
		if !slices.Equal(calls[entity], ids(evs)) {
			t.Errorf("%s: sent %v, want %v", entity, calls[entity], ids(evs))
		}
	}
	replayedOnce(t, want, job.ID)
}

// A router that dies during a replay resumes it from what its journal
// holds: the job's saved cursor, and its outcomes recorded past it. The
// crash is a consistent copy of the journal file taken while the replay
// runs (what the disk holds when the process dies: committed transactions
// only). Restarted on it, the router sends exactly the events whose
// outcome the copy lacks, each entity's in order, and counts the job
// exactly; a router stopped on purpose does the same.
func TestReplayResumesFromRecordedOutcomes(t *testing.T) {
	for _, crash := range []bool{true, false} {
		name := "stopped"
		if crash {
			name = "crashed"
		}
		t.Run(name, func(t *testing.T) {
			const workers = 8
			e := newEnv(t, withWorkers(workers), withFaults(refpipe.Faults{LatencyMax: 2 * time.Millisecond}, refpipe.Faults{}))
			e.stop()
			partners := []string{"acme", "globex"}
			from, to := time.Now().UTC().Add(-time.Hour), time.Time{}
			for _, p := range partners {
				to = fillReplayWindow(t, e.journalPath, p, from, 600, 30)
			}
			e.start(t)
			log := newCallLog(t, e.legacy, workers)
			e.legacyAt.set(log)
			// Slow enough that the job saves its progress before the
			// copy is taken, most of the time; right either way.
			job, err := e.router.StartReplay(context.Background(), domain.ReplayRequest{Migration: "psa-webhooks-v2", Partners: partners,
				From: from, To: to, Pipeline: "legacy", Filter: domain.ReplayAll, Rate: 500})
			if err != nil {
				t.Fatal(err)
			}
			waitReplay(t, e.router, job.ID, func(j domain.ReplayJob) bool { return j.Done >= 700 })
			image := e.journalPath + ".image"
			if crash {
				err := e.journal.DB().View(func(tx *bbolt.Tx) error { return tx.CopyFile(image, 0o600) })
				if err != nil {
					t.Fatal(err)
				}
			}
			e.stop()
			before := log.nextPhase()
			if crash {
				if err := os.Rename(image, e.journalPath); err != nil {
					t.Fatal(err)
				}
			}
			// What the disk holds: the events to send again are those
			// without the job's outcome.
			j, err := journal.Open(e.journalPath, journal.Options{})
			if err != nil {
				t.Fatal(err)
			}
			held := windowEvents(t, j, partners, from, to)
			stored, err := j.Jobs(context.Background())
			j.Close()
			if err != nil {
				t.Fatal(err)
			}
			// The saved cursor is only past events whose outcome is on
			// disk, and the saved count is theirs.
			var saved domain.ReplayJob
			if err := json.Unmarshal(stored[job.ID], &saved); err != nil {
				t.Fatal(err)
			}
			upTo := 0
			for entity, evs := range held {
				for _, ev := range evs {
					c, ok := saved.Cursor[ev.Partner]
					if !ok || ev.ReceivedAt.After(c.At) || ev.ReceivedAt.Equal(c.At) && ev.Seq > c.Seq {
						continue
					}
					upTo++
					if !slices.ContainsFunc(ev.Replays, func(r journal.Replay) bool { return r.Job == job.ID }) {
						t.Errorf("%s: the saved cursor %+v is past event %s (seq %d), whose outcome is not on disk", entity, c, ev.ID, ev.Seq)
					}
				}
			}
			if saved.Done != upTo {
				t.Errorf("the saved job counts %d done, want the %d events up to its cursor", saved.Done, upTo)
			}
			e.start(t)
			e.legacyAt.set(log)
			got := waitReplay(t, e.router, job.ID, replayDone)
			if got.Status != domain.ReplayDone || got.Total != 1200 || got.Done != 1200 || got.Failed != 0 {
				t.Errorf("resumed replay = %s, %d of %d done, %d failed; want done, 1200 of 1200, none failed", got.Status, got.Done, got.Total, got.Failed)
			}
			after := log.phaseCalls(1)
			resent := 0
			for entity, evs := range held {
				var unrecorded []journal.Event
				for i, ev := range evs {
					if slices.ContainsFunc(ev.Replays, func(r journal.Replay) bool { return r.Job == job.ID }) {
						if len(unrecorded) > 0 {
							t.Errorf("%s: event %s's outcome is on disk, and not that of %s before it", entity, ev.ID, unrecorded[0].ID)
						}
						continue
					}
					unrecorded = append(unrecorded, evs[i])
				}
				sent := after[entity]
				// A call the stop cut short may reach the pipeline's
				// handler after the restart, just before the same event
				// sent again: the event the entity had in flight.
				if len(sent) > 1 && len(sent) == len(unrecorded)+1 && sent[0] == sent[1] && !slices.Contains(before[entity], sent[0]) {
					before[entity] = append(before[entity], sent[0])
					sent = sent[1:]
				}
				if !slices.Equal(sent, ids(unrecorded)) {
					t.Errorf("%s: sent after the restart %v, want the events without an outcome, in order: %v", entity, sent, ids(unrecorded))
				}
				if b := before[entity]; !slices.Equal(b, ids(evs)[:min(len(b), len(evs))]) {
					t.Errorf("%s: sent before the restart %v, want a start of %v", entity, b, ids(evs))
				}
				resent += len(unrecorded)
			}
			if resent == 0 || resent == 1200 {
				t.Logf("the restart came with %d of 1,200 events left: the test did not cut the replay in two", resent)
			}
			replayedOnce(t, windowEvents(t, e.journal, partners, from, to), job.ID)
		})
	}
}

// fakeClock is a clock that moves only when the test says: sleepers wake
// once it has passed their time.
type fakeClock struct {
	mu       sync.Mutex
	now      time.Time
	sleepers []sleeper
}

type sleeper struct {
	until time.Time
	wake  chan struct{}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(ctx context.Context, d time.Duration) bool {
	c.mu.Lock()
	s := sleeper{until: c.now.Add(d), wake: make(chan struct{})}
	if !s.until.After(c.now) {
		c.mu.Unlock()
		return ctx.Err() == nil
	}
	c.sleepers = append(c.sleepers, s)
	c.mu.Unlock()
	select {
	case <-s.wake:
		return true
	case <-ctx.Done():
		return false
	}
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	c.sleepers = slices.DeleteFunc(c.sleepers, func(s sleeper) bool {
		if s.until.After(c.now) {
			return false
		}
		close(s.wake)
		return true
	})
}

// A replay sends at most rate events a second, however many go at once:
// by the replay's clock, which only the test moves, no more events have
// reached the pipeline at any moment than rate a second allows since the
// first (one at the start, one more each 1/rate).
func TestReplayKeepsToItsRate(t *testing.T) {
	const rate, events = 20, 100
	e := newEnv(t, withWorkers(8))
	e.stop()
	from := time.Now().UTC().Add(-time.Hour)
	to := fillReplayWindow(t, e.journalPath, "acme", from, events, 50)
	e.start(t)
	clock := &fakeClock{now: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}
	start := clock.Now()
	e.router.SetReplayClock(clock.Now, clock.Sleep)
	var mu sync.Mutex
	sent, worst := 0, 0
	e.legacyAt.set(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		sent++
		allowed := int(clock.Now().Sub(start)*rate/time.Second) + 1
		worst = max(worst, sent-allowed)
		mu.Unlock()
		e.legacy.ServeHTTP(w, r)
	}))
	job, err := e.router.StartReplay(context.Background(), domain.ReplayRequest{Migration: "psa-webhooks-v2", Partners: []string{"acme"},
		From: from, To: to, Pipeline: "legacy", Filter: domain.ReplayAll, Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	waitReplay(t, e.router, job.ID, func(j domain.ReplayJob) bool {
		clock.Advance(10 * time.Millisecond)
		return replayDone(j)
	})
	mu.Lock()
	defer mu.Unlock()
	if sent != events || worst > 0 {
		t.Errorf("the pipeline got %d events, at worst %d more than the rate allowed by then; want %d, none over", sent, worst, events)
	}
	if took := clock.Now().Sub(start); took < (events-1)*time.Second/rate {
		t.Errorf("the replay's clock moved %v, less than %d events at %d/s take", took, events, rate)
	}
}
