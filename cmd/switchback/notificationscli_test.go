package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// switchback notifications against serve: put a target with its secret
// from a file, list it, test it (the receiver gets a signed POST and
// "show" tells it was delivered), replace it keeping its secret, delete
// it; the secret never shows, on the CLI's output nor in serve's log, and
// it cannot be given on the command line.
func TestNotificationsVerbAgainstServe(t *testing.T) {
	got := make(chan http.Header, 10)
	receiver := httptest.NewServer(http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) { got <- r.Header.Clone() }))
	t.Cleanup(receiver.Close)
	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, "--data", t.TempDir(), "--no-ingress")
	const secret = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
	secretFile := filepath.Join(t.TempDir(), "ops.secret")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var shown strings.Builder
	run := func(wantCode int, args ...string) string {
		t.Helper()
		out, errOut, code := cli(t, s, args...)
		shown.WriteString(out + errOut)
		if code != wantCode {
			t.Fatalf("switchback %s: exit %d, want %d\n%s%s", strings.Join(args, " "), code, wantCode, out, errOut)
		}
		return out + errOut
	}

	out := run(0, "notifications")
	if !strings.Contains(out, "no notification target") {
		t.Errorf("empty list: %q", out)
	}
	out = run(0, "notifications", "put", "ops", "--url", receiver.URL+"/hooks/pathcredential", "--events", "revert, guard.revert", "--secret-file", secretFile, "--reason", "on-call")
	if !strings.Contains(out, "notification target ops created: standard to http://127.0.0.1") || !strings.Contains(out, "revert, guard.revert") {
		t.Errorf("put: %q", out)
	}
	out = run(0, "notifications")
	if !regexp.MustCompile(`ops\s+standard\s+http://127\.0\.0\.1:\d+/…\s+revert,guard\.revert\s+set`).MatchString(out) {
		t.Errorf("list: %q", out)
	}
	out = run(0, "notifications", "test", "ops")
	id := regexp.MustCompile(`test notice (ntc_[0-9a-f]{24}) queued`).FindStringSubmatch(out)
	if id == nil {
		t.Fatalf("test: %q", out)
	}
	select {
	case h := <-got:
		if h.Get("webhook-id") != id[1] || !strings.HasPrefix(h.Get("webhook-signature"), "v1,") {
			t.Errorf("the receiver got headers %v", h)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the receiver got nothing")
	}
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		out = run(0, "notifications", "show", "ops")
		if regexp.MustCompile(id[1] + `\s+test\s+\S+\s+delivered\s+1\s+200`).MatchString(out) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("show never said delivered: %q", out)
		}
	}
	out = run(0, "notifications", "put", "ops", "--events", "router.stale")
	if !strings.Contains(out, "ops replaced") {
		t.Errorf("replace: %q", out)
	}
	if out := run(0, "notifications", "show", "ops", "--json"); !strings.Contains(out, `"hasSecret": true`) {
		t.Errorf("the replace did not keep the secret: %q", out)
	}
	run(2, "notifications", "put", "ops", "--events", "revert", "--secret", secret)
	run(2, "notifications", "show", "ops", "--events", "revert")
	out = run(1, "notifications", "put", "chat", "--url", "https://hooks.slack.com/services/T/B/X", "--events", "deploy", "--format", "slack")
	if !strings.Contains(out, `"deploy" is not an event`) {
		t.Errorf("unknown event: %q", out)
	}
	run(0, "notifications", "delete", "ops", "--reason", "gone")
	if out := run(1, "notifications", "show", "ops"); !strings.Contains(out, "not_found") {
		t.Errorf("show after delete: %q", out)
	}
	if out := run(2, "notifications", "-h"); !strings.Contains(out, "--secret-file") || !strings.Contains(out, "never from the command line") {
		t.Errorf("help: %q", out)
	}
	for _, leak := range []string{"MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "pathcredential"} {
		if strings.Contains(shown.String(), leak) {
			t.Errorf("the CLI showed %q", leak)
		}
		if strings.Contains(s.stderr.String()+s.stdout.String(), leak) {
			t.Errorf("serve's output holds %q", leak)
		}
	}
}
