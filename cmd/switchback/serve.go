package main

import (
	"context"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/switchbackhq/switchback/internal/config"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/datadir"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/flagdsync"
	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/httpserve"
	"github.com/switchbackhq/switchback/internal/ingress"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstier"
	"github.com/switchbackhq/switchback/internal/notify"
	"github.com/switchbackhq/switchback/internal/psa"
	"github.com/switchbackhq/switchback/internal/reconcile"
	"github.com/switchbackhq/switchback/internal/webui"
)

// routerWatchEvery is how often serve looks for routers that stopped
// reporting (control.RouterStaleAfter), to notice router.stale.
const routerWatchEvery = 15 * time.Second

// apiBodyLimit is the largest body of the API and of serve's embedded
// router (httpapi's and ingress's default limit).
const apiBodyLimit = 1 << 20

// changeExpiryEvery is how often serve stores the expiry of change
// requests past their ttl.
const changeExpiryEvery = 30 * time.Second

// autopilotEvery is how often serve steps the migrations' autopilots: a
// gate that starts passing is acted on within it.
const autopilotEvery = 15 * time.Second

func runServe(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	cfg := config.DefaultServe()
	if err := cfg.FromEnv(getenv); err != nil {
		return err
	}
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.Data, "data", cfg.Data, "data directory: the bbolt file and admin.token ($SWITCHBACK_DATA)")
	fs.StringVar(&cfg.Addr, "addr", cfg.Addr, "address to listen on ($SWITCHBACK_ADDR)")
	fs.StringVar(&cfg.LogFormat, "log-format", cfg.LogFormat, "log format: text or json ($SWITCHBACK_LOG_FORMAT)")
	fs.StringVar(&cfg.LogLevel, "log-level", cfg.LogLevel, "log level: debug, info, warn or error ($SWITCHBACK_LOG_LEVEL)")
	fs.DurationVar(&cfg.LockTimeout, "lock-timeout", cfg.LockTimeout, "how long to wait for another process to release the data file ($SWITCHBACK_LOCK_TIMEOUT)")
	fs.BoolVar(&cfg.NoIngress, "no-ingress", false, "do not run an ingress router in this process")
	fs.StringVar(&cfg.Migration, "migration", "", "migration (flag key) the embedded router routes by; default: the one created first")
	keyHosts := fs.String("connectwise-key-hosts", "", "comma-separated hosts ConnectWise signing keys may be fetched from")
	fs.BoolVar(&cfg.Init, "init", false, "start even if a database is empty or missing in a data dir that held data (see above)")
	fs.DurationVar(&cfg.ReadTimeout, "read-timeout", cfg.ReadTimeout, "longest time to read a request; a body still incomplete gets 408 ($SWITCHBACK_READ_TIMEOUT)")
	fs.StringVar(&cfg.TLSCert, "tls-cert", cfg.TLSCert, "PEM certificate (chain) file: serve HTTPS ($SWITCHBACK_TLS_CERT)")
	fs.StringVar(&cfg.TLSKey, "tls-key", cfg.TLSKey, "PEM private key file for --tls-cert ($SWITCHBACK_TLS_KEY)")
	fs.StringVar(&cfg.FlagdSync, "flagd-sync", cfg.FlagdSync,
		"host:port of the flagd sync service for flagd's in-process providers, such as 127.0.0.1:8015; no host means loopback, 0.0.0.0:PORT every interface; none when empty ($SWITCHBACK_FLAGD_SYNC)")
	fs.StringVar(&cfg.FlagdSyncTLSCert, "flagd-sync-tls-cert", cfg.FlagdSyncTLSCert, "PEM certificate (chain) file: the flagd sync service speaks TLS ($SWITCHBACK_FLAGD_SYNC_TLS_CERT)")
	fs.StringVar(&cfg.FlagdSyncTLSKey, "flagd-sync-tls-key", cfg.FlagdSyncTLSKey, "PEM private key file for --flagd-sync-tls-cert ($SWITCHBACK_FLAGD_SYNC_TLS_KEY)")
	fs.StringVar(&cfg.Journal, "journal", cfg.Journal, "where the embedded router makes webhooks durable: bbolt (in --data/ingress), or nats://HOST:PORT[,…] for the NATS JetStream stream a tier of routers shares ($SWITCHBACK_JOURNAL)")
	fs.IntVar(&cfg.JournalReplicas, "journal-replicas", cfg.JournalReplicas, "replicas of the NATS stream and outcome bucket when this process creates them; 0 is 3 ($SWITCHBACK_JOURNAL_REPLICAS)")
	proxies := fs.String("trusted-proxies", strings.Join(cfg.TrustedProxies, ","),
		"comma-separated CIDRs of proxies whose X-Forwarded-Proto is believed ($SWITCHBACK_TRUSTED_PROXIES)")
	fs.StringVar(&cfg.Store, "store", cfg.Store, "control store: empty for bbolt in --data, or etcd://HOST:PORT[,HOST:PORT…] shared by replicas ($SWITCHBACK_STORE)")
	fs.StringVar(&cfg.EtcdPrefix, "etcd-prefix", cfg.EtcdPrefix, "key prefix of this installation in etcd ($SWITCHBACK_ETCD_PREFIX)")
	fs.StringVar(&cfg.EtcdCA, "etcd-ca", cfg.EtcdCA, "PEM CA file that verifies etcd's members: TLS to etcd ($SWITCHBACK_ETCD_CA)")
	fs.StringVar(&cfg.EtcdCert, "etcd-cert", cfg.EtcdCert, "PEM client certificate for etcd ($SWITCHBACK_ETCD_CERT)")
	fs.StringVar(&cfg.EtcdKey, "etcd-key", cfg.EtcdKey, "PEM private key of --etcd-cert ($SWITCHBACK_ETCD_KEY)")
	fs.StringVar(&cfg.SecretsKeyFile, "secrets-key-file", cfg.SecretsKeyFile,
		"file of the keys sealing partners' webhook secrets in etcd, one a line (64 hex digits: openssl rand -hex 32): the first seals, each opens ($SWITCHBACK_SECRETS_KEY_FILE)")
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), `Usage: switchback serve [flags]

Runs the control service and, unless --no-ingress, an ingress router in the
same process: POST /hooks/{partner} takes webhooks, its journal lives in
DATA/ingress. On first start with an empty data dir it creates the
admin token "admin": $SWITCHBACK_ADMIN_TOKEN when set, else a random one that
is printed once and written to DATA/admin.token (mode 0600).

Both databases are read whole before serve listens: a damaged one stops it
with status 1 and the way to recover. An empty or missing database in a
data dir that shows it held data (admin.token, ingress/snapshot.json or
the other database) stops it too, unless --init says an empty store is
intended.

With --store etcd://HOST:PORT[,…], the control state (partners, stages, kill
switches, audit log, statistics, router registry, replays asked) lives in
etcd under --etcd-prefix, and any number of serve processes on the same
cluster and prefix are replicas of one control service: each serves the
whole API, UI and snapshot stream, follows the others' changes at the same
snapshot versions, and refuses changes (503, Retry-After) while it cannot
reach etcd. The data directory then holds only this replica's ingress
journal. etcd credentials come from $SWITCHBACK_ETCD_USERNAME and
$SWITCHBACK_ETCD_PASSWORD. See the README, "Run it highly available".

With --flagd-sync ADDR, serve also serves flagd's sync protocol
(flagd.sync.v1.FlagSyncService, gRPC) on ADDR, for flagd's providers in
in-process mode in any language: each migration KEY as the flags KEY and
KEY:shadow. It asks for no token and exposes partner ids and stages, so
ADDR with no host (:8015) listens on loopback (127.0.0.1:8015) only; every
interface must be named (0.0.0.0:8015 or [::]:8015), and without
--flagd-sync-tls-cert and --flagd-sync-tls-key serve then logs a warning
that anyone who reaches it reads them. See the README, "Routers in other
languages".

The session cookie of the web UI is Secure on HTTPS requests: with
--tls-cert and --tls-key, or behind a proxy in --trusted-proxies that sends
X-Forwarded-Proto: https.

`)
		fs.PrintDefaults()
	}
	if _, err := parseFlags(fs, args, 0, "no arguments"); err != nil {
		return err
	}
	if *keyHosts != "" {
		cfg.KeyHosts = strings.Split(*keyHosts, ",")
	}
	cfg.TrustedProxies = nil
	if *proxies != "" {
		cfg.TrustedProxies = strings.Split(*proxies, ",")
	}
	if err := cfg.Validate(); err != nil {
		return err
	}
	return serve(ctx, cfg, stdout, stderr)
}

// serve runs the control service until ctx ends, then shuts down gracefully.
func serve(ctx context.Context, cfg config.Serve, stdout, stderr io.Writer) error {
	log := config.Logger(cfg.LogFormat, cfg.LogLevel, stderr)
	if err := os.MkdirAll(cfg.Data, 0o700); err != nil {
		return fmt.Errorf("create data dir: %w", err)
	}
	dbPath, ingressDir := filepath.Join(cfg.Data, controlDBFile), filepath.Join(cfg.Data, "ingress")
	var stores []string
	evidence := []string{filepath.Join(ingressDir, "snapshot.json")}
	if cfg.Store == "" {
		// On etcd, the control state is the cluster's: only the
		// journal here can be lost.
		stores = append(stores, dbPath)
		evidence = append(evidence, filepath.Join(cfg.Data, "admin.token"))
	}
	if cfg.NoIngress {
		evidence = append(evidence, filepath.Join(ingressDir, journalFile))
	} else {
		stores = append(stores, filepath.Join(ingressDir, journalFile))
	}
	if err := datadir.CheckNotLost(cfg.Init, stores, evidence); err != nil {
		return err
	}
	store, registry, closeStore, err := openStore(ctx, cfg, dbPath, log)
	if err != nil {
		return err
	}
	defer closeStore()
	// The journal is read whole before the server listens, like the store.
	var j *journal.Journal
	closeJournal := func() {}
	if !cfg.NoIngress {
		if j, err = openJournal(ingressDir); err != nil {
			return err
		}
		closeJournal = func() { j.Close() }
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	svc, err := control.New(ctx, store, control.Options{Logger: log, Now: now, Registry: registry,
		CannotReconcile: cannotReconcile(cfg)})
	if err != nil {
		closeJournal()
		return err
	}
	generated, err := bootstrapAdmin(ctx, svc, cfg, stdout)
	if err != nil {
		closeJournal()
		return err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	// Notices go to the notification targets in the background: a
	// change hands its notice over and returns (see package notify).
	notifier := notify.New(notify.Options{Targets: func() []domain.Notifier { return svc.State().NotifierList() },
		Registerer: reg, Log: log, Now: now})
	svc.OnNotice(notifier.Send)

	proxies, _ := webui.ParseProxies(cfg.TrustedProxies) // checked by Validate
	var tlsConfig *tls.Config
	if cfg.TLSCert != "" {
		if tlsConfig, err = httpserve.LoadTLS(cfg.TLSCert, cfg.TLSKey); err != nil {
			closeJournal()
			return fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
	}
	ln, scheme, controlURL, err := httpserve.Listen(cfg.Addr, tlsConfig)
	if err != nil {
		closeJournal()
		return err
	}
	stopFlagdSync, err := startFlagdSync(ctx, cfg, svc, reg, log, stdout)
	if err != nil {
		ln.Close()
		closeJournal()
		return err
	}
	defer stopFlagdSync()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var apiOpts []httpapi.Option
	var in *ingress.Process
	// The replays after reverts run on the embedded router; a control
	// service without one asks them of the routers, and so does a replica
	// on etcd: the events to replay are in the journals of every replica's
	// router.
	var replayRouter control.ReplayStarter
	// Reconciliations read the embedded router's journal.
	var rec *reconcile.Runner
	if !cfg.NoIngress {
		// The embedded router talks to this process over loopback like any
		// router, with a router token that lives in memory only.
		icfg := ingress.Config{
			Data: ingressDir, ControlURLs: []string{controlURL},
			Token: svc.AddEphemeralToken("ingress-embedded", domain.RoleRouter), RouterID: "embedded",
			Migration: cfg.Migration, KeyHosts: cfg.KeyHosts, Local: localControl{svc}, Now: now,
		}
		if urls := cfg.TierURLs(); urls != "" {
			if icfg.Tier, err = openTier(ctx, urls, "embedded", cfg.JournalReplicas, 0, reg, log); err != nil {
				ln.Close()
				closeJournal()
				return err
			}
		}
		in, err = ingress.NewProcess(icfg, j, reg, log)
		if err != nil {
			ln.Close()
			return err
		}
		apiOpts = append(apiOpts, httpapi.WithIngress(in.Router()))
		// On a tier a reconciliation reads the tier's history: every
		// router's events, from the stream, with their outcomes.
		var recJournal reconcile.JobJournal = j
		others := otherJournals(svc, journalsElsewhere(cfg))
		if tier, ok := icfg.Tier.(*natstier.Tier); ok {
			// The standalone routers of the tier journal there too.
			recJournal, others = &natstier.History{Tier: tier, UpdatedAt: psa.UpdatedAt}, nil
		}
		rec = reconcile.NewRunner(reconcile.Options{Journal: recJournal, Router: in.Router(), Partner: partnerOf(svc),
			Audit: auditBy(svc), OtherJournals: others, Registerer: reg, Log: log, Now: now,
			Notify: notifier.Send})
		apiOpts = append(apiOpts, httpapi.WithReconciler(rec))
		if cfg.Store == "" {
			replayRouter = in.Router()
		}
	}
	closeIngress := func() error {
		if in == nil {
			return nil
		}
		cancel()
		return in.Close()
	}
	apiOpts = append(apiOpts, httpapi.WithNotifications(notifier))
	api := httpapi.New(svc, log, reg, apiOpts...)
	uiOpts := webui.Options{Comparisons: webui.ServiceComparisons{Svc: svc}, TrustedProxies: proxies, Now: now, Notifications: notifier}
	if in != nil {
		uiOpts.Replays, uiOpts.Reconciler = in.Router().Replays, rec
	}
	ui, err := webui.New(svc, log, uiOpts)
	if err != nil {
		ln.Close()
		closeIngress()
		return err
	}
	ui.Mount(api.Router())
	if in != nil {
		in.Router().Mount(api.Router())
	}
	sched, err := control.NewReplayScheduler(svc, replayRouter)
	if err != nil {
		ln.Close()
		closeIngress()
		return err
	}
	// The scheduler outlives the server: a revert answered during the
	// graceful shutdown still gets its replay.
	schedCtx, stopSched := context.WithCancel(context.WithoutCancel(ctx))
	var schedDone sync.WaitGroup
	schedDone.Go(func() { sched.Run(schedCtx) })
	// So does the notifier, for the notices of those last changes, and
	// the watch of routers that stop reporting.
	schedDone.Go(func() { notifier.Run(schedCtx) })
	routers := control.NewRouterWatch(svc)
	schedDone.Go(func() { routers.Run(schedCtx, routerWatchEvery) })
	defer func() { stopSched(); schedDone.Wait() }()
	if rec != nil {
		auto := control.NewReconcileScheduler(svc, rec, reconcile.DefaultSkew+reconcile.DefaultSettle)
		schedDone.Go(func() { auto.Run(schedCtx) })
		schedDone.Go(func() { rec.Run(schedCtx) })
	}
	// Replicas on etcd publish each other's changes as their own.
	followCtx, stopFollow := context.WithCancel(ctx)
	var following sync.WaitGroup
	following.Go(func() { svc.Follow(followCtx) })
	// Change requests past their expiry are stored expired (reads show
	// them so already); every replica may do it, the store keeps it once.
	following.Go(func() { svc.RunChangeExpiry(followCtx, changeExpiryEvery) })
	// So may the autopilots step: each move is checked again under the
	// change lock, so two replicas never make the same one twice.
	following.Go(func() { svc.RunAutopilot(followCtx, autopilotEvery) })
	defer func() { stopFollow(); following.Wait() }()
	srv := &http.Server{Handler: httpserve.WithReadTimeout(cfg.ReadTimeout, apiBodyLimit, api), ReadHeaderTimeout: httpserve.ReadHeaderTimeout(cfg.ReadTimeout),
		IdleTimeout: httpserve.IdleTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	fmt.Fprintf(stdout, "switchback: listening on %s://%s\n", scheme, ln.Addr())
	if generated != "" {
		fmt.Fprintf(stdout, "switchback: sign in to the web UI: %s://%s/login?token=%s\n", scheme, loginHost(ln.Addr()), url.QueryEscape(generated))
	}
	log.Info("serving", "addr", ln.Addr().String(), "data", cfg.Data, "store", storeName(cfg), "snapshotVersion", svc.State().Version, "ingress", in != nil)
	if in != nil {
		if err := in.Start(ctx); err != nil {
			ln.Close()
			closeIngress()
			return err
		}
	}
	// Snapshot streams never go idle by themselves: api.Close ends them,
	// and the flagd sync service's stop ends its own.
	return httpserve.Serve(ctx, srv, ln, log, func() { api.Close(); stopFlagdSync() }, closeIngress)
}

// startFlagdSync serves the flagd sync service on cfg.FlagdSync, if set,
// until the returned stop is called (stop may be called again). Its errors
// are the TLS files' and the listen's.
func startFlagdSync(ctx context.Context, cfg config.Serve, svc *control.Service, reg prometheus.Registerer, log *slog.Logger, stdout io.Writer) (stop func(), err error) {
	if cfg.FlagdSync == "" {
		return func() {}, nil
	}
	var tlsConfig *tls.Config
	if cfg.FlagdSyncTLSCert != "" {
		if tlsConfig, err = httpserve.LoadTLS(cfg.FlagdSyncTLSCert, cfg.FlagdSyncTLSKey); err != nil {
			return nil, fmt.Errorf("--flagd-sync-tls-cert/--flagd-sync-tls-key: %w", err)
		}
	}
	addr := flagdSyncAddr(cfg.FlagdSync)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("--flagd-sync: listen on %s: %w", addr, err)
	}
	tcp, _ := ln.Addr().(*net.TCPAddr)
	if tlsConfig == nil && (tcp == nil || !tcp.IP.IsLoopback()) {
		log.Warn("the flagd sync service listens beyond loopback without TLS: whoever reaches it reads partner ids and stages; give --flagd-sync-tls-cert and --flagd-sync-tls-key",
			"addr", ln.Addr().String())
	}
	mode := "plaintext"
	if tlsConfig != nil {
		mode = "TLS"
	}
	fmt.Fprintf(stdout, "switchback: flagd sync (%s) on %s\n", mode, ln.Addr())
	srv := flagdsync.New(flagdsync.ControlSource(svc), log, reg)
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := srv.Serve(sctx, ln, tlsConfig); err != nil {
			log.Error("the flagd sync service stopped", "err", err)
		}
	}()
	var once sync.Once
	return func() { once.Do(func() { cancel(); <-done }) }, nil
}

// flagdSyncAddr is the address the flagd sync service listens on: an
// empty host (":8015") means loopback, not every interface as Go would
// read it, because the service answers anyone it can reach with partner
// ids and stages and asks for no token. Every interface must be asked
// for by name (0.0.0.0:8015, [::]:8015).
func flagdSyncAddr(addr string) string {
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host != "" {
		return addr
	}
	return net.JoinHostPort("127.0.0.1", port)
}

// partnerOf gives the reconciliations a partner as the control service
// holds it, with its PSA API access.
func partnerOf(svc *control.Service) func(string) (domain.Partner, bool) {
	return func(id string) (domain.Partner, bool) {
		p, err := svc.State().Partner(id)
		if err != nil {
			return domain.Partner{}, false
		}
		return *p, true
	}
}

// auditBy writes the reconciliations' audit entries.
func auditBy(svc *control.Service) func(context.Context, reconcile.By, string, string, any) error {
	return func(ctx context.Context, by reconcile.By, action, target string, detail any) error {
		return svc.RecordAction(ctx, control.Change{Actor: by.Actor, Reason: by.Reason}, action, target, detail)
	}
}

// otherJournals names the journals a reconciliation on this process's
// router cannot read: standalone routers seen in the window, and
// elsewhere, if not "", the journals the deployment keeps besides this
// router's that no report names (journalsElsewhere).
func otherJournals(svc *control.Service, elsewhere string) func(context.Context, time.Time) ([]string, error) {
	return func(ctx context.Context, since time.Time) ([]string, error) {
		others, err := svc.RoutersSeenSince(ctx, since, "embedded")
		if elsewhere != "" {
			others = append(others, elsewhere)
		}
		return others, err
	}
}

// journalsElsewhere names the journals that may hold events besides the
// embedded router's while no router report says so: on a shared store the
// other replicas' embedded routers, whose reports all carry the id
// "embedded". On a NATS tier there are none: a reconciliation reads the
// tier's history, where every router of the tier journals.
func journalsElsewhere(cfg config.Serve) string {
	if cfg.Store != "" {
		return "the embedded routers of the other replicas on this store"
	}
	return ""
}

// cannotReconcile says why every reconciliation of this process would be
// refused, "" when none need be: on etcd (otherJournals always names the
// other replicas' routers) or without the embedded router, whose journal
// a reconciliation reads.
func cannotReconcile(cfg config.Serve) string {
	switch {
	case cfg.NoIngress:
		return "it runs with --no-ingress, and a reconciliation reads the embedded router's journal"
	case cfg.Store != "":
		return "its store is shared (etcd), and a reconciliation reads this replica's router journal only, where the events the other replicas' routers took are not"
	}
	return ""
}

// localControl is the control service as the embedded router sees it.
type localControl struct{ svc *control.Service }

func (l localControl) Published() (string, uint64) {
	st := l.svc.State()
	return st.StoreID, st.Version
}

func (l localControl) Snapshot() []byte { return l.svc.State().SnapshotJSON(true) }

// bootstrapAdmin creates the first admin token on an empty store, and
// returns its secret when it generated one (not when the environment gave
// it), for the sign-in link.
func bootstrapAdmin(ctx context.Context, svc *control.Service, cfg config.Serve, stdout io.Writer) (string, error) {
	secret, created, err := svc.Bootstrap(ctx, cfg.AdminToken)
	if err != nil || !created {
		return "", err
	}
	if cfg.AdminToken != "" {
		fmt.Fprintln(stdout, "switchback: created the admin token \"admin\" from $SWITCHBACK_ADMIN_TOKEN")
		return "", nil
	}
	path := filepath.Join(cfg.Data, "admin.token")
	if err := os.WriteFile(path, []byte(secret+"\n"), 0o600); err != nil {
		return "", fmt.Errorf("write %s: %w", path, err)
	}
	fmt.Fprintf(stdout, "switchback: created the admin token \"admin\" (shown once, also in %s):\n\n    %s\n\n", path, strings.TrimSpace(secret))
	return strings.TrimSpace(secret), nil
}

// loginHost is the host:port to print in the sign-in link: 127.0.0.1 when
// listening on every address.
func loginHost(addr net.Addr) string {
	if a, ok := addr.(*net.TCPAddr); ok && a.IP.IsUnspecified() {
		return net.JoinHostPort("127.0.0.1", strconv.Itoa(a.Port))
	}
	return addr.String()
}
