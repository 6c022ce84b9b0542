package natstier

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/switchbackhq/switchback/internal/journal"
)

// Outcome is what the tier's outcome bucket holds of an event, under its
// id: its terminal state and who reached it.
type Outcome struct {
	Partner  string        `json:"partner"`
	Type     string        `json:"type,omitempty"`
	EntityID string        `json:"entityId,omitempty"`
	State    journal.State `json:"state"`
	Pipeline string        `json:"pipeline,omitempty"`
	Attempts int           `json:"attempts,omitempty"`
	Error    string        `json:"error,omitempty"`
	// Shadow is the pipeline that compares it; Comparison the class, when
	// decided with the outcome (later ones are under comparedKey).
	Shadow     string    `json:"shadow,omitempty"`
	Comparison string    `json:"comparison,omitempty"`
	At         time.Time `json:"at"`
	Router     string    `json:"router,omitempty"`
	// Seq is the event's sequence in the stream.
	Seq uint64 `json:"seq"`
}

type heldMsg struct {
	msg   jetstream.Msg
	seq   uint64 // in the stream
	shard int
	since time.Time
}

// maxBatch bounds the events handed to Take at once: one journal
// transaction.
const maxBatch = 512

// Run pulls the shards JetStream pins to this router and hands their
// events to take, until ctx ends: a batch at a time, in the order of each
// shard's messages. take returns once the router's journal holds them; an
// error hands them out again (to this router, while it holds the shard).
// Release, once the router has written the outcomes it could, hands back
// what it still holds. A shard that cannot be pulled yet (its consumer
// unreadable while the cluster elects a leader) is retried: Run returns
// only when ctx ends. Meanwhile the router announces itself to the tier
// and gives away the shards it holds beyond its share (spread.go).
func (t *Tier) Run(ctx context.Context, take func(context.Context, []journal.Event) error) error {
	in := newInbox()
	p := &puller{t: t, ctx: ctx, in: in, shards: make([]shardPull, t.shards)}
	for i := range p.shards {
		p.shards[i].want = true
	}
	defer p.stopAll()
	var wg sync.WaitGroup
	defer wg.Wait()
	// A shard whose consumer cannot be read now (a stream leader being
	// elected, a node down) is retried until it can: a router that gave
	// up here would acknowledge webhooks and never deliver one. The
	// shards that can be pulled are taken meanwhile.
	for i := range t.shards {
		wg.Go(func() { p.open(i) })
	}
	wg.Go(func() { t.progressLoop(ctx) })
	wg.Go(func() { t.watchThrottles(ctx) })
	wg.Go(func() { t.watchRouters(ctx) })
	wg.Go(func() { t.spreadLoop(ctx, p) })
	batch := make([]pulled, 0, maxBatch)
	msgs := make([]jetstream.Msg, 0, maxBatch)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-in.ready:
		}
		for batch = in.take(batch[:0], maxBatch); len(batch) > 0; batch = in.take(batch[:0], maxBatch) {
			msgs = msgs[:0]
			for _, m := range batch {
				msgs = append(msgs, m.msg)
			}
			t.hand(ctx, msgs, take)
			// Held, acknowledged or handed back: a shard being given away
			// waits for these (spread.go).
			for _, m := range batch {
				t.inflight[m.shard].Add(-1)
			}
			if ctx.Err() != nil {
				return nil
			}
		}
	}
}

// inbox holds the shards' messages until Run hands them on. Putting never
// blocks: a consume callback that blocks stops the client's pulls too
// (their expiries and heartbeats are read by the same callback), and a
// router that does not pull loses its pin on the shard PinnedTTL later,
// while its delivery still holds the shard's events, which the next router
// would then deliver at the same time. JetStream bounds what waits here:
// at most MaxAckPending unacknowledged messages per shard.
type inbox struct {
	mu    sync.Mutex
	msgs  []pulled
	ready chan struct{} // a token while msgs is not empty
}

func newInbox() *inbox { return &inbox{ready: make(chan struct{}, 1)} }

func (b *inbox) put(m pulled) {
	b.mu.Lock()
	b.msgs = append(b.msgs, m)
	b.mu.Unlock()
	select {
	case b.ready <- struct{}{}:
	default:
	}
}

// take appends up to n of the oldest messages to into.
func (b *inbox) take(into []pulled, n int) []pulled {
	b.mu.Lock()
	defer b.mu.Unlock()
	n = min(n, len(b.msgs))
	into = append(into, b.msgs[:n]...)
	b.msgs = append(b.msgs[:0], b.msgs[n:]...)
	return into
}

// hand decodes a batch, drops what the tier has an outcome of, holds the
// rest and gives them to take. The first message of a shard this router
// did not hold a moment ago is preceded by what the shard's last router
// left (takeOver).
func (t *Tier) hand(ctx context.Context, batch []jetstream.Msg, take func(context.Context, []journal.Event) error) {
	events := make([]journal.Event, 0, len(batch))
	held := make([]heldMsg, 0, len(batch))
	index := map[string]int{}  // event id → its place in events, for those takeOver read
	deferred := map[int]bool{} // shards whose takeover failed: their messages wait
	taken := map[int]bool{}    // shards of the batch
	now := time.Now()
	for _, m := range batch {
		md, err := m.Metadata()
		if err != nil {
			continue // not a JetStream message: nothing to acknowledge
		}
		if shard, ok := shardOf(md.Consumer); ok {
			first := !taken[shard]
			taken[shard] = true
			if deferred[shard] {
				m.NakWithDelay(time.Second) // behind the message deferred before it
				continue
			}
			pin := m.Headers().Get(pinHeader)
			// A new pin is a shard pinned to this router afresh: another
			// router may have held it a moment ago (given away, released or
			// dead), and what it left comes first.
			// A retake asked while this batch is read waits for the next:
			// begun mid-batch, it would come after messages of the shard
			// already taken.
			retake := first && t.retake[shard].Swap(false)
			if now.Sub(t.lastTaken[shard]) > t.opts.PinnedTTL || (pin != "" && pin != t.pins[shard]) || retake {
				evs, hs, err := t.takeOver(ctx, shard)
				if err != nil {
					if retake {
						t.retake[shard].Store(true)
					}
					// Delivered now, the shard's messages could overtake
					// those its last router left, which JetStream hands out
					// again in no entity's order: try again shortly.
					t.log.Warn("reading what a shard's last router left undone failed; its messages wait", "shard", shard, "err", err)
					deferred[shard] = true
					m.NakWithDelay(time.Second)
					continue
				}
				for i, ev := range evs {
					index[ev.ID] = len(events)
					events, held = append(events, ev), append(held, hs[i])
				}
			}
			t.lastTaken[shard] = now
			if pin != "" {
				t.pins[shard] = pin
			}
		}
		ev, ok := t.decode(m, md)
		if !ok {
			continue
		}
		if i, ok := index[ev.ID]; ok {
			held[i].msg = m // read by takeOver: acknowledged through this copy
			continue
		}
		if t.skipCopied(ctx, m, ev.ID) {
			continue // copied with its outcome (copy.go)
		}
		if md.NumDelivered > 1 {
			t.metrics.redeliveries.Inc()
			// Handed out before, maybe to a router that applied it and
			// died before its acknowledgement.
			if _, err := t.outcomes.Get(ctx, ev.ID); err == nil {
				t.metrics.alreadyDone.Inc()
				m.Ack()
				continue
			}
		}
		shard, _ := shardOf(md.Consumer)
		events = append(events, ev)
		held = append(held, heldMsg{msg: m, seq: md.Sequence.Stream, shard: shard, since: now})
	}
	if len(events) == 0 {
		return
	}
	t.mu.Lock()
	for i, h := range held {
		// A message read by takeOver has none to acknowledge: keep the
		// one the consumer hands out, if it came first.
		if h.msg != nil || t.held[events[i].ID].msg == nil {
			t.held[events[i].ID] = h
		}
	}
	t.mu.Unlock()
	if err := take(ctx, events); err != nil {
		if ctx.Err() == nil {
			t.log.Error("the router's journal did not take the tier's events; they are handed out again", "events", len(events), "err", err)
		}
		// The shards' next messages must not overtake these: each shard
		// starts again with a takeover, which reads them in stream order.
		for shard := range taken {
			t.lastTaken[shard] = time.Time{}
		}
		t.mu.Lock()
		for _, ev := range events {
			delete(t.held, ev.ID)
		}
		t.mu.Unlock()
		for _, h := range held {
			if h.msg != nil {
				h.msg.NakWithDelay(time.Second)
			}
		}
	}
}

// decode reads a message's event; a message that is not one is
// terminated, as handing it out again would stop its shard.
func (t *Tier) decode(m jetstream.Msg, md *jetstream.MsgMetadata) (journal.Event, bool) {
	var ev journal.Event
	if err := json.Unmarshal(m.Data(), &ev); err != nil || ev.ID == "" || ev.Partner == "" {
		t.log.Error("a message in the stream is not a switchback event; terminated", "subject", m.Subject(), "seq", md.Sequence.Stream, "err", err)
		t.metrics.poison.Inc()
		m.Term()
		return journal.Event{}, false
	}
	ev.Seq, ev.State = 0, ""
	return ev, true
}

// takeOver reads what a shard's last router was handed and did not
// acknowledge, in stream order, for a router the shard was just pinned
// to. JetStream hands those messages out again on its own, but in the
// order their acknowledgement deadlines passed, which need not be an
// entity's order, and maybe after the shard's newer messages: read here
// first, each entity's events go to delivery in order, and the
// consumer's copies that follow are duplicates in the router's journal.
func (t *Tier) takeOver(ctx context.Context, shard int) ([]journal.Event, []heldMsg, error) {
	c, err := t.stream.Consumer(ctx, consumerName(shard))
	if err != nil {
		return nil, nil, err
	}
	info := c.CachedInfo()
	from, to := info.AckFloor.Stream+1, info.Delivered.Stream
	if from > to {
		return nil, nil, nil
	}
	oc, err := t.stream.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{SubjectPrefix + "*." + shardToken(shard)},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy, OptStartSeq: from,
	})
	if err != nil {
		return nil, nil, err
	}
	// Fetched in batches of what is there, not a request per message: a
	// takeover holds up the router's other shards while it reads.
	var events []journal.Event
	var held []heldMsg
	for past, waited := false, false; !past; {
		fetch := oc.FetchNoWait
		if waited {
			fetch = func(n int) (jetstream.MessageBatch, error) { return oc.Fetch(n, jetstream.FetchMaxWait(2*time.Second)) }
		}
		batch, err := fetch(256)
		if err != nil {
			return nil, nil, err
		}
		n := 0
		for m := range batch.Messages() {
			n++
			md, err := m.Metadata()
			if err != nil {
				continue
			}
			if md.Sequence.Stream >= to {
				past = true
			}
			if md.Sequence.Stream > to {
				continue
			}
			var ev journal.Event
			if json.Unmarshal(m.Data(), &ev) != nil || ev.ID == "" {
				continue // terminated when the consumer hands it out
			}
			ev.Seq, ev.State = 0, ""
			events = append(events, ev)
			held = append(held, heldMsg{seq: md.Sequence.Stream, shard: shard, since: time.Now()})
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			// Read in part, the range would let the rest come later,
			// after the shard's newer messages.
			return nil, nil, err
		}
		if n == 0 && !past {
			if waited {
				// Waited for and not there: gone from the stream (its age
				// limit), not late.
				t.log.Warn("a shard's unacknowledged range ends early; the rest is no longer in the stream", "shard", shard, "to", to)
				break
			}
			waited = true // a stream leader being elected answers nothing for a moment
			continue
		}
		waited = false
	}
	// Those the last router applied and recorded, but did not get to
	// acknowledge, are not delivered again, nor those journal copy
	// published with their outcome.
	done := t.recorded(ctx, events)
	keep := 0
	for i, ev := range events {
		if !done[i] {
			events[keep], held[keep] = ev, held[i]
			keep++
		}
	}
	events, held = events[:keep], held[:keep]
	t.metrics.takeOvers.Inc()
	t.log.Info("took over a shard", "shard", shard, "unacknowledged", len(events), "from", from, "to", to)
	return events, held, nil
}

// recorded tells, for each event, whether the outcome bucket holds its
// outcome, asking for up to 32 at a time.
func (t *Tier) recorded(ctx context.Context, events []journal.Event) []bool {
	done := make([]bool, len(events))
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for i, ev := range events {
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			_, err := t.outcomes.Get(ctx, ev.ID)
			done[i] = err == nil
		})
	}
	wg.Wait()
	return done
}

// oldestWaiting is how long the oldest message of a shard not yet handed
// to any router has waited in the stream: 0 when none waits. Every router
// watches every shard, so that events no router takes (all of them down,
// or the one holding the shard stuck) show on the routers that are up.
func (t *Tier) oldestWaiting(ctx context.Context, shard int, info *jetstream.ConsumerInfo) time.Duration {
	if info.NumPending == 0 {
		return 0
	}
	m, err := t.stream.GetMsg(ctx, info.Delivered.Stream+1, jetstream.WithGetMsgSubject(SubjectPrefix+"*."+shardToken(shard)))
	if err != nil {
		return 0
	}
	return time.Since(m.Time)
}

// shardOf reads a shard's number from its consumer's name.
func shardOf(consumer string) (int, bool) {
	n, ok := strings.CutPrefix(consumer, "shard-")
	if !ok {
		return 0, false
	}
	i, err := strconv.Atoi(n)
	return i, err == nil
}

// Done records ev's terminal outcome in the tier's bucket, then
// acknowledges its message. It does not wait. If the bucket does not take
// it, the message is handed out again after AckWait, and its event, found
// terminal in the router's journal, comes back to Done.
func (t *Tier) Done(ev journal.Event, out journal.Outcome) {
	t.mu.Lock()
	h, held := t.held[ev.ID]
	delete(t.held, ev.ID)
	if held {
		// Counted before the message leaves held, so that a shard being
		// given away is never seen with nothing of it outstanding
		// (spread.go).
		t.recordingOf[h.shard].Add(1)
	}
	t.mu.Unlock()
	rec := Outcome{Partner: ev.Partner, Type: ev.Type, EntityID: ev.EntityID, State: out.State, Pipeline: out.Pipeline,
		Attempts: out.Attempts, Error: out.Error, Shadow: out.Shadow, Comparison: out.Comparison, At: out.At, Router: t.opts.Name, Seq: h.seq}
	t.recording.Go(func() {
		if held {
			defer t.recordingOf[h.shard].Add(-1)
		}
		body, err := json.Marshal(rec)
		if err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if _, err := t.outcomes.Put(ctx, ev.ID, body); err != nil {
			t.metrics.outcomeErrors.Inc()
			t.log.Warn("the tier's outcome bucket did not take an outcome; the event will be handed out again", "event", ev.ID, "err", err)
			return
		}
		if h.msg != nil {
			h.msg.Ack()
		}
	})
}

// OutcomeOf returns what the tier's bucket holds of event id, and whether
// it holds anything.
func (t *Tier) OutcomeOf(ctx context.Context, id string) (Outcome, bool, error) {
	e, err := t.outcomes.Get(ctx, id)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Outcome{}, false, nil
	}
	if err != nil {
		return Outcome{}, false, err
	}
	var o Outcome
	return o, true, json.Unmarshal(e.Value(), &o)
}

// Release hands back the messages this router holds without an outcome,
// in stream order, and lets go of its shards, so that the next router is
// handed them at once, before the shards' newer messages. Call it once
// Run has returned and the router has written the outcomes it will.
func (t *Tier) Release(ctx context.Context) {
	t.recording.Wait()
	t.mu.Lock()
	held := make([]heldMsg, 0, len(t.held))
	for _, h := range t.held {
		held = append(held, h)
	}
	clear(t.held)
	t.mu.Unlock()
	slices.SortFunc(held, func(a, b heldMsg) int { return int(a.seq) - int(b.seq) })
	for _, h := range held {
		if h.msg != nil {
			h.msg.Nak()
		}
	}
	// The others need not wait for this router's word to expire before
	// they pull the shards let go of below.
	t.depart(ctx)
	t.metrics.shardsHeld.Set(0)
	// An unpin moves a shard whoever holds it: only the shards pinned to
	// this router now, by the pin its last message of each carried.
	t.pinMu.Lock()
	pins := slices.Clone(t.seen)
	t.pinMu.Unlock()
	for i, pin := range pins {
		if pin == "" {
			continue
		}
		c, err := t.stream.Consumer(ctx, consumerName(i))
		if err != nil {
			continue
		}
		if pinnedTo(c.CachedInfo()) == pin {
			t.stream.UnpinConsumer(ctx, consumerName(i), group)
		}
	}
}

// progressLoop tells JetStream that the messages held longer than a third
// of AckWait are in progress, so that a router with a deep backlog is not
// handed its own messages again.
func (t *Tier) progressLoop(ctx context.Context) {
	every := t.opts.AckWait / 3
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			t.mu.Lock()
			for id, h := range t.held {
				if h.msg != nil && now.Sub(h.since) >= every {
					h.msg.InProgress()
					h.since = now
					t.held[id] = h
				}
			}
			t.mu.Unlock()
		}
	}
}
