package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/natstest"
)

// TestBenchSeparateProcessesRunEndToEnd runs, from the real binary, the
// measurements whose parts are processes of their own, briefly: "bench
// ingress --separate" for a second (the router, the pipelines and the
// ceiling start, the load is acknowledged and delivered, nothing is lost,
// the JSON has the figures the docs quote), "bench propagation
// --processes" and "bench replay --separate". It checks that the
// measurements work, not what they measure.
func TestBenchSeparateProcessesRunEndToEnd(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("bench ingress --separate reads each process's CPU from Linux's /proc")
	}
	if testing.Short() {
		t.Skip("starts five processes")
	}
	bin := binary(t)
	t.Run("ingress", func(t *testing.T) { benchIngressSeparateRuns(t, bin) })
	t.Run("ingress on a NATS journal", func(t *testing.T) { benchIngressSeparateOnNATSRuns(t, bin) })
	t.Run("propagation", func(t *testing.T) { benchPropagationInProcessesRuns(t, bin) })
	t.Run("replay", func(t *testing.T) { benchReplaySeparateRuns(t, bin) })
}

// runBenchBinary runs bin with args and returns its stdout.
func runBenchBinary(t *testing.T, bin string, args ...string) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%v: %v\n%s\n%s", args, err, out, stderr)
	}
	return out
}

func benchIngressSeparateRuns(t *testing.T, bin string) {
	out := runBenchBinary(t, bin, "bench", "ingress", "--separate", "--duration", "1s", "--senders", "4", "--partners", "2", "--stage", "legacy,shadow", "--json")
	var res struct {
		AcksPerSecond              *float64 `json:"acksPerSecond"`
		AckP99Ms                   *float64 `json:"ackP99Ms"`
		RouterCPUMicrosPerAck      *float64 `json:"routerCpuMicrosPerAck"`
		CeilingCPUMicrosPerRequest *float64 `json:"ceilingCpuMicrosPerRequest"`
		Lost                       *int     `json:"lost"`
		PrimaryDeliveries          *int     `json:"primaryDeliveries"`
		Stages                     []struct {
			Stage       string         `json:"stage"`
			Acked       int            `json:"acked"`
			Delivered   int            `json:"delivered"`
			Lost        int            `json:"lost"`
			Comparisons map[string]int `json:"comparisons"`
		} `json:"stages"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("the JSON does not parse: %v\n%s", err, out)
	}
	if res.AcksPerSecond == nil || res.AckP99Ms == nil || res.RouterCPUMicrosPerAck == nil || res.CeilingCPUMicrosPerRequest == nil || res.Lost == nil || res.PrimaryDeliveries == nil {
		t.Errorf("a figure is missing from the JSON:\n%s", out)
	}
	if len(res.Stages) != 2 {
		t.Fatalf("stages = %+v, want legacy's run and shadow's", res.Stages)
	}
	for i, want := range []string{"legacy", "shadow"} {
		if s := res.Stages[i]; s.Stage != want || s.Acked == 0 || s.Lost != 0 || s.Delivered != s.Acked {
			t.Errorf("stage run = %+v, want acknowledgements at %s, each delivered, none lost", s, want)
		}
	}
	if c := res.Stages[0].Comparisons; len(c) != 0 {
		t.Errorf("comparisons at legacy = %v, want none", c)
	}
	if c := res.Stages[1].Comparisons; len(c) == 0 {
		t.Errorf("no comparisons reported at shadow:\n%s", out)
	}
}

// benchIngressSeparateOnNATSRuns: with --journal nats://…, the router
// started by the bench acknowledges through the tier's stream and
// delivers what the tier hands it, none lost; with --routers 2, two
// routers share the stream and the load.
func benchIngressSeparateOnNATSRuns(t *testing.T, bin string) {
	cluster := natstest.Start(t, 1)
	out := runBenchBinary(t, bin, "bench", "ingress", "--separate", "--duration", "1s", "--senders", "4", "--partners", "2",
		"--journal", cluster.URLs(), "--journal-replicas", "1", "--json")
	var res struct {
		Journal string `json:"journal"`
		Acked   int    `json:"acked"`
		Deliv   int    `json:"delivered"`
		Lost    int    `json:"lost"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("the JSON does not parse: %v\n%s", err, out)
	}
	if res.Journal != cluster.URLs() || res.Acked == 0 || res.Lost != 0 || res.Deliv != res.Acked {
		t.Errorf("run = %+v, want acknowledgements through %s, each delivered, none lost", res, cluster.URLs())
	}

	// Two routers on the same stream: the webhooks go to both, and what
	// either acknowledged is applied whichever router holds its shard.
	out = runBenchBinary(t, bin, "bench", "ingress", "--separate", "--duration", "1s", "--senders", "4", "--partners", "2",
		"--journal", cluster.URLs(), "--journal-replicas", "1", "--routers", "2", "--json")
	var two struct {
		Routers   int     `json:"routers"`
		Acked     int     `json:"acked"`
		Deliv     int     `json:"delivered"`
		Lost      int     `json:"lost"`
		CPU       float64 `json:"routerCpuMicrosPerAck"`
		PerRouter []struct {
			ID    string  `json:"id"`
			Acked int     `json:"acked"`
			CPUMs float64 `json:"cpuMs"`
		} `json:"perRouter"`
	}
	if err := json.Unmarshal(out, &two); err != nil {
		t.Fatalf("the JSON does not parse: %v\n%s", err, out)
	}
	if two.Routers != 2 || two.Acked == 0 || two.Lost != 0 || two.Deliv != two.Acked || two.CPU <= 0 || len(two.PerRouter) != 2 {
		t.Fatalf("two routers' run = %+v, want 2 routers' acknowledgements, each delivered, none lost, their CPU:\n%s", two, out)
	}
	acked := 0
	for _, r := range two.PerRouter {
		if r.Acked == 0 || r.CPUMs <= 0 {
			t.Errorf("router %+v acknowledged nothing or spent no CPU, want the webhooks spread over both", r)
		}
		acked += r.Acked
	}
	if acked != two.Acked || two.PerRouter[0].ID == two.PerRouter[1].ID {
		t.Errorf("routers %+v: want two routers whose acknowledgements add up to %d", two.PerRouter, two.Acked)
	}

	// Routers share a NATS journal, never a bbolt one.
	cmd := exec.Command(bin, "bench", "ingress", "--separate", "--routers", "2")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	if err := cmd.Run(); err == nil || !strings.Contains(stderr.String(), "--routers") {
		t.Errorf("--routers 2 without --journal: err %v, stderr %q; want a usage error naming --routers", err, stderr)
	}
}

func benchPropagationInProcessesRuns(t *testing.T, bin string) {
	out := runBenchBinary(t, bin, "bench", "propagation", "--providers", "6", "--processes", "2", "--rounds", "2", "--partners", "4", "--json")
	var res struct {
		Processes int `json:"processes"`
		Latency   struct {
			N int `json:"n"`
		} `json:"latency"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("the JSON does not parse: %v\n%s", err, out)
	}
	if res.Processes != 2 || res.Latency.N != 12 {
		t.Errorf("got %d processes and %d arrivals, want 2 and 6 providers × 2 rounds:\n%s", res.Processes, res.Latency.N, out)
	}
}

func benchReplaySeparateRuns(t *testing.T, bin string) {
	out := runBenchBinary(t, bin, "bench", "replay", "--separate", "--events", "200", "--json")
	var res struct {
		Done        int    `json:"done"`
		Applied     int    `json:"applied"`
		CPUIncludes string `json:"cpuIncludes"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("the JSON does not parse: %v\n%s", err, out)
	}
	if res.Done != 200 || res.Applied != 200 || !strings.Contains(res.CPUIncludes, "its own process") {
		t.Errorf("replay = %+v, want 200 done and applied by a pipeline in its own process", res)
	}
}
