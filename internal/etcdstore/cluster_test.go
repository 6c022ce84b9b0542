package etcdstore_test

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/prometheus/client_golang/prometheus"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/etcdstore"
	"github.com/switchbackhq/switchback/internal/etcdstore/etcdtest"
	"github.com/switchbackhq/switchback/internal/httpapi"
)

// clusterReplica is a control replica with its own client of the cluster,
// serving its API over HTTP.
func clusterReplica(t *testing.T, endpoints []string) (*control.Service, string) {
	t.Helper()
	cli, err := clientv3.New(clientv3.Config{Endpoints: endpoints, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })
	store, err := etcdstore.Open(t.Context(), cli, "")
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	svc, err := control.New(t.Context(), store, control.Options{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	follow(t, svc)
	api := httpapi.New(svc, log, prometheus.NewRegistry(), httpapi.WithHeartbeat(200*time.Millisecond))
	srv := httptest.NewServer(api)
	t.Cleanup(func() { api.Close(); srv.Close() })
	return svc, srv.URL
}

// A three-member cluster loses its leader in the middle of a stream of
// reverts and resumes sent through two replicas: every change that was
// acknowledged is in the audit log exactly once, none that failed is in it
// twice, the chain verifies, and every provider, on either replica, ends
// at the store's final version.
func TestClusterLosesItsLeader(t *testing.T) {
	cluster := etcdtest.Start(t, 3)
	a, urlA := clusterReplica(t, cluster.Endpoints())
	b, urlB := clusterReplica(t, cluster.Endpoints())
	if _, _, err := a.PutMigration(t.Context(), setup, replicaMigration("m")); err != nil {
		t.Fatal(err)
	}
	putPartner(t, a, "acme")

	var providers []*flags.Provider
	for i, u := range []string{urlA, urlA, urlB, urlB} {
		svc := a
		if u == urlB {
			svc = b
		}
		p, err := flags.NewProvider(flags.Options{URL: u, Token: svc.AddEphemeralToken(fmt.Sprintf("provider-%d", i), domain.RoleViewer),
			Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.InitWithContext(t.Context(), openfeature.EvaluationContext{}); err != nil {
			t.Fatalf("provider %d: %v", i, err)
		}
		t.Cleanup(p.Shutdown)
		providers = append(providers, p)
	}

	const changes = 40
	acked := map[string]bool{}
	stopped := -1
	for i := range changes {
		svc := a
		if i%2 == 1 {
			svc = b
		}
		c := control.Change{Actor: "ops", Reason: fmt.Sprintf("change %d", i)}
		var err error
		if i%2 == 0 {
			_, err = svc.Revert(t.Context(), c, "m")
		} else {
			_, err = svc.Resume(t.Context(), c, "m")
		}
		if err == nil {
			acked[c.Reason] = true
		} else {
			t.Logf("%s: %v (%s)", c.Reason, err, domain.ErrorCode(err))
		}
		if i == changes/4 {
			stopped = cluster.StopLeader()
		}
	}
	t.Logf("stopped member %d; %d of %d changes acknowledged", stopped, len(acked), changes)
	if len(acked) < changes/2 {
		t.Errorf("only %d of %d changes acknowledged: the cluster should serve with two members of three", len(acked), changes)
	}

	seen := map[string]int{}
	for _, e := range verifyChain(t, a) {
		if e.Action == "migration.revert" || e.Action == "migration.resume" {
			seen[e.Reason]++
		}
	}
	for reason := range acked {
		if seen[reason] != 1 {
			t.Errorf("%s was acknowledged and is in the audit log %d times, want once", reason, seen[reason])
		}
	}
	for reason, n := range seen {
		if n > 1 {
			t.Errorf("%s is in the audit log %d times", reason, n)
		}
	}

	final := startReplicaOn(t, cluster.Endpoints()).State().Version
	for i, p := range providers {
		deadline := time.Now().Add(15 * time.Second)
		for p.Snapshot().Version < final && time.Now().Before(deadline) {
			time.Sleep(20 * time.Millisecond)
		}
		if got := p.Snapshot().Version; got != final {
			t.Errorf("provider %d holds version %d, the store is at %d", i, got, final)
		}
	}
}

// startReplicaOn loads the cluster's state afresh, as a replica started now.
func startReplicaOn(t *testing.T, endpoints []string) *control.Service {
	t.Helper()
	svc, _ := clusterReplica(t, endpoints)
	return svc
}

// A replica cut off from etcd (the one member its client knows is gone,
// while the cluster goes on) says so: it turns stale, /readyz answers 503,
// reads still answer from the last state (marked), a revert is refused at
// once with store_unavailable and Retry-After rather than hanging, and its
// snapshot streams end, so that a provider moves to a replica that follows
// the cluster and gets the revert made there.
func TestReplicaCutOffFromEtcd(t *testing.T) {
	cluster := etcdtest.Start(t, 3)
	endpoints := cluster.Endpoints()
	svc, url := clusterReplica(t, endpoints[2:])
	other, otherURL := clusterReplica(t, endpoints[:2])
	if _, _, err := svc.PutMigration(t.Context(), setup, replicaMigration("m")); err != nil {
		t.Fatal(err)
	}
	putPartner(t, svc, "acme")
	version := svc.State().Version
	waitVersion(t, other, version)
	// A stored token, which both replicas know (an ephemeral one lives in
	// one process only).
	_, token, err := svc.CreateToken(t.Context(), setup, "provider", domain.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	waitVersion(t, other, version)
	provider, err := flags.NewProvider(flags.Options{URLs: []string{url, otherURL}, Token: token,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	if err := provider.InitWithContext(t.Context(), openfeature.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(provider.Shutdown)
	t.Cleanup(http.DefaultClient.CloseIdleConnections)

	cluster.Stop(2)
	deadline := time.Now().Add(20 * time.Second)
	for {
		if _, stale := svc.Stale(); stale {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the replica never noticed that it lost etcd")
		}
		time.Sleep(20 * time.Millisecond)
	}
	_, err = svc.Revert(t.Context(), control.Change{Actor: "ops", Reason: "incident"}, "m")
	if domain.ErrorCode(err) != domain.CodeStoreUnavailable {
		t.Errorf("revert = %v (%s), want store_unavailable", err, domain.ErrorCode(err))
	}

	resp, err := http.Get(url + "/readyz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("/readyz = %d, want 503", resp.StatusCode)
	}
	req, _ := http.NewRequest("GET", url+"/v1/snapshot", nil)
	req.Header.Set("Authorization", "Bearer "+svc.AddEphemeralToken("viewer", domain.RoleViewer))
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var snap struct{ Version uint64 }
	json.NewDecoder(resp.Body).Decode(&snap)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || snap.Version != version || resp.Header.Get("Switchback-Stale-Since") == "" {
		t.Errorf("snapshot = %d, version %d, stale since %q; want 200, %d, a time", resp.StatusCode, snap.Version, resp.Header.Get("Switchback-Stale-Since"), version)
	}
	req, _ = http.NewRequest("POST", url+"/v1/migrations/m/revert", strings.NewReader(`{"reason":"incident"}`))
	req.Header.Set("Authorization", "Bearer "+svc.AddEphemeralToken("ops", domain.RoleOperator))
	req.Header.Set("Content-Type", "application/json")
	resp, err = http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("revert over HTTP = %d, Retry-After %q; want 503 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"))
	}

	v, err := other.Revert(t.Context(), control.Change{Actor: "ops", Reason: "incident"}, "m")
	if err != nil {
		t.Fatalf("revert through the replica that reaches etcd: %v", err)
	}
	deadline = time.Now().Add(20 * time.Second)
	for provider.Snapshot().Version < v {
		if time.Now().After(deadline) {
			t.Fatalf("the provider holds version %d from %s, never the revert's %d", provider.Snapshot().Version, provider.ControlURL(), v)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if got := provider.Resolve("m", "acme").Variant; got != "legacy" {
		t.Errorf("acme's variant after the revert = %q, want legacy", got)
	}
}
