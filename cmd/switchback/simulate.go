package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/switchbackhq/switchback/internal/console"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/simulate"
)

const simulateUsage = `Usage: switchback simulate --router URL --partners FILE_OR_SPEC [flags]

Sends realistic PSA webhook traffic to an ingress router, at --rate deliveries
per second for --duration (or --count deliveries): for each partner, what its
PSA sends (ConnectWise callbacks, Autotask webhooks, HaloPSA webhooks, some of
them batched, Standard Webhooks), signed as the router verifies them, about
tickets, schedule entries, time entries, companies and contacts created,
updated and deleted, with --duplicates resent under the same delivery id and
optional bursts. A 429 is retried after its Retry-After. The same --seed sends
the same sequence. Deliveries go to ROUTER/hooks/PARTNER and nowhere else.

--partners is a JSON file, inline JSON, or ID:PSA:SECRET[,ID:PSA:SECRET...]:
each partner as the router knows it, with the secret configured there.

  [{"id": "acme",     "psa": "connectwise", "secret": "the callback signing key"},
   {"id": "globex",   "psa": "autotask",    "secret": "the webhook secret key"},
   {"id": "initech",  "psa": "halopsa",     "secret": "basic:USER:PASSWORD"},
   {"id": "umbrella", "psa": "halopsa",     "secret": "bearer:TOKEN"},
   {"id": "hooli",    "psa": "generic",     "secret": "whsec_BASE64",
    "psaApi": {"token": "the change feed's bearer token"}}]

--drop RATE never sends that share of deliveries (picked by --seed), as a PSA
outage loses webhooks; --dropped FILE saves their events, each with the stamp it
would have carried and whether a reconciliation can find it missing.

--psa-api ADDR serves, while the run lasts, each partner's PSA change API over
the changes the run makes (dropped ones included), as switchback reconciles
against it: ConnectWise, Autotask and HaloPSA tickets, every entity of a generic
feed, each with the stamp its latest webhook carried. Each partner's base URL,
printed at the start, is http://ADDR/psa/PARTNER. The credentials it asks for
are the partner's "psaApi" in --partners (the fields its PSA takes), else
derived from the partner's id and secret, the same on every run; --psa-api-out
FILE writes each partner's psaApi, base URL and credentials, as the control
service takes it (PUT /v1/partners/ID), readable by the owner only.

Progress goes to stderr every second; the final table (or --json) to stdout.
Exits 1 if a delivery was finally refused or got no answer (dropped ones are
not).

Flags:
`

// simulateFlags are the simulate verb's flags.
type simulateFlags struct {
	router, partners, mix, ledger string
	psaAPI, psaAPIOut, dropped    string
	rate, duplicates, drop        float64
	duration                      time.Duration
	count, concurrency            int
	burstEvery, burstSize         int
	seed                          uint64
	json                          bool
}

func runSimulate(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("simulate", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f simulateFlags
	router := getenv("SWITCHBACK_ROUTER")
	if router == "" {
		router = getenv("SWITCHBACK_SERVER")
	}
	if router == "" {
		router = "http://127.0.0.1:8080"
	}
	fs.StringVar(&f.router, "router", router, "ingress router base URL ($SWITCHBACK_ROUTER, else $SWITCHBACK_SERVER, where serve embeds one)")
	fs.StringVar(&f.partners, "partners", "", "partners: a JSON file, inline JSON, or ID:PSA:SECRET,... (required)")
	fs.Float64Var(&f.rate, "rate", simulate.DefaultRate, "deliveries per second over all partners")
	fs.DurationVar(&f.duration, "duration", simulate.DefaultDuration, "how long to send (0 with --count: until the count)")
	fs.IntVar(&f.count, "count", 0, "stop after this many deliveries; 0 for no limit")
	fs.Uint64Var(&f.seed, "seed", 1, "seed of the whole sequence of deliveries")
	fs.Float64Var(&f.duplicates, "duplicates", 0.02, "share of deliveries resent with the same delivery id")
	fs.IntVar(&f.burstEvery, "burst-every", 0, "after every N paced deliveries, a burst; 0 for none")
	fs.IntVar(&f.burstSize, "burst-size", 20, "deliveries in a burst (one partner's bulk edit, sent back to back)")
	fs.StringVar(&f.mix, "mix", "", "entity type weights, e.g. ticket=5,time_entry=2,schedule_entry=1,company=1,contact=1 (default: a realistic mix)")
	fs.IntVar(&f.concurrency, "concurrency", 0, "partners sending at once; 0 for all (at most 32)")
	fs.StringVar(&f.ledger, "ledger", "", "write the ledger (every acknowledged event) to this file as JSON")
	fs.Float64Var(&f.drop, "drop", 0, "share of deliveries never sent, as in a PSA outage (0 to 1)")
	fs.StringVar(&f.dropped, "dropped", "", "write the dropped deliveries' events to this file as JSON")
	fs.StringVar(&f.psaAPI, "psa-api", "", "serve the partners' PSA change APIs on this address (e.g. 127.0.0.1:8090) while the run lasts")
	fs.StringVar(&f.psaAPIOut, "psa-api-out", "", "with --psa-api, write each partner's psaApi (base URL and credentials) to this file as JSON")
	fs.BoolVar(&f.json, "json", false, "print the final counts as JSON")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), simulateUsage)
		fs.PrintDefaults()
	}
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if f.partners == "" {
		return usageError("simulate needs --partners: a JSON file, inline JSON, or ID:PSA:SECRET,...")
	}
	partners, err := simulate.LoadPartners(f.partners)
	if err != nil {
		return usageError(err.Error())
	}
	mix, err := simulate.ParseMix(f.mix)
	if err != nil {
		return usageError(err.Error())
	}
	if f.psaAPIOut != "" && f.psaAPI == "" {
		return usageError("--psa-api-out needs --psa-api")
	}
	cfg := simulate.Config{
		Drop:        f.drop,
		URL:         f.router,
		Partners:    partners,
		Rate:        f.rate,
		Duration:    f.duration,
		Count:       f.count,
		Seed:        f.seed,
		Duplicates:  f.duplicates,
		Burst:       simulate.Burst{Every: f.burstEvery, Size: f.burstSize},
		Mix:         mix,
		Concurrency: f.concurrency,
	}

	if f.psaAPI != "" {
		stop, err := serveChangeAPI(f.psaAPI, f.psaAPIOut, partners, &cfg, stderr)
		if err != nil {
			return err
		}
		defer stop()
	}

	fmt.Fprintf(stderr, "simulating %d partners at %g deliveries/s against %s (seed %d)...\n", len(partners), f.rate, f.router, f.seed)
	st, err := simulate.Run(ctx, cfg, func(s simulate.Stats) {
		dropped := ""
		if f.drop > 0 {
			dropped = fmt.Sprintf("  dropped %d", s.Dropped)
		}
		fmt.Fprintf(stderr, "%6s  sent %d  acknowledged %d  refused %d  retried %d  errors %d  resent %d%s  (%.1f/s)\n",
			s.Elapsed.Round(time.Second), s.Sent, s.Acknowledged, s.RefusedTotal(), s.Retried, s.Errors, s.Duplicates, dropped,
			float64(s.Sent)/max(s.Elapsed.Seconds(), 0.001))
	})
	if err != nil && !errors.Is(err, context.Canceled) {
		if st.Sent == 0 {
			return err
		}
		fmt.Fprintln(stderr, "simulate stopped:", err)
	}
	if f.ledger != "" {
		if werr := simulate.WriteLedger(f.ledger, st.Ledger); werr != nil {
			return werr
		}
	}
	if f.dropped != "" {
		dropped := st.DroppedChanges
		if dropped == nil {
			dropped = []simulate.DroppedChange{}
		}
		if werr := writeJSON(f.dropped, dropped, 0o644); werr != nil {
			return werr
		}
	}
	if f.json {
		out := struct {
			simulate.Stats
			LedgerEntries  int `json:"ledgerEntries"`
			DroppedEntries int `json:"droppedEntries,omitempty"`
		}{st, len(st.Ledger), len(st.DroppedChanges)}
		out.Ledger, out.DroppedChanges = nil, nil
		if perr := console.JSON(stdout, out); perr != nil {
			return perr
		}
	} else {
		simulate.WriteReport(stdout, f.router, f.seed, st)
	}
	if err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if lost := st.RefusedTotal() + st.Errors; lost > 0 {
		return fmt.Errorf("%d of %d deliveries were not acknowledged", lost, st.Sent)
	}
	return nil
}

// serveChangeAPI serves the partners' change APIs on addr until stop is
// called, makes cfg's run feed them, prints each partner's base URL to
// stderr, and writes the partners' psaApi to out when it is not "".
func serveChangeAPI(addr, out string, partners []simulate.Partner, cfg *simulate.Config, stderr io.Writer) (stop func(), err error) {
	api, err := simulate.NewChangeAPI(partners)
	if err != nil {
		return nil, usageError(err.Error())
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--psa-api: %w", err)
	}
	// An unspecified host (":8090") is reached on loopback, the only
	// address a psaApi may name over plain http.
	host, port, _ := net.SplitHostPort(ln.Addr().String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host = "127.0.0.1"
	}
	root := "http://" + net.JoinHostPort(host, port)
	access := make(map[string]domain.PSAAPI, len(partners))
	for _, p := range partners {
		a, err := api.PSAAPI(root, p.ID)
		if err != nil {
			ln.Close()
			return nil, err
		}
		access[p.ID] = a
		fmt.Fprintf(stderr, "change API of %s (%s): %s\n", p.ID, p.PSA, a.BaseURL)
	}
	if out != "" {
		if err := writeJSON(out, access, 0o600); err != nil {
			ln.Close()
			return nil, err
		}
	}
	srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = srv.Serve(ln) // ErrServerClosed once stop shuts it down
	}()
	cfg.ChangeAPI = api
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if srv.Shutdown(ctx) != nil {
			srv.Close()
		}
		<-done
	}, nil
}

// writeJSON writes v to path as indented JSON with mode perm, which an
// existing file gets too (credentials must not stay world-readable).
func writeJSON(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, append(b, '\n'), perm); err != nil {
		return err
	}
	return os.Chmod(path, perm)
}
