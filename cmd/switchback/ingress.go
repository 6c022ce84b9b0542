package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/ingress"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipeline"
	"github.com/switchbackhq/switchback/internal/psa"
)

// ingressConfig configures an ingress router, embedded or alone.
type ingressConfig struct {
	Data       string // journal.db and snapshot.json
	ControlURL string
	Token      string // a router token: the snapshot must carry secrets
	RouterID   string
	Migration  string
	KeyHosts   []string // hosts ConnectWise signing keys may be fetched from
	BodyLimit  int64
	StuckAfter time.Duration
	Retention  time.Duration
	Workers    int
	// ComparisonDeadline bounds how long a revert's replay awaits late
	// comparisons; 0 is the router's default.
	ComparisonDeadline time.Duration
	// Local, set for the router embedded in serve, is the control service
	// of the same process: the router catches up with it before judging a
	// webhook, so it knows every change the API has answered.
	Local *control.Service
}

// localUpstream is the control service in the router's process, whose
// published snapshot is handed to the router's flags provider directly.
type localUpstream struct {
	svc *control.Service
	in  *ingressRunner
}

func (u localUpstream) Published() (string, uint64) {
	st := u.svc.State()
	return st.StoreID, st.Version
}

func (u localUpstream) CatchUp() error {
	return u.in.provider.Offer(u.svc.State().SnapshotJSON(true))
}

// ingressRunner is an ingress router with its journal and flags provider.
type ingressRunner struct {
	cfg      ingressConfig
	router   *ingress.Router
	journal  *journal.Journal
	api      *openfeature.EvaluationAPI
	provider *flags.Provider
	wg       sync.WaitGroup
}

// journalFile is the journal's name in a router's data directory.
const journalFile = "journal.db"

// openJournal opens the journal in dir, reading it whole: a damaged file
// is an error that says how to recover.
func openJournal(dir string) (*journal.Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create ingress data dir: %w", err)
	}
	path := filepath.Join(dir, journalFile)
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		return nil, damagedJournal(err, path, dir)
	}
	return j, nil
}

// newIngress builds the router on the journal j, which it then owns, and
// its flags provider; mount the router's webhook endpoint, then start it.
func newIngress(cfg ingressConfig, j *journal.Journal, reg prometheus.Registerer, log *slog.Logger) (*ingressRunner, error) {
	var err error
	in := &ingressRunner{cfg: cfg, journal: j, api: isolated.NewAPI()}
	var up ingress.Upstream
	if cfg.Local != nil {
		up = localUpstream{svc: cfg.Local, in: in}
	}
	in.router, err = ingress.New(ingress.Options{
		Upstream: up,
		// Read at each unknown partner, once the provider exists.
		Current: func() bool { return in.provider.Current() },
		Journal: j,
		Flags:   in.api.NewClient(),
		Decoder: &psa.Decoder{Keys: psa.NewKeyCache(cfg.KeyHosts, nil, time.Hour)},
		// One idle connection per worker, or every call would dial anew.
		Pipelines: &pipeline.Client{HTTP: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}},
		Logger:     log.With("component", "ingress"),
		Registry:   reg,
		Migration:  cfg.Migration,
		Workers:    cfg.Workers,
		BodyLimit:  cfg.BodyLimit,
		StuckAfter: cfg.StuckAfter,
		Retention:  cfg.Retention,

		ComparisonDeadline: cfg.ComparisonDeadline,
	})
	if err == nil {
		in.provider, err = flags.NewProvider(flags.Options{URL: cfg.ControlURL, Token: cfg.Token, RouterID: cfg.RouterID,
			SnapshotFile: filepath.Join(cfg.Data, "snapshot.json"), OnSnapshot: in.router.OnSnapshot,
			Logger: log.With("component", "flags")})
	}
	if err != nil {
		j.Close()
		return nil, err
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "switchback_ingress_snapshot_regressions_total",
		Help: "Snapshots the router refused because the control service's store went back to an earlier version (restored from a backup?).",
	}, func() float64 { return float64(in.provider.Regressions()) }))
	return in, nil
}

// start runs the router until ctx ends: its flags provider syncs in the
// background (a router restarted during a control-plane outage routes from
// its snapshot file), its workers resume what the journal holds, and it
// reports its figures to the control service.
func (in *ingressRunner) start(ctx context.Context) error {
	if err := in.api.SetProvider(ctx, in.provider); err != nil {
		return err
	}
	in.wg.Go(func() { in.router.Run(ctx) })
	in.wg.Go(func() {
		in.router.ReportTo(ctx, &http.Client{Timeout: 10 * time.Second}, in.cfg.ControlURL, in.cfg.Token, in.cfg.RouterID, time.Second)
	})
	in.wg.Go(func() {
		in.router.FollowAsked(ctx, &http.Client{Timeout: 10 * time.Second}, in.cfg.ControlURL, in.cfg.Token, 2*time.Second)
	})
	return nil
}

// wait waits for the router to stop after its context ended, then closes
// the provider and the journal.
func (in *ingressRunner) wait() error {
	in.wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	in.api.Shutdown(sctx)
	return in.journal.Close()
}

func runIngress(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := ingressConfig{Data: "./switchback-ingress", ControlURL: getenv("SWITCHBACK_SERVER"), Token: getenv("SWITCHBACK_TOKEN")}
	host, _ := os.Hostname()
	addr := "127.0.0.1:8081"
	var keyHosts, logFormat, logLevel string
	var initStore bool
	readTimeout := defaultReadTimeout
	if v := getenv("SWITCHBACK_READ_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("SWITCHBACK_READ_TIMEOUT: %w", err)
		}
		readTimeout = d
	}
	fs := flag.NewFlagSet("ingress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.ControlURL, "control", cfg.ControlURL, "control service URL ($SWITCHBACK_SERVER)")
	fs.StringVar(&cfg.Data, "data", cfg.Data, "data directory: journal.db and the last snapshot")
	fs.StringVar(&addr, "addr", addr, "address to listen on for webhooks")
	fs.StringVar(&cfg.RouterID, "router-id", "router-"+strings.ToLower(host), "this router's id in GET /v1/routers")
	fs.StringVar(&cfg.Migration, "migration", "", "migration (flag key) to route by; default: the one created first")
	fs.StringVar(&keyHosts, "connectwise-key-hosts", "", "comma-separated hosts ConnectWise signing keys may be fetched from")
	fs.Int64Var(&cfg.BodyLimit, "body-limit", 1<<20, "largest webhook body accepted, in bytes")
	fs.DurationVar(&cfg.StuckAfter, "stuck-after", 5*time.Minute, "report events without an outcome after this long")
	fs.DurationVar(&cfg.Retention, "retention", 30*24*time.Hour, "keep events with an outcome this long")
	fs.IntVar(&cfg.Workers, "workers", 32, "delivery workers")
	fs.DurationVar(&cfg.ComparisonDeadline, "comparison-deadline", 2*time.Minute, "how long a revert's replay awaits late comparisons before replaying the events still without one as unknown")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&logLevel, "log-level", "info", "log level")
	fs.BoolVar(&initStore, "init", false, "start even if journal.db is empty or missing while snapshot.json shows the router ran")
	fs.DurationVar(&readTimeout, "read-timeout", readTimeout, "longest time to read a request; a body still incomplete gets 408 ($SWITCHBACK_READ_TIMEOUT)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: switchback ingress --control URL [flags]

Runs an ingress router alone: POST /hooks/{partner} takes partners' webhooks,
journals them durably, then delivers each through the pipeline the migration
flag picks. It needs a token of the router role in $SWITCHBACK_TOKEN, and keeps
routing from its last snapshot while the control service is down.

The journal is read whole before the router listens: a damaged one stops it
with status 1 and the way to recover ("switchback journal export" saves what
can still be read). An empty or missing journal next to a snapshot.json
stops it too, unless --init says an empty journal is intended.

`)
		fs.PrintDefaults()
	}
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if cfg.ControlURL == "" || cfg.Token == "" {
		return usageError("switchback ingress needs --control URL and a router token in $SWITCHBACK_TOKEN")
	}
	if keyHosts != "" {
		cfg.KeyHosts = strings.Split(keyHosts, ",")
	}
	lc := defaultServeConfig()
	lc.LogFormat, lc.LogLevel, lc.ReadTimeout = logFormat, logLevel, readTimeout
	if err := lc.Validate(); err != nil {
		return err
	}
	log := newLogger(lc, stderr)

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	r := mux.NewRouter()
	r.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	r.HandleFunc("/healthz", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"status":"ok"}`+"\n")
	}).Methods(http.MethodGet)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if err := checkStoresNotLost(initStore, []string{filepath.Join(cfg.Data, journalFile)},
		[]string{filepath.Join(cfg.Data, "snapshot.json")}); err != nil {
		return err
	}
	j, err := openJournal(cfg.Data)
	if err != nil {
		return err
	}
	in, err := newIngress(cfg, j, reg, log)
	if err != nil {
		return err
	}
	in.router.Mount(r)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		in.journal.Close()
		return fmt.Errorf("listen on %s: %w", addr, err)
	}
	if err := in.start(ctx); err != nil {
		ln.Close()
		in.journal.Close()
		return err
	}
	srv := &http.Server{Handler: withReadTimeout(readTimeout, max(cfg.BodyLimit, apiBodyLimit), r), ReadHeaderTimeout: readHeaderTimeout(readTimeout), IdleTimeout: httpapi.IdleTimeout}
	fmt.Fprintf(stdout, "switchback ingress: listening on http://%s, routing from %s\n", ln.Addr(), cfg.ControlURL)
	return serveUntilDone(ctx, srv, ln, log, in.wait)
}

// serveUntilDone serves until ctx ends, shuts the server down gracefully,
// then runs after (the ingress's own shutdown).
func serveUntilDone(ctx context.Context, srv *http.Server, ln net.Listener, log *slog.Logger, after func() error) error {
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	var serveErr error
	select {
	case serveErr = <-done:
	case <-ctx.Done():
	}
	log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	shutErr := srv.Shutdown(sctx)
	if serveErr == nil {
		serveErr = <-done
	}
	var afterErr error
	if after != nil {
		afterErr = after()
	}
	if errors.Is(serveErr, http.ErrServerClosed) {
		serveErr = nil
	}
	return errors.Join(serveErr, shutErr, afterErr)
}
