package ingress

import (
	"context"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// A replay asked of every router of a tier runs on the router that holds
// its claim (natstier, claim.go). That router renews the claim while the
// job is queued or running here (holdClaims) and marks it done when the
// job ends (finishClaim); a router that finds its claim taken over stops
// the job (lose). The others record the job done with nothing to send,
// RunBy naming the claimant, and watch its claim at each poll of the
// control service (claimAsked): one that stops being renewed is taken
// over, and the job runs on the taker from the start. What the previous
// router sent is sent again with the same Idempotency-Key (replayOne
// sends each event with its own id), which a pipeline does not apply
// twice.

// claimed reports whether this router runs j under a claim of the tier.
func (rt *Router) claimed(j *domain.ReplayJob) bool {
	if rt.opts.Tier == nil {
		return false
	}
	rt.replays.mu.Lock()
	defer rt.replays.mu.Unlock()
	return j.RunBy == rt.opts.Tier.Name()
}

// watches reports whether j, as this router holds it, runs on another
// router of the tier, whose claim this router watches.
func (rt *Router) watches(j domain.ReplayJob) bool {
	return rt.opts.Tier != nil && j.RunBy != "" && j.RunBy != rt.opts.Tier.Name()
}

// claimAsked asks the tier who runs the asked job j, which this router
// holds as local (if known): it returns this router's claim and true when
// it is to run it here, from the start. Otherwise it records the job as
// run by the claim's router, done here with nothing to send.
func (rt *Router) claimAsked(ctx context.Context, j domain.ReplayJob, local domain.ReplayJob, known bool) (domain.ReplayClaim, bool) {
	c, err := rt.opts.Tier.Claim(ctx, j.ID)
	if err != nil {
		rt.log.Warn("claiming a replay in the tier failed; asked again at the next poll", "replay", j.ID, "err", err)
		return c, false
	}
	me := rt.opts.Tier.Name()
	if c.Router == me && !c.Done {
		return c, true
	}
	if c.Router == me {
		// Finished here before this journal knew the job (one started
		// empty): nothing to run, and no progress to report over what was.
		return c, false
	}
	if known && local.RunBy == c.Router && local.Takeover == c.Takeover {
		return c, false
	}
	rec := &domain.ReplayJob{ID: j.ID, Status: domain.ReplayDone, Request: j.Request, CreatedAt: j.CreatedAt, FinishedAt: rt.opts.Now().UTC()}
	if known {
		// What this router did before another took the job over stays.
		rec = &local
		rec.TakenFrom, rec.Cursor = "", nil
	}
	rec.RunBy, rec.Takeover = c.Router, c.Takeover
	rt.log.Info("a replay asked of the tier runs on another router", "replay", j.ID, "router", c.Router)
	if err := rt.replays.save(ctx, rec); err != nil {
		rt.log.Error("storing a replay that runs on another router failed; asked again at the next poll", "replay", j.ID, "err", err)
	}
	return c, false
}

// holdClaims renews, every third of the claim lease until ctx ends, the
// tier's claims on the jobs starting, queued or running here, and marks done again
// the claims of finished jobs the tier did not take as done.
func (rt *Router) holdClaims(ctx context.Context) {
	t := time.NewTicker(rt.opts.Tier.ClaimLease() / 3)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		held, unmarked := rt.replays.claims(rt.opts.Tier.Name())
		for _, id := range held {
			rt.renewClaim(ctx, id)
		}
		for _, j := range unmarked {
			rt.finishClaim(ctx, j)
		}
	}
}

// claims lists the jobs that router runs, queued or running, or is
// starting, and the finished jobs whose claim is not marked done.
func (r *replays) claims(router string) (held []string, unmarked []*domain.ReplayJob) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, j := range r.jobs {
		if j.RunBy == router && (j.Status == domain.ReplayQueued || j.Status == domain.ReplayRunning) && !r.starting[id] {
			held = append(held, id)
		}
	}
	for id := range r.starting {
		held = append(held, id)
	}
	for id := range r.unmarked {
		if j := r.jobs[id]; j != nil {
			unmarked = append(unmarked, j)
		}
	}
	return held, unmarked
}

// renewClaim renews this router's claim on job; false if another router
// took it over (the job stops here). A renewal that fails is tried again
// at the next tick: a lease holds three.
func (rt *Router) renewClaim(ctx context.Context, job string) bool {
	lease := rt.opts.Tier.ClaimLease()
	rctx, cancel := context.WithTimeout(ctx, lease/3)
	c, err := rt.opts.Tier.Renew(rctx, job)
	cancel()
	if err != nil {
		if ctx.Err() == nil {
			rt.log.Warn("renewing a replay's claim in the tier failed; another router takes the replay over if no renewal gets through for a lease",
				"replay", job, "lease", lease, "err", err)
		}
		return true
	}
	if c.Router == rt.opts.Tier.Name() {
		return true
	}
	rt.replays.lose(job, c)
	return false
}

// lose stops a job this router ran: another router took its claim over
// and runs it from the start. The job is recorded done here, run by that
// router, with what this router did.
func (r *replays) lose(job string, c domain.ReplayClaim) {
	rt := r.rt
	me := rt.opts.Tier.Name()
	r.mu.Lock()
	j := r.jobs[job]
	if j == nil || j.RunBy != me || (j.Status != domain.ReplayQueued && j.Status != domain.ReplayRunning) {
		r.mu.Unlock()
		return
	}
	j.Status, j.FinishedAt = domain.ReplayDone, rt.opts.Now().UTC()
	j.RunBy, j.TakenFrom, j.Takeover = c.Router, "", c.Takeover
	cancel, running := r.running[job]
	var data []byte
	var err error
	if !running {
		data, err = jsonJob(j)
	}
	r.mu.Unlock()
	rt.log.Warn("another router took over a replay this router ran; it stops here", "job", job, "from", me, "to", c.Router)
	if running {
		cancel() // execute stores the job as it stops
		return
	}
	r.store(context.Background(), job, data, err)
}

// finishClaim marks done the tier's claim on j, finished here; one the
// tier does not take is marked again by holdClaims, or else taken over
// after a lease and run again.
func (rt *Router) finishClaim(ctx context.Context, j *domain.ReplayJob) {
	if !rt.claimed(j) {
		return
	}
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	err := rt.opts.Tier.Finished(fctx, j.ID)
	cancel()
	rt.replays.mu.Lock()
	if err != nil {
		rt.replays.unmarked[j.ID] = true
	} else {
		delete(rt.replays.unmarked, j.ID)
	}
	rt.replays.mu.Unlock()
	if err != nil {
		rt.log.Warn("marking a replay's claim done in the tier failed; tried again", "replay", j.ID, "err", err)
	}
}

// get returns a copy of the job with id.
func (r *replays) get(id string) (domain.ReplayJob, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	j, ok := r.jobs[id]
	if !ok {
		return domain.ReplayJob{}, false
	}
	return *j, true
}

// setStarting marks job as being started here under this router's claim, or
// no longer.
func (r *replays) setStarting(job string, on bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if on {
		r.starting[job] = true
	} else {
		delete(r.starting, job)
	}
}
