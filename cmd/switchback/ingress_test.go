package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/refpipe"
)

// sendHook posts one signed generic delivery and returns the status.
func sendHook(t *testing.T, base, partner, id string) int {
	t.Helper()
	req, _ := signedHook(t, base+"/hooks/"+partner, id)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// sendUntilAccepted retries while the router has no snapshot yet (429).
func sendUntilAccepted(t *testing.T, base, partner, id string) {
	t.Helper()
	sendTypedUntilAccepted(t, base, partner, id, "ticket.updated")
}

func sendTypedUntilAccepted(t *testing.T, base, partner, id, typ string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		req, _ := signedHookOf(t, base+"/hooks/"+partner, id, typ)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		status := resp.StatusCode
		if status == http.StatusAccepted {
			return
		}
		if status != http.StatusTooManyRequests || time.Now().After(deadline) {
			t.Fatalf("webhook %s = %d, want 202", id, status)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func setupMigration(t *testing.T, base, token, pipeURL string) {
	t.Helper()
	if got := call(t, "PUT", base+"/v1/partners/acme", token, map[string]any{"name": "Acme", "psa": "generic", "secret": crashSecret}, nil); got != 201 {
		t.Fatalf("partner = %d", got)
	}
	if got := call(t, "PUT", base+"/v1/migrations/psa-webhooks-v2", token, map[string]any{"pipelines": map[string]any{
		"legacy": map[string]string{"url": pipeURL}, "new": map[string]string{"url": pipeURL + "/new"}}}, nil); got != 201 {
		t.Fatalf("migration = %d", got)
	}
}

// Embedded ingress: webhooks are applied, then replayed through the CLI
// verb with its progress, and the router appears in the routers table.
func TestServeEmbeddedIngressAndReplayVerb(t *testing.T) {
	legacy := refpipe.New("legacy", refpipe.Faults{}, 1)
	pipe := httptest.NewServer(legacy)
	defer pipe.Close()
	dir := t.TempDir()
	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", dir)
	setupMigration(t, s.url, crashAdmin, pipe.URL)
	ids := []string{"evt-a", "evt-b", "evt-c"}
	for _, id := range ids {
		sendUntilAccepted(t, s.url, "acme", id)
	}
	// The webhook ids are the PSA's; the event ids the router gave differ,
	// so wait on the pipeline's count.
	deadline := time.Now().Add(10 * time.Second)
	for legacy.Applications() < 3 {
		if time.Now().After(deadline) {
			t.Fatalf("applied %d of 3", legacy.Applications())
		}
		time.Sleep(5 * time.Millisecond)
	}

	var out bytes.Buffer
	env := map[string]string{"SWITCHBACK_TOKEN": crashAdmin, "SWITCHBACK_SERVER": s.url}
	err := run(context.Background(), []string{"replay", "--migration", "psa-webhooks-v2", "--partners", "acme", "--from", "1h",
		"--pipeline", "legacy", "--filter", "all", "--reason", "drill", "--poll", "20ms"}, func(k string) string { return env[k] }, &out, &out)
	if err != nil || !regexp.MustCompile(`done: 3 events sent, none failed`).MatchString(out.String()) {
		t.Fatalf("replay verb = %v\n%s", err, out.String())
	}
	if got := legacy.Calls("apply"); got != 6 {
		t.Errorf("legacy got %d apply calls, want 3 deliveries and 3 replays", got)
	}
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, name := range []string{"switchback_journal_size_bytes", "switchback_ingress_webhooks_total", "switchback_ingress_ack_seconds", "switchback_snapshot_version"} {
		if !bytes.Contains(metrics, []byte(name)) {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	var stuck []any
	if got := call(t, "GET", s.url+"/v1/events?state=stuck", crashAdmin, nil, &stuck); got != 200 || len(stuck) != 0 {
		t.Errorf("stuck events = %d %v, want 200 and none", got, stuck)
	}
	var routers []struct {
		ID      string
		Journal struct{ Events int }
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		call(t, "GET", s.url+"/v1/routers", crashAdmin, nil, &routers)
		if len(routers) == 1 && routers[0].ID == "embedded" && routers[0].Journal.Events == 3 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("routers = %+v, want the embedded router with 3 journaled events", routers)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// A router run alone routes from the control service with a router token.
func TestStandaloneIngress(t *testing.T) {
	legacy := refpipe.New("legacy", refpipe.Faults{}, 1)
	pipe := httptest.NewServer(legacy)
	defer pipe.Close()
	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", t.TempDir(), "--no-ingress")
	setupMigration(t, s.url, crashAdmin, pipe.URL)
	var tok struct{ Token string }
	if got := call(t, "POST", s.url+"/v1/tokens", crashAdmin, map[string]string{"name": "edge-1", "role": "router"}, &tok); got != 201 {
		t.Fatalf("token = %d", got)
	}
	if got := sendHook(t, s.url, "acme", "x"); got != http.StatusNotFound {
		t.Errorf("serve --no-ingress answered /hooks with %d, want 404", got)
	}

	ctx, cancel := context.WithCancel(context.Background())
	stdout := &syncBuffer{}
	done := make(chan error, 1)
	data := t.TempDir()
	env := map[string]string{"SWITCHBACK_TOKEN": tok.Token}
	go func() {
		done <- run(ctx, []string{"ingress", "--control", s.url, "--data", data, "--addr", "127.0.0.1:0", "--router-id", "edge-1", "--log-level", "warn"},
			func(k string) string { return env[k] }, stdout, &syncBuffer{})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ingress stopped with %v", err)
		}
	}()
	re := regexp.MustCompile(`listening on (http://\S+),`)
	deadline := time.Now().Add(10 * time.Second)
	var base string
	for base == "" {
		if m := re.FindStringSubmatch(stdout.String()); m != nil {
			base = strings.TrimSuffix(m[1], ",")
		} else if time.Now().After(deadline) {
			t.Fatalf("ingress did not start: %s", stdout.String())
		} else {
			time.Sleep(5 * time.Millisecond)
		}
	}
	sendUntilAccepted(t, base, "acme", "edge-evt")
	deadline = time.Now().Add(10 * time.Second)
	for legacy.Applications() < 1 {
		if time.Now().After(deadline) {
			t.Fatal("the standalone router never applied the event")
		}
		time.Sleep(5 * time.Millisecond)
	}
	// The provider writes its snapshot file behind the snapshot it takes.
	deadline = time.Now().Add(10 * time.Second)
	for {
		_, err := os.Stat(filepath.Join(data, "snapshot.json"))
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the router kept no snapshot file: %v", err)
		}
		time.Sleep(5 * time.Millisecond)
	}

	// A replay asked at the control service runs on the router, which
	// picks it up and reports its progress back.
	var out bytes.Buffer
	cliEnv := map[string]string{"SWITCHBACK_TOKEN": crashAdmin, "SWITCHBACK_SERVER": s.url}
	err := run(context.Background(), []string{"replay", "--migration", "psa-webhooks-v2", "--partners", "acme", "--from", "1h",
		"--pipeline", "legacy", "--filter", "all", "--poll", "50ms"}, func(k string) string { return cliEnv[k] }, &out, &out)
	if err != nil || !strings.Contains(out.String(), "done: 1 events sent, none failed") {
		t.Fatalf("replay through the standalone router = %v\n%s", err, out.String())
	}
	if got := legacy.Calls("apply"); got != 2 {
		t.Errorf("legacy got %d apply calls, want the delivery and its replay", got)
	}
}
