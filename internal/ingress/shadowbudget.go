package ingress

import (
	"context"
	"math"
	runtimemetrics "runtime/metrics"
	"sync/atomic"
	"time"
)

// The shadow's share of the events while the router's CPU is contended,
// when Options.ShadowMinShare allows less than all. A comparison (the
// dry-run call, both answers decoded, the comparison, its own journal
// write) costs the router about half of what delivering the event costs,
// and the shadow pipeline as much again: on a router without spare CPU,
// comparing every event takes that CPU from delivery. So the share halves
// at each contended interval, down to ShadowMinShare, and grows back by an
// eighth of the whole at each interval that is not; the events left out
// are shed, their comparison recorded as skipped with their outcome.
const (
	// shareUnit is the share's fixed-point unit: full is every event.
	shareUnit = 64
	// budgetInterval is how often contention is judged.
	budgetInterval = 100 * time.Millisecond
	// contendedLatency is the mean time a goroutine of the router waits,
	// runnable, for a CPU (the runtime's /sched/latencies) from which the
	// CPU is contended: a few tens of µs on a router with CPU to spare,
	// hundreds once its cores, or the machine's, are saturated.
	contendedLatency = 200 * time.Microsecond
	// minSchedSamples is the fewest scheduling samples in an interval that
	// say anything: fewer is an idle router, not a contended one.
	minSchedSamples = 50
)

// shadowBudget decides which delivered events' comparisons may be made:
// a share of them, in sixty-fourths.
type shadowBudget struct {
	min   int64
	share atomic.Int64 // shareUnit: every event
	turn  atomic.Int64 // the sum of the shares of the events asked about
}

func newShadowBudget(minShare float64) *shadowBudget {
	b := &shadowBudget{min: max(1, min(shareUnit, int64(math.Round(minShare*shareUnit))))}
	b.share.Store(shareUnit)
	return b
}

// admit reports whether the next event's comparison fits in the share:
// each event adds the share to a running sum, and one is admitted each
// time the sum passes a whole, so that the share is kept exactly however
// many workers ask at once.
func (b *shadowBudget) admit() bool {
	s := b.share.Load()
	if s >= shareUnit {
		return true
	}
	n := b.turn.Add(s)
	return n/shareUnit != (n-s)/shareUnit
}

// full reports whether every event is compared.
func (b *shadowBudget) full() bool { return b.share.Load() >= shareUnit }

// adapts reports whether the share may ever be less than full.
func (b *shadowBudget) adapts() bool { return b.min < shareUnit }

// adjust halves the share after a contended interval, down to the
// minimum, and grows it by an eighth of the whole after one that was not.
func (b *shadowBudget) adjust(contended bool) {
	s := b.share.Load()
	if contended {
		s = max(b.min, s/2)
	} else {
		s = min(shareUnit, s+shareUnit/8)
	}
	b.share.Store(s)
}

// schedLatency reads the runtime's scheduling latencies: the mean wait of
// the goroutines that became runnable since the last read, and how many
// did (sampled by the runtime).
type schedLatency struct {
	sample []runtimemetrics.Sample
	last   []uint64
}

func newSchedLatency() *schedLatency {
	return &schedLatency{sample: []runtimemetrics.Sample{{Name: "/sched/latencies:seconds"}}}
}

func (l *schedLatency) read() (mean time.Duration, n uint64) {
	runtimemetrics.Read(l.sample)
	if l.sample[0].Value.Kind() != runtimemetrics.KindFloat64Histogram {
		return 0, 0 // a runtime without the metric: never contended
	}
	h := l.sample[0].Value.Float64Histogram()
	mean, n = meanSince(h, l.last)
	l.last = append(l.last[:0], h.Counts...)
	return mean, n
}

// meanSince returns the mean of the values h counted since the counts
// last (nil: since the start), each taken at its bucket's lower bound, and
// how many there were.
func meanSince(h *runtimemetrics.Float64Histogram, last []uint64) (time.Duration, uint64) {
	var n uint64
	var sum float64
	for i, c := range h.Counts {
		if i < len(last) {
			c -= last[i]
		}
		if c == 0 {
			continue
		}
		n += c
		if lo := h.Buckets[i]; lo > 0 && !math.IsInf(lo, 0) {
			sum += float64(c) * lo
		}
	}
	if n == 0 {
		return 0, 0
	}
	return time.Duration(sum / float64(n) * float64(time.Second)), n
}

// cpuContended returns a judge of the router's CPU over each interval
// between two calls: contended when its goroutines waited, on average,
// contendedLatency or more to run.
func cpuContended() func() bool {
	lat := newSchedLatency()
	lat.read()
	return func() bool {
		mean, n := lat.read()
		return n >= minSchedSamples && mean >= contendedLatency
	}
}

// budgetLoop judges the router's CPU every budgetInterval until ctx ends,
// and adjusts the shadow's share of the events by it.
func (rt *Router) budgetLoop(ctx context.Context) {
	contended := rt.contended
	if contended == nil {
		contended = cpuContended()
	}
	t := time.NewTicker(budgetInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
		rt.shadowBudget.adjust(contended())
	}
}
