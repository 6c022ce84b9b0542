package ingress

import (
	"math"
	runtimemetrics "runtime/metrics"
	"sync"
	"testing"
	"time"
)

// However many delivery workers ask at once, the shadow's share of the
// events is kept exactly.
func TestShadowBudgetKeepsItsShareAcrossWorkers(t *testing.T) {
	const workers, each = 32, 100
	b := newShadowBudget(1.0 / 8)
	for range 3 {
		b.adjust(true)
	}
	var mu sync.Mutex
	admitted := 0
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			n := 0
			for range each {
				if b.admit() {
					n++
				}
			}
			mu.Lock()
			admitted += n
			mu.Unlock()
		})
	}
	wg.Wait()
	if want := workers * each / 8; admitted != want {
		t.Errorf("admitted %d of %d events, want %d (an eighth)", admitted, workers*each, want)
	}
}

// The share halves at each contended interval down to its minimum, and
// grows back by an eighth of the whole at each free one; at a minimum of
// 1 it never moves.
func TestShadowBudgetAdjusts(t *testing.T) {
	b := newShadowBudget(1.0 / 8)
	var got []int64
	for _, contended := range []bool{true, true, true, true, false, false, false, false, false, false, false} {
		b.adjust(contended)
		got = append(got, b.share.Load())
	}
	want := []int64{32, 16, 8, 8, 16, 24, 32, 40, 48, 56, 64}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("shares after each interval = %v, want %v", got, want)
		}
	}
	if !b.full() || !b.adapts() {
		t.Errorf("full = %v, adapts = %v; want both", b.full(), b.adapts())
	}
	fixed := newShadowBudget(1)
	fixed.adjust(true)
	if !fixed.full() || fixed.adapts() || !fixed.admit() {
		t.Errorf("at a minimum share of 1: full = %v, adapts = %v, admit = %v; want true, false, true", fixed.full(), fixed.adapts(), fixed.admit())
	}
}

// The scheduling latency of an interval is the mean of what the runtime
// counted since the last read, each at its bucket's lower bound.
func TestMeanSince(t *testing.T) {
	h := &runtimemetrics.Float64Histogram{Buckets: []float64{math.Inf(-1), 1e-6, 100e-6, 1e-3, math.Inf(1)}, Counts: []uint64{5, 10, 4, 6}}
	seconds := func(s float64) time.Duration { return time.Duration(s * float64(time.Second)) }
	tests := []struct {
		name   string
		last   []uint64
		mean   time.Duration
		events uint64
	}{
		{"since the start", nil, seconds((10*1e-6 + 4*100e-6 + 6*1e-3) / 25), 25},
		{"since a read", []uint64{5, 10, 2, 1}, seconds((2*100e-6 + 5*1e-3) / 7), 7},
		{"nothing since", []uint64{5, 10, 4, 6}, 0, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			mean, n := meanSince(h, tt.last)
			if n != tt.events || (mean-tt.mean).Abs() > time.Nanosecond {
				t.Errorf("meanSince = %v over %d, want %v over %d", mean, n, tt.mean, tt.events)
			}
		})
	}
}
