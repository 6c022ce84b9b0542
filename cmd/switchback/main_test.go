package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// flagd's Go provider (v0.6.0) leaves one goroutine per provider after
// Shutdown: it ranges over an event channel that its service never closes.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreTopFunction("github.com/open-feature/go-sdk-contrib/providers/flagd/pkg.(*Provider).handleEvents"))
}

// syncBuffer is a bytes.Buffer safe for a writer and a reader goroutine.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// server is a "switchback serve" started through run, as main starts it.
type server struct {
	url            string
	stdout, stderr *syncBuffer
	stop           func() error
}

var listening = regexp.MustCompile(`listening on (http://\S+)`)

func startServe(t *testing.T, env map[string]string, args ...string) *server {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	stdout, stderr := &syncBuffer{}, &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0"}, args...), func(k string) string { return env[k] }, stdout, stderr)
	}()
	deadline := time.After(10 * time.Second)
	for {
		if m := listening.FindStringSubmatch(stdout.String()); m != nil {
			s := &server{url: m[1], stdout: stdout, stderr: stderr}
			var once sync.Once
			var stopErr error
			s.stop = func() error {
				once.Do(func() { cancel(); stopErr = <-done })
				return stopErr
			}
			t.Cleanup(func() { s.stop() })
			return s
		}
		select {
		case err := <-done:
			cancel()
			t.Fatalf("serve exited before listening: %v\nstderr: %s", err, stderr.String())
		case <-deadline:
			cancel()
			t.Fatalf("serve did not listen within 10s\nstderr: %s", stderr.String())
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// call sends a JSON request and decodes the answer into out when given.
func call(t *testing.T, method, url, token string, body any, out any) int {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, url, rd)
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			t.Fatalf("%s %s: decode %q: %v", method, url, data, err)
		}
	}
	return resp.StatusCode
}

func TestServeEndToEndSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, nil, "--data", dir)

	tokenBytes, err := os.ReadFile(filepath.Join(dir, "admin.token"))
	if err != nil {
		t.Fatalf("admin.token: %v", err)
	}
	token := strings.TrimSpace(string(tokenBytes))
	if !strings.Contains(s.stdout.String(), token) {
		t.Errorf("serve did not print the generated admin token once")
	}
	if fi, _ := os.Stat(filepath.Join(dir, "admin.token")); fi.Mode().Perm() != 0o600 {
		t.Errorf("admin.token mode = %v, want 0600", fi.Mode().Perm())
	}

	const mig = "/v1/migrations/psa-webhooks-v2"
	steps := []struct {
		method, path string
		body         any
		want         int
	}{
		{"PUT", "/v1/partners/acme", map[string]any{"name": "Acme", "psa": "connectwise", "secret": "cw-signing-key"}, 201},
		{"PUT", "/v1/partners/globex", map[string]any{"name": "Globex", "psa": "autotask", "secret": "at-secret"}, 201},
		{"PUT", mig, map[string]any{"description": "v2", "pipelines": map[string]any{
			"legacy": map[string]string{"url": "http://127.0.0.1:9/legacy"}, "new": map[string]string{"url": "http://127.0.0.1:9/new"}}}, 201},
		{"PUT", mig + "/cohorts/canary", map[string]any{"order": 1, "partners": []string{"acme"}}, 201},
		{"POST", mig + "/cohorts/canary/advance", map[string]any{"reason": "start shadowing"}, 200},
		{"PUT", mig + "/partners/globex", map[string]any{"stage": "shadow"}, 200},
		{"PUT", mig + "/partners/globex", map[string]any{"stage": "new", "force": true, "reason": "vendor sign-off"}, 200},
		{"POST", mig + "/revert", map[string]any{"reason": "incident"}, 200},
	}
	for _, st := range steps {
		var body map[string]any
		if got := call(t, st.method, s.url+st.path, token, st.body, &body); got != st.want {
			t.Fatalf("%s %s = %d, want %d: %v", st.method, st.path, got, st.want, body)
		}
	}
	type stageRow struct {
		Partner, Stage, Cohort string
		Since                  time.Time
	}
	var before []stageRow
	call(t, "GET", s.url+mig+"/partners", token, nil, &before)
	var snapBefore struct{ Version uint64 }
	call(t, "GET", s.url+"/v1/snapshot", token, nil, &snapBefore)

	// CLI verbs talk to the same server.
	cli := func(args ...string) (string, error) {
		var out, errOut bytes.Buffer
		env := map[string]string{"SWITCHBACK_TOKEN": token, "SWITCHBACK_SERVER": s.url}
		err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
		return out.String() + errOut.String(), err
	}
	if out, err := cli("status"); err != nil || !strings.Contains(out, "psa-webhooks-v2") || !strings.Contains(out, "ON (all legacy)") {
		t.Errorf("status = %q, %v; want the migration with its kill switch on", out, err)
	}
	if out, err := cli("audit", "verify"); err != nil || !strings.Contains(out, "audit chain intact") {
		t.Errorf("audit verify = %q, %v", out, err)
	}
	// No comparisons yet: the gates wait for data, and say so, not "failed".
	if out, err := cli("gate", "psa-webhooks-v2", "canary"); err == nil || !strings.Contains(out, "minComparisons") ||
		!strings.Contains(out, "WAITING FOR DATA: the cohort may not advance yet: acme: no comparisons in this stage yet") ||
		strings.Contains(out, "FAIL") || !strings.HasPrefix(err.Error(), "waiting for data") {
		t.Errorf("gate = %q, %v; want it waiting for data, naming minComparisons", out, err)
	}

	if err := s.stop(); err != nil {
		t.Fatalf("serve did not stop cleanly: %v", err)
	}

	s2 := startServe(t, nil, "--data", dir)
	if strings.Contains(s2.stdout.String(), "created the admin token") {
		t.Errorf("restart created a second admin token")
	}
	var after []stageRow
	call(t, "GET", s2.url+mig+"/partners", token, nil, &after)
	if len(after) != len(before) {
		t.Fatalf("after restart %d partners, want %d", len(after), len(before))
	}
	for i := range before {
		if before[i].Stage != after[i].Stage || before[i].Cohort != after[i].Cohort || !before[i].Since.Equal(after[i].Since) {
			t.Errorf("after restart %+v, want %+v", after[i], before[i])
		}
	}
	var snapAfter struct{ Version uint64 }
	call(t, "GET", s2.url+"/v1/snapshot", token, nil, &snapAfter)
	if snapAfter.Version != snapBefore.Version {
		t.Errorf("snapshot version after restart = %d, want %d", snapAfter.Version, snapBefore.Version)
	}
	var ev struct{ Value, Reason string }
	call(t, "POST", s2.url+"/v1/evaluate", token, map[string]any{"flag": "psa-webhooks-v2", "context": map[string]string{"targetingKey": "globex"}}, &ev)
	if ev.Value != "legacy" || ev.Reason != "DISABLED" {
		t.Errorf("evaluate after restart = %+v, want legacy DISABLED (kill switch kept)", ev)
	}
	if got := call(t, "POST", s2.url+mig+"/resume", token, map[string]any{"reason": "fixed"}, nil); got != 200 {
		t.Fatalf("resume = %d", got)
	}
	call(t, "POST", s2.url+"/v1/evaluate", token, map[string]any{"flag": "psa-webhooks-v2", "context": map[string]string{"targetingKey": "globex"}}, &ev)
	if ev.Value != "new" || ev.Reason != "TARGETING_MATCH" {
		t.Errorf("evaluate after resume = %+v, want new TARGETING_MATCH (stage restored)", ev)
	}
}

func TestSecondServeOnSameDataFailsFast(t *testing.T) {
	dir := t.TempDir()
	startServe(t, nil, "--data", dir)
	var out, errOut bytes.Buffer
	start := time.Now()
	err := run(context.Background(), []string{"serve", "--data", dir, "--addr", "127.0.0.1:0", "--lock-timeout", "200ms"},
		func(string) string { return "" }, &out, &errOut)
	if err == nil || !strings.Contains(err.Error(), "in use by another process") {
		t.Fatalf("second serve = %v, want a clear 'in use' error", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Errorf("second serve took %v to fail", time.Since(start))
	}
}

func TestAdminTokenFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	const secret = "env-admin-token-0123456789"
	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": secret}, "--data", dir)
	if strings.Contains(s.stdout.String(), secret) {
		t.Errorf("serve printed the admin token it was given")
	}
	if _, err := os.Stat(filepath.Join(dir, "admin.token")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("admin.token written for a token from the environment: %v", err)
	}
	if got := call(t, "GET", s.url+"/v1/tokens", secret, nil, nil); got != 200 {
		t.Errorf("GET /v1/tokens with the env token = %d, want 200", got)
	}
}

func TestUsage(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantOut  string
	}{
		{"no command", nil, 2, "Usage: switchback COMMAND"},
		{"unknown command", []string{"frobnicate"}, 2, `unknown command "frobnicate"`},
		{"help", []string{"help"}, 0, "revert MIGRATION | --all"},
		{"stage needs three arguments", []string{"stage", "m", "p"}, 2, "want MIGRATION PARTNER STAGE"},
		{"revert needs a migration or --all", []string{"revert", "--token-file", "/dev/null"}, 2, ""},
		{"bad log format", []string{"serve", "--log-format", "xml"}, 1, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out, errOut bytes.Buffer
			env := map[string]string{"SWITCHBACK_TOKEN": "x"}
			err := run(context.Background(), tt.args, func(k string) string { return env[k] }, &out, &errOut)
			code := 0
			if err != nil {
				code = exitCode(err)
			}
			if code != tt.wantCode {
				t.Errorf("exit code = %d (%v), want %d", code, err, tt.wantCode)
			}
			if !strings.Contains(out.String()+errOut.String(), tt.wantOut) {
				t.Errorf("output = %q, want it to contain %q", out.String()+errOut.String(), tt.wantOut)
			}
		})
	}
}
