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

// SetContention replaces the judge of the router's CPU for the shadow's
// budget, called every 100 ms; call it before Run.
func (rt *Router) SetContention(contended func() bool) { rt.contended = contended }
