package main

import (
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/refpipe"
)

// The seed incident, end to end: a new pipeline whose handler cache is
// keyed by partner alone sometimes handles a ticket event with the cached
// schedule handler. In shadow, the mismatch is caught for the partner whose
// traffic hits it, with a readable diff, its cohort's gate refuses while a
// clean cohort's passes; forced onto new anyway, the guard reverts the
// partner within seconds and every event the new pipeline got wrong is
// replayed through legacy: nothing is lost.
func TestSeedIncidentCaughtRevertedReplayed(t *testing.T) {
	legacy := refpipe.New("legacy", refpipe.Faults{}, 1)
	buggy := refpipe.New("new", refpipe.Faults{CachedHandler: 0.5}, 2)
	legacySrv, newSrv := httptest.NewServer(legacy), httptest.NewServer(buggy)
	defer legacySrv.Close()
	defer newSrv.Close()

	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", t.TempDir())
	api := func(method, path string, body any, out any) int {
		return call(t, method, s.url+path, crashAdmin, body, out)
	}
	for _, p := range []string{"acme", "initech"} {
		if got := api("PUT", "/v1/partners/"+p, map[string]any{"name": p, "psa": "generic", "secret": crashSecret}, nil); got != 201 {
			t.Fatalf("partner %s = %d", p, got)
		}
	}
	const mig = "/v1/migrations/psa-webhooks-v2"
	if got := api("PUT", mig, map[string]any{
		"pipelines": map[string]any{"legacy": map[string]string{"url": legacySrv.URL}, "new": map[string]string{"url": newSrv.URL}},
		"gates":     map[string]any{"minComparisons": 30, "maxMismatchRate": 0.15, "minBakeSeconds": 0, "minPerEventType": 30},
		"guard":     map[string]any{"scope": "partner", "window": 50},
	}, nil); got != 201 {
		t.Fatalf("migration = %d", got)
	}
	api("PUT", mig+"/cohorts/canary", map[string]any{"order": 1, "partners": []string{"acme"}}, nil)
	api("PUT", mig+"/cohorts/clean", map[string]any{"order": 2, "partners": []string{"initech"}}, nil)
	for _, c := range []string{"canary", "clean"} {
		if got := api("POST", mig+"/cohorts/"+c+"/advance", map[string]any{"reason": "shadow it"}, nil); got != 200 {
			t.Fatalf("advance %s to shadow = %d", c, got)
		}
	}

	waitRouterCurrent(t, s.url)
	// acme's PSA sends tickets and schedule entries; initech's only tickets.
	n := 0
	send := func(partner string, mixed bool, count int) []string {
		var entities []string
		for range count {
			n++
			typ := "ticket"
			if mixed && n%2 == 0 {
				typ = "schedule_entry"
			}
			id := fmt.Sprintf("%s-%s-%04d", partner, typ, n)
			sendTypedUntilAccepted(t, s.url, partner, id, typ+".updated")
			entities = append(entities, typ+"/"+id)
		}
		return entities
	}
	send("acme", true, 40)
	send("initech", false, 40)

	type comparisons struct {
		Counts     map[string]map[string]int
		Mismatches []struct{ Class, Diff, EventType string }
	}
	var acme comparisons
	waitUntil(t, "acme's comparisons reported", func() bool {
		api("GET", mig+"/partners/acme/comparisons", nil, &acme)
		total := 0
		for _, byClass := range acme.Counts {
			for _, k := range byClass {
				total += k
			}
		}
		return total >= 40
	})
	if acme.Counts["ticket"]["type_mismatch"] == 0 || len(acme.Mismatches) == 0 {
		t.Fatalf("acme's comparisons = %+v, want type mismatches on tickets", acme)
	}
	if m := acme.Mismatches[0]; m.Class != "type_mismatch" || !strings.Contains(m.Diff, "schedule_entry") {
		t.Errorf("mismatch = %+v, want a type_mismatch whose diff names the schedule_entry effect", m)
	}
	var gate struct {
		Pass     bool
		Partners []struct {
			Partner string
			Checks  []struct {
				Name  string
				Pass  bool
				Value float64
			}
		}
	}
	waitUntil(t, "initech's comparisons reported", func() bool {
		api("GET", mig+"/cohorts/clean/gate", nil, &gate)
		return gate.Pass
	})
	api("GET", mig+"/cohorts/canary/gate", nil, &gate)
	if gate.Pass {
		t.Fatalf("the canary cohort's gate passes despite type mismatches: %+v", gate)
	}
	if got := api("POST", mig+"/cohorts/canary/advance", map[string]any{"reason": "try"}, nil); got != 409 {
		t.Errorf("unforced advance of canary = %d, want 409", got)
	}

	// Someone forces acme onto new anyway: the guard must catch it.
	if got := api("POST", mig+"/cohorts/canary/advance", map[string]any{"reason": "vendor insists", "force": true}, nil); got != 200 {
		t.Fatalf("forced advance = %d", got)
	}
	waitRouterCurrent(t, s.url)
	exposed := time.Now()
	onNew := send("acme", true, 30)
	var stage []struct{ Partner, Stage string }
	waitUntil(t, "the guard to revert acme", func() bool {
		api("GET", mig+"/partners", nil, &stage)
		for _, p := range stage {
			if p.Partner == "acme" {
				return p.Stage == "shadow"
			}
		}
		return false
	})
	reverted := time.Since(exposed)
	var audit []struct{ Actor, Action, Target, Reason string }
	api("GET", "/v1/audit?limit=1000", nil, &audit)
	guarded := false
	for _, e := range audit {
		if e.Actor == "guard" && e.Action == "stage.set" && strings.Contains(e.Reason, "type_mismatch") {
			guarded = true
		}
	}
	if !guarded {
		t.Errorf("no audit entry by the guard with its evidence: %+v", audit)
	}
	var replays []struct {
		ID, Status          string
		Total, Done, Failed int
	}
	waitUntil(t, "the guard's replay to finish", func() bool {
		api("GET", "/v1/replays", nil, &replays)
		return len(replays) > 0 && replays[0].Status == "done"
	})
	replayed := time.Since(exposed)
	t.Logf("from the first event on new: guard revert observed after %v, its replay done after %v (it awaits every comparison of the events new applied)",
		reverted.Round(time.Millisecond), replayed.Round(time.Millisecond))
	if r := replays[0]; r.Total == 0 || r.Failed != 0 {
		t.Errorf("replay = %+v, want the mismatched events replayed, none failed", r)
	}
	// Nothing lost: each event sent while acme was on new was applied
	// correctly, by new itself or by the replay through legacy.
	lost := 0
	for _, ent := range onNew {
		if _, ok := buggy.Applied()[ent]; ok {
			continue
		}
		if _, ok := legacy.Applied()[ent]; !ok {
			lost++
			t.Errorf("%s was applied by neither pipeline correctly", ent)
		}
	}
	t.Logf("acme on new: %d events, %d mismatches replayed through legacy, %d lost", len(onNew), replays[0].Total, lost)
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// waitRouterCurrent waits until the embedded router has confirmed the
// current snapshot version, as an operator watches GET /v1/routers.
func waitRouterCurrent(t *testing.T, base string) {
	t.Helper()
	waitUntil(t, "the router to confirm the current snapshot", func() bool {
		var routers []struct{ Confirmed bool }
		call(t, "GET", base+"/v1/routers", crashAdmin, nil, &routers)
		return len(routers) > 0 && routers[0].Confirmed
	})
}
