package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchbackhq/switchback/internal/datadir"
	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/httpserve"
	"github.com/switchbackhq/switchback/internal/ingress"
	"github.com/switchbackhq/switchback/internal/journal"
)

// ingressConfig is the configuration of "switchback ingress": defaults,
// then SWITCHBACK_* variables (one per flag: --router-id is
// SWITCHBACK_ROUTER_ID; the control URL is $SWITCHBACK_SERVER, as for the
// CLI), then flags.
type ingressConfig struct {
	ingress.Config
	Addr        string
	LogFormat   string
	LogLevel    string
	ReadTimeout time.Duration
	// Init allows starting with an empty journal next to a snapshot.json.
	Init bool
}

func defaultIngressConfig(hostname string) ingressConfig {
	return ingressConfig{
		Config: ingress.Config{Data: "./switchback-ingress", RouterID: "router-" + strings.ToLower(hostname),
			BodyLimit: 1 << 20, StuckAfter: 5 * time.Minute, Retention: 30 * 24 * time.Hour, Workers: 32,
			ComparisonDeadline: 2 * time.Minute},
		Addr: "127.0.0.1:8081", LogFormat: "text", LogLevel: "info", ReadTimeout: httpserve.DefaultReadTimeout,
	}
}

// fromEnv overrides the defaults with SWITCHBACK_* variables; it names the
// first that does not parse.
func (c *ingressConfig) fromEnv(getenv func(string) string) error {
	for name, dst := range map[string]*string{
		"SWITCHBACK_SERVER": &c.ControlURL, "SWITCHBACK_TOKEN": &c.Token, "SWITCHBACK_DATA": &c.Data,
		"SWITCHBACK_ADDR": &c.Addr, "SWITCHBACK_ROUTER_ID": &c.RouterID, "SWITCHBACK_MIGRATION": &c.Migration,
		"SWITCHBACK_LOG_FORMAT": &c.LogFormat, "SWITCHBACK_LOG_LEVEL": &c.LogLevel,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if v := getenv("SWITCHBACK_CONNECTWISE_KEY_HOSTS"); v != "" {
		c.KeyHosts = strings.Split(v, ",")
	}
	for name, dst := range map[string]*time.Duration{
		"SWITCHBACK_STUCK_AFTER": &c.StuckAfter, "SWITCHBACK_RETENTION": &c.Retention,
		"SWITCHBACK_COMPARISON_DEADLINE": &c.ComparisonDeadline, "SWITCHBACK_READ_TIMEOUT": &c.ReadTimeout,
	} {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			*dst = d
		}
	}
	if v := getenv("SWITCHBACK_BODY_LIMIT"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("SWITCHBACK_BODY_LIMIT: %w", err)
		}
		c.BodyLimit = n
	}
	if v := getenv("SWITCHBACK_WORKERS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("SWITCHBACK_WORKERS: %w", err)
		}
		c.Workers = n
	}
	if v := getenv("SWITCHBACK_INIT"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("SWITCHBACK_INIT: %w", err)
		}
		c.Init = b
	}
	return nil
}

// Validate checks the configuration: the command's own fields, then the
// router's (ingress.Config.Validate).
func (c ingressConfig) Validate() error {
	if c.ControlURL == "" || c.Token == "" {
		return usageError("switchback ingress needs --control URL and a router token in $SWITCHBACK_TOKEN")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("--addr %q must be host:port: %w", c.Addr, err)
	}
	if err := checkLog(c.LogFormat, c.LogLevel); err != nil {
		return err
	}
	if c.ReadTimeout <= 0 {
		return errors.New("--read-timeout must be positive")
	}
	return c.Config.Validate()
}

// journalFile is the journal's name in a router's data directory.
const journalFile = ingress.JournalFile

// openJournal opens the journal in dir, reading it whole: a damaged file
// is an error that says how to recover.
func openJournal(dir string) (*journal.Journal, error) {
	j, err := ingress.OpenJournal(dir)
	if err != nil {
		return nil, datadir.DamagedJournal(err, filepath.Join(dir, journalFile), dir)
	}
	return j, nil
}

func runIngress(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	host, _ := os.Hostname()
	cfg, err := parseIngressConfig(args, defaultIngressConfig(host), getenv, stderr)
	if err != nil {
		return err
	}
	return serveIngress(ctx, cfg, stdout, stderr)
}

// parseIngressConfig reads the configuration of "switchback ingress" over
// the defaults cfg: the environment, then args; it returns a usage error,
// or Validate's.
func parseIngressConfig(args []string, cfg ingressConfig, getenv func(string) string, stderr io.Writer) (ingressConfig, error) {
	if err := cfg.fromEnv(getenv); err != nil {
		return cfg, err
	}
	fs := flag.NewFlagSet("ingress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.ControlURL, "control", cfg.ControlURL, "control service URL ($SWITCHBACK_SERVER)")
	fs.StringVar(&cfg.Data, "data", cfg.Data, "data directory: journal.db and the last snapshot ($SWITCHBACK_DATA)")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on for webhooks ($SWITCHBACK_ADDR)")
	fs.StringVar(&cfg.RouterID, "router-id", cfg.RouterID, "this router's id in GET /v1/routers ($SWITCHBACK_ROUTER_ID)")
	fs.StringVar(&cfg.Migration, "migration", cfg.Migration, "migration (flag key) to route by; default: the one created first ($SWITCHBACK_MIGRATION)")
	keyHosts := fs.String("connectwise-key-hosts", strings.Join(cfg.KeyHosts, ","), "comma-separated hosts ConnectWise signing keys may be fetched from ($SWITCHBACK_CONNECTWISE_KEY_HOSTS)")
	fs.Int64Var(&cfg.BodyLimit, "body-limit", cfg.BodyLimit, "largest webhook body accepted, in bytes ($SWITCHBACK_BODY_LIMIT)")
	fs.DurationVar(&cfg.StuckAfter, "stuck-after", cfg.StuckAfter, "report events without an outcome after this long ($SWITCHBACK_STUCK_AFTER)")
	fs.DurationVar(&cfg.Retention, "retention", cfg.Retention, "keep events with an outcome this long ($SWITCHBACK_RETENTION)")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "delivery workers ($SWITCHBACK_WORKERS)")
	fs.DurationVar(&cfg.ComparisonDeadline, "comparison-deadline", cfg.ComparisonDeadline, "how long a revert's replay awaits late comparisons before replaying the events still without one as unknown ($SWITCHBACK_COMPARISON_DEADLINE)")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: text or json ($SWITCHBACK_LOG_FORMAT)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level ($SWITCHBACK_LOG_LEVEL)")
	fs.BoolVar(&cfg.Init, "init", cfg.Init, "start even if journal.db is empty or missing while snapshot.json shows the router ran ($SWITCHBACK_INIT)")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout, "longest time to read a request; a body still incomplete gets 408 ($SWITCHBACK_READ_TIMEOUT)")
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

Each flag may be set in the environment instead, as SWITCHBACK_ and its name
in capitals with underscores; a flag wins over its variable.

`)
		fs.PrintDefaults()
	}
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return cfg, err
	}
	cfg.KeyHosts = nil
	if *keyHosts != "" {
		cfg.KeyHosts = strings.Split(*keyHosts, ",")
	}
	return cfg, cfg.Validate()
}

// serveIngress runs a router alone until ctx ends, then shuts down
// gracefully.
func serveIngress(ctx context.Context, cfg ingressConfig, stdout, stderr io.Writer) error {
	log := newLogger(cfg.LogFormat, cfg.LogLevel, stderr)
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
	if err := datadir.CheckNotLost(cfg.Init, []string{filepath.Join(cfg.Data, journalFile)},
		[]string{filepath.Join(cfg.Data, ingress.SnapshotFile)}); err != nil {
		return err
	}
	j, err := openJournal(cfg.Data)
	if err != nil {
		return err
	}
	in, err := ingress.NewProcess(cfg.Config, j, reg, log)
	if err != nil {
		return err
	}
	in.Router().Mount(r)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		in.Close()
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	if err := in.Start(ctx); err != nil {
		ln.Close()
		in.Close()
		return err
	}
	srv := &http.Server{Handler: httpserve.WithReadTimeout(cfg.ReadTimeout, max(cfg.BodyLimit, apiBodyLimit), r), ReadHeaderTimeout: httpserve.ReadHeaderTimeout(cfg.ReadTimeout), IdleTimeout: httpapi.IdleTimeout}
	fmt.Fprintf(stdout, "switchback ingress: listening on http://%s, routing from %s\n", ln.Addr(), cfg.ControlURL)
	return httpserve.Serve(ctx, srv, ln, log, nil, in.Close)
}
