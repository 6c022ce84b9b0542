package natstier

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchbackhq/switchback/internal/domain"
)

// A replay asked of every router runs on one: the first to create its
// claim (the outcome bucket's key job.ID, a domain.ReplayClaim in JSON).
// Its router renews the claim while the job starts, is queued or runs (an
// Update on the revision it last wrote: the revision moves even though
// the value does not) and marks it done when the job ends. The other
// routers watch it: one that sees the same revision for ClaimLease by its
// own clock, the claim not done, takes it over with an Update conditioned
// on that revision, so that one router wins however many watch. No two
// routers' clocks are compared: a watcher waits at least a lease from
// the moment it first saw the revision, and the claimant renews three
// times a lease.
//
// A claimant cut off from NATS for longer than the lease goes on running
// while the taker runs the job again: each event reaches the pipeline
// twice, with its Idempotency-Key both times. The claimant stops once a
// renewal tells it the claim is another router's.

// claimKey is the outcome bucket's key for the router that runs a job.
func claimKey(job string) string { return "job." + job }

// held is this router's claim on a job, as it last wrote it.
type held struct {
	rev   uint64
	claim domain.ReplayClaim
}

// watchedAt is another router's claim on a job: the revision seen, since
// when by this router's clock, and whether it is done (final: not read
// again).
type watchedAt struct {
	rev   uint64
	at    time.Time
	claim domain.ReplayClaim
}

// watchKeep bounds how long a watched claim is remembered: the control
// service asks a job of the routers for a day.
const watchKeep = 48 * time.Hour

// ClaimLease is how long a claim may go unrenewed before another router
// takes it over (Options.ClaimLease).
func (t *Tier) ClaimLease() time.Duration { return t.opts.ClaimLease }

// decodeClaim reads a claim's value: JSON, or the router's name alone as
// routers wrote it before claims were renewed.
func decodeClaim(v []byte) domain.ReplayClaim {
	var c domain.ReplayClaim
	if len(v) > 0 && v[0] == '{' && json.Unmarshal(v, &c) == nil && c.Router != "" {
		return c
	}
	return domain.ReplayClaim{Router: string(v)}
}

// mismatch reports whether an Update failed because another router wrote
// the key since the revision given.
func mismatch(err error) bool {
	return errors.Is(err, jetstream.ErrKeyRevisionMismatch) || errors.Is(err, jetstream.ErrKeyExists)
}

// Claim makes this router the one that runs job unless another router
// does: one that renews its claim, or marked it done. It returns the
// claim as it stands, this router's if it created it, holds it already
// (after a restart: it is renewed from here on), or took it over: the
// claim of a router that this router has seen unrenewed for ClaimLease,
// since its first call on the job, is taken over; the job runs here from
// the start.
func (t *Tier) Claim(ctx context.Context, job string) (domain.ReplayClaim, error) {
	t.claimOps.Lock()
	defer t.claimOps.Unlock()
	t.claimMu.Lock()
	w, ok := t.watched[job]
	t.claimMu.Unlock()
	if ok && w.claim.Done {
		return w.claim, nil
	}
	mine := domain.ReplayClaim{Router: t.opts.Name}
	v, err := json.Marshal(mine)
	if err != nil {
		return domain.ReplayClaim{}, err
	}
	rev, err := t.outcomes.Create(ctx, claimKey(job), v)
	if err == nil {
		t.hold(job, rev, mine)
		return mine, nil
	}
	if !errors.Is(err, jetstream.ErrKeyExists) {
		return domain.ReplayClaim{}, err
	}
	e, err := t.outcomes.Get(ctx, claimKey(job))
	if err != nil {
		return domain.ReplayClaim{}, err
	}
	c := decodeClaim(e.Value())
	if c.Router == t.opts.Name && !c.Done {
		t.hold(job, e.Revision(), c)
		return c, nil
	}
	if !t.watch(job, e.Revision(), c) {
		return c, nil
	}
	taken := domain.ReplayClaim{Router: t.opts.Name, Takeover: c.Takeover + 1, From: c.Router}
	if v, err = json.Marshal(taken); err != nil {
		return domain.ReplayClaim{}, err
	}
	rev, err = t.outcomes.Update(ctx, claimKey(job), v, e.Revision())
	if mismatch(err) {
		// Renewed, finished or taken by another router since it was read:
		// watched again from the revision that is there now.
		e, err := t.outcomes.Get(ctx, claimKey(job))
		if err != nil {
			return domain.ReplayClaim{}, err
		}
		c := decodeClaim(e.Value())
		t.watch(job, e.Revision(), c)
		return c, nil
	}
	if err != nil {
		return domain.ReplayClaim{}, err
	}
	t.hold(job, rev, taken)
	t.metrics.replayTakes.Inc()
	t.log.Warn("took over a replay whose router stopped renewing its claim; it runs here from the start",
		"job", job, "from", c.Router, "to", t.opts.Name, "lease", t.opts.ClaimLease)
	return taken, nil
}

// hold records this router's claim on job at rev.
func (t *Tier) hold(job string, rev uint64, c domain.ReplayClaim) {
	t.claimMu.Lock()
	defer t.claimMu.Unlock()
	t.mine[job] = held{rev: rev, claim: c}
	delete(t.watched, job)
}

// watch records another router's claim on job, read at rev, and reports
// whether it is to be taken over: not done, and rev unchanged for a lease
// since this router first saw it.
func (t *Tier) watch(job string, rev uint64, c domain.ReplayClaim) bool {
	now := time.Now()
	t.claimMu.Lock()
	defer t.claimMu.Unlock()
	delete(t.mine, job)
	w, ok := t.watched[job]
	if ok && w.rev == rev && !c.Done {
		return now.Sub(w.at) >= t.opts.ClaimLease
	}
	for id, o := range t.watched {
		if now.Sub(o.at) > watchKeep {
			delete(t.watched, id)
		}
	}
	t.watched[job] = watchedAt{rev: rev, at: now, claim: c}
	return false
}

// heldClaim returns this router's claim on job and its revision, read
// from the bucket when this router has not written it since it started;
// false if the claim is another router's or done.
func (t *Tier) heldClaim(ctx context.Context, job string) (held, domain.ReplayClaim, bool, error) {
	t.claimMu.Lock()
	h, ok := t.mine[job]
	t.claimMu.Unlock()
	if ok {
		return h, h.claim, true, nil
	}
	e, err := t.outcomes.Get(ctx, claimKey(job))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		// Gone from the bucket (recreated, or past its TTL) while this
		// router runs the job: claimed again, as at the start.
		c := domain.ReplayClaim{Router: t.opts.Name}
		v, err := json.Marshal(c)
		if err != nil {
			return held{}, domain.ReplayClaim{}, false, err
		}
		rev, err := t.outcomes.Create(ctx, claimKey(job), v)
		if err != nil {
			return held{}, domain.ReplayClaim{}, false, err // another router's now, or a failure: read at the next call
		}
		return held{rev: rev, claim: c}, c, true, nil
	}
	if err != nil {
		return held{}, domain.ReplayClaim{}, false, err
	}
	c := decodeClaim(e.Value())
	if c.Router != t.opts.Name || c.Done {
		return held{}, c, false, nil
	}
	return held{rev: e.Revision(), claim: c}, c, true, nil
}

// Renew tells the tier that this router still runs job: the claim's
// revision moves, and no router takes it over for another lease. It
// returns the claim as it stands: another router's once one took it
// over, or done.
func (t *Tier) Renew(ctx context.Context, job string) (domain.ReplayClaim, error) {
	t.claimOps.Lock()
	defer t.claimOps.Unlock()
	for range 3 {
		h, c, ok, err := t.heldClaim(ctx, job)
		if err != nil || !ok {
			return c, err
		}
		v, err := json.Marshal(h.claim)
		if err != nil {
			return domain.ReplayClaim{}, err
		}
		rev, err := t.outcomes.Update(ctx, claimKey(job), v, h.rev)
		if mismatch(err) {
			// Taken over: read whose it is now.
			t.forget(job)
			continue
		}
		if err != nil {
			return domain.ReplayClaim{}, err
		}
		t.claimMu.Lock()
		t.mine[job] = held{rev: rev, claim: h.claim}
		t.claimMu.Unlock()
		return h.claim, nil
	}
	return domain.ReplayClaim{}, errRewritten
}

// Finished marks this router's claim on job done: no router takes the
// job over. A claim another router took over is left to it.
func (t *Tier) Finished(ctx context.Context, job string) error {
	t.claimOps.Lock()
	defer t.claimOps.Unlock()
	for range 3 {
		h, _, ok, err := t.heldClaim(ctx, job)
		if err != nil || !ok {
			return err
		}
		c := h.claim
		c.Done = true
		v, err := json.Marshal(c)
		if err != nil {
			return err
		}
		_, err = t.outcomes.Update(ctx, claimKey(job), v, h.rev)
		if mismatch(err) {
			t.forget(job)
			continue
		}
		if err != nil {
			return err
		}
		t.forget(job)
		return nil
	}
	return errRewritten
}

// errRewritten is a claim that names this router yet changed under each
// of its writes: another process runs under this router's name.
var errRewritten = errors.New("natstier: a claim naming this router keeps changing: is another router running under its name?")

func (t *Tier) forget(job string) {
	t.claimMu.Lock()
	defer t.claimMu.Unlock()
	delete(t.mine, job)
}
