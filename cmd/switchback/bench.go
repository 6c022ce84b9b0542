package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/bench"
	"github.com/switchbackhq/switchback/internal/console"
	"github.com/switchbackhq/switchback/internal/domain"
)

const benchUsage = `Usage: switchback bench ofrep|propagation|ingress|replay [flags]

Measures what docs/performance.md reports, against a control service that it
starts on 127.0.0.1 with a temporary data dir (or, for ofrep, --server).

  ofrep         OFREP single evaluations (or --bulk with If-None-Match) from
                --clients concurrent keep-alive clients: requests/s and latency
  propagation   --providers flags providers on the snapshot stream; time from
                each revert call to every provider holding the new version
  ingress       signed webhooks from --senders keep-alive clients to a full
                ingress router on loopback: durable acknowledgements/s and ack
                latency with group commit and with one fsync per event, then
                a check that every acknowledged delivery is in the journal
  replay        replay of a journaled window of --events dead-lettered events
                through the reference pipeline on loopback: events/s
`

func runBench(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) == 0 || strings.HasPrefix(args[0], "-") {
		fmt.Fprint(stderr, benchUsage)
		return errUsage
	}
	switch args[0] {
	case "ofrep":
		return benchOFREP(ctx, args[1:], getenv, stdout, stderr)
	case "propagation":
		return benchPropagation(ctx, args[1:], stdout, stderr)
	case "ingress":
		return benchIngress(ctx, args[1:], stdout, stderr)
	case "replay":
		return benchReplay(ctx, args[1:], stdout, stderr)
	}
	fmt.Fprintf(stderr, "switchback bench: unknown measure %q\n\n%s", args[0], benchUsage)
	return errUsage
}

func benchOFREP(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench ofrep", flag.ContinueOnError)
	fs.SetOutput(stderr)
	server := fs.String("server", "", "control service URL; empty starts one on loopback")
	flagKey := fs.String("flag", "psa-webhooks-v2", "flag (migration key) to evaluate, with --server")
	partnerList := fs.String("partners-list", "", "comma-separated targeting keys, with --server")
	clients := fs.Int("clients", 32, "concurrent keep-alive clients")
	duration := fs.Duration("duration", 10*time.Second, "how long to send")
	partners := fs.Int("partners", 1000, "partners in the started service")
	bulk := fs.Bool("bulk", false, "use the bulk endpoint with If-None-Match")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	cfg := bench.OFREPConfig{URL: *server, Token: getenv("SWITCHBACK_TOKEN"), Flag: *flagKey, Clients: *clients, Duration: *duration, Bulk: *bulk}
	if *server == "" {
		dir, err := os.MkdirTemp("", "switchback-bench-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		fmt.Fprintf(stderr, "starting a control service with %d partners...\n", *partners)
		srv, err := bench.StartServer(ctx, dir, *partners)
		if err != nil {
			return err
		}
		defer srv.Close()
		cfg.URL, cfg.Flag, cfg.Partners = srv.URL, srv.Migration, srv.Partners
		if cfg.Token, err = srv.Token(ctx, "bench-viewer", domain.RoleViewer); err != nil {
			return err
		}
	} else if *partnerList != "" {
		cfg.Partners = strings.Split(*partnerList, ",")
	} else {
		return usageError("with --server, name the targeting keys with --partners-list")
	}
	fmt.Fprintf(stderr, "%d clients for %s...\n", cfg.Clients, cfg.Duration)
	res, err := bench.OFREP(ctx, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return console.JSON(stdout, res)
	}
	mode := "single evaluation"
	if cfg.Bulk {
		mode = "bulk with If-None-Match"
	}
	bench.Table(stdout, [][2]string{
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
	return nil
}

func benchPropagation(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench propagation", flag.ContinueOnError)
	fs.SetOutput(stderr)
	providers := fs.Int("providers", 100, "flags providers connected to the snapshot stream")
	rounds := fs.Int("rounds", 20, "kill switch flips (revert, resume, ...)")
	partners := fs.Int("partners", 100, "partners in the started service (each snapshot carries them all)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "switchback-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	fmt.Fprintf(stderr, "starting a control service with %d partners and %d providers...\n", *partners, *providers)
	srv, err := bench.StartServer(ctx, dir, *partners)
	if err != nil {
		return err
	}
	defer srv.Close()
	res, err := bench.Propagation(ctx, srv, bench.PropagationConfig{Providers: *providers, Rounds: *rounds})
	if err != nil {
		return err
	}
	if *asJSON {
		return console.JSON(stdout, res)
	}
	bench.Table(stdout, [][2]string{
		{"providers", fmt.Sprint(res.Providers)},
		{"rounds", fmt.Sprint(res.Rounds)},
		{"revert call p50 / p99", res.Call.P50.String() + " / " + res.Call.P99.String()},
		{"to every provider p50", res.Latency.P50.String()},
		{"p99", res.Latency.P99.String()},
		{"max", res.Latency.Max.String()},
	})
	return nil
}

func benchIngress(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench ingress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	senders := fs.Int("senders", 64, "concurrent keep-alive clients posting webhooks")
	duration := fs.Duration("duration", 10*time.Second, "how long to send, for each of the two journal modes")
	partners := fs.Int("partners", 8, "generic partners the deliveries are spread over")
	workers := fs.Int("workers", 32, "the router's delivery workers")
	stage := fs.String("stage", "legacy", "the partners' stage: legacy, or shadow to add a dry-run and a comparison to every event")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if *stage != "legacy" && *stage != "shadow" {
		return usageError("--stage must be legacy or shadow")
	}
	if *senders < 1 || *duration <= 0 || *partners < 1 || *workers < 1 {
		return usageError("bench ingress needs at least one sender, partner and worker, and a positive duration")
	}
	fmt.Fprintf(stderr, "%d senders for %s with group commit, then %s with one fsync per event...\n", *senders, *duration, *duration)
	res, err := bench.Ingress(ctx, bench.IngressConfig{Senders: *senders, Duration: *duration, Partners: *partners, Workers: *workers, Stage: domain.Stage(*stage)})
	if err != nil && res.GroupCommit.Acked == 0 {
		return err
	}
	if *asJSON {
		if perr := console.JSON(stdout, res); perr != nil {
			return perr
		}
		return err
	}
	g, f := res.GroupCommit, res.FsyncPerEvent
	both := func(get func(bench.IngressRun) string) string { return get(g) + " / " + get(f) }
	bench.Table(stdout, [][2]string{
		{"ingress", "group commit / fsync per event"},
		{"senders", fmt.Sprint(res.Senders)},
		{"acknowledged (202)", both(func(r bench.IngressRun) string { return fmt.Sprint(r.Acked) })},
		{"refused (429) / errors", both(func(r bench.IngressRun) string { return fmt.Sprintf("%d+%d", r.Refused, r.Errors) })},
		{"acks/s", both(func(r bench.IngressRun) string { return fmt.Sprintf("%.0f", r.PerSecond) })},
		{"ack p50 (answer read in full)", both(func(r bench.IngressRun) string { return r.Latency.P50.String() })},
		{"ack p99", both(func(r bench.IngressRun) string { return r.Latency.P99.String() })},
		{"ack max", both(func(r bench.IngressRun) string { return r.Latency.Max.String() })},
		{"202 status line p50", both(func(r bench.IngressRun) string { return r.Status.P50.String() })},
		{"202 status line p99", both(func(r bench.IngressRun) string { return r.Status.P99.String() })},
		{"journal writes per fsync", both(func(r bench.IngressRun) string { return fmt.Sprintf("%.1f", r.WritesPerSync) })},
		{"delivered during the run", both(func(r bench.IngressRun) string { return fmt.Sprint(r.Delivered) })},
		{"acknowledged, then lost", both(func(r bench.IngressRun) string { return fmt.Sprint(r.Lost) })},
		{"group commit speedup", fmt.Sprintf("%.1fx", res.Speedup)},
	})
	return err
}

func benchReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.Int("events", 100000, "events in the replayed window")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if *events < 1 {
		return usageError("bench replay needs at least one event")
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	fmt.Fprintf(stderr, "journaling %d dead-lettered events, then replaying them...\n", *events)
	res, err := bench.Replay(ctx, *events)
	if err != nil && res.Done == 0 {
		return err
	}
	if *asJSON {
		if perr := console.JSON(stdout, res); perr != nil {
			return perr
		}
		return err
	}
	rate := func(r float64) string {
		if r == 0 {
			return "-" // too few events to sample
		}
		return fmt.Sprintf("%.0f", r)
	}
	bench.Table(stdout, [][2]string{
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
	})
	return err
}
