package ingress

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// The sample is decided by the event id alone: a restart or a replay
// samples the same events, at about the rate asked.
func TestSampledForNoise(t *testing.T) {
	if sampledForNoise("evt-1", 0) {
		t.Error("sampled at rate 0")
	}
	const n = 20000
	for _, rate := range []float64{0.05, 0.3, 1} {
		hits := 0
		for i := range n {
			id := fmt.Sprintf("evt-%d", i)
			got := sampledForNoise(id, rate)
			if got != sampledForNoise(id, rate) {
				t.Fatalf("%s sampled once and not again", id)
			}
			if got {
				hits++
			}
		}
		if share := float64(hits) / n; share < rate*0.9 || share > rate*1.1 {
			t.Errorf("rate %v: %d of %d sampled (%.3f)", rate, hits, n, share)
		}
	}
}

func TestNoiseBook(t *testing.T) {
	b := newNoiseBook()
	k := noiseKey{"m", "acme", "ticket"}
	isNoise := b.isNoise(k, map[[2]string]domain.Pin{{"ticket", "ticket:fields.status"}: domain.PinNoise, {"ticket", "ticket:fields.requestId"}: domain.PinSignal})
	for range domain.NoiseLearnedAfter - 1 {
		b.observe(k, []string{"ticket:fields.processedAt", "ticket:fields.requestId"})
	}
	if isNoise("ticket:fields.processedAt") {
		t.Errorf("seen %d times: noise already", domain.NoiseLearnedAfter-1)
	}
	if !isNoise("ticket:fields.status") {
		t.Error("pinned noise, never seen: not noise")
	}
	b.observe(k, []string{"ticket:fields.processedAt", "ticket:fields.requestId"})
	if !isNoise("ticket:fields.processedAt") {
		t.Errorf("seen %d times: not noise", domain.NoiseLearnedAfter)
	}
	if isNoise("ticket:fields.requestId") {
		t.Error("pinned signal, learned: noise")
	}
	if other := b.isNoise(noiseKey{"m", "globex", "ticket"}, nil); other("ticket:fields.processedAt") {
		t.Error("learned for acme, noise for globex too")
	}
	// What the control service learned from every router counts too,
	// weighed against the probes of all routers.
	globex := func(path string, n uint64) domain.NoiseObservation {
		return domain.NoiseObservation{Migration: "m", Partner: "globex", EventType: "ticket", Path: path, Count: n}
	}
	b.setLearned([]domain.NoiseObservation{globex(domain.NoiseProbesPath, 10), globex("ticket:fields.x", 7), globex("ticket:fields.rare", 4)})
	other := b.isNoise(noiseKey{"m", "globex", "ticket"}, nil)
	if !other("ticket:fields.x") {
		t.Error("learned by the control service, 7 in 10 probes: not noise")
	}
	if other("ticket:fields.rare") {
		t.Error("4 in 10 probes of all routers: noise")
	}

	obs := b.take()
	want := map[string]uint64{domain.NoiseProbesPath: domain.NoiseLearnedAfter, "ticket:fields.processedAt": domain.NoiseLearnedAfter, "ticket:fields.requestId": domain.NoiseLearnedAfter}
	got := map[string]uint64{}
	for _, o := range obs {
		got[o.Path] = o.Count
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("take = %+v, want %v", obs, want)
	}
	if again := b.take(); len(again) != 0 {
		t.Errorf("take again = %+v, want nothing", again)
	}
	b.giveBack(obs)
	if back := b.take(); len(back) != 3 {
		t.Errorf("after giveBack, take = %+v, want the three again", back)
	}

	// Bounded: paths per key (beside the probes), and rows owed.
	for i := range domain.NoisePathsKept + 10 {
		b.observe(noiseKey{"m", "initech", "ticket"}, []string{fmt.Sprintf("ticket:fields.f%d", i)})
	}
	if got := len(b.local[noiseKey{"m", "initech", "ticket"}]); got != domain.NoisePathsKept+1 {
		t.Errorf("%d paths kept, want %d and the probes", got-1, domain.NoisePathsKept)
	}
	if got := b.local[noiseKey{"m", "initech", "ticket"}][domain.NoiseProbesPath]; got != domain.NoisePathsKept+10 {
		t.Errorf("%d probes counted past the bound on paths, want %d", got, domain.NoisePathsKept+10)
	}
	b.take()
	for i := range maxReportNoise * 2 {
		b.observe(noiseKey{"m", fmt.Sprintf("p%d", i), "ticket"}, []string{"ticket:fields.a"})
	}
	owed := b.take()
	if len(owed) != maxReportNoise {
		t.Errorf("%d observations owed, want at most %d", len(owed), maxReportNoise)
	}
	// A path is never owed without its probe.
	probed := map[string]bool{}
	for _, o := range owed {
		if o.Path == domain.NoiseProbesPath {
			probed[o.Partner] = true
		}
	}
	for _, o := range owed {
		if !probed[o.Partner] {
			t.Fatalf("%s's %s owed without its probes", o.Partner, o.Path)
		}
	}
}

// A path that differs between two legacy runs only now and then (a random
// tie-break) is a legacy bug, not noise, however often it was seen: it
// must not hide a new pipeline that gets the field wrong every time.
func TestRareDifferencesAreNotNoise(t *testing.T) {
	b := newNoiseBook()
	k := noiseKey{"m", "acme", "ticket"}
	isNoise := b.isNoise(k, nil)
	for i := range 6000 {
		paths := []string{"ticket:fields.processedAt"}
		if i%100 == 0 {
			paths = append(paths, "ticket:fields.assignee")
		}
		b.observe(k, paths)
	}
	if isNoise("ticket:fields.assignee") {
		t.Error("a path that differed in 1% of 6000 probes is noise")
	}
	if !isNoise("ticket:fields.processedAt") {
		t.Error("a path that differed in every probe is not noise")
	}
	if !b.isNoise(k, map[[2]string]domain.Pin{{"ticket", "ticket:fields.assignee"}: domain.PinNoise})("ticket:fields.assignee") {
		t.Error("pinned noise: not noise")
	}
}

// BenchmarkNoiseDecision is what noise costs every shadowed event that is
// not sampled: the sample decision, and the reclassifying test of a
// value_diff's paths.
func BenchmarkNoiseDecision(b *testing.B) {
	book := newNoiseBook()
	k := noiseKey{"m", "acme", "ticket"}
	for range domain.NoiseLearnedAfter {
		book.observe(k, []string{"ticket:fields.processedAt", "ticket:fields.requestId"})
	}
	isNoise := book.isNoise(k, nil)
	b.ReportAllocs()
	for b.Loop() {
		sampledForNoise("evt_87c4e424618ef75c899f7b5b", domain.DefaultNoiseSampleRate)
		isNoise("ticket:fields.processedAt")
		isNoise("ticket:fields.requestId")
	}
}

// A path the control service would refuse is never learned nor reported:
// it would have the whole report, counts and all, refused.
func TestNoiseBookSkipsPathsTheControlServiceRefuses(t *testing.T) {
	b := newNoiseBook()
	k := noiseKey{"m", "acme", "ticket"}
	odd := "ticket:fields.a..b"
	for range domain.NoiseLearnedAfter {
		b.observe(k, []string{odd, "ticket:fields.ok"})
	}
	if b.isNoise(k, nil)(odd) {
		t.Errorf("%s learned", odd)
	}
	r := wire.Report{Router: "r", Noise: b.take()}
	if len(r.Noise) != 2 || slices.ContainsFunc(r.Noise, func(o domain.NoiseObservation) bool { return o.Path == odd }) {
		t.Errorf("observations = %+v, want the probes and fields.ok only", r.Noise)
	}
	if err := r.Validate(time.Now()); err != nil {
		t.Errorf("the report is refused: %v", err)
	}
}

// Rows given back after a failed send into an almost full book keep a
// key's paths only with its probes, whatever the order they come in.
func TestNoiseGivenBackKeepsPathsWithTheirProbes(t *testing.T) {
	b := newNoiseBook()
	for i := range maxReportNoise - 1 {
		b.observe(noiseKey{"m", fmt.Sprintf("p%d", i), "ticket"}, nil) // one probe row each
	}
	row := func(path string) domain.NoiseObservation {
		return domain.NoiseObservation{Migration: "m", Partner: "acme", EventType: "ticket", Path: path, Count: 5}
	}
	// Paths first, as a map's order may give them: one free slot.
	b.giveBack([]domain.NoiseObservation{row("ticket:fields.x"), row("ticket:fields.y"), row(domain.NoiseProbesPath)})
	var paths, probes int
	for _, o := range b.take() {
		if o.Partner != "acme" {
			continue
		}
		if o.Path == domain.NoiseProbesPath {
			probes++
		} else {
			paths++
		}
	}
	if paths > 0 && probes == 0 {
		t.Errorf("%d paths given back without their probes", paths)
	}
	if probes != 1 {
		t.Errorf("%d probe rows given back into the one free slot, want 1", probes)
	}
}
