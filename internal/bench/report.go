package bench

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// WriteOFREP prints the result of OFREP with cfg as a table.
func WriteOFREP(w io.Writer, cfg OFREPConfig, res OFREPResult) {
	mode := "single evaluation"
	if cfg.Bulk {
		mode = "bulk with If-None-Match"
	}
	Table(w, [][2]string{
		{"OFREP", mode},
		{"clients", fmt.Sprint(cfg.Clients)},
		{"requests", fmt.Sprint(res.Requests)},
		{"errors", fmt.Sprint(res.Errors)},
		{"304 not modified", fmt.Sprint(res.NotModified)},
		{"requests/s", fmt.Sprintf("%.0f", res.PerSecond)},
		{"p50", res.Latency.P50.String()},
		{"p99", res.Latency.P99.String()},
		{"max", res.Latency.Max.String()},
	})
}

// WritePropagation prints the result of Propagation as a table.
func WritePropagation(w io.Writer, res PropagationResult) {
	where := "in this process"
	if res.Processes > 0 {
		where = fmt.Sprintf("in %d processes of their own", res.Processes)
	}
	took := "whole snapshots"
	if res.Deltas {
		took = "deltas"
	}
	rows := [][2]string{
		{"providers", fmt.Sprintf("%d, %s, taking %s (%d CPUs shared, load average %s before)", res.Providers, where, took, res.CPUs, res.LoadAverage)},
		{"rounds", fmt.Sprint(res.Rounds)},
		{"revert call p50 / p99", res.Call.P50.String() + " / " + res.Call.P99.String()},
		{"to every provider p50", res.Latency.P50.String()},
		{"p99", res.Latency.P99.String()},
		{"max", res.Latency.Max.String()},
	}
	if res.Processes > 0 {
		rows = append(rows,
			[2]string{"CPU per round: control service", fmt.Sprintf("%.1f ms", res.ControlCPUMsPerRound)},
			[2]string{"CPU per round: providers, all processes", fmt.Sprintf("%.1f ms", res.ProvidersCPUMsPerRound)})
	}
	Table(w, rows)
}

// WriteIngress prints the result of Ingress as a table, the two journal
// modes side by side.
func WriteIngress(w io.Writer, res IngressResult) {
	g, f := res.GroupCommit, res.FsyncPerEvent
	both := func(get func(IngressRun) string) string { return get(g) + " / " + get(f) }
	Table(w, [][2]string{
		{"ingress", "group commit / fsync per event"},
		{"senders", fmt.Sprint(res.Senders)},
		{"acknowledged (202)", both(func(r IngressRun) string { return fmt.Sprint(r.Acked) })},
		{"refused (429) / errors", both(func(r IngressRun) string { return fmt.Sprintf("%d+%d", r.Refused, r.Errors) })},
		{"acks/s", both(func(r IngressRun) string { return fmt.Sprintf("%.0f", r.PerSecond) })},
		{"ack p50 (answer read in full)", both(func(r IngressRun) string { return r.Latency.P50.String() })},
		{"ack p99", both(func(r IngressRun) string { return r.Latency.P99.String() })},
		{"ack max", both(func(r IngressRun) string { return r.Latency.Max.String() })},
		{"202 status line p50", both(func(r IngressRun) string { return r.Status.P50.String() })},
		{"202 status line p99", both(func(r IngressRun) string { return r.Status.P99.String() })},
		{"journal writes per fsync", both(func(r IngressRun) string { return fmt.Sprintf("%.1f", r.WritesPerSync) })},
		{"delivered during the run", both(func(r IngressRun) string { return fmt.Sprint(r.Delivered) })},
		{"acknowledged, then lost", both(func(r IngressRun) string { return fmt.Sprint(r.Lost) })},
		{"group commit speedup", fmt.Sprintf("%.1fx", res.Speedup)},
	})
}

// WriteReplay prints the result of Replay as a table.
func WriteReplay(w io.Writer, res ReplayResult) {
	rate := func(r float64) string {
		if r == 0 {
			return "-" // too few events to sample
		}
		return fmt.Sprintf("%.0f", r)
	}
	Table(w, [][2]string{
		{"replay", "dead-lettered window through the legacy pipeline"},
		{"events", fmt.Sprint(res.Events)},
		{"journaled and dead-lettered in", res.Fill.Round(time.Millisecond).String()},
		{"start (counting the window)", res.Start.Round(time.Millisecond).String()},
		{"replayed in", res.Elapsed.Round(time.Millisecond).String()},
		{"events/s", fmt.Sprintf("%.0f", res.PerSecond)},
		{"events/s over the first / last tenth", rate(res.Early) + " / " + rate(res.Late)},
		{"failed", fmt.Sprint(res.Failed)},
		{"applied by the pipeline", fmt.Sprint(res.Applied)},
		{"applied in the journal", fmt.Sprint(res.Recovered)},
		{"CPU per event", fmt.Sprintf("%.1f µs: %s", res.CPUMicrosPerEvent, res.CPUIncludes)},
		{"the pipeline's CPU per event", pipelineCPU(res)},
		{"machine", fmt.Sprintf("%d CPUs shared, load average %s before", res.CPUs, res.LoadAverage)},
	})
}

// WriteSeparate prints the result of IngressSeparate as a table: the
// ceiling, then each stage.
func WriteSeparate(w io.Writer, res SeparateResult) {
	c := res.Ceiling
	f := func(v float64) string { return fmt.Sprintf("%.0f", v) }
	rows := [][2]string{
		{"ingress, each part in its own process", fmt.Sprintf("%d senders, %s per run, %d CPUs shared, load average %s before", res.Senders, res.Duration, res.CPUs, res.LoadAverage)},
		{"journal", res.Journal},
	}
	if res.Routers > 1 {
		rows = append(rows, [2]string{"routers", fmt.Sprintf("%d processes on one stream, the webhooks sent to them in turn", res.Routers)})
	}
	rows = append(rows, [][2]string{
		{"ceiling (bare server) requests/s", f(c.RequestsPerSecond)},
		{"ceiling p50 / p99", fmt.Sprintf("%.2f ms / %.2f ms", c.P50Ms, c.P99Ms)},
		{"ceiling CPU per request", fmt.Sprintf("%.1f µs", c.CPUMicrosPerRequest)},
	}...)
	for _, r := range res.Stages {
		p := "router at " + r.Stage + ": "
		if res.Routers > 1 {
			p = "routers at " + r.Stage + ": "
		}
		rows = append(rows,
			[2]string{p + "acknowledged (202)", fmt.Sprintf("%d of %d sent", r.Acked, r.Sent)},
			[2]string{p + "refused (429) / errors", fmt.Sprintf("%d / %d", r.Refused, r.Errors)},
			[2]string{p + "acks/s", f(r.AcksPerSecond)},
			[2]string{p + "ack p50 / p99", fmt.Sprintf("%.2f ms / %.2f ms", r.AckP50Ms, r.AckP99Ms)},
			[2]string{p + cpuRowName(res.Routers) + " (to delivered)", fmt.Sprintf("%.1f µs: %.1fx the ceiling", r.RouterCPUMicrosPerAck, r.CPURatio)},
			[2]string{p + cpuRowName(res.Routers) + " (sending only)", fmt.Sprintf("%.1f µs", r.RouterCPUMicrosPerAckSending)},
			[2]string{p + "pipelines / bench CPU per ack", fmt.Sprintf("%.1f µs / %.1f µs", r.PipelinesCPUMicrosPerAck, r.BenchCPUMicrosPerAck)},
			[2]string{p + "primary deliveries while sending", fmt.Sprint(r.PrimaryDeliveries)},
			[2]string{p + "delivered after the drain", fmt.Sprintf("%d in %.1f s", r.Delivered, r.DrainMs/1000)},
			[2]string{p + "acknowledged, then lost", fmt.Sprint(r.Lost)},
		)
		for _, e := range r.PerRouter {
			rows = append(rows, [2]string{p + e.ID, fmt.Sprintf("%d acks (p99 %.2f ms), %.0f ms CPU (%.0f%% of the routers'), %.1f µs per its ack, %d events applied",
				e.Acked, e.AckP99Ms, e.CPUMs, 100*e.CPUShare, e.CPUMicrosPerAck, e.Applied)})
		}
		if r.Comparisons != nil {
			rows = append(rows,
				[2]string{p + "comparisons", comparisonCounts(r.Comparisons)},
				[2]string{p + "router CPU per ack (to the last comparison)", fmt.Sprintf("%.1f µs, %.1f s after the drain", r.RouterCPUMicrosPerAckSettled, r.SettleMs/1000)},
			)
		}
	}
	Table(w, rows)
}

// cpuRowName names the routers' CPU per ack: summed over them when there
// are several.
func cpuRowName(routers int) string {
	if routers > 1 {
		return "routers' CPU per ack, summed"
	}
	return "router CPU per ack"
}

// comparisonCounts writes a stage's comparisons by class, and the share
// shed (skipped) of all.
func comparisonCounts(byClass map[string]int) string {
	total := 0
	for _, n := range byClass {
		total += n
	}
	var parts []string
	for _, c := range domain.Classes {
		if n := byClass[string(c)]; n > 0 {
			parts = append(parts, fmt.Sprintf("%s %d", c, n))
		}
	}
	if total == 0 {
		return "none"
	}
	return fmt.Sprintf("%s: %.1f%% shed (skipped)", strings.Join(parts, ", "), 100*float64(byClass[string(domain.ClassSkipped)])/float64(total))
}

func pipelineCPU(res ReplayResult) string {
	if res.PipelineCPUMicrosPerEvent == 0 {
		return "- (in this process: --separate)"
	}
	return fmt.Sprintf("%.1f µs (its own process)", res.PipelineCPUMicrosPerEvent)
}
