package main

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
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
