package ingress

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

// defaultReplayRate caps a replay's events per second unless the request
// sets its own: a replay must not starve live deliveries of a pipelineclient.
const defaultReplayRate = 500

// replays runs replay jobs one at a time, in the order they were asked
// for. Jobs are stored in the journal file with a cursor, so a restarted
// router resumes them where they stopped.
type replays struct {
	rt   *Router
	mu   sync.Mutex
	jobs map[string]*domain.ReplayJob
	wake chan struct{}
	// running cancels the job being executed (a tier's claim on it lost:
	// claim.go); unmarked are jobs run here whose claim the tier did not
	// take as done yet.
	running  map[string]context.CancelFunc
	unmarked map[string]bool
	// starting are the jobs claimed here whose start reads the tier's
	// window, which may outlast the claim's lease: holdClaims renews
	// their claims too.
	starting map[string]bool
	// now and sleep pace the sends (guarded by mu): the real clock, like
	// a ticker, whatever Options.Now says; tests replace them.
	now   func() time.Time
	sleep func(context.Context, time.Duration) bool
}

func newReplays(rt *Router) *replays {
	return &replays{rt: rt, jobs: map[string]*domain.ReplayJob{}, wake: make(chan struct{}, 1), now: time.Now, sleep: sleep,
		running: map[string]context.CancelFunc{}, unmarked: map[string]bool{}, starting: map[string]bool{}}
}

// StartReplay validates and queues a replay and returns the job.
func (rt *Router) StartReplay(ctx context.Context, req domain.ReplayRequest) (domain.ReplayJob, error) {
	var b [8]byte
	rand.Read(b[:])
	return rt.startReplay(ctx, "rpl_"+hex.EncodeToString(b[:]), req, domain.ReplayClaim{})
}

// startReplay queues a replay under id, which the control service chose
// when it asked routers to run it; on a tier, under this router's claim
// on it.
func (rt *Router) startReplay(ctx context.Context, id string, req domain.ReplayRequest, claim domain.ReplayClaim) (domain.ReplayJob, error) {
	if err := req.Validate(); err != nil {
		return domain.ReplayJob{}, err
	}
	tbl, _ := rt.table() // the embedded router first catches up with its control service
	if _, ok := tbl.migrations[req.Migration]; !ok {
		return domain.ReplayJob{}, domain.Errorf(domain.CodeNotFound, "migration %q is not in this router's snapshot", req.Migration)
	}
	inFlight := 0
	if rt.opts.Tier != nil {
		// Bounded on its own: the caller's bound is for starting a job,
		// and a long window takes longer to read.
		actx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		var err error
		inFlight, err = rt.adoptWindow(actx, req, tierSettle)
		cancel()
		if err != nil {
			return domain.ReplayJob{}, &domain.Error{Code: domain.CodeJournalBusy, RetryAfter: 5 * time.Second,
				Message: "the tier's history of the replay's window could not be read: retry", Err: err}
		}
	}
	job := &domain.ReplayJob{ID: id, Status: domain.ReplayQueued, Request: req,
		CreatedAt: rt.opts.Now().UTC(), Cursor: map[string]domain.ReplayCursor{}, InFlight: inFlight,
		RunBy: claim.Router, TakenFrom: claim.From, Takeover: claim.Takeover}
	if req.AwaitComparisons {
		job.AwaitUntil = job.CreatedAt.Add(rt.opts.ComparisonDeadline)
	}
	// The caller's bound may have run out on the tier's reading: the
	// job is ready by now, and counting it is the router's own quick read.
	total, err := rt.replays.count(context.WithoutCancel(ctx), job)
	if err != nil {
		return domain.ReplayJob{}, domain.Internal("count replay events", err)
	}
	job.Total = total
	queued := *job // once saved, the job belongs to the runner
	queued.Cursor = nil
	if err := rt.replays.save(ctx, job); err != nil {
		return domain.ReplayJob{}, domain.Internal("store replay job", err)
	}
	select {
	case rt.replays.wake <- struct{}{}:
	default:
	}
	rt.log.Info("replay queued", "job", queued.ID, "migration", req.Migration, "pipeline", req.Pipeline, "filter", req.Filter, "events", total,
		"takenFrom", claim.From)
	return queued, nil
}

// Replay returns a job's progress.
func (rt *Router) Replay(id string) (domain.ReplayJob, error) {
	rt.replays.mu.Lock()
	defer rt.replays.mu.Unlock()
	j, ok := rt.replays.jobs[id]
	if !ok {
		return domain.ReplayJob{}, domain.Errorf(domain.CodeNotFound, "replay %q does not exist", id)
	}
	out := *j
	out.Cursor = nil
	return out, nil
}

// Replays lists the jobs, newest first.
func (rt *Router) Replays() []domain.ReplayJob {
	rt.replays.mu.Lock()
	defer rt.replays.mu.Unlock()
	out := make([]domain.ReplayJob, 0, len(rt.replays.jobs))
	for _, j := range rt.replays.jobs {
		c := *j
		c.Cursor = nil
		out = append(out, c)
	}
	slices.SortFunc(out, func(a, b domain.ReplayJob) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out
}

// save stores a new job, then hands it to the runner: a job runs only once
// it is stored, whatever became of the caller meanwhile.
func (r *replays) save(ctx context.Context, j *domain.ReplayJob) error {
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if err := r.rt.opts.Journal.PutJob(context.WithoutCancel(ctx), j.ID, data); err != nil {
		return err
	}
	r.mu.Lock()
	r.jobs[j.ID] = j
	r.mu.Unlock()
	return nil
}

// matches reports whether the job's filter takes ev.
func matches(filter string, ev journal.Event) bool {
	switch filter {
	case domain.ReplayFailed:
		return ev.State == journal.StateDeadLettered
	case domain.ReplayMismatched:
		// Only what was compared and differed: a skipped comparison or a
		// failed shadow says nothing about what the primary did, and no
		// comparison at all is not a mismatch either.
		return ev.Comparison != "" && domain.Class(ev.Comparison).Mismatched()
	}
	return true
}

// replayBatch bounds the events read in one journal transaction: they are
// sent after the transaction ends, since marking them writes.
const replayBatch = 256

// start is where the job goes on with partner p: after its cursor, or at
// the window's start.
func start(j *domain.ReplayJob, p string) journal.Position {
	if c, ok := j.Cursor[p]; ok {
		return journal.Position{At: c.At, Seq: c.Seq}.After()
	}
	return journal.Position{At: j.Request.From}
}

// batch returns up to n of the job's events of partner p from pos on:
// those its filter takes, and those its outcome is on already (replayed
// before a restart, past the saved cursor), which the filter may no longer
// take (a failed event replayed successfully is applied).
func (r *replays) batch(ctx context.Context, j *domain.ReplayJob, p string, pos journal.Position, n int) ([]journal.Event, error) {
	var out []journal.Event
	err := r.rt.opts.Journal.Scan(ctx, p, pos, j.Request.To, func(ev journal.Event) bool {
		if matches(j.Request.Filter, ev) || replayedBy(ev, j.ID) >= 0 {
			out = append(out, ev)
		}
		return len(out) < n
	})
	return out, err
}

// count returns how many events the job's filter takes in its window.
func (r *replays) count(ctx context.Context, j *domain.ReplayJob) (int, error) {
	n := 0
	for _, p := range j.Request.Partners {
		if j.Request.Filter == domain.ReplayAll {
			// matches takes every event: the index counts them unread.
			c, err := r.rt.opts.Journal.Count(ctx, p, start(j, p), j.Request.To)
			if err != nil {
				return 0, err
			}
			n += c
			continue
		}
		err := r.rt.opts.Journal.Scan(ctx, p, start(j, p), j.Request.To, func(ev journal.Event) bool {
			if matches(j.Request.Filter, ev) {
				n++
			}
			return true
		})
		if err != nil {
			return 0, err
		}
	}
	return n, nil
}

// run loads stored jobs and runs unfinished ones until ctx ends.
func (r *replays) run(ctx context.Context) {
	stored, err := r.rt.opts.Journal.Jobs(ctx)
	if err != nil && ctx.Err() == nil {
		r.rt.log.Error("reading replay jobs failed", "err", err)
	}
	r.mu.Lock()
	for _, data := range stored {
		var j domain.ReplayJob
		if json.Unmarshal(data, &j) == nil {
			if j.Cursor == nil {
				j.Cursor = map[string]domain.ReplayCursor{}
			}
			r.jobs[j.ID] = &j
		}
	}
	r.mu.Unlock()
	// A job resumed at a start must not run before the router has a
	// snapshot: without the pipelines' URLs every send would fail, and
	// the job would end with its events failed for good.
	if !r.rt.awaitRouting(ctx) {
		return
	}
	for ctx.Err() == nil {
		if j := r.next(); j != nil {
			r.execute(ctx, j)
			continue
		}
		select {
		case <-r.wake:
		case <-ctx.Done():
			return
		}
	}
}

// next returns the oldest unfinished job, or nil.
func (r *replays) next() *domain.ReplayJob {
	r.mu.Lock()
	defer r.mu.Unlock()
	var oldest *domain.ReplayJob
	for _, j := range r.jobs {
		if j.Status == domain.ReplayQueued || j.Status == domain.ReplayRunning {
			if oldest == nil || j.CreatedAt.Before(oldest.CreatedAt) {
				oldest = j
			}
		}
	}
	return oldest
}

// execute sends the job's events through its pipeline (replayRun: up to
// ReplayWorkers at a time, one event of an entity at a time, at most rate
// a second), with the same retries as live delivery, and records each
// outcome on its event.
func (r *replays) execute(ctx context.Context, j *domain.ReplayJob) {
	rt := r.rt
	if rt.claimed(j) && !rt.renewClaim(ctx, j.ID) {
		return // another router took it over while this one was down
	}
	// The job's own context: a claim lost while it runs stops it.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	r.mu.Lock()
	if j.Status != domain.ReplayQueued && j.Status != domain.ReplayRunning {
		r.mu.Unlock()
		return
	}
	j.Status = domain.ReplayRunning
	r.running[j.ID] = cancel
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.running, j.ID)
		r.mu.Unlock()
	}()
	run := r.newRun(ctx, j)
	err := r.pass(run)
	if err == nil && ctx.Err() == nil && j.Request.AwaitComparisons {
		err = r.await(ctx, j, run)
	}
	run.close()
	if ctx.Err() != nil {
		run.persist() // resumed from its cursor after a restart, or lost to another router
		return
	}
	r.update(j, func(j *domain.ReplayJob) {
		j.Status, j.FinishedAt = domain.ReplayDone, rt.opts.Now().UTC()
		if err != nil {
			j.Status, j.Error = domain.ReplayFailedS, "reading the journal failed"
		}
	})
	r.persist(ctx, j)
	rt.finishClaim(ctx, j)
	rt.log.Info("replay finished", "job", j.ID, "done", j.Done, "failed", j.Failed, "unknown", j.Unknown)
}

// pass reads the job's window partner by partner, in the request's
// order, each partner's events in the order received from its saved
// cursor on, and hands them to the senders; it returns once every outcome
// is settled, or the router stops.
func (r *replays) pass(run *replayRun) error {
	j := run.j
	// The progress is saved on the real clock, like the pacing: it bounds
	// the work a restart repeats, not a decision.
	lastSave := time.Now()
	for _, p := range j.Request.Partners {
		r.mu.Lock()
		pos := start(j, p)
		r.mu.Unlock()
		for {
			evs, err := r.batch(run.ctx, j, p, pos, replayBatch)
			if err != nil {
				return err
			}
			for _, ev := range evs {
				if !run.read(p, ev) {
					return nil
				}
				if time.Since(lastSave) > time.Second {
					run.persist()
					lastSave = time.Now()
				}
			}
			if len(evs) < replayBatch {
				break
			}
			last := evs[len(evs)-1]
			pos = journal.Position{At: last.ReceivedAt, Seq: last.Seq}.After()
		}
	}
	run.drain()
	if run.passed() && j.Request.AwaitComparisons {
		run.persist() // a restarted job goes straight to awaiting comparisons
	}
	return nil
}

func (r *replays) update(j *domain.ReplayJob, fn func(*domain.ReplayJob)) {
	r.mu.Lock()
	fn(j)
	r.mu.Unlock()
}

// persist stores a job that nothing runs any more, as it is.
func (r *replays) persist(ctx context.Context, j *domain.ReplayJob) {
	r.mu.Lock()
	data, err := jsonJob(j)
	r.mu.Unlock()
	r.store(ctx, j.ID, data, err)
}

func jsonJob(j *domain.ReplayJob) ([]byte, error) { return json.Marshal(j) }

// store writes a job's state, marshalled with err. It is stored even once
// ctx has ended: it is what a restarted router resumes from.
func (r *replays) store(ctx context.Context, id string, data []byte, err error) {
	if err == nil {
		err = r.rt.opts.Journal.PutJob(context.WithoutCancel(ctx), id, data)
	}
	if err != nil {
		r.rt.log.Error("storing replay progress failed", "job", id, "err", err)
	}
}

// awaitPoll is how often a job that awaits comparisons looks at the events
// it waits for.
const awaitPoll = 200 * time.Millisecond

// tierSettle bounds how long a replay on a tier waits, as it starts, for
// the outcomes of its window's events that other routers hold.
const tierSettle = 5 * time.Second

// tierAdoptEvery paces a waiting replay's reads of the tier's history of
// its window (adoptWindow), which reads the whole window each time.
const tierAdoptEvery = 5 * time.Second

// verdict is what a job that awaits comparisons makes of an event.
type verdict int

const (
	settled  verdict = iota // nothing to do: equal, not the new pipeline's, or replayed already
	waiting                 // its comparison may still come
	mismatch                // compared and not equal: replay it
	unknown                 // handled by the new pipeline and never compared: replay it
)

// judge is the rule of a job that awaits comparisons. An event without an
// outcome is waited for, since the new pipeline may still apply it; one
// the new pipeline handled waits for the comparison its shadow owes. Once
// expired, nothing is waited for: what the new pipeline handled without a
// comparison is unknown, and what has no outcome yet was never applied and
// is left to live delivery, which routes it by the snapshot that reverted
// it.
func judge(j *domain.ReplayJob, ev journal.Event, expired bool) verdict {
	if slices.ContainsFunc(ev.Replays, func(r journal.Replay) bool { return r.Job == j.ID }) {
		return settled
	}
	if !ev.State.Terminal() {
		if expired {
			return settled
		}
		return waiting
	}
	class := domain.Class(ev.Comparison)
	if ev.Comparison != "" && class.Mismatched() {
		return mismatch
	}
	if ev.Pipeline != "new" || ev.Shadow == "" {
		return settled
	}
	switch {
	case ev.Comparison == "" && !expired:
		return waiting
	case ev.Comparison == "", !class.Compared():
		return unknown // a coverage gap says nothing of what the new pipeline did either
	}
	return settled
}

// await keeps a job open after its first pass: it replays each mismatch
// recorded after the pass went by its event, and waits for the events of
// the window whose comparison is still due, until none is left or the
// job's AwaitUntil, when judge calls the rest unknown.
func (r *replays) await(ctx context.Context, j *domain.ReplayJob, run *replayRun) error {
	rt := r.rt
	type dueEvent struct {
		ev      journal.Event
		unknown bool
	}
	// watch holds the seqs the job waits for; a full scan of the window
	// looks again once it is empty, for events journaled since the last.
	var watch []uint64
	rescan := true
	var adopted time.Time
	// elsewhere counts, on a tier, the window's events other routers hold
	// without an outcome: not in this router's journal yet, waited for all
	// the same, as the new pipeline may apply them.
	elsewhere := 0
	for {
		// This job's outcomes on the events first, or a scan would send
		// them again.
		run.drain()
		expired := !rt.opts.Now().Before(j.AwaitUntil)
		if expired {
			rescan = true // the last look takes in the whole window
		}
		if rt.opts.Tier != nil && (expired || time.Since(adopted) >= tierAdoptEvery) {
			// The tier's other routers go on delivering and comparing the
			// window's events: take in what they did since.
			n, err := rt.adoptWindow(ctx, j.Request, 0)
			if err != nil {
				rt.log.Warn("reading the tier's history of a replay's window again failed", "job", j.ID, "err", err)
			} else {
				elsewhere = n
			}
			adopted, rescan = time.Now(), true
		}
		var due []dueEvent
		watched := watch
		watch = nil
		take := func(ev journal.Event) {
			switch judge(j, ev, expired) {
			case waiting:
				watch = append(watch, ev.Seq)
			case mismatch:
				due = append(due, dueEvent{ev: ev})
			case unknown:
				due = append(due, dueEvent{ev: ev, unknown: true})
			}
		}
		if rescan {
			for _, p := range j.Request.Partners {
				err := rt.opts.Journal.Scan(ctx, p, journal.Position{At: j.Request.From}, j.Request.To, func(ev journal.Event) bool {
					take(ev)
					return true
				})
				if err != nil {
					return err
				}
			}
		} else {
			for _, seq := range watched {
				ev, err := rt.opts.Journal.Get(ctx, seq)
				if errors.Is(err, journal.ErrNotFound) {
					continue // swept
				}
				if err != nil {
					return err
				}
				take(ev)
			}
		}
		r.update(j, func(j *domain.ReplayJob) {
			j.Total += len(due)
			j.AwaitingComparison = len(watch)
			if !expired {
				j.AwaitingComparison += elsewhere
			} else if rt.opts.Tier != nil {
				j.InFlight = elsewhere // left to live delivery, as the job's start left them
			}
		})
		// In the order scanned: each entity's events in its order.
		unknowns := 0
		for _, d := range due {
			if !run.hand(d.ev, replayItem{slot: -1, unknown: d.unknown, id: d.ev.ID}) {
				return nil
			}
			if d.unknown {
				unknowns++
			}
		}
		if len(due) > 0 {
			run.drain()
			if ctx.Err() != nil {
				return nil
			}
			rt.log.Info("replay took events compared late or never", "job", j.ID, "events", len(due), "unknown", unknowns)
			run.persist()
		}
		if expired {
			return nil
		}
		if len(watch) == 0 && elsewhere == 0 {
			if rescan && len(due) == 0 {
				return nil
			}
			rescan = true // one more look at the whole window
			continue
		}
		rescan = false
		select {
		case <-time.After(awaitPoll):
		case <-ctx.Done():
			return nil
		}
	}
}

// replayOne sends one event again, with its original id, retrying like a
// live delivery, and returns the outcome to record on the event; false if
// the router stopped first, with nothing to record.
func (rt *Router) replayOne(ctx context.Context, j *domain.ReplayJob, ev journal.Event) (journal.Replay, bool) {
	m := rt.routing.load().migrations[j.Request.Migration]
	url := m.Pipelines.Legacy.URL
	if j.Request.Pipeline == "new" {
		url = m.Pipelines.New.URL
	}
	var res pipelineclient.Result
	var err error
	for attempt := 1; attempt <= rt.opts.MaxAttempts; attempt++ {
		// Nothing compares a replay's effects: they are recorded as sent.
		res, err = rt.opts.Pipelines.CallRaw(ctx, url, pipelineclient.Apply, toPipelineEvent(ev))
		rt.countCall(j.Request.Pipeline, pipelineclient.Apply, err)
		if err == nil || ctx.Err() != nil || attempt == rt.opts.MaxAttempts {
			break
		}
		if !sleep(ctx, backoff(attempt, rt.opts.MinBackoff, rt.opts.MaxBackoff)) {
			break
		}
	}
	if ctx.Err() != nil {
		return journal.Replay{}, false
	}
	mark := journal.Replay{Job: j.ID, Pipeline: j.Request.Pipeline, At: rt.opts.Now().UTC(), OK: err == nil}
	if err == nil {
		mark.Effects = res.Raw
	} else {
		mark.Error = err.Error()
	}
	rt.metrics.events.WithLabelValues("replayed").Inc()
	return mark, true
}

// recent returns the jobs still running or finished in the last ten
// minutes, for reports.
func (rt *Router) recentReplays() []domain.ReplayJob {
	var out []domain.ReplayJob
	for _, j := range rt.Replays() {
		if j.FinishedAt.IsZero() || rt.opts.Now().Sub(j.FinishedAt) < 10*time.Minute {
			out = append(out, j)
		}
	}
	return out
}
