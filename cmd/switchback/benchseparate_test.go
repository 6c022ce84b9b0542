package main

import (
	"context"
	"encoding/json"
	"os/exec"
	"runtime"
	"testing"
	"time"
)

// TestBenchIngressSeparateRunsEndToEnd runs "bench ingress --separate"
// from the real binary for a second: the router, the pipelines and the
// ceiling start as processes of their own, the load is acknowledged and
// delivered, nothing is lost, and the JSON has the figures the docs quote.
// It checks that the measurement works, not what it measures.
func TestBenchIngressSeparateRunsEndToEnd(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("bench ingress --separate reads each process's CPU from Linux's /proc")
	}
	if testing.Short() {
		t.Skip("starts five processes")
	}
	bin := binary(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "bench", "ingress", "--separate", "--duration", "1s", "--senders", "4", "--partners", "2", "--json")
	stderr := &syncBuffer{}
	cmd.Stderr = stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("bench ingress --separate: %v\n%s\n%s", err, out, stderr)
	}
	var res struct {
		AcksPerSecond              *float64 `json:"acksPerSecond"`
		AckP99Ms                   *float64 `json:"ackP99Ms"`
		RouterCPUMicrosPerAck      *float64 `json:"routerCpuMicrosPerAck"`
		CeilingCPUMicrosPerRequest *float64 `json:"ceilingCpuMicrosPerRequest"`
		Lost                       *int     `json:"lost"`
		PrimaryDeliveries          *int     `json:"primaryDeliveries"`
		Stages                     []struct {
			Stage     string `json:"stage"`
			Acked     int    `json:"acked"`
			Delivered int    `json:"delivered"`
			Lost      int    `json:"lost"`
		} `json:"stages"`
	}
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("the JSON does not parse: %v\n%s", err, out)
	}
	if res.AcksPerSecond == nil || res.AckP99Ms == nil || res.RouterCPUMicrosPerAck == nil || res.CeilingCPUMicrosPerRequest == nil || res.Lost == nil || res.PrimaryDeliveries == nil {
		t.Errorf("a figure is missing from the JSON:\n%s", out)
	}
	if len(res.Stages) != 1 {
		t.Fatalf("stages = %+v, want legacy's run alone", res.Stages)
	}
	if s := res.Stages[0]; s.Stage != "legacy" || s.Acked == 0 || s.Lost != 0 || s.Delivered != s.Acked {
		t.Errorf("stage run = %+v, want acknowledgements at legacy, each delivered, none lost", s)
	}
}
