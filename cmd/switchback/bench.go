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
                each revert call to every provider holding the new version.
                --processes N spreads the providers over N processes of
                their own and reports the control service's and the
                providers' CPU per revert
  ingress       signed webhooks from --senders keep-alive clients to a full
                ingress router on loopback: durable acknowledgements/s and ack
                latency with group commit and with one fsync per event, then
                a check that every acknowledged delivery is in the journal.
                --separate runs the router ("switchback ingress"), the
                reference pipelines and a bare HTTP server (the ceiling) as
                processes of their own, sends the same load to the ceiling
                and to the router (--stage legacy, shadow or legacy,shadow),
                and reports each one's CPU per request from /proc, the
                primary deliveries, the comparisons by class (skipped: shed;
                --shadow-min-share sets the router's), and what was
                acknowledged but not delivered after --drain (lost).
                --journal nats://… gives the router a NATS JetStream
                journal (a cluster run apart) rather than its bbolt one;
                --routers N then starts N routers on its one stream, sends
                the webhooks to them in turn and reports their CPU per ack
                summed and each one's
  replay        replay of a journaled window of --events dead-lettered events
                through the reference pipeline on loopback: events/s and CPU
                per event (--separate: the pipeline in its own process)

The separate-process measurements need Linux; they start this binary (or
--binary) for each part. Every process shares this machine's CPUs: their CPU
per request is each one's own, their rates are not.
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
	case "ceiling-server":
		return benchCeilingServer(ctx, args[1:], stdout, stderr)
	case "providers":
		return benchProviders(ctx, args[1:], getenv, stdout, stderr)
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
		fmt.Fprintf(stderr, "starting a control service with %d partners...\n", *partners)
		srv, err := bench.StartTempServer(ctx, *partners)
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
	bench.WriteOFREP(stdout, cfg, res)
	return nil
}

func benchPropagation(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench propagation", flag.ContinueOnError)
	fs.SetOutput(stderr)
	providers := fs.Int("providers", 100, "flags providers connected to the snapshot stream")
	rounds := fs.Int("rounds", 20, "kill switch flips (revert, resume, ...)")
	partners := fs.Int("partners", 100, "partners in the started service (each snapshot carries them all)")
	processes := fs.Int("processes", 0, "spread the providers over this many processes of their own (Linux), so that their decoding is not the control service's CPU; 0 runs them in this one")
	binary := fs.String("binary", "", "with --processes: the switchback binary to start them from (default: this one)")
	whole := fs.Bool("whole-snapshots", false, "providers take a whole snapshot for every version rather than deltas")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if *processes < 0 || *processes > *providers {
		return usageError("--processes must be between 0 and --providers")
	}
	cfg := bench.PropagationConfig{Providers: *providers, Rounds: *rounds, Processes: *processes, Binary: *binary, WholeSnapshots: *whole}
	if cfg.Processes > 0 && cfg.Binary == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this binary to start the providers from (or pass --binary): %w", err)
		}
		cfg.Binary = self
	}
	fmt.Fprintf(stderr, "starting a control service with %d partners and %d providers...\n", *partners, *providers)
	srv, err := bench.StartTempServer(ctx, *partners)
	if err != nil {
		return err
	}
	defer srv.Close()
	res, err := bench.Propagation(ctx, srv, cfg)
	if err != nil {
		return err
	}
	if *asJSON {
		return console.JSON(stdout, res)
	}
	bench.WritePropagation(stdout, res)
	return nil
}

func benchIngress(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench ingress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	senders := fs.Int("senders", 64, "concurrent keep-alive clients posting webhooks")
	duration := fs.Duration("duration", 10*time.Second, "how long to send, for each of the two journal modes (with --separate, for the ceiling and each stage)")
	partners := fs.Int("partners", 8, "generic partners the deliveries are spread over")
	workers := fs.Int("workers", 32, "the router's delivery workers")
	stage := fs.String("stage", "legacy", "the partners' stage: legacy, or shadow to add a dry-run and a comparison to every event; with --separate also legacy,shadow for both, one after the other")
	noiseRate := fs.Float64("noise-rate", domain.DefaultNoiseSampleRate, "the migration's compare.noiseSampleRate: the share of shadowed events run through legacy a second time to learn noise (0 for none)")
	separate := fs.Bool("separate", false, "run the router (switchback ingress), the pipelines and a bare server (the ceiling) each in its own process, and charge each its CPU from /proc (Linux)")
	shadowShare := fs.Float64("shadow-min-share", 0, "with --separate: the router's --shadow-min-share, below 1 the share of shadowed events still compared while its CPU is contended (0: the router's default, every event)")
	drain := fs.Duration("drain", time.Minute, "with --separate: how long to wait after the load for every acknowledged webhook to be applied; what is not is lost")
	binary := fs.String("binary", "", "with --separate: the switchback binary to start the parts from (default: this one)")
	journalURLs := fs.String("journal", "", "with --separate: the router's --journal, nats://HOST:PORT[,...] of a NATS JetStream cluster run apart (its CPU is not the router's); empty for the router's bbolt journal")
	journalReplicas := fs.Int("journal-replicas", 0, "with --journal: the router's --journal-replicas (0 is 3)")
	routers := fs.Int("routers", 1, "with --journal: this many routers on the one stream, each a process of its own, the webhooks sent to them in turn (as a round-robin load balancer would)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if *journalURLs != "" && !*separate {
		return usageError("--journal needs --separate")
	}
	if *routers != 1 && (*journalURLs == "" || *routers < 1 || *routers > 8) {
		return usageError("--routers must be between 1 and 8, and above 1 needs --separate and --journal nats://… (routers share a NATS journal, not a bbolt one)")
	}
	if *noiseRate < 0 || *noiseRate > 1 {
		return usageError("--noise-rate must be between 0 and 1")
	}
	if *senders < 1 || *duration <= 0 || *partners < 1 || *workers < 1 {
		return usageError("bench ingress needs at least one sender, partner and worker, and a positive duration")
	}
	if *separate {
		var stages []domain.Stage
		for st := range strings.SplitSeq(*stage, ",") {
			if st != "legacy" && st != "shadow" {
				return usageError("--stage must be legacy, shadow or legacy,shadow")
			}
			stages = append(stages, domain.Stage(st))
		}
		if *drain <= 0 {
			return usageError("--drain must be positive")
		}
		return benchIngressSeparate(ctx, bench.SeparateConfig{Binary: *binary, Senders: *senders, Duration: *duration, Partners: *partners,
			Workers: *workers, Stages: stages, NoiseSampleRate: noiseRate, ShadowMinShare: *shadowShare, Drain: *drain,
			Journal: *journalURLs, JournalReplicas: *journalReplicas, Routers: *routers, Progress: stderr}, *asJSON, stdout)
	}
	if *stage != "legacy" && *stage != "shadow" {
		return usageError("--stage must be legacy or shadow")
	}
	fmt.Fprintf(stderr, "%d senders for %s with group commit, then %s with one fsync per event...\n", *senders, *duration, *duration)
	res, err := bench.Ingress(ctx, bench.IngressConfig{Senders: *senders, Duration: *duration, Partners: *partners, Workers: *workers, Stage: domain.Stage(*stage), NoiseSampleRate: noiseRate})
	if err != nil && res.GroupCommit.Acked == 0 {
		return err
	}
	if *asJSON {
		if perr := console.JSON(stdout, res); perr != nil {
			return perr
		}
		return err
	}
	bench.WriteIngress(stdout, res)
	return err
}

func benchReplay(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench replay", flag.ContinueOnError)
	fs.SetOutput(stderr)
	events := fs.Int("events", 100000, "events in the replayed window")
	timeout := fs.Duration("timeout", 10*time.Minute, "give up after this long")
	separate := fs.Bool("separate", false, "run the reference pipeline in a process of its own (Linux), so that this process's CPU is the router's and the control service's")
	binary := fs.String("binary", "", "with --separate: the switchback binary to start the pipeline from (default: this one)")
	asJSON := fs.Bool("json", false, "print JSON")
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if *events < 1 {
		return usageError("bench replay needs at least one event")
	}
	cfg := bench.ReplayConfig{Events: *events}
	if *separate {
		cfg.Binary = *binary
		if cfg.Binary == "" {
			self, err := os.Executable()
			if err != nil {
				return fmt.Errorf("find this binary to start the pipeline from (or pass --binary): %w", err)
			}
			cfg.Binary = self
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	fmt.Fprintf(stderr, "journaling %d dead-lettered events, then replaying them...\n", *events)
	res, err := bench.Replay(ctx, cfg)
	if err != nil && res.Done == 0 {
		return err
	}
	if *asJSON {
		if perr := console.JSON(stdout, res); perr != nil {
			return perr
		}
		return err
	}
	bench.WriteReplay(stdout, res)
	return err
}

// benchIngressSeparate runs bench ingress --separate, with this binary as
// the parts' unless cfg names one.
func benchIngressSeparate(ctx context.Context, cfg bench.SeparateConfig, asJSON bool, stdout io.Writer) error {
	if cfg.Binary == "" {
		self, err := os.Executable()
		if err != nil {
			return fmt.Errorf("find this binary to start the router from (or pass --binary): %w", err)
		}
		cfg.Binary = self
	}
	res, err := bench.IngressSeparate(ctx, cfg)
	if err != nil && len(res.Stages) == 0 {
		return err
	}
	if asJSON {
		if perr := console.JSON(stdout, res); perr != nil {
			return perr
		}
		return err
	}
	bench.WriteSeparate(stdout, res)
	return err
}

// benchCeilingServer is the bare server of bench ingress --separate, in a
// process of its own: not listed in the usage.
func benchCeilingServer(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench ceiling-server", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:0", "address to listen on")
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	return bench.ServeCeiling(ctx, *addr, stdout)
}

// benchProviders is a process of bench propagation --processes: flags
// providers that print when they see each version. Not listed in the
// usage.
func benchProviders(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("bench providers", flag.ContinueOnError)
	fs.SetOutput(stderr)
	url := fs.String("control", "", "control service URL")
	count := fs.Int("count", 1, "providers to connect")
	whole := fs.Bool("whole-snapshots", false, "take a whole snapshot for every version rather than deltas")
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if *url == "" || *count < 1 {
		return usageError("bench providers needs --control and a --count of at least one, and a token in $SWITCHBACK_TOKEN")
	}
	return bench.RunProviders(ctx, *url, getenv("SWITCHBACK_TOKEN"), *count, *whole, stdout)
}
