package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/refpipe"
)

const crashSecret = "whsec_Y3Jhc2gtdGVzdC1rZXktMDEyMzQ1Njc4OWFiY2RlZg=="

// freeAddr returns a loopback address nobody listens on right now.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// binary builds the switchback binary once per test.
func binary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "switchback")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	return bin
}

func startBinary(t *testing.T, bin, data, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--data", data, "--addr", addr, "--log-level", "warn")
	cmd.Env = append(os.Environ(), "SWITCHBACK_ADMIN_TOKEN="+crashAdmin)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			return cmd
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

const crashAdmin = "crash-test-admin-token-0123456789"

func signedHook(t *testing.T, url, id string) (*http.Request, error) {
	return signedHookOf(t, url, id, "ticket.updated")
}

// signedHookOf builds a signed Standard Webhooks delivery of event type typ
// whose webhook id and entity id are both id.
func signedHookOf(t *testing.T, url, id, typ string) (*http.Request, error) {
	body, _ := json.Marshal(map[string]any{"type": typ, "timestamp": time.Now().UTC().Format(time.RFC3339),
		"data": map[string]any{"id": id, "summary": "update " + id}})
	return signedBody(url, id, body)
}

// signedBody builds a signed Standard Webhooks delivery of body with
// webhook id id.
func signedBody(url, id string, body []byte) (*http.Request, error) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	key, _ := base64.StdEncoding.DecodeString(crashSecret[len("whsec_"):])
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.%s", id, ts, body)
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	return req, nil
}

// The acceptance test of durability: webhooks acknowledged with 202 by a
// serve process that is then killed with SIGKILL are all applied once it
// restarts on the same data.
func TestKill9LosesNoAcknowledgedEvent(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	legacy := refpipe.New("legacy", refpipe.Faults{Latency: 5 * time.Millisecond}, 1)
	pipe := httptest.NewServer(legacy)
	defer pipe.Close()

	bin := binary(t)
	data, addr := t.TempDir(), freeAddr(t)
	proc := startBinary(t, bin, data, addr)
	base := "http://" + addr
	call(t, "PUT", base+"/v1/partners/acme", crashAdmin, map[string]any{"name": "Acme", "psa": "generic", "secret": crashSecret}, nil)
	call(t, "PUT", base+"/v1/migrations/psa-webhooks-v2", crashAdmin, map[string]any{"pipelines": map[string]any{
		"legacy": map[string]string{"url": pipe.URL}, "new": map[string]string{"url": pipe.URL + "/new"}}}, nil)

	// Send until the router takes them (it starts before it has a snapshot).
	var mu sync.Mutex
	var acked []string
	ctx, stopSending := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := range 16 {
		wg.Go(func() {
			client := &http.Client{Timeout: 5 * time.Second}
			for i := 0; ctx.Err() == nil; i++ {
				id := fmt.Sprintf("w%02d-%05d", w, i)
				req, _ := signedHook(t, base+"/hooks/acme", id)
				resp, err := client.Do(req)
				if err != nil {
					return // the process is gone
				}
				var ans struct {
					Events []struct{ ID string } `json:"events"`
				}
				json.NewDecoder(resp.Body).Decode(&ans)
				resp.Body.Close()
				if resp.StatusCode == http.StatusAccepted {
					mu.Lock()
					acked = append(acked, ans.Events[0].ID)
					mu.Unlock()
				}
			}
		})
	}
	// Kill while events are still in flight: some journaled, not applied.
	deadline := time.Now().Add(30 * time.Second)
	for {
		mu.Lock()
		n := len(acked)
		mu.Unlock()
		if n >= 300 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d webhooks acknowledged in 30s", n)
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	proc.Wait()
	stopSending()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	missing := 0
	for _, id := range acked {
		if !legacy.HasApplied(id) {
			missing++
		}
	}
	t.Logf("killed with %d acknowledged events, %d of them not yet applied", len(acked), missing)

	startBinary(t, bin, data, addr)
	deadline = time.Now().Add(60 * time.Second)
	for {
		missing = 0
		for _, id := range acked {
			if !legacy.HasApplied(id) {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d acknowledged events were never applied after the restart", missing, len(acked))
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// An entity's updates are delivered in order across a SIGKILL: their
// outcomes, written without an fsync of their own each, are on disk for a
// first part of them, and the restarted router delivers the rest, in
// order, from the first whose outcome is not.
func TestKill9RedeliversAnEntityInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	const entity = "HOT-1"
	// Without latency, the deliveries go faster than an fsync: several
	// outcomes wait for one when the router is killed.
	legacy := refpipe.New("legacy", refpipe.Faults{}, 1)
	var mu sync.Mutex
	var calls []int // the n of each call for entity, as they came
	flowing := make(chan struct{})
	pipe := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if n, ok := updateOf(body, entity); ok {
			mu.Lock()
			calls = append(calls, n)
			mu.Unlock()
			select {
			case <-flowing:
			case <-r.Context().Done():
				return
			}
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		legacy.ServeHTTP(w, r)
	}))
	defer pipe.Close()
	// called returns the calls from the from-th on, a call retried after
	// a timeout counted once.
	called := func(from int) []int {
		mu.Lock()
		defer mu.Unlock()
		return slices.Compact(slices.Clone(calls[from:]))
	}

	bin := binary(t)
	data, addr := t.TempDir(), freeAddr(t)
	proc := startBinary(t, bin, data, addr)
	base := "http://" + addr
	call(t, "PUT", base+"/v1/partners/acme", crashAdmin, map[string]any{"name": "Acme", "psa": "generic", "secret": crashSecret}, nil)
	call(t, "PUT", base+"/v1/migrations/psa-webhooks-v2", crashAdmin, map[string]any{"pipelines": map[string]any{
		"legacy": map[string]string{"url": pipe.URL}, "new": map[string]string{"url": pipe.URL + "/new"}}}, nil)

	// One sender, one update after another: their order is the entity's.
	// The pipeline holds them until all are sent, then lets them flow,
	// and the router is killed while they do.
	client := &http.Client{Timeout: 5 * time.Second}
	acked := 0
	deadline := time.Now().Add(60 * time.Second)
	for acked < 300 {
		if time.Now().After(deadline) {
			t.Fatalf("%d updates acknowledged in 60s", acked)
		}
		body, _ := json.Marshal(map[string]any{"type": "ticket.updated", "timestamp": time.Now().UTC().Format(time.RFC3339),
			"data": map[string]any{"id": entity, "n": acked}})
		req, _ := signedBody(base+"/hooks/acme", fmt.Sprintf("u-%05d", acked), body)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusAccepted {
			acked++
		}
	}
	close(flowing)
	for len(called(0)) < 100 {
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d updates delivered in 60s", len(called(0)), acked)
		}
		time.Sleep(time.Millisecond)
	}
	if err := proc.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	proc.Wait()
	// A call the router sent just before it died may still be on its way
	// to the pipeline's handler: it belongs to before the kill.
	restart := 0
	for {
		mu.Lock()
		n := len(calls)
		mu.Unlock()
		if n == restart {
			break
		}
		restart = n
		time.Sleep(200 * time.Millisecond)
	}
	before := called(0)

	// What the journal holds: the updates without an outcome must be the
	// last ones, from some k on.
	j, err := openJournal(filepath.Join(data, "ingress"))
	if err != nil {
		t.Fatal(err)
	}
	pending, err := j.Pending(t.Context())
	j.Close()
	if err != nil {
		t.Fatal(err)
	}
	var left []int
	for _, ev := range pending {
		if n, ok := updateOf(mustJSON(t, map[string]any{"entityId": ev.EntityID, "payload": ev.Payload}), entity); ok {
			left = append(left, n)
		}
	}
	k := acked - len(left)
	if !slices.Equal(left, ints(k, acked)) {
		t.Fatalf("updates without an outcome after the kill = %v, want %d to %d", left, k, acked-1)
	}
	if len(before) < k || !slices.Equal(before, ints(0, len(before))) {
		t.Fatalf("before the kill the pipeline saw %v, want 0 to at least %d in order", before, k-1)
	}
	t.Logf("killed with %d updates acknowledged, %d delivered, %d of them with their outcome on disk", acked, len(before), k)

	startBinary(t, bin, data, addr)
	deadline = time.Now().Add(60 * time.Second)
	for len(called(restart)) < acked-k {
		if time.Now().After(deadline) {
			t.Fatalf("after the restart the pipeline saw %v, want %d to %d", called(restart), k, acked-1)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if after := called(restart); !slices.Equal(after, ints(k, acked)) {
		t.Errorf("after the restart the pipeline saw %v, want %d to %d in order", after, k, acked-1)
	}
}

// updateOf reads the n of a pipeline call's update of entity.
func updateOf(call []byte, entity string) (int, bool) {
	var ev struct {
		EntityID string `json:"entityId"`
		Payload  struct {
			Data struct{ N int } `json:"data"`
		} `json:"payload"`
	}
	if json.Unmarshal(call, &ev) != nil || ev.EntityID != entity {
		return 0, false
	}
	return ev.Payload.Data.N, true
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ints returns from, from+1, …, to-1.
func ints(from, to int) []int {
	out := []int{}
	for i := from; i < to; i++ {
		out = append(out, i)
	}
	return out
}
