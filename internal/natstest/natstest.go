// Package natstest starts NATS servers with JetStream in the test's own
// process: one node, or a cluster of three on loopback ports, each in a
// temporary directory.
package natstest

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
)

// Cluster is a set of running NATS servers.
type Cluster struct {
	Nodes []*server.Server
	opts  []*server.Options
}

// Start runs n NATS servers with JetStream (n = 1, or 3 clustered), each
// writing every message to disk before it answers (sync_interval always,
// as production should), and stops them when the test ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	dirs := make([]string, n)
	for i := range dirs {
		dirs[i] = t.TempDir()
	}
	c, err := Run(n, dirs)
	if c != nil {
		t.Cleanup(c.Shutdown)
	}
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// Run is Start outside a test, for a process that serves the NATS nodes
// to others (cmd/natsnodes): node i keeps its data in dirs[i]. The caller
// shuts the cluster down, also when Run returns an error with it.
func Run(n int, dirs []string) (*Cluster, error) {
	c := &Cluster{}
	clusterPorts, err := freePorts(n)
	if err != nil {
		return nil, err
	}
	var routes []string
	for _, p := range clusterPorts {
		routes = append(routes, fmt.Sprintf("nats-route://127.0.0.1:%d", p))
	}
	for i := range n {
		o := &server.Options{
			ServerName: fmt.Sprintf("n%d", i+1),
			Host:       "127.0.0.1",
			Port:       -1,
			JetStream:  true,
			StoreDir:   dirs[i],
			SyncAlways: true,
			NoLog:      true,
			NoSigs:     true,
		}
		if n > 1 {
			o.Cluster = server.ClusterOpts{Name: "switchback-test", Host: "127.0.0.1", Port: clusterPorts[i]}
			o.Routes = server.RoutesFromStr(strings.Join(routes, ","))
		}
		s, err := server.NewServer(o)
		if err != nil {
			return c, err
		}
		go s.Start()
		c.Nodes = append(c.Nodes, s)
		c.opts = append(c.opts, o)
	}
	for _, s := range c.Nodes {
		if !s.ReadyForConnections(20 * time.Second) {
			return c, errors.New("a NATS server did not start")
		}
	}
	if n > 1 {
		deadline := time.Now().Add(30 * time.Second)
		for !c.hasMetaLeader() {
			if time.Now().After(deadline) {
				return c, errors.New("the NATS cluster elected no JetStream leader in 30 s")
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return c, nil
}

// Shutdown stops every node.
func (c *Cluster) Shutdown() {
	for _, s := range c.Nodes {
		s.Shutdown()
		s.WaitForShutdown()
	}
}

func (c *Cluster) hasMetaLeader() bool {
	for _, s := range c.Nodes {
		if s.Running() && s.JetStreamIsLeader() {
			return true
		}
	}
	return false
}

// URLs are the running servers' client URLs, comma separated.
func (c *Cluster) URLs() string {
	var urls []string
	for _, s := range c.Nodes {
		if s.Running() {
			urls = append(urls, s.ClientURL())
		}
	}
	return strings.Join(urls, ",")
}

// Stop shuts node i down, as a node taken out of service would be.
func (c *Cluster) Stop(i int) {
	c.Nodes[i].Shutdown()
	c.Nodes[i].WaitForShutdown()
}

// StreamLeader returns the index of the node that leads stream.
func (c *Cluster) StreamLeader(t testing.TB, stream string) int {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for i, s := range c.Nodes {
			if s.Running() && s.JetStreamIsStreamLeader("$G", stream) {
				return i
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no node leads the stream %s", stream)
	return -1
}

func freePorts(n int) ([]int, error) {
	var ports []int
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
