package ingress_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/ingress"
	"github.com/switchbackhq/switchback/internal/journal"
)

// A process runs its router until its context ends: it takes the control
// service's snapshot and reports to it; Close then waits for all it
// started (TestMain checks that no goroutine is left) and closes the
// journal.
func TestProcessRunsUntilItsContextEnds(t *testing.T) {
	store := bolttest.Open(t)
	svc, err := control.New(context.Background(), store, control.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PutMigration(context.Background(), control.Change{Actor: "test"}, domain.Migration{Key: "m",
		Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(), Pipelines: domain.Pipelines{
			Legacy: domain.Pipeline{URL: "http://legacy.invalid"}, New: domain.Pipeline{URL: "http://new.invalid"}}}); err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(svc, quiet, prometheus.NewRegistry())
	srv := httptest.NewServer(api)
	t.Cleanup(func() { api.Close(); srv.Close() })

	data := t.TempDir()
	j, err := ingress.OpenJournal(data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ingress.NewProcess(ingress.Config{Data: data, ControlURLs: []string{srv.URL}, RouterID: "edge-1",
		Token: svc.AddEphemeralToken("edge-1", domain.RoleRouter)}, j, prometheus.NewRegistry(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	if err := p.Start(ctx); err != nil {
		cancel()
		p.Close()
		t.Fatal(err)
	}
	want := svc.State().Version
	deadline := time.Now().Add(10 * time.Second)
	for reported := false; !reported || p.Router().RoutingVersion() != want; {
		for _, r := range svc.Routers() {
			reported = reported || r.ID == "edge-1" && r.SnapshotVersion == want
		}
		if time.Now().After(deadline) {
			cancel()
			p.Close()
			t.Fatalf("after 10 s: router routes by version %d, reported %v; want version %d reported", p.Router().RoutingVersion(), reported, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if _, err := j.Pending(t.Context()); err == nil {
		t.Error("the journal answers after Close, want it closed")
	}
}

// NewProcess refuses a configuration that could not run, and closes the
// journal it was given.
func TestProcessConfigValidate(t *testing.T) {
	good := ingress.Config{Data: "d", ControlURLs: []string{"http://control:8080"}, Token: "t", RouterID: "edge-1"}
	tests := []struct {
		name string
		edit func(*ingress.Config)
		want string // in the error; "" for none
	}{
		{"complete", func(*ingress.Config) {}, ""},
		{"https control", func(c *ingress.Config) { c.ControlURLs = []string{"https://control.example"} }, ""},
		{"replicas", func(c *ingress.Config) { c.ControlURLs = []string{"https://control-a.example", "http://10.0.0.2:8080"} }, ""},
		{"no control URL", func(c *ingress.Config) { c.ControlURLs = nil }, "control service's URL must be given"},
		{"no data directory", func(c *ingress.Config) { c.Data = "" }, "data directory"},
		{"no token", func(c *ingress.Config) { c.Token = "" }, "token"},
		{"no router id", func(c *ingress.Config) { c.RouterID = "" }, "router id"},
		{"control URL without a scheme", func(c *ingress.Config) { c.ControlURLs = []string{"control:8080"} }, "http or https"},
		{"a replica without a host", func(c *ingress.Config) { c.ControlURLs = []string{"http://control-a:8080", "https://"} }, `control URL "https://" must be an http or https URL`},
		{"an empty replica", func(c *ingress.Config) { c.ControlURLs = []string{"http://control-a:8080", ""} }, "control URL 2 of 2 is empty"},
		{"a replica twice", func(c *ingress.Config) { c.ControlURLs = []string{"http://a:1", "http://b:1", "http://b:1"} }, `control URL "http://b:1" is given twice`},
		{"negative workers", func(c *ingress.Config) { c.Workers = -1 }, "negative"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := good
			tt.edit(&c)
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("Validate = %v, want %q", err, tt.want)
			}
		})
	}
	j, err := ingress.OpenJournal(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ingress.NewProcess(ingress.Config{}, j, prometheus.NewRegistry(), quiet); err == nil {
		t.Fatal("NewProcess with an empty config: no error")
	}
	if _, err := j.Pending(t.Context()); err == nil {
		t.Error("the journal answers after NewProcess failed, want it closed")
	}
}

// A process's router judges time by the clock of its Config: serve gives
// it the control service's, so both agree on every age and stamp.
func TestProcessRouterUsesTheConfiguredClock(t *testing.T) {
	// Received in the future of the real clock: only the configured clock,
	// a day later still, can find the event stuck.
	received := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	data := t.TempDir()
	j, err := ingress.OpenJournal(data)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := j.Append(t.Context(), []journal.Event{{Partner: "acme", PSA: "generic", Type: "ticket", Action: "updated",
		DeliveryID: "d-1", ReceivedAt: received, Payload: []byte(`{}`)}}); err != nil {
		j.Close()
		t.Fatal(err)
	}
	p, err := ingress.NewProcess(ingress.Config{Data: data, ControlURLs: []string{"http://control.invalid"}, RouterID: "edge-1", Token: "t",
		Now: func() time.Time { return received.Add(24 * time.Hour) }}, j, prometheus.NewRegistry(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	stuck, err := p.Router().Stuck(t.Context())
	if err != nil || len(stuck) != 1 {
		t.Errorf("Stuck a day after the event by the configured clock = %d events, %v; want 1", len(stuck), err)
	}
}

// A process given several replicas of the control service (two servers of
// one service here, as replicas on one store are) follows the first; when
// it dies, the router's snapshot stream, its reports and its polls for
// asked replays all move to the second, and the router takes the changes
// made meanwhile without ever routing by an older version.
func TestProcessFailsOverBetweenControlReplicas(t *testing.T) {
	ctx := context.Background()
	store := bolttest.Open(t)
	svc, err := control.New(ctx, store, control.Options{Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	c := control.Change{Actor: "test", Reason: "failover drill"}
	if _, _, err := svc.PutMigration(ctx, c, domain.Migration{Key: "m",
		Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(), Pipelines: domain.Pipelines{
			Legacy: domain.Pipeline{URL: "http://legacy.invalid"}, New: domain.Pipeline{URL: "http://new.invalid"}}}); err != nil {
		t.Fatal(err)
	}
	secret := "whsec_" + strings.Repeat("a", 32)
	if _, _, err := svc.PutPartner(ctx, c, control.PartnerInput{ID: "acme", Name: "Acme", PSA: domain.PSAGeneric, Secret: &secret}); err != nil {
		t.Fatal(err)
	}
	apiA, apiB := httpapi.New(svc, quiet, prometheus.NewRegistry()), httpapi.New(svc, quiet, prometheus.NewRegistry())
	a := httptest.NewServer(apiA)
	t.Cleanup(func() { apiA.Close(); a.Close() })
	var bReports, bAsked atomic.Int32
	b := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/v1/reports":
			bReports.Add(1)
		case "/v1/replays/asked":
			bAsked.Add(1)
		}
		apiB.ServeHTTP(w, r)
	}))
	t.Cleanup(func() { apiB.Close(); b.Close() })

	data := t.TempDir()
	j, err := ingress.OpenJournal(data)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ingress.NewProcess(ingress.Config{Data: data, ControlURLs: []string{a.URL, b.URL}, RouterID: "edge-1",
		Token: svc.AddEphemeralToken("edge-1", domain.RoleRouter)}, j, prometheus.NewRegistry(), quiet)
	if err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithCancel(ctx)
	if err := p.Start(pctx); err != nil {
		cancel()
		p.Close()
		t.Fatal(err)
	}
	stopped := false
	stop := func() {
		if !stopped {
			stopped = true
			cancel()
			if err := p.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
		}
	}
	defer stop()
	reportedVersion := func() uint64 {
		for _, r := range svc.Routers() {
			if r.ID == "edge-1" {
				return r.SnapshotVersion
			}
		}
		return 0
	}
	first := svc.State().Version
	waitFor(t, "the router to route by the first version and report it", func() bool {
		return p.Router().RoutingVersion() == first && reportedVersion() == first
	})

	// The router's version is sampled throughout: it must never go back.
	var wentBack atomic.Value
	watched := make(chan struct{})
	watchCtx, stopWatch := context.WithCancel(ctx)
	go func() {
		defer close(watched)
		var last uint64
		for watchCtx.Err() == nil {
			if v := p.Router().RoutingVersion(); v < last {
				wentBack.Store(fmt.Sprintf("routed by version %d after %d", v, last))
			} else {
				last = v
			}
			time.Sleep(time.Millisecond)
		}
	}()

	a.CloseClientConnections()
	a.Close()
	next, err := svc.Revert(ctx, c, "m")
	if err != nil {
		t.Fatal(err)
	}
	asked, err := svc.AskReplay(ctx, c, domain.ReplayRequest{Migration: "m", Partners: []string{"acme"},
		From: time.Now().Add(-time.Hour), To: time.Now().Add(time.Hour), Pipeline: "legacy", Filter: domain.ReplayAll})
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the revert through the second replica, reported to it", func() bool {
		return p.Router().RoutingVersion() == next && reportedVersion() == next && bReports.Load() > 0
	})
	waitFor(t, "the asked replay taken from the second replica", func() bool {
		_, err := p.Router().Replay(asked.ID)
		return err == nil && bAsked.Load() > 0
	})
	stopWatch()
	<-watched
	if msg := wentBack.Load(); msg != nil {
		t.Errorf("the router went back: %s", msg)
	}
	stop()
}
