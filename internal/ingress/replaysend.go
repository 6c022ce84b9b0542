package ingress

import (
	"context"
	"errors"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
)

// replayRun sends a job's events through its pipeline from several
// goroutines (ReplayWorkers), with the delivery backlog's rule
// (dispatch.go): one event of an entity with a sender at a time, entities
// in turn. A sender queues the event's outcome for the journal
// (journal.CompleteLater, written in the order queued) before the
// entity's next event goes, so an entity's outcomes reach the disk in its
// order, in shared group commits, and no send waits for an fsync.
//
// The job's cursor moves only past recorded outcomes: the pass's events
// are kept in the order read (window) until their outcomes are written,
// and the cursor of a partner is the last event before the first one
// whose outcome is not: a router that dies resumes there, skips the
// events this job's outcomes are on already, and sends the others again,
// each entity's in its order.
type replayRun struct {
	r     *replays
	j     *domain.ReplayJob
	ctx   context.Context // the router's: a send ends with it, without an outcome
	queue *backlog        // events handed over and not yet taken by a sender, per entity
	pace  *pacer
	stop  context.CancelFunc // ends the senders' wait for events
	// unhook removes what newRun hooked on the contexts.
	unhook []func() bool
	// limit bounds the events handed over and not yet settled: what is
	// read ahead of the slowest outcome.
	limit   int
	senders sync.WaitGroup
	// recording counts outcomes queued and not yet written: close waits
	// for them, so that the job's counts and cursor are final.
	recording sync.WaitGroup

	// Guarded by r.mu, like the job.
	idle        sync.Cond             // signalled when an event is settled
	items       map[uint64]replayItem // the events handed over, by seq
	outstanding int                   // handed over and not yet settled
	window      []windowSlot          // the pass's events from the cursor on, in the order read
	base        int                   // the index of window[0]
	// done and failed are the job's counts up to its cursor, and of its
	// awaited events once recorded: what persist stores.
	done, failed int
}

// replayItem is what a sender must know of an event besides the event.
type replayItem struct {
	slot    int    // its index in the window; -1 for an awaited event, which moves no cursor
	unknown bool   // replayed as unknown (awaited, never compared)
	id      string // the event's id, listed if unknown
}

// windowSlot is one of the pass's events, until the cursor passes it.
type windowSlot struct {
	partner  string
	at       domain.ReplayCursor
	recorded bool // its outcome is written (or it is gone: swept)
	ok       bool
}

// replayRead bounds the events read ahead of the first unsettled one, per
// sender: enough for every sender to find an entity whose turn it is.
const replayRead = 64

// newRun starts j's senders.
func (r *replays) newRun(ctx context.Context, j *domain.ReplayJob) *replayRun {
	rate := j.Request.Rate
	if rate == 0 {
		rate = defaultReplayRate
	}
	n := r.rt.opts.ReplayWorkers
	run := &replayRun{r: r, j: j, ctx: ctx, queue: newBacklog(), limit: n * replayRead, items: map[uint64]replayItem{}}
	r.mu.Lock()
	run.pace = &pacer{every: time.Second / time.Duration(rate), now: r.now, sleep: r.sleep}
	run.done, run.failed = j.Done, j.Failed
	r.mu.Unlock()
	run.idle.L = &r.mu
	var stopCtx context.Context
	stopCtx, run.stop = context.WithCancel(ctx)
	run.unhook = append(run.unhook, context.AfterFunc(stopCtx, run.queue.wake), context.AfterFunc(ctx, func() {
		r.mu.Lock()
		run.idle.Broadcast()
		r.mu.Unlock()
	}))
	for range n {
		run.senders.Go(func() {
			for {
				q, ev, ok := run.queue.take(stopCtx)
				if !ok {
					return
				}
				run.send(ev)
				run.queue.done(q)
			}
		})
	}
	return run
}

// hand gives ev to the senders, behind its entity's events, once fewer
// than limit events are unsettled; false if the router stops first.
func (run *replayRun) hand(ev journal.Event, it replayItem) bool {
	r := run.r
	r.mu.Lock()
	for run.outstanding >= run.limit && run.ctx.Err() == nil {
		run.idle.Wait()
	}
	if run.ctx.Err() != nil {
		r.mu.Unlock()
		return false
	}
	run.outstanding++
	run.items[ev.Seq] = it
	r.mu.Unlock()
	run.queue.push(ev)
	return true
}

// read hands over one of the pass's events of partner, in the order read.
// An event this job's outcome is on already (recorded past the saved
// cursor before a restart) is not sent again: it is counted, and the
// cursor may pass it.
func (run *replayRun) read(partner string, ev journal.Event) bool {
	r := run.r
	r.mu.Lock()
	slot := run.base + len(run.window)
	s := windowSlot{partner: partner, at: domain.ReplayCursor{At: ev.ReceivedAt, Seq: ev.Seq}}
	if i := replayedBy(ev, run.j.ID); i >= 0 {
		s.recorded, s.ok = true, ev.Replays[i].OK
		run.j.Done++
		if !s.ok {
			run.j.Failed++
		}
	}
	run.window = append(run.window, s)
	run.advance()
	r.mu.Unlock()
	if s.recorded {
		return true
	}
	return run.hand(ev, replayItem{slot: slot})
}

// replayedBy returns the index in ev.Replays of job's outcome, or -1.
func replayedBy(ev journal.Event, job string) int {
	for i, rp := range ev.Replays {
		if rp.Job == job {
			return i
		}
	}
	return -1
}

// advance moves the cursor past the recorded events at the window's
// start. r.mu is held.
func (run *replayRun) advance() {
	for len(run.window) > 0 && run.window[0].recorded {
		s := run.window[0]
		run.j.Cursor[s.partner] = s.at
		run.done++
		if !s.ok {
			run.failed++
		}
		run.window[0] = windowSlot{}
		run.window = run.window[1:]
		run.base++
	}
}

// send sends ev, once its turn at the rate comes, and queues its outcome
// for the journal. Without an outcome (the router stops), the event is
// settled unrecorded: the cursor stays before it.
func (run *replayRun) send(ev journal.Event) {
	r, rt := run.r, run.r.rt
	r.mu.Lock()
	it := run.items[ev.Seq]
	delete(run.items, ev.Seq)
	r.mu.Unlock()
	if !run.pace.wait(run.ctx) {
		run.settle(it, false, false, nil)
		return
	}
	mark, sent := rt.replayOne(run.ctx, run.j, ev)
	if !sent {
		run.settle(it, false, false, nil)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	run.recording.Add(1)
	err := rt.opts.Journal.CompleteLater(ctx, ev.Seq, journal.Outcome{Replay: &mark}, func(err error) {
		defer run.recording.Done()
		if err != nil && !errors.Is(err, journal.ErrNotFound) {
			rt.log.Error("recording a replay outcome failed; the job's saved cursor stays before the event", "job", run.j.ID, "event", ev.ID, "err", err)
		}
		if err == nil && mark.OK && ev.State == journal.StateDeadLettered && rt.opts.Tier != nil {
			rt.opts.Tier.Replayed(ev.ID, mark.Pipeline)
		}
		run.settle(it, true, mark.OK, err)
	})
	if err != nil {
		run.recording.Done()
		rt.log.Error("recording a replay outcome failed; the job's saved cursor stays before the event", "job", run.j.ID, "event", ev.ID, "err", err)
		run.settle(it, true, mark.OK, err)
	}
}

// settle ends the hold on an event handed over: sent or not, and its
// outcome written (err nil), gone (the event was swept) or not. It runs
// on the journal's committer for a recorded outcome: quick, and no
// journal call.
func (run *replayRun) settle(it replayItem, sent, ok bool, err error) {
	r := run.r
	recorded := sent && (err == nil || errors.Is(err, journal.ErrNotFound))
	r.mu.Lock()
	defer r.mu.Unlock()
	if sent {
		run.j.Done++
		if !ok {
			run.j.Failed++
		}
		if it.unknown {
			run.j.Unknown++
			if len(run.j.UnknownEvents) < domain.MaxUnknownEvents {
				run.j.UnknownEvents = append(run.j.UnknownEvents, it.id)
			}
		}
	}
	switch {
	case it.slot >= 0:
		if recorded {
			s := &run.window[it.slot-run.base]
			s.recorded, s.ok = true, ok
			run.advance()
		}
	case recorded:
		// Awaited events move no cursor: a restarted job judges them
		// again, and this job's outcome on them settles them.
		run.done++
		if !ok {
			run.failed++
		}
	}
	run.outstanding--
	run.idle.Broadcast()
}

// passed closes the pass once every outcome of it is written: the cursor
// of every partner moves to the window's end, so that a restarted job
// reads none of it again. The events the job awaits are judged by a scan
// of the whole window instead, and an event it replays while awaiting
// (wherever it stands in the window) is counted once, when recorded, not
// again by a restarted pass. False if an outcome is not written (the
// router stopped, or the journal failed): the cursor stays.
func (run *replayRun) passed() bool {
	r := run.r
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(run.window) > 0 || run.ctx.Err() != nil {
		return false
	}
	for _, p := range run.j.Request.Partners {
		run.j.Cursor[p] = domain.ReplayCursor{At: run.j.Request.To}
	}
	return true
}

// drain waits until every event handed over is settled, or the router
// stops.
func (run *replayRun) drain() {
	r := run.r
	r.mu.Lock()
	for run.outstanding > 0 && run.ctx.Err() == nil {
		run.idle.Wait()
	}
	r.mu.Unlock()
}

// close stops the senders once every event handed over is settled (or
// the router stops) and waits for the outcomes queued to be written.
func (run *replayRun) close() {
	run.drain()
	run.stop()
	run.senders.Wait()
	run.recording.Wait()
	for _, f := range run.unhook {
		f()
	}
}

// persist stores the job as a restarted router must see it: its cursor
// and the counts up to it (and of the awaited events recorded), not the
// outcomes written past it, which the restarted job counts as it passes
// them.
func (run *replayRun) persist() {
	r := run.r
	r.mu.Lock()
	c := *run.j
	c.Done, c.Failed = run.done, run.failed
	data, err := jsonJob(&c)
	r.mu.Unlock()
	r.store(run.ctx, c.ID, data, err)
}

// pacer spaces events evenly at its rate across goroutines: each wait
// takes the next free instant, every apart from the one before, and
// sleeps until it. An instant missed is not made up for: the rate is a
// ceiling, never a burst.
type pacer struct {
	every time.Duration
	now   func() time.Time
	sleep func(context.Context, time.Duration) bool

	mu   sync.Mutex
	next time.Time
}

// wait returns once the caller may send; false if ctx ends first.
func (p *pacer) wait(ctx context.Context) bool {
	p.mu.Lock()
	now := p.now()
	at := p.next
	if at.Before(now) {
		at = now
	}
	p.next = at.Add(p.every)
	p.mu.Unlock()
	if d := at.Sub(now); d > 0 {
		return p.sleep(ctx, d)
	}
	return ctx.Err() == nil
}
