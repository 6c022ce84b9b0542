package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/httpserve"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// faultFlags collects repeated --fault NAME=VALUE flags.
type faultFlags struct{ f refpipe.Faults }

func (ff *faultFlags) String() string { return "" }

// Set parses one fault.
func (ff *faultFlags) Set(s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("%q: write NAME=VALUE", s)
	}
	rate := func(dst *float64) error {
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || v < 0 || v > 1 {
			return fmt.Errorf("%s=%q: want a rate from 0 to 1", name, value)
		}
		*dst = v
		return nil
	}
	switch name {
	case "cached-handler":
		return rate(&ff.f.CachedHandler)
	case "error":
		return rate(&ff.f.Error)
	case "empty":
		return rate(&ff.f.Empty)
	case "drop-field":
		if value == "" {
			return fmt.Errorf("drop-field needs a field name")
		}
		ff.f.DropField = value
		return nil
	case "latency":
		lo, hi, ranged := strings.Cut(value, "-")
		d, err := time.ParseDuration(lo)
		if err != nil || d < 0 {
			return fmt.Errorf("latency=%q: want a duration such as 20ms, or a range such as 5ms-50ms", value)
		}
		ff.f.Latency, ff.f.LatencyMax = d, d
		if ranged {
			if ff.f.LatencyMax, err = time.ParseDuration(hi); err != nil || ff.f.LatencyMax < d {
				return fmt.Errorf("latency=%q: the range's upper end must be a duration above its lower end", value)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown fault %q: use cached-handler, drop-field, error, latency or empty", name)
}

// runPipeline serves a reference pipeline: POST / takes events per the
// pipeline contract; GET /applied shows what it applied.
func runPipeline(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("pipeline", flag.ContinueOnError)
	fs.SetOutput(stderr)
	kind := fs.String("kind", "legacy", "legacy or new: a name for logs and /applied")
	addr := fs.String("addr", "127.0.0.1:9001", "address to listen on")
	seed := fs.Uint64("seed", 1, "seed of the injected faults")
	var faults faultFlags
	fs.Var(&faults, "fault", "inject a fault, repeatable: cached-handler=RATE (the incident's bug), drop-field=PATH, error=RATE, latency=DUR or MIN-MAX, empty=RATE")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: switchback pipeline [--kind legacy|new] [--fault NAME=VALUE ...]

Serves a reference webhook pipeline that follows the pipeline contract: POST /
with an event, Idempotency-Key and Switchback-Mode (apply or dry-run) answers
the effects applied or that would be; nothing is written in dry-run, and an
event id applied once is not applied again. GET /applied lists the entities
it holds. Faults reproduce what goes wrong in rewrites.

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
	mux := http.NewServeMux()
	mux.Handle("POST /", p)
	mux.HandleFunc("GET /applied", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"pipeline": *kind, "events": p.Applications(), "entities": p.Applied()})
	})
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", *addr, err)
	}
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: httpapi.ReadHeaderTimeout}
	fmt.Fprintf(stdout, "switchback pipeline: %s pipeline on http://%s with faults %+v\n", *kind, ln.Addr(), faults.f)
	return httpserve.Serve(ctx, srv, ln, newLogger("text", "info", stderr), nil, nil)
}
