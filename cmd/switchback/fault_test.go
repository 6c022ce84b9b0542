package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstest"
	"github.com/switchbackhq/switchback/internal/natstier"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// faultKills is how many times the fault-injection suite kills the router.
const faultKills = 20

// tierPinnedTTL is natstier's default PinnedTTL: how long a killed
// router's shards stay pinned to it before a router (the same one,
// restarted) is handed them.
const tierPinnedTTL = 15 * time.Second

// faultJournal is the journal the router of a fault-injection run keeps.
type faultJournal struct {
	name string
	// nodes is the number of in-process NATS servers the router journals
	// on (--journal nats://…), with replicas copies of the stream; 0 is
	// the bbolt journal in --data.
	nodes, replicas int
	// stopNode stops one NATS node, whichever it is, at a random moment
	// of the kills.
	stopNode bool
	// settle is how long everything acknowledged has to be applied,
	// counted and replayed after the last restart.
	settle time.Duration
}

// The fault-injection suite: a real `switchback ingress` process is killed
// with SIGKILL at random moments, faultKills times, while webhooks are
// acknowledged, delivered, shadow-compared, reported and replayed, and
// restarted each time on the same data. Senders behave as PSAs do: a
// delivery whose answer was lost is sent again until it is answered.
// Afterwards every acknowledged webhook must have been applied by the
// primary pipeline, its comparison counted exactly once at the control
// service, and every replay finished. SWITCHBACK_FAULT_SEED replays a run
// (-run 'FaultInjection/nats' one journal's).
//
// It runs on each journal: bbolt in --data, and the tier's NATS JetStream
// stream, on one node and on three (replicas 3) of which one is stopped
// during the kills. Every invariant is read from the pipelines and the
// control service, never from the router's journal, so the same checks
// hold on the tier: what the tier acknowledged is applied once per
// Idempotency-Key, whichever incarnation of the router delivers it. A
// replay must finish on both (on the tier it reads the tier's window:
// docs/api.md, "Reading the whole tier").
func TestFaultInjectionKillsRouter(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("SWITCHBACK_FAULT_SEED"); s != "" {
		var err error
		if seed, err = strconv.ParseUint(s, 10, 64); err != nil {
			t.Fatalf("SWITCHBACK_FAULT_SEED: %v", err)
		}
	}
	t.Logf("seed %d (SWITCHBACK_FAULT_SEED=%d replays this run)", seed, seed)
	for _, j := range []faultJournal{
		{name: "bbolt", settle: 40 * time.Second},
		// A killed router's shards come back to it only once their pin
		// has expired (tierPinnedTTL), and then the backlog of the kills
		// is delivered: the waits are longer.
		{name: "nats", nodes: 1, replicas: 1, settle: 90 * time.Second},
		{name: "nats-3-nodes-one-stopped", nodes: 3, replicas: 3, stopNode: true, settle: 90 * time.Second},
	} {
		t.Run(j.name, func(t *testing.T) { faultInjection(t, j, seed) })
	}
}

func faultInjection(t *testing.T, j faultJournal, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0xfa017))

	legacy := refpipe.New("legacy", refpipe.Faults{Latency: time.Millisecond, LatencyMax: 8 * time.Millisecond}, seed)
	candidate := refpipe.New("new", refpipe.Faults{Latency: time.Millisecond, LatencyMax: 8 * time.Millisecond}, seed+1)
	legacySrv, newSrv := httptest.NewServer(legacy), httptest.NewServer(candidate)
	defer legacySrv.Close()
	defer newSrv.Close()

	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", t.TempDir(), "--no-ingress")
	const mig = "psa-webhooks-v2"
	call(t, "PUT", s.url+"/v1/partners/acme", crashAdmin, map[string]any{"name": "Acme", "psa": "generic", "secret": crashSecret}, nil)
	call(t, "PUT", s.url+"/v1/migrations/"+mig, crashAdmin, map[string]any{"pipelines": map[string]any{
		"legacy": map[string]string{"url": legacySrv.URL}, "new": map[string]string{"url": newSrv.URL}}}, nil)
	if got := call(t, "PUT", s.url+"/v1/migrations/"+mig+"/partners/acme", crashAdmin, map[string]any{"stage": "shadow"}, nil); got != 200 {
		t.Fatalf("stage shadow = %d", got)
	}
	var tok struct{ Token string }
	if got := call(t, "POST", s.url+"/v1/tokens", crashAdmin, map[string]string{"name": "edge-1", "role": "router"}, &tok); got != 201 {
		t.Fatalf("router token = %d", got)
	}

	bin, data, addr := binary(t), t.TempDir(), freeAddr(t)
	base := "http://" + addr
	args := []string{"ingress", "--control", s.url, "--data", data, "--addr", addr, "--router-id", "edge-1", "--log-level", "error"}
	up := 20 * time.Second
	var cluster *natstest.Cluster
	if j.nodes > 0 {
		cluster = natstest.Start(t, j.nodes)
		// Every node's URL, a stopped one's too, as a router's
		// configuration would keep it: the client moves to the others.
		args = append(args, "--journal", cluster.URLs(), "--journal-replicas", strconv.Itoa(j.replicas))
		up = 60 * time.Second // a cluster electing a stream leader holds the router's start
	}
	var proc *exec.Cmd
	start := func() {
		t.Helper()
		proc = exec.Command(bin, args...)
		proc.Env = append(os.Environ(), "SWITCHBACK_TOKEN="+tok.Token)
		proc.Stderr = os.Stderr
		if err := proc.Start(); err != nil {
			t.Fatal(err)
		}
		deadline := time.Now().Add(up)
		for {
			resp, err := http.Get(base + "/healthz")
			if err == nil {
				resp.Body.Close()
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("ingress did not come up: %v", err)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	t.Cleanup(func() {
		if proc != nil {
			proc.Process.Kill()
			proc.Wait()
		}
	})

	// Senders: each delivery is retried until it is answered, as a PSA
	// retries a connection that broke; 202 (new or duplicate) acknowledges.
	var mu sync.Mutex
	acked := map[string]bool{} // event ids
	stopping := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ; i++ {
				select {
				case <-stopping:
					return
				case <-time.After(20 * time.Millisecond): // a few hundred webhooks a second in all
				}
				id := fmt.Sprintf("f%d-%05d", w, i)
				for {
					req, _ := signedHookOf(t, base+"/hooks/acme", id, "ticket.updated")
					resp, err := client.Do(req)
					if err != nil {
						time.Sleep(10 * time.Millisecond) // the router is down
						continue
					}
					var ans hookAnswer
					json.NewDecoder(resp.Body).Decode(&ans)
					resp.Body.Close()
					if resp.StatusCode == http.StatusAccepted && len(ans.Events) == 1 {
						mu.Lock()
						acked[ans.Events[0].ID] = true
						mu.Unlock()
						break
					}
					if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
						t.Errorf("webhook %s answered %d", id, resp.StatusCode)
						return
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}

	// Replays of the last seconds, asked while the router is being
	// killed: each must finish.
	var replays []string
	askReplay := func() {
		var job struct{ ID string }
		now := time.Now().UTC()
		got := call(t, "POST", s.url+"/v1/replays", crashAdmin, map[string]any{"migration": mig, "partners": []string{"acme"},
			"from": now.Add(-3 * time.Second).Format(time.RFC3339Nano), "to": now.Format(time.RFC3339Nano),
			"pipeline": "legacy", "filter": "all", "rate": 5000, "reason": "fault injection"}, &job)
		if got != 201 {
			t.Fatalf("replay = %d", got)
		}
		replays = append(replays, job.ID)
	}

	// On the tier, a router restarted within tierPinnedTTL of its kill
	// is not handed its shards: one life, halfway, outlasts the pin, so
	// that a kill also lands while the router takes over the shards and
	// delivers the backlog of the kills before it. Its extra draw is made
	// on the tier only, so that a seed's kills on bbolt stay what they
	// were.
	holdAt := 0
	if j.nodes > 0 {
		holdAt = faultKills / 2
	}
	// The node stopped, and when: drawn apart, so that the kills are the
	// same with and without it.
	stopAt, stopAfter, stopped := 0, time.Duration(0), -1
	if j.stopNode {
		nrng := rand.New(rand.NewPCG(seed, seed^0x5709))
		stopAt, stopAfter, stopped = 1+nrng.IntN(faultKills), time.Duration(nrng.IntN(1000))*time.Millisecond, nrng.IntN(j.nodes)
	}

	began := time.Now()
	for kill := 1; kill <= faultKills; kill++ {
		start()
		life := time.Duration(100+rng.IntN(1100)) * time.Millisecond
		if kill == holdAt {
			life += tierPinnedTTL + time.Duration(rng.IntN(3000))*time.Millisecond
		}
		if kill == stopAt {
			time.Sleep(min(stopAfter, life))
			leader := cluster.StreamLeader(t, natstier.DefaultStream)
			cluster.Stop(stopped)
			t.Logf("NATS node %d of %d stopped (the stream leader: %v) during life %d of the router, %d webhooks applied",
				stopped+1, j.nodes, leader == stopped, kill, legacy.Applications())
			life -= min(stopAfter, life)
		}
		time.Sleep(life)
		if kill%5 == 0 {
			askReplay()
			time.Sleep(time.Duration(rng.IntN(2500)) * time.Millisecond) // let the router pick it up, or not
		}
		if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		proc.Wait()
		if kill == holdAt {
			t.Logf("router killed after a life past the shards' pin, %d webhooks applied", legacy.Applications())
		}
	}
	start()
	time.Sleep(300 * time.Millisecond)
	close(stopping)
	wg.Wait()
	killing := time.Since(began)

	mu.Lock()
	ids := make([]string, 0, len(acked))
	for id := range acked {
		ids = append(ids, id)
	}
	mu.Unlock()

	// Everything must settle: applied, counted, replayed.
	compared := func() uint64 {
		var c struct{ Counts map[string]map[string]uint64 }
		call(t, "GET", s.url+"/v1/migrations/"+mig+"/partners/acme/comparisons", crashAdmin, nil, &c)
		var n uint64
		for _, byClass := range c.Counts {
			for _, k := range byClass {
				n += k
			}
		}
		return n
	}
	unapplied := func() []string {
		var out []string
		for _, id := range ids {
			if !legacy.HasApplied(id) {
				out = append(out, id)
			}
		}
		return out
	}
	unfinished := func() []string {
		var out []string
		for _, id := range replays {
			var job struct {
				Status        string
				Total, Failed int
				Error         string
			}
			call(t, "GET", s.url+"/v1/replays/"+id, crashAdmin, nil, &job)
			if job.Status != "done" || job.Failed != 0 {
				out = append(out, fmt.Sprintf("%s %s (%d failed) %s", id, job.Status, job.Failed, job.Error))
			}
		}
		return out
	}
	deadline := time.Now().Add(j.settle)
	for {
		missing, n, open := unapplied(), compared(), unfinished()
		if len(missing) == 0 && n >= uint64(len(ids)) && len(open) == 0 {
			break
		}
		if time.Now().After(deadline) {
			if n < uint64(len(ids)) {
				proc.Process.Kill()
				proc.Wait()
				proc = nil
				explainUncompared(t, data, ids)
			}
			t.Fatalf("after %d kills, of %d acknowledged webhooks %d were never applied (%v), %d comparisons counted; unfinished replays: %v",
				faultKills, len(ids), len(missing), missing[:min(len(missing), 10)], n, open)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Exactly once: wait for any report still in flight, then count again.
	time.Sleep(2500 * time.Millisecond)
	if n := compared(); n != uint64(len(ids)) {
		t.Errorf("comparisons counted = %d, want %d: one per acknowledged webhook", n, len(ids))
	}
	// Recorded once: every delivery of an event carries the same
	// Idempotency-Key, so the pipeline holds exactly one application each.
	if got := legacy.Applications(); got != len(ids) {
		t.Errorf("the primary pipeline recorded %d applications, want %d: one per acknowledged webhook", got, len(ids))
	}
	t.Logf("%d SIGKILLs in %s: %d webhooks acknowledged, all applied (%d apply calls: %d redeliveries and replays), %d comparisons counted, %d replays finished",
		faultKills, killing.Round(100*time.Millisecond), len(ids), legacy.Calls(pipelineclient.Apply), legacy.Calls(pipelineclient.Apply)-len(ids), compared(), len(replays))
}

// explainUncompared logs, from the killed router's journal in data, what
// it holds of the acknowledged events without a comparison, and the
// reports it still owes the control service: where a comparison the
// control service never counted was lost.
func explainUncompared(t *testing.T, data string, ids []string) {
	t.Helper()
	j, err := journal.Open(filepath.Join(data, "journal.db"), journal.Options{})
	if err != nil {
		t.Logf("the router's journal: %v", err)
		return
	}
	defer j.Close()
	acked := map[string]bool{}
	for _, id := range ids {
		acked[id] = true
	}
	ctx := t.Context()
	err = j.Scan(ctx, "acme", journal.Position{}, time.Now().Add(time.Hour), func(ev journal.Event) bool {
		if acked[ev.ID] && ev.Comparison == "" {
			t.Logf("no comparison: %s seq %d state %s pipeline %q shadow %q attempts %d duplicates %d replays %d",
				ev.ID, ev.Seq, ev.State, ev.Pipeline, ev.Shadow, ev.Attempts, ev.Duplicates, len(ev.Replays))
		}
		return true
	})
	if err != nil {
		t.Logf("scanning the router's journal: %v", err)
	}
	due, err := j.ComparisonsDue(ctx)
	t.Logf("comparisons due: %d (%v)", len(due), err)
	owed, err := j.Owed(ctx)
	t.Logf("reports owed: %v (%v)", owed, err)
}

// hookAnswer is the webhook endpoint's answer.
type hookAnswer struct {
	Events []struct{ ID string } `json:"events"`
}
