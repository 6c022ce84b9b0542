package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstest"
	"github.com/switchbackhq/switchback/internal/natstier"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// startTierRouter runs "switchback ingress" on the tier's NATS servers and
// waits for it to answer.
func startTierRouter(t *testing.T, bin, control, token, natsURLs, id string) (*exec.Cmd, string) {
	t.Helper()
	addr := freeAddr(t)
	proc := exec.Command(bin, "ingress", "--control", control, "--data", t.TempDir(), "--addr", addr, "--router-id", id,
		"--journal", natsURLs, "--journal-replicas", "1", "--log-level", "warn")
	proc.Env = append(os.Environ(), "SWITCHBACK_TOKEN="+token)
	proc.Stderr = os.Stderr
	if err := proc.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { proc.Process.Kill(); proc.Wait() })
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return proc, "http://" + addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("ingress %s did not come up: %v", id, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A router of a tier killed with SIGKILL right after it acknowledged a
// burst, holding most of it undelivered: the other router applies every
// acknowledged event, each once, each entity's in order.
func TestTierKill9RouterOthersApplyInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills the binary")
	}
	cluster := natstest.Start(t, 1)
	// A slow pipeline, so that the router holding the shards has most of
	// the burst still to deliver when it dies.
	legacy := refpipe.New("legacy", refpipe.Faults{Latency: 20 * time.Millisecond}, 1)
	var mu sync.Mutex
	firsts := map[string][]int{} // entity → its updates, in the order first applied
	applied := map[string]bool{}
	repeats := 0
	pipe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var ev struct {
			EntityID string `json:"entityId"`
			Payload  struct {
				Data struct {
					N int `json:"n"`
				} `json:"data"`
			} `json:"payload"`
		}
		json.Unmarshal(body, &ev)
		key := r.Header.Get("Idempotency-Key")
		r.Body = io.NopCloser(bytes.NewReader(body))
		legacy.ServeHTTP(w, r)
		if r.Header.Get("Switchback-Mode") != "apply" || !strings.HasPrefix(ev.EntityID, "T-") {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if applied[key] {
			repeats++
			return
		}
		applied[key] = true
		firsts[ev.EntityID] = append(firsts[ev.EntityID], ev.Payload.Data.N)
	}))
	defer pipe.Close()

	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", t.TempDir(), "--no-ingress")
	call(t, "PUT", s.url+"/v1/partners/acme", crashAdmin, map[string]any{"name": "Acme", "psa": "generic", "secret": crashSecret}, nil)
	call(t, "PUT", s.url+"/v1/migrations/psa-webhooks-v2", crashAdmin, map[string]any{"pipelines": map[string]any{
		"legacy": map[string]string{"url": pipe.URL}, "new": map[string]string{"url": pipe.URL + "/new"}}}, nil)
	var tok struct{ Token string }
	if got := call(t, "POST", s.url+"/v1/tokens", crashAdmin, map[string]string{"name": "edge", "role": "router"}, &tok); got != 201 {
		t.Fatalf("router token = %d", got)
	}
	bin := binary(t)
	a, urlA := startTierRouter(t, bin, s.url, tok.Token, cluster.URLs(), "edge-a")

	client := &http.Client{Timeout: 10 * time.Second}
	send := func(base, entity string, n int) bool {
		body, _ := json.Marshal(map[string]any{"type": "ticket.updated", "timestamp": time.Now().UTC().Format(time.RFC3339),
			"data": map[string]any{"id": entity, "n": n}})
		req, _ := signedBody(base+"/hooks/acme", fmt.Sprintf("%s-%04d", entity, n), body)
		resp, err := client.Do(req)
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusAccepted
	}
	// Router a takes the shards: the first to pull them after a warm-up.
	deadline := time.Now().Add(30 * time.Second)
	for !send(urlA, "W-1", 0) {
		if time.Now().After(deadline) {
			t.Fatal("router a took no webhook in 30 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	for legacy.Applications() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the warm-up was not applied in 30 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	_, urlB := startTierRouter(t, bin, s.url, tok.Token, cluster.URLs(), "edge-b")

	// The burst: 8 entities, 100 updates each in order, sent to a and b
	// in turn as a load balancer would.
	const entities, updates = 8, 100
	burst := time.Now()
	var wg sync.WaitGroup
	for e := range entities {
		wg.Go(func() {
			entity := fmt.Sprintf("T-%d", e)
			for n := range updates {
				base := urlA
				if n%2 == 1 {
					base = urlB
				}
				for !send(base, entity, n) {
					time.Sleep(10 * time.Millisecond)
				}
			}
		})
	}
	wg.Wait()
	if err := a.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	a.Wait()
	mu.Lock()
	atKill := len(applied)
	mu.Unlock()
	t.Logf("router a killed %v after the burst began, with %d of %d acknowledged updates applied", time.Since(burst), atKill, entities*updates)

	deadline = time.Now().Add(90 * time.Second)
	for {
		mu.Lock()
		n := len(applied)
		mu.Unlock()
		if n == entities*updates {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged updates applied 90 s after router a was killed", n, entities*updates)
		}
		time.Sleep(50 * time.Millisecond)
	}
	mu.Lock()
	defer mu.Unlock()
	for e := range entities {
		entity := fmt.Sprintf("T-%d", e)
		want := make([]int, updates)
		for i := range want {
			want[i] = i
		}
		if !slices.Equal(firsts[entity], want) {
			t.Errorf("entity %s applied in the order %v", entity, firsts[entity])
		}
	}
	t.Logf("%d calls repeated an update already applied (same Idempotency-Key), the pipeline applying it once", repeats)
}

// serve --journal nats://…: the embedded router is one of the tier.
func TestServeWithTierJournal(t *testing.T) {
	cluster := natstest.Start(t, 1)
	legacy := refpipe.New("legacy", refpipe.Faults{}, 1)
	pipe := httptest.NewServer(legacy)
	defer pipe.Close()
	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", t.TempDir(),
		"--journal", cluster.URLs(), "--journal-replicas", "1")
	call(t, "PUT", s.url+"/v1/partners/acme", crashAdmin, map[string]any{"name": "Acme", "psa": "generic", "secret": crashSecret}, nil)
	call(t, "PUT", s.url+"/v1/migrations/psa-webhooks-v2", crashAdmin, map[string]any{"pipelines": map[string]any{
		"legacy": map[string]string{"url": pipe.URL}, "new": map[string]string{"url": pipe.URL + "/new"}}}, nil)
	for _, id := range []string{"t-1", "t-2", "t-1"} {
		req, _ := signedHook(t, s.url+"/hooks/acme", id)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("webhook %s answered %d", id, resp.StatusCode)
		}
	}
	deadline := time.Now().Add(20 * time.Second)
	for !legacy.HasApplied(journal.EventID("acme", "t-1")) || !legacy.HasApplied(journal.EventID("acme", "t-2")) {
		if time.Now().After(deadline) {
			t.Fatal("the webhooks taken through the tier were not applied in 20 s")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := legacy.Calls("apply"); n != 2 {
		t.Fatalf("legacy was called %d times to apply, want 2: the resent t-1 is a duplicate", n)
	}
}

// waitTierOutcomes waits until the tier holds the outcome of each of
// partner's deliveries.
func waitTierOutcomes(t *testing.T, cluster *natstest.Cluster, partner string, deliveries ...string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	tier, err := natstier.Open(ctx, natstier.Options{URLs: cluster.URLs(), Name: "test", Replicas: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer tier.Close()
	for _, d := range deliveries {
		for {
			if _, ok, err := tier.OutcomeOf(ctx, journal.EventID(partner, d)); err == nil && ok {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("the tier holds no outcome of %s's delivery %s", partner, d)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
