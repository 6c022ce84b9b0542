package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/etcdstore/etcdtest"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// startReplica starts "switchback serve" as its own process, a replica on
// the etcd cluster at store, and waits until it is ready.
func startReplica(t *testing.T, bin, store, keyFile, addr string) *exec.Cmd {
	t.Helper()
	cmd := exec.Command(bin, "serve", "--store", store, "--secrets-key-file", keyFile, "--data", t.TempDir(),
		"--addr", addr, "--no-ingress", "--log-level", "warn")
	cmd.Env = append(os.Environ(), "SWITCHBACK_ADMIN_TOKEN="+crashAdmin)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	waitUntil(t, "replica "+addr+" ready", func() bool {
		resp, err := http.Get("http://" + addr + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})
	return cmd
}

// startRouter runs "switchback ingress" in this process, following the
// control replicas at controls, and returns its base URL.
func startRouter(t *testing.T, controls []string, token string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	env := map[string]string{"SWITCHBACK_TOKEN": token}
	go func() {
		done <- run(ctx, []string{"ingress", "--control", strings.Join(controls, ","), "--router-id", "edge-1",
			"--data", t.TempDir(), "--addr", "127.0.0.1:0", "--log-level", "error"}, func(k string) string { return env[k] }, stdout, stderr)
	}()
	t.Cleanup(func() { cancel(); <-done })
	re := regexp.MustCompile(`listening on (http://[^\s,]+)`)
	var base string
	waitUntil(t, "the router to listen", func() bool {
		m := re.FindStringSubmatch(stdout.String())
		if m != nil {
			base = m[1]
		}
		return m != nil
	})
	return base
}

// Two replicas of the control service on one etcd, a router and a flags
// provider following both. Replica A, the one they are connected to, is
// killed with SIGKILL: they move to B and keep evaluating; a change made
// through B reaches them; and the guard, now on B, still reverts a
// partner whose new pipeline gets its events wrong.
func TestReplicaKilledRoutersAndGuardMoveOn(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the binary")
	}
	legacy := refpipe.New("legacy", refpipe.Faults{}, 1)
	buggy := refpipe.New("new", refpipe.Faults{CachedHandler: 0.5}, 2)
	legacySrv, newSrv := httptest.NewServer(legacy), httptest.NewServer(buggy)
	defer legacySrv.Close()
	defer newSrv.Close()

	cluster := etcdtest.Start(t, 1)
	keyFile := filepath.Join(t.TempDir(), "secrets.key")
	if err := os.WriteFile(keyFile, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := binary(t)
	addrA, addrB := freeAddr(t), freeAddr(t)
	procA := startReplica(t, bin, cluster.URL(), keyFile, addrA)
	startReplica(t, bin, cluster.URL(), keyFile, addrB)
	urlA, urlB := "http://"+addrA, "http://"+addrB

	const mig = "/v1/migrations/psa-webhooks-v2"
	api := func(base, method, path string, body, out any) int {
		return call(t, method, base+path, crashAdmin, body, out)
	}
	if got := api(urlA, "PUT", "/v1/partners/acme", map[string]any{"name": "Acme", "psa": "generic", "secret": crashSecret}, nil); got != 201 {
		t.Fatalf("partner = %d", got)
	}
	if got := api(urlA, "PUT", mig, map[string]any{
		"pipelines": map[string]any{"legacy": map[string]string{"url": legacySrv.URL}, "new": map[string]string{"url": newSrv.URL}},
		"guard":     map[string]any{"scope": "partner", "window": 20},
	}, nil); got != 201 {
		t.Fatalf("migration = %d", got)
	}
	for _, stage := range []string{"shadow", "new"} {
		if got := api(urlA, "PUT", mig+"/partners/acme", map[string]any{"stage": stage, "force": true, "reason": "failover test"}, nil); got != 200 {
			t.Fatalf("acme to %s = %d", stage, got)
		}
	}
	var tok struct{ Token string }
	if got := api(urlA, "POST", "/v1/tokens", map[string]any{"name": "edge", "role": "router", "reason": "failover test"}, &tok); got != 201 {
		t.Fatalf("router token = %d", got)
	}
	router := startRouter(t, []string{urlA, urlB}, tok.Token)
	provider, err := flags.NewProvider(flags.Options{URLs: []string{urlA, urlB}, Token: crashAdmin,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := provider.InitWithContext(t.Context(), openfeature.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	defer provider.Shutdown()
	if got := provider.Resolve("psa-webhooks-v2", "acme").Value; got != "new" {
		t.Fatalf("acme evaluates to %q before the kill, want new", got)
	}
	// B sees the router A registered: the registry is shared.
	waitUntil(t, "replica B to list the router", func() bool {
		var routers []struct{ ID string }
		api(urlB, "GET", "/v1/routers", nil, &routers)
		return len(routers) == 1 && routers[0].ID == "edge-1"
	})

	if err := procA.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	procA.Wait()

	if got := api(urlB, "PUT", "/v1/partners/initech", map[string]any{"name": "Initech", "psa": "generic", "secret": crashSecret}, nil); got != 201 {
		t.Fatalf("partner through B = %d", got)
	}
	var snap struct{ Version uint64 }
	api(urlB, "GET", "/v1/snapshot", nil, &snap)
	waitUntil(t, "the provider to take B's version", func() bool {
		if got := provider.Resolve("psa-webhooks-v2", "acme").Value; got != "new" {
			t.Fatalf("acme evaluates to %q while failing over, want new", got)
		}
		return provider.Snapshot().Version >= snap.Version
	})
	if got := provider.ControlURL(); got != urlB {
		t.Errorf("provider follows %s, want %s", got, urlB)
	}

	// acme's PSA sends tickets and schedule entries; the new pipeline
	// handles some tickets as schedule entries, and the guard on B sees it.
	for i := range 40 {
		typ := "ticket"
		if i%2 == 1 {
			typ = "schedule_entry"
		}
		sendTypedUntilAccepted(t, router, "acme", fmt.Sprintf("acme-%s-%03d", typ, i), typ+".updated")
	}
	waitUntil(t, "the guard on B to revert acme", func() bool {
		var stages []struct{ Partner, Stage string }
		api(urlB, "GET", mig+"/partners", nil, &stages)
		for _, p := range stages {
			if p.Partner == "acme" {
				return p.Stage == "shadow"
			}
		}
		return false
	})
	var audit []struct{ Actor, Action string }
	api(urlB, "GET", "/v1/audit?limit=1000", nil, &audit)
	guarded := false
	for _, e := range audit {
		guarded = guarded || e.Actor == "guard" && e.Action == "stage.set"
	}
	if !guarded {
		t.Errorf("no guard entry in B's audit log: %+v", audit)
	}
	waitUntil(t, "the provider to see the guard's revert", func() bool {
		return provider.Resolve("psa-webhooks-v2", "acme").Value == "legacy"
	})
}
