package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/refpipe"
)

// handlerSwap serves whichever handler it holds, replaceable while it runs.
type handlerSwap struct{ h atomic.Pointer[http.Handler] }

func (s *handlerSwap) set(h http.Handler) { s.h.Store(&h) }

func (s *handlerSwap) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	(*s.h.Load()).ServeHTTP(w, r)
}

// A legacy pipeline that stamps a fresh time and a random id into every
// effect differs from itself, and so from any correct rewrite, on every
// event. Running legacy twice on a sample of events teaches switchback
// that those fields are noise: a correct new pipeline passes its cohort's
// mismatch-rate gate anyway, with the noise paths listed. Noise hides
// nothing else: once the new pipeline has the seed's cached-handler bug,
// the gate fails on type_mismatch.
func TestNoisyLegacyLearnedCleanCohortPasses(t *testing.T) {
	legacy := refpipe.New("legacy", refpipe.Faults{Noisy: true}, 1)
	var newAt handlerSwap
	newAt.set(refpipe.New("new", refpipe.Faults{}, 2))
	legacySrv, newSrv := httptest.NewServer(legacy), httptest.NewServer(&newAt)
	defer legacySrv.Close()
	defer newSrv.Close()

	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", t.TempDir())
	api := func(method, path string, body any, out any) int {
		return call(t, method, s.url+path, crashAdmin, body, out)
	}
	if got := api("PUT", "/v1/partners/acme", map[string]any{"name": "acme", "psa": "generic", "secret": crashSecret}, nil); got != 201 {
		t.Fatalf("partner = %d", got)
	}
	const mig = "/v1/migrations/psa-webhooks-v2"
	if got := api("PUT", mig, map[string]any{
		"pipelines": map[string]any{"legacy": map[string]string{"url": legacySrv.URL}, "new": map[string]string{"url": newSrv.URL}},
		// A high sample rate keeps the test short; the default is 0.05.
		"compare": map[string]any{"noiseSampleRate": 0.3},
		"gates":   map[string]any{"minComparisons": 200, "maxMismatchRate": 0.1, "minBakeSeconds": 0},
	}, nil); got != 201 {
		t.Fatalf("migration = %d", got)
	}
	api("PUT", mig+"/cohorts/canary", map[string]any{"order": 1, "partners": []string{"acme"}}, nil)
	if got := api("POST", mig+"/cohorts/canary/advance", map[string]any{"reason": "shadow it"}, nil); got != 200 {
		t.Fatalf("advance to shadow = %d", got)
	}
	waitRouterCurrent(t, s.url)

	n := 0
	send := func(count int) {
		for range count {
			n++
			typ := "ticket"
			if n%2 == 0 {
				typ = "schedule_entry"
			}
			sendTypedUntilAccepted(t, s.url, "acme", fmt.Sprintf("acme-%s-%04d", typ, n), typ+".updated")
		}
	}
	type comparisons struct {
		Counts map[string]map[string]int
	}
	byClass := func() (map[string]int, int) {
		var c comparisons
		api("GET", mig+"/partners/acme/comparisons", nil, &c)
		out, total := map[string]int{}, 0
		for _, classes := range c.Counts {
			for class, k := range classes {
				out[class] += k
				total += k
			}
		}
		return out, total
	}
	type gateReport struct {
		Pass     bool
		Partners []struct {
			Checks []struct {
				Name  string
				Pass  bool
				Value float64
			}
		}
	}
	check := func(g gateReport, name string) (pass bool, value float64) {
		for _, p := range g.Partners {
			for _, c := range p.Checks {
				if c.Name == name {
					return c.Pass, c.Value
				}
			}
		}
		t.Fatalf("the gate report has no %s check: %+v", name, g)
		return false, 0
	}

	type noiseView struct {
		NoiseSampleRate float64
		Paths           []struct {
			EventType, Path string
			Count           int
			Learned, Noise  bool
		}
	}
	learnedNoise := func() (map[string]bool, noiseView) {
		var v noiseView
		api("GET", mig+"/partners/acme/noise", nil, &v)
		learned := map[string]bool{}
		for _, p := range v.Paths {
			if p.Learned && p.Noise {
				learned[p.EventType+":"+p.Path] = true
			}
		}
		return learned, v
	}

	// Until the stamps were seen often enough, events are value_diffs:
	// how many depends on how many were in flight meanwhile, at most the
	// warm-up's. Once the control service lists the paths as learned, the
	// router that reported them knows them too.
	warmUp := 0
	for learned, _ := learnedNoise(); len(learned) < 4; learned, _ = learnedNoise() {
		if warmUp == 200 {
			t.Fatalf("after %d events, the stamped paths are not learned: %v", warmUp, learned)
		}
		send(20)
		warmUp += 20
		time.Sleep(1500 * time.Millisecond) // a report or two
	}
	events := warmUp + 600
	send(events - warmUp)
	var classes map[string]int
	waitUntil(t, "acme's comparisons reported", func() bool {
		var total int
		classes, total = byClass()
		return total >= events
	})
	t.Logf("a correct new pipeline against a noisy legacy, %d events: %v", events, classes)
	t.Logf("learned after a warm-up of %d events", warmUp)
	if classes["noise"] < events-warmUp || classes["value_diff"] > warmUp || classes["noise"]+classes["value_diff"] != events {
		t.Errorf("classes = %v, want every event noise but some of the %d of the warm-up, value_diff", classes, warmUp)
	}
	var gate gateReport
	api("GET", mig+"/cohorts/canary/gate", nil, &gate)
	if pass, upper := check(gate, "maxMismatchRate"); !pass {
		t.Errorf("maxMismatchRate fails (upper bound %.3f): the noise was not discounted; gate %+v", upper, gate)
	}
	if !gate.Pass {
		t.Errorf("the clean cohort's gate does not pass: %+v", gate)
	}

	learned, noise := learnedNoise()
	for _, typ := range []string{"ticket", "schedule_entry"} {
		for _, f := range []string{refpipe.NoisyTime, refpipe.NoisyID} {
			if !learned[typ+":"+typ+":fields."+f] {
				t.Errorf("%s events' %s:fields.%s is not listed as learned noise: %+v", typ, typ, f, noise)
			}
		}
	}
	if len(noise.Paths) != 4 || noise.NoiseSampleRate != 0.3 {
		t.Errorf("noise = %+v, want exactly the four stamped paths, at the rate set", noise)
	}

	// The seed's bug in the new pipeline: noise must not hide it.
	newAt.set(refpipe.New("new", refpipe.Faults{CachedHandler: 0.5}, 3))
	send(60)
	waitUntil(t, "the type mismatches reported", func() bool {
		classes, _ = byClass()
		return classes["type_mismatch"] > 0
	})
	api("GET", mig+"/cohorts/canary/gate", nil, &gate)
	if pass, zero := check(gate, "zeroTolerance"); pass || zero == 0 || gate.Pass {
		t.Errorf("with the cached-handler bug, zeroTolerance = %v (%v), gate pass %v; want a failure on type_mismatch", pass, zero, gate.Pass)
	}
	if got := api("POST", mig+"/cohorts/canary/advance", map[string]any{"reason": "try"}, nil); got != 409 {
		t.Errorf("advance with type mismatches = %d, want 409", got)
	}
}
