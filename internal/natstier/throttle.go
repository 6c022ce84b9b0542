package natstier

import (
	"context"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// A partner whose events fill its share of a router's delivery backlog is
// throttled tier-wide: the router holding its shards says so in the
// throttle bucket, every router watches the bucket, and each answers the
// partner's webhooks 429 while the word is fresh. A router alone sees
// only the backlog it holds, and the webhooks of a flooding partner reach
// every router behind the load balancer.
const (
	// DefaultThrottle is the throttle bucket: partner id → the router
	// that throttled it.
	DefaultThrottle = "SWITCHBACK_THROTTLE"
	// throttleFor is how long a partner stays throttled after the last
	// word: the holding router repeats it every throttleEvery while the
	// partner is over its share.
	throttleFor   = 10 * time.Second
	throttleEvery = 2 * time.Second
)

// Throttle tells every router of the tier to refuse partner's webhooks for
// a while (throttleFor); saying it again within throttleEvery does
// nothing. It does not wait for the bucket.
func (t *Tier) Throttle(partner string) {
	now := time.Now()
	t.throttleMu.Lock()
	if now.Sub(t.said[partner]) < throttleEvery {
		t.throttleMu.Unlock()
		return
	}
	t.said[partner] = now
	t.throttleMu.Unlock()
	t.recording.Go(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if _, err := t.throttles.PutString(ctx, partner, t.opts.Name); err != nil {
			t.log.Warn("the tier's throttle bucket did not take a partner's throttle", "partner", partner, "err", err)
		}
	})
}

// Throttled reports whether a router of the tier throttled partner within
// throttleFor.
func (t *Tier) Throttled(partner string) bool {
	t.throttleMu.Lock()
	defer t.throttleMu.Unlock()
	return time.Now().Before(t.throttled[partner])
}

// watchThrottles follows the throttle bucket until ctx ends.
func (t *Tier) watchThrottles(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := t.throttles.WatchAll(ctx, jetstream.UpdatesOnly())
		if err != nil {
			t.log.Warn("watching the tier's throttle bucket", "err", err)
			sleep(ctx, time.Second)
			continue
		}
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			// Stamped by the bucket, not by this router's clock.
			until := e.Created().Add(throttleFor)
			t.throttleMu.Lock()
			if until.After(t.throttled[e.Key()]) {
				t.throttled[e.Key()] = until
			}
			t.throttleMu.Unlock()
		}
		w.Stop()
	}
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}
