package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/switchbackhq/switchback/internal/config"
	"github.com/switchbackhq/switchback/internal/httpserve"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// faultFlags collects repeated --fault NAME=VALUE flags.
type faultFlags struct{ f refpipe.Faults }

func (ff *faultFlags) String() string { return "" }

// Set adds one fault, NAME=VALUE.
func (ff *faultFlags) Set(s string) error { return refpipe.ParseFault(&ff.f, s) }

// runPipeline serves a reference pipeline: POST / takes events per the
// pipeline contract; GET /applied shows what it applied.
func runPipeline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pipeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", "legacy", "legacy or new: a name for logs and /applied")
	addr := fs.String("addr", "127.0.0.1:9001", "address to listen on")
	seed := fs.Uint64("seed", 1, "seed of the injected faults")
	var faults faultFlags
	fs.Var(&faults, "fault", "inject a fault, repeatable: cached-handler=RATE (the incident's bug), drop-field=PATH, error=RATE, latency=DUR or MIN-MAX, empty=RATE, noisy=true (a fresh time and a random id in every effect)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: switchback pipeline [--kind legacy|new] [--fault NAME=VALUE ...]

Serves a reference webhook pipeline that follows the pipeline contract: POST /
with an event, Idempotency-Key and Switchback-Mode (apply or dry-run) answers
the effects applied or that would be; nothing is written in dry-run, and an
event id applied once is not applied again. GET /applied lists the entities
it holds; GET /counts the events applied and the calls by mode; GET
/applied/ids the ids of the events applied. Faults reproduce what goes wrong
in rewrites.

`)
		fs.PrintDefaults()
	}
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if *kind != "legacy" && *kind != "new" {
		return usageError("--kind must be legacy or new")
	}
	p := refpipe.New(*kind, faults.f, *seed)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: p.Handler(), ReadHeaderTimeout: httpserve.MaxHeaderTimeout}
	fmt.Fprintf(stdout, "switchback pipeline: %s pipeline on http://%s with faults %+v\n", *kind, ln.Addr(), faults.f)
	return httpserve.Serve(ctx, srv, ln, config.Logger("text", "info", stderr), nil, nil)
}
