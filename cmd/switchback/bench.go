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
	"github.com/switchbackhq/switchback/internal/domain"
)

const benchUsage = `Usage: switchback bench ofrep|propagation [flags]

Measures what docs/performance.md reports, against a control service that it
starts on 127.0.0.1 with a temporary data dir (or, for ofrep, --server).

  ofrep         OFREP single evaluations (or --bulk with If-None-Match) from
                --clients concurrent keep-alive clients: requests/s and latency
  propagation   --providers flags providers on the snapshot stream; time from
                each revert call to every provider holding the new version
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
		return printJSON(stdout, res)
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
		return printJSON(stdout, res)
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
