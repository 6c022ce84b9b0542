// Package etcdtest starts real etcd clusters inside a test process, on
// loopback ports, for the tests of the control plane on etcd: no external
// etcd and no mock. Only tests import it.
package etcdtest

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
	"go.uber.org/goleak"
	"go.uber.org/zap"
)

// Cluster is a running cluster of embedded etcd members.
type Cluster struct {
	t       testing.TB
	mu      sync.Mutex
	members []*embed.Etcd // nil once stopped
}

// StartOne starts a one-member etcd with its data in dir, for a TestMain
// that shares one etcd between its tests (each on a prefix of its own),
// and waits until it serves. The caller closes it; its client address is
// e.Clients[0].Addr().
func StartOne(dir string) (*embed.Etcd, error) {
	cfg := embed.NewConfig()
	cfg.Dir = dir
	cfg.Logger = "zap"
	cfg.LogLevel = "error"
	cfg.LogOutputs = []string{"stderr"}
	cfg.TickMs, cfg.ElectionMs = 10, 100 // one member: elected at once
	var urls [2]url.URL
	for i := range urls {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		urls[i] = url.URL{Scheme: "http", Host: l.Addr().String()}
		l.Close()
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = urls[:1], urls[:1]
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = urls[1:], urls[1:]
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		return nil, err
	}
	select {
	case <-e.Server.ReadyNotify():
		return e, nil
	case err := <-e.Err():
		e.Close()
		return nil, err
	case <-time.After(30 * time.Second):
		e.Close()
		return nil, errors.New("etcd did not become ready in 30s")
	}
}

// Start starts a cluster of n members in temporary directories and waits
// until it has a leader; the test's cleanup stops what still runs.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	cfgs := make([]*embed.Config, n)
	var initial []string
	for i := range cfgs {
		cfg := embed.NewConfig()
		cfg.Name = fmt.Sprintf("m%d", i)
		cfg.Dir = t.TempDir()
		cfg.Logger = "zap"
		cfg.LogLevel = "error"
		cfg.LogOutputs = []string{"stderr"}
		// Short ticks so that a lost leader is replaced in well under a
		// second, as a tuned production cluster would within seconds.
		cfg.TickMs, cfg.ElectionMs = 10, 100
		client, peer := freeURL(t), freeURL(t)
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{client}, []url.URL{client}
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{peer}, []url.URL{peer}
		initial = append(initial, cfg.Name+"="+peer.String())
		cfgs[i] = cfg
	}
	c := &Cluster{t: t, members: make([]*embed.Etcd, n)}
	t.Cleanup(c.Close)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, cfg := range cfgs {
		cfg.InitialCluster = strings.Join(initial, ",")
		// Members wait for each other to form the cluster: start them at once.
		wg.Go(func() {
			e, err := embed.StartEtcd(cfg)
			if err != nil {
				errs[i] = err
				return
			}
			c.mu.Lock()
			c.members[i] = e
			c.mu.Unlock()
			select {
			case <-e.Server.ReadyNotify():
			case err := <-e.Err():
				errs[i] = err
			case <-time.After(60 * time.Second):
				errs[i] = errors.New("not ready in 60 s")
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	return c
}

func freeURL(t testing.TB) url.URL {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return url.URL{Scheme: "http", Host: l.Addr().String()}
}

// Endpoints returns every member's client address, host:port.
func (c *Cluster) Endpoints() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, e := range c.members {
		if e != nil {
			out = append(out, e.Clients[0].Addr().String())
		}
	}
	return out
}

// URL returns the cluster as switchback's --store takes it:
// etcd://HOST:PORT,HOST:PORT….
func (c *Cluster) URL() string { return "etcd://" + strings.Join(c.Endpoints(), ",") }

// StopLeader stops the member that leads the cluster now and returns
// its index; the others elect a new leader among themselves.
func (c *Cluster) StopLeader() int {
	c.t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.members {
		if e != nil && e.Server.Leader() == e.Server.MemberID() {
			e.Close()
			c.members[i] = nil
			return i
		}
	}
	c.t.Fatal("etcdtest: no member leads the cluster")
	return -1
}

// Stop stops member i: a replica whose client knows only that member is
// cut off from the cluster, which goes on with the others.
func (c *Cluster) Stop(i int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e := c.members[i]; e != nil {
		e.Close()
		c.members[i] = nil
	}
}

// Close stops every member still running.
func (c *Cluster) Close() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, e := range c.members {
		if e != nil {
			e.Close()
			c.members[i] = nil
		}
	}
}

// Main runs a package's tests against one embedded etcd member shared by
// them all: it starts it, sets *client to a client of it, runs m, closes
// both, and fails a passing run whose goroutines (of the stores, the
// client, etcd) outlive it. Call it as os.Exit(etcdtest.Main(m, &client)).
func Main(m *testing.M, client **clientv3.Client) int {
	dir, err := os.MkdirTemp("", "etcdtest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	e, err := StartOne(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start etcd:", err)
		return 1
	}
	*client, err = clientv3.New(clientv3.Config{Endpoints: []string{e.Clients[0].Addr().String()}, DialTimeout: 5 * time.Second, Logger: zap.NewNop()})
	if err != nil {
		e.Close()
		fmt.Fprintln(os.Stderr, "etcd client:", err)
		return 1
	}
	code := m.Run()
	(*client).Close()
	e.Close()
	if code == 0 {
		if err := goleak.Find(); err != nil {
			fmt.Fprintln(os.Stderr, "goroutine leak:", err)
			return 1
		}
	}
	return code
}
