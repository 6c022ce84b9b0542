package demo

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/controlclient"
	"github.com/switchbackhq/switchback/internal/gate"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
	"github.com/switchbackhq/switchback/internal/refpipe"
	"github.com/switchbackhq/switchback/internal/simulate"
	"github.com/switchbackhq/switchback/internal/wire"
)

// Config configures a demo run.
type Config struct {
	Data     string // "" for a temporary directory, removed at the end
	Addr     string
	Scenario string // shadow, exposed, noisy or dropped
	Partners int
	Rate     float64
	Duration time.Duration // 0: until interrupted
	Fault    float64       // the cached-handler fault rate of the new pipeline; in the noisy scenario, of wave-2's only
	Seed     uint64
}

// Result is what a demo run leaves, for its test.
type Result struct {
	URL, Token   string
	Ledger       []simulate.LedgerEntry
	Legacy, New  *refpipe.Pipeline
	Caught       map[string]int // canary partners → type mismatches seen
	GateRefused  bool
	GuardStages  map[string]string
	ReplaysDone  int
	Acknowledged int

	// The noisy scenario's canary: the event types whose stamps were
	// learned as noise, by partner; its gate's verdicts in the order they
	// were seen (each once in a row); its comparisons by class; whether it
	// advanced to new.
	NoiseLearned map[string][]string
	Verdicts     []gate.Verdict
	Classes      map[string]int
	Advanced     bool
	// The noisy scenario's wave-2: its new pipeline, with the cached-handler
	// bug; whether its gate failed on zero tolerance, and the type
	// mismatches of the partner it failed for, when it did.
	Buggy               *refpipe.Pipeline
	BuggyRefused        bool
	BuggyTypeMismatches int

	// The dropped scenario: the simulator's run (its dropped changes), the
	// first reconciliation's gaps, the gaps its backfill applied, and the
	// gaps a second reconciliation found.
	Sim               simulate.Stats
	Gaps              []wire.Finding
	Backfilled        int
	GapsAfterBackfill int
}

// Migration is the key of the demo's migration.
const Migration = "psa-webhooks-v2"

// ServeFunc runs the control service with its ingress router and UI on
// addr, with its data in data and the admin token adminToken, until ctx
// ends. It must write "listening on URL" to stdout once it listens: the
// demo reads the URL from there.
type ServeFunc func(ctx context.Context, data, addr, adminToken string, stdout, stderr io.Writer) error

// Validate checks the scenario and the ranges of the numbers.
func (c Config) Validate() error {
	if c.Scenario != "shadow" && c.Scenario != "exposed" && c.Scenario != "noisy" && c.Scenario != "dropped" {
		return errors.New("--scenario must be shadow, exposed, noisy or dropped")
	}
	if c.Partners < 3 || c.Partners > 200 || c.Rate <= 0 || c.Fault < 0 || c.Fault > 1 {
		return errors.New("--partners must be 3 to 200, --rate positive, --fault between 0 and 1")
	}
	return nil
}

// say narrates one step.
func say(w io.Writer, format string, args ...any) {
	fmt.Fprintf(w, "%s  %s\n", time.Now().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// lineWatcher passes writes on and reports the first match of re.
type lineWatcher struct {
	mu    sync.Mutex
	buf   strings.Builder
	re    *regexp.Regexp
	found chan string
	once  sync.Once
}

func (l *lineWatcher) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)
	if m := l.re.FindStringSubmatch(l.buf.String()); m != nil {
		l.once.Do(func() { l.found <- m[1] })
	}
	return len(p), nil
}

// servePipeline serves p on loopback until ctx ends.
func servePipeline(ctx context.Context, wg *sync.WaitGroup, p http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	srv := &http.Server{Handler: p, ReadHeaderTimeout: 5 * time.Second}
	wg.Go(func() { srv.Serve(ln) })
	wg.Go(func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(sctx)
	})
	return "http://" + ln.Addr().String(), nil
}

// partnersOf makes partners of every PSA kind with secrets in each kind's
// format.
func partnersOf(n int) []simulate.Partner {
	names := []string{"acme", "globex", "initech", "umbrella", "hooli", "stark", "wayne", "wonka", "tyrell", "cyberdyne", "soylent", "aperture"}
	kinds := []string{"connectwise", "autotask", "halopsa", "generic"}
	out := make([]simulate.Partner, n)
	for i := range out {
		id := fmt.Sprintf("partner-%02d", i+1)
		if i < len(names) {
			id = names[i]
		}
		key := make([]byte, 24)
		rand.Read(key)
		secret := base64.RawURLEncoding.EncodeToString(key)
		kind := kinds[i%len(kinds)]
		switch kind {
		case "halopsa":
			secret = "bearer:" + secret
		case "generic":
			secret = "whsec_" + base64.StdEncoding.EncodeToString(key)
		}
		out[i] = simulate.Partner{ID: id, PSA: kind, Secret: secret}
	}
	return out
}

// Run runs the demo until cfg.Duration passes or ctx ends, narrating on
// stdout; serve runs the control service, whose logs go to stderr. It
// returns what the run left even when ctx ended it, with ctx's error; the
// other errors are those of the control service's start and of setting
// the migration up through its API.
func Run(ctx context.Context, cfg Config, serve ServeFunc, stdout, stderr io.Writer) (*Result, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if cfg.Data == "" {
		dir, err := os.MkdirTemp("", "switchback-demo-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.Data = dir
	}
	res := &Result{Token: control.NewSecret(), Caught: map[string]int{}, GuardStages: map[string]string{},
		NoiseLearned: map[string][]string{}, Classes: map[string]int{},
		Legacy: refpipe.New("legacy", refpipe.Faults{}, cfg.Seed), New: refpipe.New("new", refpipe.Faults{CachedHandler: cfg.Fault}, cfg.Seed+1)}
	partners := partnersOf(cfg.Partners)
	var newPipeline http.Handler = res.New
	if cfg.Scenario == "noisy" {
		res.Legacy = refpipe.New("legacy", refpipe.Faults{Noisy: true}, cfg.Seed)
		res.New = refpipe.New("new", refpipe.Faults{}, cfg.Seed+1)
		res.Buggy = refpipe.New("new", refpipe.Faults{CachedHandler: cfg.Fault}, cfg.Seed+2)
		newPipeline = byPartner{buggy: cohortOf(partners, 1), clean: res.New, bug: res.Buggy}
	}

	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	legacyURL, err := servePipeline(ctx, &wg, res.Legacy)
	if err != nil {
		return nil, err
	}
	newURL, err := servePipeline(ctx, &wg, newPipeline)
	if err != nil {
		return nil, err
	}
	if cfg.Scenario == "noisy" {
		say(stdout, "legacy pipeline on %s, stamping a fresh %s and a random %s into every effect, so that it differs even from itself; rewritten pipeline on %s, correct, but for the partners of wave-2 (%s): for them it handles %.0f%% of events with a handler cached by partner alone (the incident's bug)",
			legacyURL, refpipe.NoisyTime, refpipe.NoisyID, newURL, strings.Join(cohortOf(partners, 1), ", "), cfg.Fault*100)
	} else if cfg.Scenario == "dropped" {
		say(stdout, "legacy pipeline on %s, applying every partner's events; rewritten pipeline on %s, unused", legacyURL, newURL)
	} else {
		say(stdout, "legacy pipeline on %s; rewritten pipeline on %s, handling %.0f%% of events with a handler cached by partner alone (the incident's bug)", legacyURL, newURL, cfg.Fault*100)
	}

	watch := &lineWatcher{re: regexp.MustCompile(`listening on (http://\S+)`), found: make(chan string, 1)}
	serveErr := make(chan error, 1)
	wg.Go(func() { serveErr <- serve(ctx, cfg.Data, cfg.Addr, res.Token, watch, stderr) })
	select {
	case res.URL = <-watch.found:
	case err := <-serveErr:
		return nil, fmt.Errorf("the control service did not start: %w", err)
	case <-time.After(15 * time.Second):
		return nil, errors.New("the control service did not start within 15 s")
	}
	say(stdout, "control service, ingress router and UI on %s (data in %s)", res.URL, cfg.Data)
	say(stdout, "open the UI: %s/login?token=%s", res.URL, res.Token)

	api := controlclient.New(res.URL, res.Token)
	if err := setup(ctx, api, cfg, partners, legacyURL, newURL, stdout); err != nil {
		return nil, err
	}
	var changes *simulate.ChangeAPI
	if cfg.Scenario == "dropped" {
		if changes, err = simulate.NewChangeAPI(partners); err != nil {
			return nil, err
		}
		root, err := servePipeline(ctx, &wg, changes)
		if err != nil {
			return nil, err
		}
		if err := setupPSAAPIs(ctx, api, changes, root, partners); err != nil {
			return nil, err
		}
		say(stdout, "each PSA's change API (ConnectWise, Autotask, HaloPSA, the generic feed) on %s/psa/PARTNER, set as the partner's psaApi; the PSAs will drop %.0f%% of their webhooks", root, droppedRate*100)
	}
	start := time.Now()

	simDone := make(chan simulate.Stats, 1)
	simCtx, stopSim := context.WithCancel(ctx)
	defer stopSim()
	simCfg := simulate.Config{URL: res.URL, Partners: partners, Rate: cfg.Rate, Seed: cfg.Seed, Duplicates: 0.02, Duration: simulate.MaxDuration}
	if cfg.Duration > 0 {
		simCfg.Duration = cfg.Duration
	}
	if cfg.Scenario == "dropped" {
		simCfg.Drop, simCfg.ChangeAPI = droppedRate, changes
		if cfg.Duration == 0 {
			simCfg.Duration = droppedTraffic
		}
	}
	say(stdout, "PSA simulator: %d partners (ConnectWise, Autotask, HaloPSA, Standard Webhooks) at %.0f webhooks/s", len(partners), cfg.Rate)
	if cfg.Scenario == "noisy" {
		simCfg.Mix = noisyMix
		say(stdout, "only ticket and schedule entry events: each event type counts value_diffs until its own noise is learned, and those stay in the mismatch rate")
	}
	wg.Go(func() {
		st, err := simulate.Run(simCtx, simCfg, nil)
		if err != nil && simCtx.Err() == nil {
			fmt.Fprintln(stderr, "simulator:", err)
		}
		simDone <- st
	})

	canary := cohortOf(partners, 0)
	var noisy *noisyNarrator
	if cfg.Scenario == "noisy" {
		noisy = &noisyNarrator{api: api, canary: canary, res: res, out: stdout}
	}
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var sim simulate.Stats
loop:
	for {
		select {
		case sim = <-simDone:
			break loop
		case <-ctx.Done():
			stopSim()
			sim = <-simDone
			break loop
		case <-tick.C:
			if noisy != nil {
				noisy.tick(ctx)
			} else {
				narrate(ctx, api, cfg, canary, res, stdout)
			}
		}
	}
	res.Ledger, res.Acknowledged, res.Sim = sim.Ledger, sim.Acknowledged, sim
	say(stdout, "simulator done: %d webhooks sent, %d acknowledged", sim.Sent, sim.Acknowledged)
	if ctx.Err() != nil {
		return res, ctx.Err()
	}
	// Let delivery, comparisons, the guard and its replay finish.
	settle(ctx, api, cfg, canary, noisy, res, stdout)
	if cfg.Scenario == "dropped" {
		return res, reconcileDropped(ctx, api, partners, start.Add(-time.Minute), sim, res, stdout)
	}
	return res, nil
}

func cohortOf(partners []simulate.Partner, i int) []string {
	size := (len(partners) + 2) / 3
	var out []string
	for j := i * size; j < min(len(partners), (i+1)*size); j++ {
		out = append(out, partners[j].ID)
	}
	return out
}

func setup(ctx context.Context, api *controlclient.Client, cfg Config, partners []simulate.Partner, legacyURL, newURL string, out io.Writer) error {
	for _, p := range partners {
		if err := api.Do(ctx, http.MethodPut, controlclient.Path("v1", "partners", p.ID), map[string]any{"name": strings.ToUpper(p.ID[:1]) + p.ID[1:], "psa": p.PSA, "secret": p.Secret}, nil); err != nil {
			return err
		}
	}
	mig := map[string]any{
		"description": "PSA webhooks on the rewritten pipeline",
		"pipelines":   map[string]any{"legacy": map[string]string{"url": legacyURL}, "new": map[string]string{"url": newURL}},
		"gates":       map[string]any{"minComparisons": 30, "maxMismatchRate": 0.05, "minBakeSeconds": 20},
		"guard":       map[string]any{"scope": "partner", "window": 100},
	}
	if cfg.Scenario == "noisy" {
		mig["compare"] = map[string]any{"noiseSampleRate": noisySampleRate}
		mig["gates"] = noisyGates
	}
	if err := api.Do(ctx, http.MethodPut, controlclient.Path("v1", "migrations", Migration), mig, nil); err != nil {
		return err
	}
	for i, name := range []string{"canary", "wave-2", "wave-3"} {
		if err := api.Do(ctx, http.MethodPut, controlclient.Path("v1", "migrations", Migration, "cohorts", name), map[string]any{"order": i + 1, "partners": cohortOf(partners, i)}, nil); err != nil {
			return err
		}
	}
	say(out, "migration %s: %d partners in cohorts canary, wave-2, wave-3, all on legacy", Migration, len(partners))
	if cfg.Scenario == "noisy" {
		say(out, "compare.noiseSampleRate %g: every event of a partner in shadow is run through legacy a second time, in dry-run, to learn what differs between two legacy runs (the default, 0.05, learns in minutes what the demo learns in seconds)", noisySampleRate)
		say(out, "gates: minComparisons %v, maxMismatchRate %v%% (of the 95%% Wilson upper bound), minBakeSeconds %v, minPerEventType %v (default 50): loose enough for the demo to pass them within a minute", noisyGates["minComparisons"], noisyGates["maxMismatchRate"].(float64)*100, noisyGates["minBakeSeconds"], noisyGates["minPerEventType"])
	}
	if cfg.Scenario == "dropped" {
		return waitRouters(ctx, api) // every partner stays on legacy
	}
	if err := api.Do(ctx, http.MethodPost, controlclient.Path("v1", "migrations", Migration, "cohorts", "canary", "advance"), map[string]any{"reason": "demo: start shadowing"}, nil); err != nil {
		return err
	}
	say(out, "canary (%s) advanced to shadow: legacy applies, the new pipeline runs in dry-run and is compared", strings.Join(cohortOf(partners, 0), ", "))
	if cfg.Scenario == "noisy" {
		if err := api.Do(ctx, http.MethodPost, controlclient.Path("v1", "migrations", Migration, "cohorts", "wave-2", "advance"), map[string]any{"reason": "demo: shadow the buggy cohort too"}, nil); err != nil {
			return err
		}
		say(out, "wave-2 (%s) advanced to shadow as well, against the buggy handler cache", strings.Join(cohortOf(partners, 1), ", "))
	}
	if cfg.Scenario == "exposed" {
		err := api.Do(ctx, http.MethodPost, controlclient.Path("v1", "migrations", Migration, "cohorts", "canary", "advance"), map[string]any{"reason": "demo: vendor insists, skip the bake", "force": true}, nil)
		if err != nil {
			return err
		}
		say(out, "canary FORCED onto new without passing the gates: the new pipeline now applies their events; the guard watches")
	}
	return waitRouters(ctx, api)
}

// waitRouters waits until every router holds the current snapshot.
func waitRouters(ctx context.Context, api *controlclient.Client) error {
	deadline := time.Now().Add(15 * time.Second)
	for {
		rs, err := api.Routers(ctx)
		if err != nil {
			return err
		}
		if len(rs) > 0 && rs[0].Confirmed {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.New("the router did not confirm the snapshot within 15 s")
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// narrate reports what changed: mismatches caught, the gate's verdict,
// the guard's reverts and replays.
func narrate(ctx context.Context, api *controlclient.Client, cfg Config, canary []string, res *Result, out io.Writer) {
	if cfg.Scenario == "dropped" {
		return // nothing shadows: the story is told once the traffic ends
	}
	for _, p := range canary {
		var c struct {
			Counts     map[string]map[string]int
			Mismatches []struct{ Class, Diff, EventType string }
		}
		if api.Do(ctx, http.MethodGet, controlclient.Path("v1", "migrations", Migration, "partners", p, "comparisons"), nil, &c) != nil {
			continue
		}
		n := 0
		for _, byClass := range c.Counts {
			n += byClass["type_mismatch"]
		}
		if n > 0 && res.Caught[p] == 0 && len(c.Mismatches) > 0 {
			diff, _, _ := strings.Cut(c.Mismatches[0].Diff, "\n")
			say(out, "CAUGHT %s: %s on a %s event: %s", p, c.Mismatches[0].Class, c.Mismatches[0].EventType, diff)
		}
		res.Caught[p] = n
	}
	var gate struct {
		Pass     bool
		Partners []struct {
			Partner string
			Checks  []struct {
				Name         string
				Pass         bool
				Value, Limit float64
			}
		}
	}
	if !res.GateRefused && api.Do(ctx, http.MethodGet, controlclient.Path("v1", "migrations", Migration, "cohorts", "canary", "gate"), nil, &gate) == nil && !gate.Pass {
		for _, p := range gate.Partners {
			for _, ch := range p.Checks {
				if ch.Name == "zeroTolerance" && !ch.Pass {
					res.GateRefused = true
					say(out, "GATE REFUSES canary: %s has %.0f zero-tolerance mismatches (limit 0); the cohort cannot advance", p.Partner, ch.Value)
				}
			}
			if res.GateRefused {
				break
			}
		}
	}
	if cfg.Scenario != "exposed" {
		return
	}
	var stages []struct{ Partner, Stage string }
	if api.Do(ctx, http.MethodGet, controlclient.Path("v1", "migrations", Migration, "partners"), nil, &stages) == nil {
		for _, s := range stages {
			if contains(canary, s.Partner) && s.Stage == "shadow" && res.GuardStages[s.Partner] == "" {
				res.GuardStages[s.Partner] = s.Stage
				say(out, "GUARD reverted %s to shadow: legacy applies again; its mismatched events will be replayed through legacy", s.Partner)
			}
		}
	}
	if replays, err := api.Replays(ctx); err == nil {
		done := 0
		for _, r := range replays {
			if r.Status == "done" {
				done++
			}
		}
		if done > res.ReplaysDone {
			sort.Slice(replays, func(i, j int) bool { return replays[i].ID < replays[j].ID })
			say(out, "REPLAY through legacy: %d of %d replays done (%s)", done, len(replays), replaySummary(replays))
			res.ReplaysDone = done
		}
	}
}

func replaySummary(rs []controlclient.ReplayJob) string {
	var parts []string
	for _, r := range rs {
		parts = append(parts, fmt.Sprintf("%s %d/%d, %d failed", r.ID, r.Done, r.Total, r.Failed))
	}
	return strings.Join(parts, "; ")
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// settle waits, after the traffic, until the router has an outcome
// for every event and, in the exposed scenario, the guard's replays are done.
func settle(ctx context.Context, api *controlclient.Client, cfg Config, canary []string, noisy *noisyNarrator, res *Result, out io.Writer) {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if noisy != nil {
			noisy.tick(ctx)
		} else {
			narrate(ctx, api, cfg, canary, res, out)
		}
		var rs []struct {
			Journal struct{ Pending, Events int }
		}
		api.Do(ctx, http.MethodGet, "/v1/routers", nil, &rs)
		replays, _ := api.Replays(ctx)
		busy := len(rs) == 0 || rs[0].Journal.Pending > 0
		for _, r := range replays {
			busy = busy || !r.Ended()
		}
		if cfg.Scenario == "exposed" && len(res.GuardStages) > 0 && len(replays) == 0 {
			busy = true // the guard's replay starts a few seconds after its revert
		}
		if !busy {
			say(out, "settled: every journaled event has an outcome")
			return
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// The noisy scenario's compare rules and gates: noise learned from every
// event rather than the default 5%, and gates small enough to be met
// within a minute at the demo's rate.
const noisySampleRate = 1.0

var noisyGates = map[string]any{"minComparisons": 50, "maxMismatchRate": 0.15, "minBakeSeconds": 20, "minPerEventType": 20}

// noisyMix sends only the incident's two event types: every event type
// learns its noise from its own first three samples, and until then its
// events are value_diffs that stay in the mismatch rate, so fewer types
// mean fewer of them and a gate met sooner.
var noisyMix = map[string]float64{simulate.Ticket: 0.6, simulate.ScheduleEntry: 0.4}

// noisyNarrator narrates the noisy scenario: the value_diffs before the
// stamps are known, the noise learned, the classes counted, the canary
// gate's verdict, and the canary's advance once it passes.
type noisyNarrator struct {
	api      *controlclient.Client
	canary   []string
	res      *Result
	out      io.Writer
	diffSaid bool
	counted  string
	// When the counts and the gate's missing data were last said.
	countedAt, gateAt time.Time
}

// tick narrates what changed since the last tick.
func (n *noisyNarrator) tick(ctx context.Context) {
	classes := map[string]int{}
	for _, p := range n.canary {
		n.comparisons(ctx, p, classes)
		n.noise(ctx, p)
	}
	n.res.Classes = classes
	counted := classSummary(classes)
	if counted != "" && counted != n.counted && time.Since(n.countedAt) >= 5*time.Second {
		stage := "shadow"
		if n.res.Advanced {
			stage = "new"
		}
		say(n.out, "canary comparisons in %s so far: %s", stage, counted)
		n.counted, n.countedAt = counted, time.Now()
	}
	if !n.res.Advanced {
		n.gate(ctx)
	}
	if !n.res.BuggyRefused {
		n.buggy(ctx)
	}
}

// buggy says once that wave-2's gate fails on zero tolerance: the
// type_mismatches of the cached-handler bug, which noise never hides.
func (n *noisyNarrator) buggy(ctx context.Context) {
	rep, err := n.api.Gate(ctx, Migration, "wave-2")
	if err != nil {
		return
	}
	for _, p := range rep.Partners {
		for _, c := range p.Checks {
			if c.Name != "zeroTolerance" || c.Verdict != gate.Fail {
				continue
			}
			var cmp struct{ Counts map[string]map[string]int }
			if n.api.Do(ctx, http.MethodGet, controlclient.Path("v1", "migrations", Migration, "partners", p.Partner, "comparisons"), nil, &cmp) != nil {
				return
			}
			for _, byClass := range cmp.Counts {
				n.res.BuggyTypeMismatches += byClass["type_mismatch"]
			}
			n.res.BuggyRefused = true
			say(n.out, "GATE wave-2: fail: %s has %.0f zero-tolerance mismatches, %d of them type_mismatch (events answered by the handler cached for another event type): the buggy cohort still fails, since noise never hides a wrong event type", p.Partner, c.Value, n.res.BuggyTypeMismatches)
			return
		}
	}
}

// byPartner sends the events of the partners in buggy to bug and the
// others' to clean, so that one cohort's rewrite has the bug.
type byPartner struct {
	buggy      []string
	clean, bug http.Handler
}

func (b byPartner) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 4<<20))
	if err != nil {
		http.Error(w, "the body is too large", http.StatusRequestEntityTooLarge)
		return
	}
	var ev pipelineclient.Event
	json.Unmarshal(body, &ev) // a bad body is the pipeline's to refuse
	r.Body = io.NopCloser(bytes.NewReader(body))
	if contains(b.buggy, ev.Partner) {
		b.bug.ServeHTTP(w, r)
		return
	}
	b.clean.ServeHTTP(w, r)
}

func (n *noisyNarrator) comparisons(ctx context.Context, partner string, classes map[string]int) {
	var c struct {
		Counts     map[string]map[string]int
		Mismatches []struct{ Class, Diff, EventType string }
	}
	if n.api.Do(ctx, http.MethodGet, controlclient.Path("v1", "migrations", Migration, "partners", partner, "comparisons"), nil, &c) != nil {
		return
	}
	for _, byClass := range c.Counts {
		for class, k := range byClass {
			classes[class] += k
		}
	}
	if n.diffSaid {
		return
	}
	for _, m := range c.Mismatches {
		if m.Class == "value_diff" {
			diff, _, _ := strings.Cut(m.Diff, "\n")
			say(n.out, "VALUE_DIFF %s on a %s event: %s: the rewrite is right, legacy's stamps differ, and until switchback knows them as noise each such event counts as a mismatch", partner, m.EventType, diff)
			n.diffSaid = true
			return
		}
	}
}

// noise says, per partner, the event types whose paths were newly learned
// as noise.
func (n *noisyNarrator) noise(ctx context.Context, partner string) {
	var v struct {
		Paths []struct {
			EventType, Path string
			Count           int
			Learned, Noise  bool
		}
	}
	if n.api.Do(ctx, http.MethodGet, controlclient.Path("v1", "migrations", Migration, "partners", partner, "noise"), nil, &v) != nil {
		return
	}
	paths, counts := map[string][]string{}, map[string][]int{}
	for _, p := range v.Paths {
		if p.Learned && p.Noise && !slices.Contains(n.res.NoiseLearned[partner], p.EventType) {
			paths[p.EventType] = append(paths[p.EventType], p.Path)
			counts[p.EventType] = append(counts[p.EventType], p.Count)
		}
	}
	types := make([]string, 0, len(paths))
	for t := range paths {
		types = append(types, t)
	}
	sort.Strings(types)
	for _, t := range types {
		lo, hi := slices.Min(counts[t]), slices.Max(counts[t])
		seen := fmt.Sprint(lo)
		if hi > lo {
			seen = fmt.Sprintf("%d to %d", lo, hi)
		}
		why := ""
		if len(n.res.NoiseLearned) == 0 {
			why = ": from now on, a value_diff of this partner and event type in these fields alone counts as noise, out of the mismatch rate"
		}
		say(n.out, "NOISE LEARNED %s %s: %s (seen %s times in two legacy runs)%s", partner, t, strings.Join(paths[t], ", "), seen, why)
		n.res.NoiseLearned[partner] = append(n.res.NoiseLearned[partner], t)
	}
}

// gate says the canary gate's verdict when it changes (and what it still
// waits for, again every 5 s), and advances the canary once it passes.
func (n *noisyNarrator) gate(ctx context.Context) {
	rep, err := n.api.Gate(ctx, Migration, "canary")
	if err != nil {
		return
	}
	changed := len(n.res.Verdicts) == 0 || n.res.Verdicts[len(n.res.Verdicts)-1] != rep.Verdict
	if changed {
		n.res.Verdicts = append(n.res.Verdicts, rep.Verdict)
	}
	switch {
	case rep.Verdict == gate.Inconclusive && (changed || time.Since(n.gateAt) >= 5*time.Second):
		say(n.out, "GATE canary: inconclusive, %s", rep.Explain())
		n.gateAt = time.Now()
	case rep.Verdict == gate.Fail && changed:
		say(n.out, "GATE canary: fail for now, on the value_diffs counted before the noise was learned: %s", failDetails(rep))
	case rep.Verdict == gate.Pass:
		say(n.out, "GATE canary: pass: enough comparisons of every event type, baked, and the mismatch rate within its limit once noise is set aside")
		if _, _, err := n.api.Advance(ctx, Migration, "canary", "demo: noise learned, the gates pass", false); err != nil {
			say(n.out, "advancing canary: %v", err)
			return
		}
		n.res.Advanced = true
		say(n.out, "canary ADVANCED to new: the rewritten pipeline applies their events, legacy runs beside it in dry-run, and its stamps still count as noise, not as mismatches")
	}
}

// failDetails names each failing check of rep with its detail.
func failDetails(rep gate.Report) string {
	var out []string
	for _, p := range rep.Partners {
		for _, c := range p.Checks {
			if c.Verdict == gate.Fail {
				out = append(out, fmt.Sprintf("%s %s: %s", p.Partner, c.Name, c.Detail))
			}
		}
	}
	return strings.Join(out, "; ")
}

// classSummary writes counts by class, largest first: "120 noise, 14 value_diff".
func classSummary(classes map[string]int) string {
	names := make([]string, 0, len(classes))
	for c, k := range classes {
		if k > 0 {
			names = append(names, c)
		}
	}
	sort.Slice(names, func(i, j int) bool {
		if classes[names[i]] != classes[names[j]] {
			return classes[names[i]] > classes[names[j]]
		}
		return names[i] < names[j]
	})
	parts := make([]string, len(names))
	for i, c := range names {
		parts[i] = fmt.Sprintf("%d %s", classes[c], c)
	}
	return strings.Join(parts, ", ")
}
