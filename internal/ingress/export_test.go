package ingress

import (
	"context"
	"time"
)

// SetReplayClock makes replays pace their sends by now and sleep instead
// of the real clock; call it before starting a replay.
func (rt *Router) SetReplayClock(now func() time.Time, sleep func(context.Context, time.Duration) bool) {
	rt.replays.mu.Lock()
	defer rt.replays.mu.Unlock()
	rt.replays.now, rt.replays.sleep = now, sleep
}
