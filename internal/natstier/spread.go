package natstier

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Spreading the shards over the routers. JetStream pins a shard to the
// first router whose pull meets a message, so one router that starts
// first holds every shard while the others only publish. Each router
// therefore announces itself in the routers bucket, with the shards it
// holds, and
//
//   - gives a shard away, one at a time, while it holds more than its
//     share: it stops pulling the shard, waits until every message of it
//     that it holds has its outcome recorded and acknowledged (it keeps
//     delivering them: handed back now, they would be delivered by two
//     routers at once, out of order), unpins the shard and does not pull
//     it for a while, so that another router is pinned to it and begins
//     with what this one left (takeOver);
//   - pulls the shards it does not hold only while it holds less than its
//     share, so that a shard given away goes to a router short of shards
//     rather than to one that would give it away again.
//
// With n routers and S shards a router's share is S/n rounded down (lo) or
// up (hi). A router gives while it holds more than hi, or more than lo
// when another holds less than lo and none holds more than it (the same
// count: the first name); it pulls while it holds less than lo, or less
// than hi when none holds less than lo. Each give then moves a shard from
// a router above lo to one below it, or from one above hi to one below hi,
// so the tier settles with every router at lo or hi; and whenever a shard
// is free, some router is short of its share and pulls it.
//
// A shard nobody is pinned to while its messages wait (the routers'
// counts out of date, the bucket unreadable) is pulled by every router
// after unattendedFor, whatever its share.
const (
	// DefaultRouters is the routers bucket: this router's key (its Name)
	// → the shards it holds.
	DefaultRouters = "SWITCHBACK_ROUTERS"
	// presenceEvery is how often a router says it is there, and reviews
	// the shards it holds; presenceFor how long a word counts (and the
	// bucket keeps it).
	presenceEvery = time.Second
	presenceFor   = 5 * time.Second
	// giveEvery is the least time between two gives of a router, for the
	// shard given to be pinned elsewhere and the routers' counts to say so.
	giveEvery = 3 * time.Second
	// unattendedFor is how long a shard's messages may wait with no
	// router pinned before every router pulls it.
	unattendedFor = 2 * presenceEvery
	// abortedFor is how long a shard whose give was given up (its
	// messages not done in time) is the last one given.
	abortedFor = time.Minute
)

// pullExpiry is how long each pull request waits: JetStream keeps a
// shard's pin only while its router's requests come within PinnedTTL,
// and a router giving a shard away stops pulling it. Under a quarter of
// PinnedTTL leaves the give drainFor; the client takes no less than 1 s.
func (t *Tier) pullExpiry() time.Duration {
	return max(time.Second, t.opts.PinnedTTL/8)
}

// drainFor is how long a router giving a shard away waits for the
// outcomes of the messages of it that it holds: the pin outlives the last
// pull by PinnedTTL less a pull's expiry, and the unpin needs some of it.
func (t *Tier) drainFor() time.Duration {
	return t.opts.PinnedTTL - 3*t.pullExpiry()
}

// spreads reports whether this router spreads the shards: with a
// PinnedTTL too short to drain a shard before its pin expires (under
// 4 s), it keeps those it is pinned to and pulls every shard, as before.
func (t *Tier) spreads() bool { return t.drainFor() >= time.Second }

// restFor is how long a router does not pull a shard it gave away.
func (t *Tier) restFor() time.Duration { return 3 * t.opts.PinnedTTL }

// pulled is a message Run was handed, with its shard.
type pulled struct {
	msg   jetstream.Msg
	shard int
}

// shardPull is this router's pulling of one shard.
type shardPull struct {
	c       jetstream.Consumer       // nil until its consumer could be read
	cc      jetstream.ConsumeContext // nil while not pulling
	stopped bool                     // it was pulled, then stopped
	live    *atomic.Bool             // cc's messages go to Run; cleared before cc stops
	// want: pull it (spreadLoop's say); giving: being given away; rest:
	// not pulled before then, but for a shard unattended.
	want, giving bool
	rest         time.Time
}

// puller starts and stops the pulling of each shard for Run.
type puller struct {
	t      *Tier
	ctx    context.Context
	in     *inbox
	mu     sync.Mutex
	shards []shardPull
}

// open reads shard i's consumer, retrying until ctx ends, and pulls it if
// wanted.
func (p *puller) open(i int) {
	t := p.t
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		c, err := t.stream.Consumer(p.ctx, consumerName(i))
		if err == nil {
			p.mu.Lock()
			s := &p.shards[i]
			s.c = c
			if s.want && !s.giving && s.cc == nil {
				err = p.startLocked(i)
			}
			p.mu.Unlock()
			if err == nil {
				return
			}
		}
		if p.ctx.Err() != nil {
			return
		}
		t.log.Warn("a shard cannot be pulled yet; retrying", "shard", i, "err", err, "in", wait)
		select {
		case <-p.ctx.Done():
			return
		case <-time.After(wait):
		}
	}
}

// startLocked pulls shard i. Its consumer is kept from one pull to the
// next: it carries the shard's pin, which a router resuming a give it
// gave up needs.
func (p *puller) startLocked(i int) error {
	t, s := p.t, &p.shards[i]
	live := new(atomic.Bool)
	live.Store(true)
	cc, err := s.c.Consume(func(m jetstream.Msg) {
		// Whether taken or not, a message says the shard is pinned here.
		if pin := m.Headers().Get(pinHeader); pin != "" {
			t.pinMu.Lock()
			t.seen[i] = pin
			t.pinMu.Unlock()
		}
		// Counted before live is read: a router giving the shard away
		// clears live, then waits for the count to fall.
		t.inflight[i].Add(1)
		if !live.Load() {
			// Delivered to this router and never taken: the router the
			// shard goes to reads it first (takeOver).
			t.inflight[i].Add(-1)
			return
		}
		p.in.put(pulled{msg: m, shard: i}) // never blocks: see inbox
	}, jetstream.PullPriorityGroup(group), jetstream.PullMaxMessages(256), jetstream.PullExpiry(t.pullExpiry()),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			// A shard pinned to another router answers each pull
			// so; the client keeps asking, and takes over when it
			// is free.
			if !errors.Is(err, jetstream.ErrPinIDMismatch) {
				t.log.Debug("pulling a shard", "shard", i, "err", err)
			}
		}))
	if err != nil {
		return err
	}
	if s.stopped {
		t.retake[i].Store(true)
	}
	s.cc, s.live = cc, live
	return nil
}

func (p *puller) stopLocked(i int) {
	s := &p.shards[i]
	if s.cc == nil {
		return
	}
	s.live.Store(false)
	s.cc.Stop()
	s.cc, s.stopped = nil, true
}

// set starts or stops pulling shard i, unless it is being given away or
// its consumer is still being read (open pulls it then, if wanted).
func (p *puller) set(i int, want bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s := &p.shards[i]
	s.want = want
	if s.giving || s.c == nil {
		return
	}
	if want && s.cc == nil {
		if err := p.startLocked(i); err != nil {
			p.t.log.Warn("a shard cannot be pulled now; trying again", "shard", i, "err", err)
		}
	} else if !want {
		p.stopLocked(i)
	}
}

// resting reports whether shard i was given away lately.
func (p *puller) resting(i int, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return now.Before(p.shards[i].rest)
}

func (p *puller) stopAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.shards {
		p.stopLocked(i)
	}
}

// peer is what another router last said in the routers bucket.
type peer struct {
	held int
	seen time.Time // by this router's clock
}

// presence is a router's entry in the routers bucket.
type presence struct {
	Shards []int `json:"shards"`
}

// routerKey is a router's key in the routers bucket: its name, with what
// a key may not hold written as '_'.
func routerKey(name string) string {
	if name == "" {
		return "router"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '=' {
			return r
		}
		return '_'
	}, name)
}

// watchRouters follows the routers bucket until ctx ends. A router's word
// counts for presenceFor from when this router heard it, whichever
// clocks the others keep.
func (t *Tier) watchRouters(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := t.routers.WatchAll(ctx)
		if err != nil {
			t.log.Warn("watching the tier's routers bucket", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		for e := range w.Updates() {
			t.peerMu.Lock()
			switch {
			case e == nil:
				t.peersRead = true
			case e.Key() == t.key:
			case e.Operation() == jetstream.KeyValuePut:
				var p presence
				if json.Unmarshal(e.Value(), &p) == nil {
					t.peers[e.Key()] = peer{held: len(p.Shards), seen: time.Now()}
				}
			default:
				delete(t.peers, e.Key())
			}
			t.peerMu.Unlock()
		}
		w.Stop()
	}
}

// livePeers is how many shards each other router holds, of those heard
// from within presenceFor; false until the bucket has been read.
func (t *Tier) livePeers(now time.Time) (map[string]int, bool) {
	t.peerMu.Lock()
	defer t.peerMu.Unlock()
	out := make(map[string]int, len(t.peers))
	for k, p := range t.peers {
		if now.Sub(p.seen) < presenceFor {
			out[k] = p.held
		}
	}
	return out, t.peersRead
}

// announce says in the routers bucket that this router delivers, and
// which shards it holds.
func (t *Tier) announce(ctx context.Context, held []int) error {
	body, err := json.Marshal(presence{Shards: held})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, presenceEvery)
	defer cancel()
	_, err = t.routers.Put(ctx, t.key, body)
	return err
}

// depart takes this router out of the routers bucket.
func (t *Tier) depart(ctx context.Context) {
	if err := t.routers.Delete(ctx, t.key); err != nil {
		t.log.Debug("leaving the tier's routers bucket", "err", err)
	}
}

// share is what a router holding mine shards does, given what the others
// hold: whether it pulls the shards it does not hold, and whether it gives
// one away. See the top of this file.
func share(shards, mine int, name string, others map[string]int) (pull, give bool) {
	n := len(others) + 1
	lo, hi := shards/n, (shards+n-1)/n
	short, richest := false, true
	for k, held := range others {
		if held < lo {
			short = true
		}
		if held > mine || held == mine && k < name {
			richest = false
		}
	}
	pull = mine < lo || mine < hi && !short
	give = mine > hi || mine > lo && short && richest
	return pull, give
}

// survey is what the shards' consumers say, for spreadLoop.
type survey struct {
	known []bool // the consumer could be read
	held  []int  // pinned to this router
	free  []bool // pinned to no router, with messages waiting
}

// surveyShards reads each shard's consumer, once for both its uses: the
// spreading, and the tier's lag (the messages not yet handed out and
// those out without an acknowledgement: its metrics, and MaxLag's
// refusal of new deliveries).
func (t *Tier) surveyShards(ctx context.Context) survey {
	sv := survey{known: make([]bool, t.shards), free: make([]bool, t.shards)}
	var lag int64
	defer func() { t.lag.Store(lag) }()
	for i := range t.shards {
		c, err := t.stream.Consumer(ctx, consumerName(i))
		if err != nil {
			continue
		}
		info := c.CachedInfo()
		lag += int64(info.NumPending) + int64(info.NumAckPending)
		t.metrics.lag.WithLabelValues(shardToken(i)).Set(float64(info.NumPending))
		t.metrics.unacked.WithLabelValues(shardToken(i)).Set(float64(info.NumAckPending))
		t.metrics.waiting.WithLabelValues(shardToken(i)).Set(t.oldestWaiting(ctx, i, info).Seconds())
		sv.known[i] = true
		pinned := pinnedTo(info)
		if pinned != "" && pinned == t.pin(i) {
			sv.held = append(sv.held, i)
		}
		sv.free[i] = pinned == "" && (info.NumPending > 0 || info.NumAckPending > 0)
	}
	return sv
}

// pinnedTo is the pin of the router a shard's consumer is pinned to, or "".
func pinnedTo(info *jetstream.ConsumerInfo) string {
	for _, g := range info.PriorityGroups {
		if g.Group == group {
			return g.PinnedClientID
		}
	}
	return ""
}

// pin is the pin shard i's last message to arrive here carried.
func (t *Tier) pin(i int) string {
	t.pinMu.Lock()
	defer t.pinMu.Unlock()
	return t.seen[i]
}

// outstanding is how many messages of each shard this router has pulled
// and not seen through: on their way to delivery, held, or their outcome
// on its way to the bucket. inflight is read first: a message is held
// before it leaves inflight, and counted in recordingOf before it leaves
// held.
func (t *Tier) outstanding() []int64 {
	out := make([]int64, t.shards)
	for i := range out {
		out[i] = t.inflight[i].Load()
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, h := range t.held {
		out[h.shard]++
	}
	for i := range out {
		out[i] += t.recordingOf[i].Load()
	}
	return out
}

// gave is the end of a give: when, of which shard, and whether the shard
// was given.
type gave struct {
	at    time.Time
	shard int
	ok    bool
}

// spreadLoop announces this router every presenceEvery, and pulls, stops
// pulling and gives away shards by share, until ctx ends.
func (t *Tier) spreadLoop(ctx context.Context, p *puller) {
	var gives sync.WaitGroup
	defer gives.Wait()
	done := make(chan gave, 1)
	giving := false
	var lastGive time.Time
	aborted := make([]time.Time, t.shards)
	unattended := make([]time.Time, t.shards) // since when, for each shard free
	announced := true
	tick := time.NewTicker(presenceEvery)
	defer tick.Stop()
	for {
		now := time.Now()
		sv := t.surveyShards(ctx)
		t.metrics.shardsHeld.Set(float64(len(sv.held)))
		if err := t.announce(ctx, sv.held); err != nil {
			if announced && ctx.Err() == nil {
				t.log.Warn("the tier's routers bucket did not take this router's word; it pulls every shard until it does", "err", err)
			}
			announced = false
		} else {
			announced = true
		}
		others, read := t.livePeers(now)
		pull, give := share(t.shards, len(sv.held), t.key, others)
		out := t.outstanding()
		// Spread only on what this router knows: otherwise it pulls every
		// shard, as one router alone does.
		spreading := t.spreads() && announced && read
		for i := range t.shards {
			rescue := false
			if sv.free[i] {
				if unattended[i].IsZero() {
					unattended[i] = now
				}
				rescue = now.Sub(unattended[i]) >= unattendedFor
			} else {
				unattended[i] = time.Time{}
			}
			want := true
			// A shard with messages outstanding here may have been pinned
			// here since the survey read it: it is pulled on until a
			// survey says, as its pin would lapse unpulled while this
			// router delivers them.
			if spreading && sv.known[i] && !slices.Contains(sv.held, i) && out[i] == 0 && !rescue {
				want = pull && !p.resting(i, now)
			}
			p.set(i, want)
		}
		if spreading && give && !giving && now.Sub(lastGive) >= giveEvery {
			if i, ok := t.pickGive(p, sv.held, aborted, now); ok {
				giving = true
				gives.Go(func() { done <- t.give(ctx, p, i) })
			}
		}
		select {
		case <-ctx.Done():
			return
		case g := <-done:
			giving, lastGive = false, g.at
			if !g.ok {
				aborted[g.shard] = g.at
			}
		case <-tick.C:
		}
	}
}

// pickGive chooses the shard to give away: of those held and pulled, the
// one with the fewest messages outstanding (the quickest to drain), one
// whose last give was given up last.
func (t *Tier) pickGive(p *puller, held []int, aborted []time.Time, now time.Time) (int, bool) {
	out := t.outstanding()
	best, found := 0, false
	rank := func(i int) (bool, int64) { return now.Sub(aborted[i]) < abortedFor, out[i] }
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, i := range held {
		if p.shards[i].cc == nil {
			continue
		}
		if !found {
			best, found = i, true
			continue
		}
		ra, oa := rank(i)
		rb, ob := rank(best)
		if !ra && rb || ra == rb && oa < ob {
			best = i
		}
	}
	return best, found
}

// give gives shard i away: it stops pulling it, waits up to drainFor for
// the outcomes of what it holds of it, then unpins it and rests it. If
// those are not all in by then, it pulls the shard again (its pin still
// this router's) and keeps it.
func (t *Tier) give(ctx context.Context, p *puller, i int) gave {
	p.mu.Lock()
	s := &p.shards[i]
	s.giving = true
	c := s.c
	p.stopLocked(i)
	p.mu.Unlock()
	pin := t.pin(i)
	start := time.Now()
	deadline := start.Add(t.drainFor())
	for {
		left := t.outstanding()[i]
		if left == 0 {
			break
		}
		if ctx.Err() != nil {
			// Run ends: Release hands back what is left and unpins.
			return gave{at: time.Now(), shard: i}
		}
		if time.Now().After(deadline) {
			p.mu.Lock()
			s.giving = false
			if s.want && s.cc == nil {
				if err := p.startLocked(i); err != nil {
					t.log.Warn("a shard cannot be pulled now; trying again", "shard", i, "err", err)
				}
			}
			p.mu.Unlock()
			t.log.Info("kept a shard it meant to give away: what it holds of it was not delivered in time", "shard", i,
				"outstanding", left, "waited", t.drainFor())
			return gave{at: time.Now(), shard: i}
		}
		sleep(ctx, 10*time.Millisecond)
	}
	// An unpin moves the shard whoever holds it: only if it is still
	// pinned to this router.
	given := false
	info, err := c.Info(ctx)
	if err == nil && pin != "" && pinnedTo(info) == pin {
		err = t.stream.UnpinConsumer(ctx, consumerName(i), group)
		given = err == nil
	}
	now := time.Now()
	p.mu.Lock()
	s.giving, s.want, s.rest = false, false, now.Add(t.restFor())
	p.mu.Unlock()
	if given {
		t.metrics.shardsGiven.Inc()
		t.log.Info("gave a shard away", "shard", i, "drained", now.Sub(start).Round(time.Millisecond))
	} else if err != nil {
		// Its pin expires, now that this router does not pull it.
		t.log.Warn("unpinning a shard given away failed; it moves once its pin expires", "shard", i, "err", err)
	}
	return gave{at: now, shard: i, ok: true}
}
