package reconcile

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/psaapi"
	"github.com/switchbackhq/switchback/internal/wire"
)

// Router is what a backfill needs of the ingress router that owns the
// journal: ingress.Router.Backfill.
type Router interface {
	Backfill(ctx context.Context, events []journal.Event) ([]journal.Appended, error)
}

// JobJournal is what a reconciliation needs of the router's journal: the
// entity index, and an event's outcome for a backfill's.
type JobJournal interface {
	Journal
	Get(ctx context.Context, seq uint64) (journal.Event, error)
}

// By is who asks for a reconciliation or a backfill, and why.
type By struct {
	Actor, Reason string
	// Trigger is wire.TriggerManual, wire.TriggerRevert or wire.TriggerSchedule.
	Trigger string
}

// Options configure a Runner.
type Options struct {
	Journal JobJournal
	Router  Router
	// Partner returns a partner as the control service holds it, with its
	// psaApi.
	Partner func(id string) (domain.Partner, bool)
	// Source makes the Source of a PSA API configuration; nil is
	// psaapi.New with a client whose requests time out after a minute.
	Source func(psaapi.Config) (psaapi.Source, error)
	// Audit writes an audit entry; a reconciliation or backfill asked by
	// a person starts only once its entry is written.
	Audit func(ctx context.Context, by By, action, target string, detail any) error
	// OtherJournals names the journals besides Journal that may hold
	// events received since a time (other routers): a reconciliation that
	// cannot read them could call their events gaps, so it is refused, as
	// it is when OtherJournals cannot say. Nil: there are none.
	OtherJournals func(ctx context.Context, since time.Time) ([]string, error)
	// Registerer takes the open-gaps gauge; nil registers nothing.
	Registerer prometheus.Registerer
	Log        *slog.Logger
	Now        func() time.Time
	// PollEvery is how often a backfill looks at its events' outcomes;
	// default 200 ms.
	PollEvery time.Duration
	// Notify hears a reconcile.gaps notice when a reconciliation ends
	// with gaps; it must not block (notify.Notifier.Send). Nil: none.
	Notify func(domain.Notice)
}

// Runner runs reconciliations and backfills in the background and keeps
// the last KeptJobs of them in memory.
type Runner struct {
	opts   Options
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	// slots bounds the reconciliations reading PSAs at once.
	slots chan struct{}
	gauge *prometheus.GaugeVec

	mu   sync.Mutex
	jobs []*job // oldest first
	// latest is each partner's newest finished reconciliation: the one
	// whose gaps the gauge shows.
	latest map[string]*job
}

// job is a Job and what only the runner needs of it. Guarded by
// Runner.mu.
type job struct {
	wire.Reconciliation
	gaps []gap // every gap, with the entity's state, for a backfill
	busy bool  // the reconciliation or a backfill of it runs
	by   By
	// applied counts, per partner, the gaps a backfill closed.
	applied map[string]int
}

type gap struct {
	partner string
	psa     domain.PSA
	change  psaapi.Change
}

// NewRunner returns a Runner; Run must run for its jobs to end cleanly.
func NewRunner(opts Options) *Runner {
	if opts.Log == nil {
		opts.Log = slog.New(slog.DiscardHandler)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.PollEvery <= 0 {
		opts.PollEvery = 200 * time.Millisecond
	}
	if opts.Source == nil {
		hc := &http.Client{Timeout: time.Minute}
		opts.Source = func(c psaapi.Config) (psaapi.Source, error) { return psaapi.New(c, hc) }
	}
	r := &Runner{opts: opts, slots: make(chan struct{}, 2), latest: map[string]*job{},
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "switchback_reconcile_open_gaps",
			Help: "Gaps of the partner's latest finished reconciliation that no backfill has applied since."}, []string{"partner"})}
	r.ctx, r.cancel = context.WithCancel(context.Background())
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(r.gauge)
	}
	return r
}

// Run returns when ctx ends, once the running jobs have stopped.
func (r *Runner) Run(ctx context.Context) {
	<-ctx.Done()
	r.mu.Lock()
	r.cancel() // under mu: no job starts after it (goLocked)
	r.mu.Unlock()
	r.wg.Wait()
}

// goLocked runs fn in the background unless the runner has stopped;
// r.mu must be held.
func (r *Runner) goLocked(fn func()) error {
	if r.ctx.Err() != nil {
		return domain.Errorf(domain.CodeConflict, "switchback is stopping: nothing new starts")
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		fn()
	}()
	return nil
}

func truncate(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}

// Start checks req, writes the audit entry when a person asks, and starts
// the reconciliation in the background. Its errors are *domain.Error:
// invalid_argument for a bad request or a partner without psaApi,
// not_found for an unknown partner, or the audit's error.
func (r *Runner) Start(ctx context.Context, req wire.ReconcileRequest, actor, reason string) (wire.Reconciliation, error) {
	return r.start(ctx, req, By{Actor: actor, Reason: reason, Trigger: wire.TriggerManual})
}

func (r *Runner) start(ctx context.Context, req wire.ReconcileRequest, by By) (wire.Reconciliation, error) {
	req, err := r.check(ctx, req)
	if err != nil {
		return wire.Reconciliation{}, err
	}
	if err := r.room(); err != nil {
		return wire.Reconciliation{}, err
	}
	j := &job{Reconciliation: wire.Reconciliation{ID: "rec_" + randomHex(8), State: wire.ReconcileRunning, Trigger: by.Trigger,
		Actor: by.Actor, Request: req, CreatedAt: r.opts.Now().UTC()}, busy: true, by: by, applied: map[string]int{}}
	for _, p := range req.Partners {
		j.Partners = append(j.Partners, wire.ReconcilePartner{Partner: p, State: wire.PartnerPending})
	}
	if j.Trigger == wire.TriggerManual {
		if err := r.opts.Audit(ctx, by, "reconcile.start", "reconciliation/"+j.ID, req); err != nil {
			return wire.Reconciliation{}, err
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.goLocked(func() { r.reconcile(j) }); err != nil {
		return wire.Reconciliation{}, err
	}
	r.jobs = append(r.jobs, j)
	r.forget()
	return j.view(true), nil
}

// room refuses a job while MaxRunning run: each holds its partners'
// changes in memory, and they wait for two slots anyway.
func (r *Runner) room() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, j := range r.jobs {
		if j.busy {
			n++
		}
	}
	if n >= MaxRunning {
		return domain.Errorf(domain.CodeConflict, "%d reconciliations or backfills are running, the most at once: start this one when one has ended", n)
	}
	return nil
}

// running reports whether a running reconciliation reads partner.
func (r *Runner) running(partner string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, j := range r.jobs {
		if j.State == wire.ReconcileRunning && slices.Contains(j.Request.Partners, partner) {
			return true
		}
	}
	return false
}

// Reconcile starts, as the control service's scheduler asks
// (control.Reconciler), a reconciliation of the partners with PSA API
// access among partners over [from, to), by the actor "reconciler" and
// unaudited (it changes nothing); from is moved up to MaxWindow ago at
// most. A partner that a running reconciliation reads is left out: the
// next one covers its window. More than MaxPartners make several
// reconciliations.
func (r *Runner) Reconcile(ctx context.Context, partners []string, from, to time.Time, trigger string) error {
	var with []string
	for _, id := range partners {
		if r.running(id) {
			r.opts.Log.Info("reconciliation of a partner skipped: one is running", "partner", id, "trigger", trigger)
			continue
		}
		if p, ok := r.opts.Partner(id); ok {
			if _, err := psaapi.FromPartner(p); err == nil {
				with = append(with, id)
			}
		}
	}
	if oldest := r.opts.Now().Add(-MaxWindow + time.Minute); from.Before(oldest) {
		from = oldest
	}
	var errs []error
	for part := range slices.Chunk(with, MaxPartners) {
		job, err := r.start(ctx, wire.ReconcileRequest{Partners: part, From: from, To: to}, By{Actor: "reconciler", Trigger: trigger})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		r.opts.Log.Info("reconciliation started", "reconciliation", job.ID, "trigger", trigger, "partners", strings.Join(part, ","))
	}
	return errors.Join(errs...)
}

// check resolves req's defaults and holds it to the limits.
func (r *Runner) check(ctx context.Context, req wire.ReconcileRequest) (wire.ReconcileRequest, error) {
	now := r.opts.Now().UTC()
	switch {
	case len(req.Partners) == 0:
		return req, domain.Errorf(domain.CodeInvalid, "partners: name at least one")
	case len(req.Partners) > MaxPartners:
		return req, domain.Errorf(domain.CodeInvalid, "partners: at most %d in one reconciliation", MaxPartners)
	}
	seen := map[string]bool{}
	for _, id := range req.Partners {
		if !domain.ValidID(id) {
			return req, domain.Errorf(domain.CodeInvalid, "partners: %q is not a valid id", truncate(id))
		}
		if seen[id] {
			return req, domain.Errorf(domain.CodeInvalid, "partners: %s is named twice", id)
		}
		seen[id] = true
		p, ok := r.opts.Partner(id)
		if !ok {
			return req, domain.Errorf(domain.CodeNotFound, "no partner %s", id)
		}
		if _, err := psaapi.FromPartner(p); err != nil {
			return req, err
		}
	}
	if req.To.IsZero() {
		req.To = now
	}
	req.From, req.To = req.From.UTC(), req.To.UTC()
	switch {
	case req.From.IsZero():
		return req, domain.Errorf(domain.CodeInvalid, "from: required, RFC 3339 or a duration ago such as 2h")
	case req.To.After(now):
		return req, domain.Errorf(domain.CodeInvalid, "to: %s is in the future: a PSA cannot have changed anything there yet", req.To.Format(time.RFC3339))
	case !req.From.Before(req.To):
		return req, domain.Errorf(domain.CodeInvalid, "from must be before to")
	case req.From.Before(now.Add(-MaxWindow)):
		return req, domain.Errorf(domain.CodeInvalid, "from: at most %d days ago", int(MaxWindow/(24*time.Hour)))
	}
	if r.opts.OtherJournals != nil {
		others, err := r.opts.OtherJournals(ctx, req.From)
		if err != nil {
			return req, &domain.Error{Code: domain.CodeStoreUnavailable, RetryAfter: 5 * time.Second, Err: err,
				Message: "cannot tell which routers' journals hold events of the window, so no gap could be trusted: retry"}
		}
		if len(others) > 0 {
			return req, domain.Errorf(domain.CodeConflict, "a reconciliation reads this process's router journal only, and other journals may hold events of the window: %s (GET /v1/routers); a gap here could be an event they applied. Reconcile where one router takes every webhook",
				strings.Join(others, ", "))
		}
	}
	for name, d := range map[string]**wire.Duration{"skew": &req.Skew, "settle": &req.Settle} {
		if *d == nil {
			def := wire.Duration(DefaultSkew)
			if name == "settle" {
				def = wire.Duration(DefaultSettle)
			}
			*d = &def
		}
		if v := time.Duration(**d); v < 0 || v > MaxSkew {
			return req, domain.Errorf(domain.CodeInvalid, "%s: between 0s and %s", name, MaxSkew)
		}
	}
	return req, nil
}

// forget drops the oldest jobs past KeptJobs that are not running, and
// the entities' states of the jobs older than the newest BackfillableJobs:
// a job's gaps may hold 100,000 entities as the PSA sent them.
func (r *Runner) forget() {
	for len(r.jobs) > KeptJobs {
		i := slices.IndexFunc(r.jobs, func(j *job) bool { return !j.busy })
		if i < 0 {
			break
		}
		r.jobs = slices.Delete(r.jobs, i, i+1)
	}
	for _, j := range r.jobs[:max(len(r.jobs)-BackfillableJobs, 0)] {
		if !j.busy {
			j.gaps = nil
		}
	}
}

// Job returns one job whole, or a not_found error.
func (r *Runner) Job(id string) (wire.Reconciliation, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j := r.find(id)
	if j == nil {
		return wire.Reconciliation{}, domain.Errorf(domain.CodeNotFound, "no reconciliation %s", truncate(id))
	}
	return j.view(true), nil
}

// Jobs returns every job kept, newest first, without their lists of gaps
// and uncertain changes.
func (r *Runner) Jobs() []wire.Reconciliation {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]wire.Reconciliation, 0, len(r.jobs))
	for i := len(r.jobs) - 1; i >= 0; i-- {
		out = append(out, r.jobs[i].view(false))
	}
	return out
}

func (r *Runner) find(id string) *job {
	for _, j := range r.jobs {
		if j.ID == id {
			return j
		}
	}
	return nil
}

// refuseBackfill says why a backfill of j may not start now, nil if it
// may; Runner.mu must be held.
func (j *job) refuseBackfill() error {
	switch {
	case j.busy && j.Backfill != nil && j.Backfill.State == wire.ReconcileRunning:
		return domain.Errorf(domain.CodeConflict, "reconciliation %s: a backfill of it is running", j.ID)
	case j.busy:
		return domain.Errorf(domain.CodeConflict, "reconciliation %s is still running: backfill once it is done", j.ID)
	case j.GapCount == 0:
		return domain.Errorf(domain.CodeConflict, "reconciliation %s found no gaps: nothing to backfill", j.ID)
	case len(j.gaps) == 0:
		return domain.Errorf(domain.CodeConflict, "reconciliation %s is older than the last %d: its gaps are no longer held; reconcile again", j.ID, BackfillableJobs)
	}
	return nil
}

// view copies j for a caller, with its lists or without.
func (j *job) view(lists bool) wire.Reconciliation {
	v := j.Reconciliation
	v.Backfillable = j.refuseBackfill() == nil
	v.Partners = slices.Clone(j.Partners)
	v.Gaps, v.Unsure = nil, nil
	if lists {
		v.Gaps, v.Unsure = slices.Clone(j.Gaps), slices.Clone(j.Unsure)
	}
	if j.Backfill != nil {
		b := *j.Backfill
		v.Backfill = &b
	}
	return v
}

// update changes j under the lock.
func (r *Runner) update(j *job, fn func(*job)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	fn(j)
}

// checkChunk bounds the changes judged in one journal lookup, so that
// progress shows and one read transaction stays short.
const checkChunk = 5000

// reconcile runs j partner by partner, then its backfill if asked.
func (r *Runner) reconcile(j *job) {
	select {
	case r.slots <- struct{}{}:
		defer func() { <-r.slots }()
	case <-r.ctx.Done():
	}
	var failures []string
	for i, id := range j.Request.Partners {
		if err := r.partner(j, i, id); err != nil {
			r.opts.Log.Warn("reconciliation of a partner failed", "reconciliation", j.ID, "partner", id, "err", err)
			failures = append(failures, id+": "+err.Error())
			r.update(j, func(j *job) { j.Partners[i].State, j.Partners[i].Error = wire.ReconcileFailed, err.Error() })
		}
	}
	backfill := false
	r.update(j, func(j *job) {
		j.FinishedAt = r.opts.Now().UTC()
		j.State = wire.ReconcileDone
		if len(failures) > 0 {
			j.State, j.Error = wire.ReconcileFailed, strings.Join(failures, "; ")
		}
		for _, p := range j.Partners {
			if p.State == wire.ReconcileDone {
				r.latest[p.Partner] = j
			}
		}
		r.gaugeLocked(j)
		backfill = j.Request.Backfill && len(j.gaps) > 0 && r.ctx.Err() == nil
		if backfill {
			j.Backfill = &wire.BackfillProgress{State: wire.ReconcileRunning, StartedAt: r.opts.Now().UTC()}
		} else {
			j.busy = false
		}
	})
	r.opts.Log.Info("reconciliation finished", "reconciliation", j.ID, "trigger", j.Trigger,
		"partners", strings.Join(j.Request.Partners, ","), "state", j.State, "gaps", j.GapCount)
	r.noticeGaps(j)
	if backfill {
		r.backfill(j, j.by)
	}
}

// partner reconciles the i-th partner of j.
func (r *Runner) partner(j *job, i int, id string) error {
	ctx := r.ctx
	set := func(fn func(*wire.ReconcilePartner)) { r.update(j, func(j *job) { fn(&j.Partners[i]) }) }
	set(func(p *wire.ReconcilePartner) { p.State = wire.PartnerReading })
	p, ok := r.opts.Partner(id)
	if !ok {
		return errors.New("the partner no longer exists")
	}
	cfg, err := psaapi.FromPartner(p)
	if err != nil {
		return err
	}
	src, err := r.opts.Source(cfg)
	if err != nil {
		return err
	}
	changes := map[journal.Entity]psaapi.Change{}
	read := 0
	err = src.Changes(ctx, j.Request.From, j.Request.To, func(c psaapi.Change) error {
		e := journal.Entity{Type: c.Type, ID: c.ID}
		if had, ok := changes[e]; ok && had.UpdatedAt.After(c.UpdatedAt) {
			return nil // an entity changed while paged comes twice: the newer copy holds
		}
		changes[e] = c
		if len(changes) > MaxChanges {
			return fmt.Errorf("more than %d entities changed in the window: reconcile a shorter one", MaxChanges)
		}
		if read++; read%500 == 0 {
			set(func(p *wire.ReconcilePartner) { p.Changes = len(changes) })
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("reading the PSA's changes: %w", err)
	}
	list := make([]psaapi.Change, 0, len(changes))
	for _, c := range changes {
		list = append(list, c)
	}
	clear(changes)
	slices.SortFunc(list, func(a, b psaapi.Change) int { return cmp.Or(cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID)) })
	set(func(p *wire.ReconcilePartner) { p.Changes, p.State = len(list), wire.PartnerChecking })

	rule := ruleOf(j.Request)
	for len(list) > 0 {
		chunk := list[:min(checkChunk, len(list))]
		list = list[len(chunk):]
		in := make([]Change, len(chunk))
		for k, c := range chunk {
			in[k] = Change{Type: c.Type, ID: c.ID, UpdatedAt: c.UpdatedAt, Deleted: c.Deleted}
		}
		rule.AsOf = r.opts.Now()
		verdicts, err := Check(ctx, r.opts.Journal, id, in, rule)
		if err != nil {
			return fmt.Errorf("reading the journal: %w", err)
		}
		r.update(j, func(j *job) {
			pr := &j.Partners[i]
			for k, v := range verdicts {
				pr.Checked++
				j.Checked++
				switch v.Class {
				case Reflected:
					pr.Reflected++
					chunk[k].Data = nil // only a gap's entity is sent again
				case InFlight:
					pr.InFlight++
					j.InFlight++
					chunk[k].Data = nil
				case Uncertain:
					pr.Uncertain++
					j.Uncertain++
					if len(j.Unsure) < MaxUncertain {
						j.Unsure = append(j.Unsure, finding(id, chunk[k], v))
					}
					chunk[k].Data = nil
				case Gap:
					pr.Gaps++
					j.GapCount++
					j.gaps = append(j.gaps, gap{partner: id, psa: p.PSA, change: chunk[k]})
					if len(j.Gaps) < MaxGapsShown {
						j.Gaps = append(j.Gaps, finding(id, chunk[k], v))
					} else {
						j.Truncated = true
					}
				}
			}
		})
	}
	set(func(p *wire.ReconcilePartner) { p.State = wire.ReconcileDone })
	return nil
}

func finding(partner string, c psaapi.Change, v Verdict) wire.Finding {
	f := wire.Finding{Partner: partner, Type: c.Type, ID: c.ID, UpdatedAt: c.UpdatedAt, Reason: v.Reason}
	if !v.LastAppliedAt.IsZero() {
		t := v.LastAppliedAt.UTC()
		f.LastAppliedAt = &t
	}
	return f
}

// Backfill starts the backfill of a finished job's gaps, once its audit
// entry is written. Its errors are *domain.Error: not_found, conflict
// while the job or a backfill of it runs or when it found no gaps, or the
// audit's error.
func (r *Runner) Backfill(ctx context.Context, id, actor, reason string) (wire.Reconciliation, error) {
	by := By{Actor: actor, Reason: reason, Trigger: wire.TriggerManual}
	r.mu.Lock()
	j := r.find(id)
	if j == nil {
		r.mu.Unlock()
		return wire.Reconciliation{}, domain.Errorf(domain.CodeNotFound, "no reconciliation %s", truncate(id))
	}
	if err := j.refuseBackfill(); err != nil {
		r.mu.Unlock()
		return wire.Reconciliation{}, err
	}
	j.busy = true // held while the audit entry is written: one backfill at a time
	r.mu.Unlock()
	if err := r.audit(ctx, j, by); err != nil {
		r.update(j, func(j *job) { j.busy = false })
		return wire.Reconciliation{}, err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := r.goLocked(func() { r.send(j, by) }); err != nil {
		j.busy = false
		return wire.Reconciliation{}, err
	}
	j.Backfill = &wire.BackfillProgress{State: wire.ReconcileRunning, StartedAt: r.opts.Now().UTC()}
	return j.view(true), nil
}

// audit writes a backfill's entry: which reconciliation, how many gaps.
func (r *Runner) audit(ctx context.Context, j *job, by By) error {
	r.mu.Lock()
	detail := map[string]any{"gaps": len(j.gaps), "partners": j.Request.Partners}
	r.mu.Unlock()
	return r.opts.Audit(ctx, by, "reconcile.backfill", "reconciliation/"+j.ID, detail)
}

// backfill audits and sends the backfill a request asked for at its start.
func (r *Runner) backfill(j *job, by By) {
	if err := r.audit(r.ctx, j, by); err != nil {
		r.update(j, func(j *job) {
			j.Backfill.State, j.Backfill.Error, j.Backfill.FinishedAt = wire.ReconcileFailed, "the audit entry could not be written: "+err.Error(), r.opts.Now().UTC()
			j.busy = false
		})
		return
	}
	r.send(j, by)
}

// BackfillID is the id of the event that backfills partner's change of
// an entity made at updatedAt, and its dedup key: "bf_" and 32 hex digits
// of a SHA-256 of the four. The pipeline sees it as the Idempotency-Key,
// so a change backfilled twice is applied once.
func BackfillID(partner, typ, id string, updatedAt time.Time) string {
	h := sha256.New()
	for _, s := range []string{partner, typ, id, updatedAt.UTC().Format(time.RFC3339Nano)} {
		h.Write([]byte(s))
		h.Write([]byte{0})
	}
	return "bf_" + hex.EncodeToString(h.Sum(nil)[:16])
}

// backfillChunk is how many gaps are judged again and journaled at once.
const backfillChunk = 500

// sent is a backfill event whose outcome is awaited: the one journaled,
// or for a duplicate the one journaled first.
type sent struct {
	seq     uint64
	partner string
}

// send journals j's gaps as events through the router, each judged again
// first: a gap that an event has closed since the reconciliation is
// skipped, so that a backfill never sends an entity older than the one
// applied. Then it awaits the events' outcomes until BackfillTimeout. by
// asked for the backfill; its end is audited in its name.
func (r *Runner) send(j *job, by By) {
	ctx, cancel := context.WithTimeout(r.ctx, BackfillTimeout)
	defer cancel()
	r.mu.Lock()
	gaps := slices.Clone(j.gaps)
	rule := ruleOf(j.Request)
	r.mu.Unlock()
	var pending []sent
	for part := range slices.Chunk(gaps, backfillChunk) {
		open, err := r.stillOpen(ctx, part, rule)
		if err == nil {
			var res []journal.Appended
			res, err = r.journalEvents(ctx, r.events(open))
			for k, a := range res {
				pending = append(pending, sent{a.Seq, open[k].partner})
			}
			r.update(j, func(j *job) {
				b := j.Backfill
				b.Skipped += len(part) - len(open)
				for _, g := range part {
					j.applied[g.partner]++ // closed, by this backfill or before it
				}
				for _, g := range open {
					j.applied[g.partner]--
				}
				b.Events += len(res)
				for _, a := range res {
					if a.Duplicate {
						b.Duplicates++
					} else {
						b.Journaled++
					}
				}
				b.Pending = len(pending)
			})
		}
		if err != nil {
			r.end(j, by, r.stopped(err))
			return
		}
	}
	r.opts.Log.Info("backfill journaled", "reconciliation", j.ID, "gaps", len(gaps), "events", len(pending))
	r.end(j, by, r.await(ctx, j, pending))
}

// stillOpen returns the gaps of part that are gaps still, judged again on
// the journal now; a gap made before the reconciliation is not recent.
func (r *Runner) stillOpen(ctx context.Context, part []gap, rule Rule) ([]gap, error) {
	var open []gap
	for run := range runsOfPartner(part) {
		in := make([]Change, len(run))
		for k, g := range run {
			in[k] = Change{Type: g.change.Type, ID: g.change.ID, UpdatedAt: g.change.UpdatedAt, Deleted: g.change.Deleted}
		}
		verdicts, err := Check(ctx, r.opts.Journal, run[0].partner, in, rule)
		if err != nil {
			return nil, fmt.Errorf("reading the journal: %w", err)
		}
		for k, v := range verdicts {
			if v.IsGap() {
				open = append(open, run[k])
			}
		}
	}
	return open, nil
}

// runsOfPartner yields the runs of gaps of one partner in gaps, which
// holds each partner's gaps together.
func runsOfPartner(gaps []gap) func(func([]gap) bool) {
	return func(yield func([]gap) bool) {
		for len(gaps) > 0 {
			n := 1
			for n < len(gaps) && gaps[n].partner == gaps[0].partner {
				n++
			}
			if !yield(gaps[:n]) {
				return
			}
			gaps = gaps[n:]
		}
	}
}

// events makes the backfill events of gaps.
func (r *Runner) events(gaps []gap) []journal.Event {
	now := r.opts.Now().UTC()
	events := make([]journal.Event, len(gaps))
	for i, g := range gaps {
		id := BackfillID(g.partner, g.change.Type, g.change.ID, g.change.UpdatedAt)
		action := "updated"
		if g.change.Deleted {
			action = "deleted"
		}
		events[i] = journal.Event{ID: id, DeliveryID: id, Partner: g.partner, PSA: string(g.psa),
			Type: g.change.Type, SourceType: g.change.Type, Action: action, EntityID: g.change.ID,
			ReceivedAt: now, EntityUpdatedAt: g.change.UpdatedAt, Payload: g.change.Data, Backfill: true}
	}
	return events
}

// journalEvents hands events to the router, waiting while it asks to (a
// busy journal, a backlog half full) until ctx ends.
func (r *Runner) journalEvents(ctx context.Context, events []journal.Event) ([]journal.Appended, error) {
	if len(events) == 0 {
		return nil, nil
	}
	for {
		res, err := r.opts.Router.Backfill(ctx, events)
		var de *domain.Error
		if !errors.As(err, &de) || de.RetryAfter <= 0 {
			return res, err
		}
		select {
		case <-time.After(de.RetryAfter):
		case <-ctx.Done():
			return nil, fmt.Errorf("%s, still after %s", de.Message, BackfillTimeout)
		}
	}
}

// await polls the outcomes of pending until none is left or ctx ends; a
// duplicate's outcome is its first event's.
func (r *Runner) await(ctx context.Context, j *job, pending []sent) error {
	tick := time.NewTicker(r.opts.PollEvery)
	defer tick.Stop()
	for len(pending) > 0 {
		select {
		case <-tick.C:
		case <-ctx.Done():
			return r.stopped(fmt.Errorf("%d events of the backfill have no outcome after %s; they stay journaled and are delivered: reconcile again later",
				len(pending), BackfillTimeout))
		}
		var left []sent
		applied, dead := map[string]int{}, 0
		for _, s := range pending {
			ev, err := r.opts.Journal.Get(ctx, s.seq)
			switch {
			case err == nil && ev.State == journal.StateApplied:
				applied[s.partner]++
			case err == nil && ev.State == journal.StateDeadLettered:
				dead++
			default:
				left = append(left, s)
			}
		}
		pending = left
		r.update(j, func(j *job) {
			for p, n := range applied {
				j.Backfill.Applied += n
				j.applied[p] += n
			}
			j.Backfill.DeadLettered += dead
			j.Backfill.Pending = len(pending)
		})
	}
	return nil
}

// stopped is err, unless switchback is stopping, which is then the reason.
func (r *Runner) stopped(err error) error {
	if r.ctx.Err() != nil {
		return errors.New("switchback stopped during the backfill; backfill again: what was journaled is not sent twice")
	}
	return err
}

// end records the end of j's backfill: failed with err, else done. Its
// counts are audited first (reconcile.backfill.done), so that they
// outlive the job, which is kept in memory only, and so that whoever sees
// the backfill ended finds them in the audit log.
func (r *Runner) end(j *job, by By, err error) {
	state, errText := wire.ReconcileDone, ""
	if err != nil {
		state, errText = wire.ReconcileFailed, err.Error()
	}
	r.mu.Lock()
	b := *j.Backfill
	detail := map[string]any{"reconciliation": j.ID, "partners": j.Request.Partners, "state": state,
		"gaps": len(j.gaps), "events": b.Events, "journaled": b.Journaled, "duplicates": b.Duplicates,
		"skipped": b.Skipped, "applied": b.Applied, "deadLettered": b.DeadLettered, "pending": b.Pending}
	if errText != "" {
		detail["error"] = errText
	}
	r.mu.Unlock()
	// Written even while switchback stops (the backfill it cut off is
	// what most needs its counts kept), within a bound of its own.
	actx, cancel := context.WithTimeout(context.WithoutCancel(r.ctx), 10*time.Second)
	if aerr := r.opts.Audit(actx, by, "reconcile.backfill.done", "reconciliation/"+j.ID, detail); aerr != nil {
		r.opts.Log.Error("the audit entry of a backfill's end could not be written", "reconciliation", j.ID,
			"journaled", b.Journaled, "applied", b.Applied, "deadLettered", b.DeadLettered, "skipped", b.Skipped,
			"duplicates", b.Duplicates, "pending", b.Pending, "err", aerr)
	}
	cancel()
	r.update(j, func(j *job) {
		b := j.Backfill
		b.State, b.FinishedAt, b.Error = state, r.opts.Now().UTC(), errText
		j.busy = false
		r.gaugeLocked(j)
	})
	if err != nil {
		r.opts.Log.Warn("backfill failed", "reconciliation", j.ID, "err", err)
	}
}

// gaugeLocked shows on the gauge the gaps j left open for each partner
// of which j is the newest finished reconciliation, and drops partners
// that no longer exist; r.mu must be held.
func (r *Runner) gaugeLocked(j *job) {
	for _, p := range j.Partners {
		if r.latest[p.Partner] == j {
			r.gauge.WithLabelValues(p.Partner).Set(float64(max(p.Gaps-j.applied[p.Partner], 0)))
		}
	}
	for id := range r.latest {
		if _, ok := r.opts.Partner(id); !ok {
			delete(r.latest, id)
			r.gauge.DeleteLabelValues(id)
		}
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// ruleOf is the gap rule of a request: its skew and settle, and the
// window's start less both for a journal that reads a window.
func ruleOf(req wire.ReconcileRequest) Rule {
	r := Rule{Skew: time.Duration(*req.Skew), Settle: time.Duration(*req.Settle)}
	r.Since = req.From.Add(-max(r.Skew, 0) - max(r.Settle, 0))
	return r
}
