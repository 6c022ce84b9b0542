package ingress

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
)

// The saved cursor of a replay stops before the first event, in the order
// read, whose outcome is not written, whatever order the outcomes come
// in: an outcome written out of order, an event not sent (the router
// stopping) and an outcome the journal failed to write all hold it, and an
// event the job's outcome was on already (before a restart) does not.
func TestReplayCursorOnlyPastRecordedOutcomes(t *testing.T) {
	at := time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)
	ev := func(seq uint64, partner, entity string) journal.Event {
		return journal.Event{Seq: seq, ID: "evt_" + entity, Partner: partner, Type: "ticket", EntityID: entity,
			ReceivedAt: at.Add(time.Duration(seq) * time.Second)}
	}
	j := &domain.ReplayJob{ID: "rpl_1", Cursor: map[string]domain.ReplayCursor{}, Done: 10, Failed: 1,
		Request: domain.ReplayRequest{Partners: []string{"acme", "globex"}, From: at, To: at.Add(time.Hour)}}
	r := &replays{}
	run := &replayRun{r: r, j: j, ctx: context.Background(), queue: newBacklog(), limit: 100, items: map[uint64]replayItem{},
		done: j.Done, failed: j.Failed}
	run.idle.L = &r.mu
	replayed := ev(6, "globex", "G-2")
	replayed.Replays = []journal.Replay{{Job: "rpl_0", OK: true}, {Job: "rpl_1", OK: false}}
	events := []journal.Event{ev(1, "acme", "T-1"), ev(2, "acme", "T-2"), ev(3, "acme", "T-1"), ev(4, "acme", "T-3"),
		ev(5, "globex", "G-1"), replayed, ev(7, "globex", "G-1")}
	for _, e := range events {
		if !run.read(e.Partner, e) {
			t.Fatal("read refused an event")
		}
	}
	cursor := func(p string) uint64 { return j.Cursor[p].Seq }
	settle := func(seq uint64, sent, ok bool, err error) {
		t.Helper()
		it, found := run.items[seq]
		if !found {
			t.Fatalf("event %d was not handed over", seq)
		}
		run.settle(it, sent, ok, err)
	}
	steps := []struct {
		what         string
		do           func()
		acme, globex uint64 // the cursors' seqs after, 0 for none
		done, failed int    // what persist stores
	}{
		{"the second event recorded first", func() { settle(2, true, true, nil) }, 0, 0, 10, 1},
		{"the first recorded", func() { settle(1, true, true, nil) }, 2, 0, 12, 1},
		{"the fourth recorded before the third", func() { settle(4, true, false, nil) }, 2, 0, 12, 1},
		{"the third not sent: the router stops", func() { settle(3, false, false, nil) }, 2, 0, 12, 1},
		{"a later partner's event recorded behind it", func() { settle(5, true, true, nil) }, 2, 0, 12, 1},
		{"the journal fails to write the last one", func() { settle(7, true, true, errors.New("disk full")) }, 2, 0, 12, 1},
	}
	for _, s := range steps {
		s.do()
		if s.what == "the journal fails to write the last one" && run.passed() {
			t.Error("the pass is over with an outcome not written")
		}
		if cursor("acme") != s.acme || cursor("globex") != s.globex || run.done != s.done || run.failed != s.failed {
			t.Errorf("%s: cursors acme %d, globex %d, stored done %d failed %d; want %d, %d, %d, %d",
				s.what, cursor("acme"), cursor("globex"), run.done, run.failed, s.acme, s.globex, s.done, s.failed)
		}
	}
	if j.Done != 10+6 || j.Failed != 1+2 {
		t.Errorf("the job shows done %d, failed %d; want 16 (sent, and the one replayed before), 3", j.Done, j.Failed)
	}

	// Run again from the cursor: the third is recorded this time, and the
	// cursor passes everything up to the event whose outcome was lost.
	run.items[3] = replayItem{slot: 2}
	run.outstanding++
	settle(3, true, true, nil)
	if cursor("acme") != 4 || cursor("globex") != 6 || run.done != 16 || run.failed != 3 {
		t.Errorf("cursors acme %d, globex %d, stored done %d failed %d; want 4, 6, 16, 3",
			cursor("acme"), cursor("globex"), run.done, run.failed)
	}
	// A swept event is gone: nothing to send again.
	run.items[7] = replayItem{slot: 6}
	run.outstanding++
	settle(7, true, true, journal.ErrNotFound)
	if cursor("globex") != 7 {
		t.Errorf("globex's cursor = %d after its last event was swept, want 7", cursor("globex"))
	}
	// Every outcome written: the pass is over, and a restarted job reads
	// none of the window again, not even what was journaled since.
	if !run.passed() {
		t.Fatal("the pass is not over with every outcome written")
	}
	for _, p := range j.Request.Partners {
		if c := j.Cursor[p]; !c.At.Equal(j.Request.To) || c.Seq != 0 {
			t.Errorf("%s's cursor after the pass = %+v, want the window's end %v", p, c, j.Request.To)
		}
		if pos := start(j, p); pos.At != j.Request.To || pos.Seq == 0 {
			t.Errorf("%s resumes at %+v, want past the window's end", p, pos)
		}
	}
}
