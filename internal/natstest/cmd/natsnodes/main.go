// Command natsnodes serves NATS JetStream nodes in a process of their own,
// as natstest starts them in a test's (every write fsynced), so that a
// router's CPU can be measured apart from the servers': one node or a
// cluster of three on loopback, with their data in a temporary directory,
// until SIGINT or SIGTERM. It prints the client URLs, comma separated, on
// a line of their own once the cluster has a JetStream leader, and its
// process id on stderr.
//
//	go run ./internal/natstest/cmd/natsnodes -nodes 3
package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/switchbackhq/switchback/internal/natstest"
)

func main() {
	nodes := flag.Int("nodes", 1, "nodes: 1, or 3 clustered")
	flag.Parse()
	if *nodes != 1 && *nodes != 3 {
		fmt.Fprintln(os.Stderr, "natsnodes: -nodes must be 1 or 3")
		os.Exit(2)
	}
	if err := run(*nodes); err != nil {
		fmt.Fprintln(os.Stderr, "natsnodes:", err)
		os.Exit(1)
	}
}

func run(nodes int) error {
	dir, err := os.MkdirTemp("", "natsnodes-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	dirs := make([]string, nodes)
	for i := range dirs {
		dirs[i] = filepath.Join(dir, fmt.Sprintf("n%d", i+1))
	}
	c, err := natstest.Run(nodes, dirs)
	if c != nil {
		defer c.Shutdown()
	}
	if err != nil {
		return err
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	fmt.Fprintf(os.Stderr, "natsnodes: pid %d, %d node(s), data in %s\n", os.Getpid(), nodes, dir)
	fmt.Println(c.URLs())
	<-sig
	return nil
}
