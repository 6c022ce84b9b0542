package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/switchbackhq/switchback/internal/config"
	"github.com/switchbackhq/switchback/internal/demo"
)

func runDemoCmd(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := demo.Config{Addr: "127.0.0.1:8080", Scenario: "shadow", Partners: 12, Rate: 30, Fault: 0.3, Seed: 1}
	fs := flag.NewFlagSet("demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Data, "data", "", "data directory; default a temporary one, removed at the end")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "address of the control service, its UI and the ingress router")
	fs.StringVar(&cfg.Scenario, "scenario", cfg.Scenario, "shadow: the canary cohort shadows the buggy pipeline and is caught; exposed: it is forced onto it and the guard reverts it; noisy: legacy stamps every effect, the noise is learned, the canary passes onto a correct new pipeline, and wave-2, whose new pipeline has the bug, fails; dropped: the PSAs drop 10% of their webhooks, a reconciliation against their change APIs finds exactly those changes, and a backfill closes every gap")
	fs.IntVar(&cfg.Partners, "partners", cfg.Partners, "partners, in three cohorts")
	fs.Float64Var(&cfg.Rate, "rate", cfg.Rate, "webhooks per second from the PSA simulator")
	fs.DurationVar(&cfg.Duration, "duration", 0, "stop after this long; 0 runs until Ctrl-C")
	fs.Float64Var(&cfg.Fault, "fault", cfg.Fault, "share of events the new pipeline handles with its cached handler (the incident's bug); in the noisy scenario, for wave-2 only")
	fs.Uint64Var(&cfg.Seed, "seed", cfg.Seed, "simulator seed")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: switchback demo [flags]

Reproduces the incident switchback exists for, on this machine: a control
service with its ingress router and UI, the legacy pipeline, a rewritten
pipeline whose handler cache is keyed by partner alone (so some ticket events
are handled by the cached schedule handler), and a PSA simulator sending
ConnectWise, Autotask, HaloPSA and Standard Webhooks traffic for a dozen
partners in three cohorts. Watch the mismatches get caught, the gate refuse,
and, with --scenario exposed, the guard revert and replay.

With --scenario noisy, the legacy pipeline stamps a fresh time and a random
id into every effect, as real pipelines do, and the rewritten one is correct
but for the partners of wave-2: watch the first comparisons count as
value_diff, switchback learn the stamps as noise by running legacy twice, the
canary's gate go from "waiting for data" to pass once the noise outweighs
those first value_diffs, the canary advance to new, and wave-2, shadowing the
bug, still fail on type_mismatch.

With --scenario dropped, the PSAs drop a tenth of their webhooks, as in an
outage, and keep every change in their change APIs (served by the simulator
and set as each partner's psaApi). After the traffic (--duration, default 20s
here) every partner is reconciled: the gaps are exactly the dropped changes
still listed by the PSAs, the backfill sends each through the partner's
primary pipeline, and a second reconciliation finds 0 entities that differ.

`)
		fs.PrintDefaults()
	}
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return usageError(err.Error())
	}
	_, err := demo.Run(ctx, cfg, serveDemo, stdout, stderr)
	if errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}

// serveDemo runs serve for the demo: its logs at level error only, so that
// they do not drown the narration.
func serveDemo(ctx context.Context, data, addr, adminToken string, stdout, stderr io.Writer) error {
	sc := config.DefaultServe()
	sc.Data, sc.Addr, sc.AdminToken, sc.LogLevel = data, addr, adminToken, "error"
	return serve(ctx, sc, stdout, stderr)
}
