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
	"runtime/debug"
	"strings"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/switchbackhq/switchback/internal/config"
	"github.com/switchbackhq/switchback/internal/datadir"
	"github.com/switchbackhq/switchback/internal/httpserve"
	"github.com/switchbackhq/switchback/internal/ingress"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstier"
)

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
	cfg, err := parseIngressConfig(args, config.DefaultIngress(host), getenv, stderr)
	if err != nil {
		return err
	}
	if getenv("GOGC") == "" {
		// The router's live heap is small (the delivery backlog), and a
		// webhook allocates its body, its JSON and its journal pages
		// several times over: at Go's default of 100 the collector took
		// ~10% of the router's CPU. Four times the live heap between
		// collections trades some tens of MB for most of it. GOGC set in
		// the environment wins.
		debug.SetGCPercent(ingressGCPercent)
	}
	return serveIngress(ctx, cfg, stdout, stderr)
}

// openTier connects to the tier's NATS servers, waiting up to a minute
// for a cluster that is still electing its leaders.
func openTier(ctx context.Context, urls, routerID string, replicas int, retention time.Duration, reg prometheus.Registerer, log *slog.Logger) (*natstier.Tier, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	return natstier.Open(ctx, natstier.Options{URLs: urls, Name: routerID, Replicas: replicas,
		MaxAge: retention, Registry: reg, Logger: log.With("component", "tier", "router", routerID)})
}

// ingressGCPercent is the router process's GOGC unless the environment sets one.
const ingressGCPercent = 400

// parseIngressConfig reads the configuration of "switchback ingress" over
// the defaults cfg: the environment, then args; it returns a usage error,
// or Validate's.
func parseIngressConfig(args []string, cfg config.Ingress, getenv func(string) string, stderr io.Writer) (config.Ingress, error) {
	if err := cfg.FromEnv(getenv); err != nil {
		return cfg, err
	}
	fs := flag.NewFlagSet("ingress", flag.ContinueOnError)
	fs.SetOutput(stderr)
	control := fs.String("control", strings.Join(cfg.ControlURLs, ","), "control service URL, or comma-separated URLs of its replicas ($SWITCHBACK_SERVER)")
	fs.StringVar(&cfg.Data, "data", cfg.Data, "data directory: journal.db and the last snapshot ($SWITCHBACK_DATA)")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on for webhooks ($SWITCHBACK_ADDR)")
	fs.StringVar(&cfg.RouterID, "router-id", cfg.RouterID, "this router's id in GET /v1/routers ($SWITCHBACK_ROUTER_ID)")
	fs.StringVar(&cfg.Migration, "migration", cfg.Migration, "migration (flag key) to route by; default: the one created first ($SWITCHBACK_MIGRATION)")
	keyHosts := fs.String("connectwise-key-hosts", strings.Join(cfg.KeyHosts, ","), "comma-separated hosts ConnectWise signing keys may be fetched from ($SWITCHBACK_CONNECTWISE_KEY_HOSTS)")
	fs.Int64Var(&cfg.BodyLimit, "body-limit", cfg.BodyLimit, "largest webhook body accepted, in bytes ($SWITCHBACK_BODY_LIMIT)")
	fs.DurationVar(&cfg.StuckAfter, "stuck-after", cfg.StuckAfter, "report events without an outcome after this long ($SWITCHBACK_STUCK_AFTER)")
	fs.DurationVar(&cfg.Retention, "retention", cfg.Retention, "keep events with an outcome this long ($SWITCHBACK_RETENTION)")
	fs.IntVar(&cfg.Workers, "workers", cfg.Workers, "delivery workers ($SWITCHBACK_WORKERS)")
	fs.IntVar(&cfg.PartnerBacklog, "partner-backlog", cfg.PartnerBacklog, "events of one partner that may wait for a worker before its webhooks get 429; 0 is a quarter of the router's backlog of 20000 ($SWITCHBACK_PARTNER_BACKLOG)")
	fs.Float64Var(&cfg.ShadowMinShare, "shadow-min-share", cfg.ShadowMinShare, "below 1, the share of shadowed events still compared while the router's CPU is contended; the others are shed, counted as skipped (coverage gaps). 1 compares every event however busy the router is ($SWITCHBACK_SHADOW_MIN_SHARE)")
	fs.DurationVar(&cfg.ComparisonDeadline, "comparison-deadline", cfg.ComparisonDeadline, "how long a revert's replay awaits late comparisons before replaying the events still without one as unknown ($SWITCHBACK_COMPARISON_DEADLINE)")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: text or json ($SWITCHBACK_LOG_FORMAT)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level ($SWITCHBACK_LOG_LEVEL)")
	fs.BoolVar(&cfg.Init, "init", cfg.Init, "start even if journal.db is empty or missing while snapshot.json shows the router ran ($SWITCHBACK_INIT)")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout, "longest time to read a request; a body still incomplete gets 408 ($SWITCHBACK_READ_TIMEOUT)")
	fs.StringVar(&cfg.Journal, "journal", cfg.Journal, "where webhooks are made durable before the 202: bbolt (journal.db in --data), or nats://HOST:PORT[,nats://HOST:PORT...] for the NATS JetStream stream shared by a tier of routers ($SWITCHBACK_JOURNAL)")
	fs.IntVar(&cfg.JournalReplicas, "journal-replicas", cfg.JournalReplicas, "replicas of the NATS stream and outcome bucket when this router creates them; 0 is 3 ($SWITCHBACK_JOURNAL_REPLICAS)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: switchback ingress --control URL[,URL...] [flags]

Runs an ingress router alone: POST /hooks/{partner} takes partners' webhooks,
journals them durably, then delivers each through the pipeline the migration
flag picks. It needs a token of the router role in $SWITCHBACK_TOKEN, and keeps
routing from its last snapshot while the control service is down.

The journal is read whole before the router listens: a damaged one stops it
with status 1 and the way to recover ("switchback journal export" saves what
can still be read). An empty or missing journal next to a snapshot.json
stops it too, unless --init says an empty journal is intended.

--control takes one control service, or several replicas of one (all on one
store), comma-separated. The router follows the snapshot stream of one and
sends its reports and replay polls to the one that last answered; when a
replica fails it moves to the next, round robin, and resumes from the
snapshot version it holds: it never goes back to an older one. A report a
replica failed to take goes to the next; its counts stay owed until one does.

--journal nats://… makes the router one of a tier that shares a NATS JetStream
stream (docs/api.md, "Many routers"): a webhook is answered 202 once the
stream holds it on a quorum of its replicas, a delivery resent to another
router is a duplicate, and each entity's events are delivered by one router
at a time, in order; journal.db in --data is then the router's working set.
A router that dies hands its shards to the others after about 15 s.

Each flag may be set in the environment instead, as SWITCHBACK_ and its name
in capitals with underscores; a flag wins over its variable.

The router collects garbage when its heap has grown by 400% (GOGC=400), not
Go's 100%: less CPU per webhook for a few tens of MB. $GOGC, if set, wins.

`)
		fs.PrintDefaults()
	}
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return cfg, err
	}
	cfg.ControlURLs = ingress.ParseControlURLs(*control)
	cfg.KeyHosts = nil
	if *keyHosts != "" {
		cfg.KeyHosts = strings.Split(*keyHosts, ",")
	}
	if err := cfg.Validate(); errors.Is(err, config.ErrNoControl) {
		return cfg, usageError(err.Error())
	} else if err != nil {
		return cfg, err
	}
	return cfg, nil
}

// serveIngress runs a router alone until ctx ends, then shuts down
// gracefully.
func serveIngress(ctx context.Context, cfg config.Ingress, stdout, stderr io.Writer) error {
	log := config.Logger(cfg.LogFormat, cfg.LogLevel, stderr)
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
	if urls := cfg.TierURLs(); urls != "" {
		if cfg.Config.Tier, err = openTier(ctx, urls, cfg.RouterID, cfg.JournalReplicas, cfg.Retention, reg, log); err != nil {
			j.Close()
			return err
		}
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
	srv := &http.Server{Handler: httpserve.WithReadTimeout(cfg.ReadTimeout, max(cfg.BodyLimit, apiBodyLimit), r), ReadHeaderTimeout: httpserve.ReadHeaderTimeout(cfg.ReadTimeout), IdleTimeout: httpserve.IdleTimeout}
	fmt.Fprintf(stdout, "switchback ingress: listening on http://%s, routing from %s\n", ln.Addr(), strings.Join(cfg.ControlURLs, ", "))
	// The router stops with the server, also when serving failed on its own.
	return httpserve.Serve(ctx, srv, ln, log, nil, func() error { cancel(); return in.Close() })
}
