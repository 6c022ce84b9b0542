package main

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchbackhq/switchback/flags"
)

// A control service restarted under 100 connected providers: each keeps
// answering from its last snapshot while it is down, reconnects, and gets
// the revert made after the restart.
func TestRestartUnderHundredSubscribers(t *testing.T) {
	dir := t.TempDir()
	s := startServe(t, nil, "--data", dir)
	tokenBytes, _ := os.ReadFile(filepath.Join(dir, "admin.token"))
	token := strings.TrimSpace(string(tokenBytes))
	call(t, "PUT", s.url+"/v1/partners/acme", token, map[string]any{"name": "Acme", "psa": "generic"}, nil)
	call(t, "PUT", s.url+"/v1/migrations/m", token, map[string]any{"pipelines": map[string]any{
		"legacy": map[string]string{"url": "http://127.0.0.1:9/l"}, "new": map[string]string{"url": "http://127.0.0.1:9/n"}}}, nil)
	for _, st := range []string{"shadow", "new"} {
		if got := call(t, "PUT", s.url+"/v1/migrations/m/partners/acme", token, map[string]any{"stage": st, "force": true, "reason": "test"}, nil); got != 200 {
			t.Fatalf("stage %s = %d", st, got)
		}
	}

	log := slog.New(slog.DiscardHandler)
	providers := make([]*flags.Provider, 100)
	for i := range providers {
		p, err := flags.NewProvider(flags.Options{URL: s.url, Token: token, Logger: log,
			MinBackoff: 10 * time.Millisecond, MaxBackoff: 200 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Init(openfeature.EvaluationContext{}); err != nil {
			t.Fatalf("provider %d: %v", i, err)
		}
		t.Cleanup(p.Shutdown)
		providers[i] = p
	}
	waitAll := func(what string, ok func(*flags.Provider) bool) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			n := 0
			for _, p := range providers {
				if ok(p) {
					n++
				}
			}
			if n == len(providers) {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: only %d of %d providers", what, n, len(providers))
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitAll("on new before the restart", func(p *flags.Provider) bool { return p.Resolve("m", "acme").Value == "new" })

	if err := s.stop(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for _, p := range providers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if got := p.Resolve("m", "acme").Value; got != "new" {
				t.Errorf("while the control service is down, a provider answers %q, want its last snapshot's new", got)
			}
		}()
	}
	wg.Wait()

	u, _ := url.Parse(s.url)
	s2 := startServe(t, nil, "--data", dir, "--addr", u.Host)
	var rev struct{ SnapshotVersion uint64 }
	if got := call(t, "POST", s2.url+"/v1/migrations/m/revert", token, map[string]any{"reason": "after restart"}, &rev); got != 200 {
		t.Fatalf("revert = %d", got)
	}
	waitAll(fmt.Sprintf("holding the revert (version %d)", rev.SnapshotVersion), func(p *flags.Provider) bool {
		r := p.Resolve("m", "acme")
		return r.Version == rev.SnapshotVersion && r.Value == "legacy" && r.Reason == flags.ReasonDisabled
	})
}
