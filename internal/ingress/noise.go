package ingress

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"net/http"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/compare"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

// maxReportNoise bounds the noise observations a report carries, and
// those kept for the next report when one could not be sent: they are
// best-effort counts (a lost one is learned again from the next events),
// unlike comparison counts.
const maxReportNoise = 500

// noiseKey is what noise is learned for: one partner's events of one type
// in one migration.
type noiseKey struct{ migration, partner, eventType string }

// noiseBook is what the router knows of noise: the paths it saw differ
// between two legacy runs, those the control service learned from every
// router, and the observations not yet reported.
type noiseBook struct {
	mu      sync.Mutex
	local   map[noiseKey]map[string]uint64 // seen here, the probes and at most NoisePathsKept paths a key
	learned map[noiseKey]map[string]uint64 // from the control service, all routers together, with the probes
	owed    map[domain.NoiseObservation]uint64
}

func newNoiseBook() *noiseBook {
	return &noiseBook{local: map[noiseKey]map[string]uint64{}, learned: map[noiseKey]map[string]uint64{}, owed: map[domain.NoiseObservation]uint64{}}
}

// sampledForNoise decides whether the event with id is run through the
// legacy pipeline a second time, at rate: by a hash of its id, so that a
// restart or a replay samples the same events. The hash is salted so that
// the sample is independent of any other decision made on event ids.
func sampledForNoise(id string, rate float64) bool {
	if rate <= 0 {
		return false
	}
	// SHA-256, not FNV: FNV's high bits are far from uniform over ids that
	// differ only in their last characters (evt-1, evt-2, …).
	h := sha256.Sum256([]byte("switchback/noise\x00" + id))
	return float64(binary.BigEndian.Uint64(h[:8])>>11)/(1<<53) < rate
}

// observe records one probe of k's events and the paths that differed
// between its two legacy runs (none when they agreed): the probes are
// counted under domain.NoiseProbesPath, so that a path is weighed against
// them.
func (b *noiseBook) observe(k noiseKey, paths []string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	seen := b.local[k]
	if seen == nil {
		seen = map[string]uint64{}
		b.local[k] = seen
	}
	seen[domain.NoiseProbesPath] = domain.AddCounts(seen[domain.NoiseProbesPath], 1)
	// The probe is owed before its paths, and without room for it they
	// are not owed either: paths reported without their probes would
	// count for more than they are.
	probe := domain.NoiseObservation{Migration: k.migration, Partner: k.partner, EventType: k.eventType, Path: domain.NoiseProbesPath}
	if _, ok := b.owed[probe]; !ok && len(b.owed) >= maxReportNoise {
		return
	}
	b.owed[probe]++
	for _, p := range paths {
		// seen holds the probes beside at most NoisePathsKept paths.
		if _, ok := seen[p]; !ok && len(seen) > domain.NoisePathsKept {
			continue
		}
		// A path the control service would refuse (a field named "a..b",
		// a path past 200 characters) would have the whole report
		// refused: such a path is never learned, so it stays a value_diff.
		if (domain.NoisePin{EventType: k.eventType, Path: p, As: domain.PinNoise}).Validate() != nil {
			continue
		}
		seen[p] = domain.AddCounts(seen[p], 1)
		o := domain.NoiseObservation{Migration: k.migration, Partner: k.partner, EventType: k.eventType, Path: p}
		if _, ok := b.owed[o]; ok || len(b.owed) < maxReportNoise {
			b.owed[o]++
		}
	}
}

// isNoise returns the test Reclassify applies to a comparison of k's
// events: a pin of the migration decides, else the count and probes seen
// here or those of all routers together, whichever makes the path noise.
func (b *noiseBook) isNoise(k noiseKey, pins map[[2]string]domain.Pin) func(string) bool {
	return func(path string) bool {
		pin := pins[[2]string{k.eventType, path}]
		b.mu.Lock()
		local, learned := b.local[k], b.learned[k]
		noise := domain.IsNoise(local[path], local[domain.NoiseProbesPath], pin) ||
			domain.IsNoise(learned[path], learned[domain.NoiseProbesPath], pin)
		b.mu.Unlock()
		return noise
	}
}

// take returns the observations owed to the control service and starts
// afresh.
func (b *noiseBook) take() []domain.NoiseObservation {
	b.mu.Lock()
	defer b.mu.Unlock()
	var out []domain.NoiseObservation
	for o, n := range b.owed {
		o.Count = min(n, domain.MaxReportedCount)
		out = append(out, o)
	}
	clear(b.owed)
	return out
}

// giveBack keeps the observations of a report that could not be sent, as
// far as there is room.
func (b *noiseBook) giveBack(obs []domain.NoiseObservation) {
	b.mu.Lock()
	defer b.mu.Unlock()
	// As in observe, a key's probes come back before its paths, and its
	// paths only with them: paths owed without their probes would count
	// for more than they are.
	kept := map[noiseKey]bool{}
	for _, probes := range []bool{true, false} {
		for _, o := range obs {
			k := noiseKey{o.Migration, o.Partner, o.EventType}
			if (o.Path == domain.NoiseProbesPath) != probes || !probes && !kept[k] {
				continue
			}
			n := o.Count
			o.Count = 0
			if _, ok := b.owed[o]; ok || len(b.owed) < maxReportNoise {
				b.owed[o] = domain.AddCounts(b.owed[o], n)
				kept[k] = kept[k] || probes
			}
		}
	}
}

// setLearned replaces what the control service learned.
func (b *noiseBook) setLearned(obs []domain.NoiseObservation) {
	learned := map[noiseKey]map[string]uint64{}
	for _, o := range obs {
		k := noiseKey{o.Migration, o.Partner, o.EventType}
		if learned[k] == nil {
			learned[k] = map[string]uint64{}
		}
		learned[k][o.Path] = o.Count
	}
	b.mu.Lock()
	b.learned = learned
	b.mu.Unlock()
}

// pinsOf returns a migration's noise pins by event type and path.
func pinsOf(m []domain.NoisePin) map[[2]string]domain.Pin {
	if len(m) == 0 {
		return nil
	}
	out := make(map[[2]string]domain.Pin, len(m))
	for _, p := range m {
		out[[2]string{p.EventType, p.Path}] = p.As
	}
	return out
}

// probeNoise runs the legacy pipeline a second time on a sampled event of
// j, in dry-run, and learns the paths that differ from the other legacy
// result of the event, legacy: the primary's applied effects in shadow,
// the shadow's dry-run in new. It runs in the shadow worker after the
// comparison was recorded, and not at all while the shadow queue is half
// full or the router's CPU is contended (the shadow's share is not
// whole), so that it never costs a comparison, let alone a delivery.
func (rt *Router) probeNoise(ctx context.Context, j shadowJob, legacy compare.Side) {
	tbl := rt.routing.load()
	m, ok := tbl.migrations[j.r.migration]
	if !ok || legacy.Err != nil || !sampledForNoise(j.ev.ID, m.Compare.NoiseRate()) || rt.shadowPool.waiting() > rt.opts.ShadowQueue/2 || !rt.shadowBudget.full() {
		return
	}
	res, err := rt.opts.Pipelines.Call(ctx, m.Pipelines.Legacy.URL, pipelineclient.DryRun, toPipelineEvent(j.ev))
	if ctx.Err() != nil {
		return
	}
	rt.countCall("legacy", pipelineclient.DryRun, err)
	rt.metrics.noiseProbes.Inc()
	if err != nil {
		return // a failed probe says nothing of the fields, nor is it counted
	}
	r := compare.Compare(j.ev.Type, legacy, compare.Side{Effects: res.Effects}, tbl.rules[j.r.migration])
	rt.noise.observe(noiseKey{j.r.migration, j.ev.Partner, j.ev.Type}, r.NoisePaths())
}

// FollowNoise polls the control service at controls every interval until
// ctx ends for the noise learned from every router's observations, which
// the router's comparisons use beside what it saw itself. A poll that a
// replica fails to answer goes to the next.
func (rt *Router) FollowNoise(ctx context.Context, client *http.Client, controls *Controls, token string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		var learned []domain.NoiseObservation
		err := controls.do(ctx, rt.log, func(base string) error {
			var err error
			learned, err = fetchNoise(ctx, client, base, token)
			return err
		})
		switch {
		case err == nil:
			rt.noise.setLearned(learned)
		case ctx.Err() == nil:
			rt.log.Warn("asking the control service for the noise learned failed", "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

// fetchNoise returns the noise paths that the control service at base
// learned.
func fetchNoise(ctx context.Context, client *http.Client, base, token string) ([]domain.NoiseObservation, error) {
	return getJSON[[]domain.NoiseObservation](ctx, client, base+"/v1/noise/learned", token, 16<<20)
}
