package ingress

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
	"github.com/switchbackhq/switchback/internal/psa"
)

// JournalFile is the journal's name in a router's data directory.
const JournalFile = "journal.db"

// SnapshotFile is the name, in a router's data directory, of the last
// snapshot its flags provider took: it routes from it while the control
// service is down.
const SnapshotFile = "snapshot.json"

// The intervals of a process's loops that talk to the control service.
const (
	reportInterval = time.Second
	askedInterval  = 2 * time.Second
	// noiseInterval paces the polls for the noise learned by all routers:
	// a router learns from its own probes at once, the others' can wait.
	noiseInterval  = 10 * time.Second
	controlTimeout = 10 * time.Second
)

// Config configures a router process, embedded in serve or alone.
type Config struct {
	Data string // JournalFile and SnapshotFile
	// ControlURLs are the base URLs of the control service's replicas,
	// one store behind them all (a single control service is one URL).
	// The flags provider, the reports and the replay polls each use one
	// and move on to the next when it fails: see Controls.
	ControlURLs []string
	Token       string // a router token: the snapshot must carry secrets
	RouterID    string
	Migration   string   // "" routes by the migration created first
	KeyHosts    []string // hosts ConnectWise signing keys may be fetched from
	BodyLimit   int64
	StuckAfter  time.Duration
	Retention   time.Duration
	Workers     int
	// PartnerBacklog bounds one partner's events waiting for a worker:
	// Options.PartnerBacklog; 0 is the router's default.
	PartnerBacklog int
	// ComparisonDeadline bounds how long a revert's replay awaits late
	// comparisons; 0 is the router's default.
	ComparisonDeadline time.Duration
	// ShadowMinShare, below 1, lets the router compare only a share of the
	// shadowed events, down to this one, while its CPU is contended:
	// Options.ShadowMinShare; 0 is the router's default, 1.
	ShadowMinShare float64
	// Tier, if set, is the journal the router shares with a tier of
	// routers (Options.Tier); the process closes it.
	Tier Tier
	// Local, set for the router embedded in serve, is the control service
	// of the same process: the router catches up with it before judging a
	// webhook, so it knows every change the API has answered.
	Local Local
	// Now is the router's clock: webhook timestamps, signing keys' TTL,
	// journal stamps, retention and stuck events. nil is time.Now; serve
	// passes the clock of its control service.
	Now func() time.Time
}

// Local is the control service in the router's own process.
type Local interface {
	// Published returns the store and version of the snapshot it has
	// published.
	Published() (storeID string, version uint64)
	// Snapshot returns that snapshot in its wire form, secrets included.
	Snapshot() []byte
}

// Validate checks the configuration; zero sizes and durations are the
// router's defaults. It names the first bad field.
func (c Config) Validate() error {
	switch {
	case c.Data == "":
		return errors.New("the data directory must be named")
	case c.Token == "":
		return errors.New("a router token is needed")
	case c.RouterID == "":
		return errors.New("the router id must not be empty")
	case c.BodyLimit < 0 || c.Workers < 0 || c.PartnerBacklog < 0 || c.StuckAfter < 0 || c.Retention < 0 || c.ComparisonDeadline < 0:
		return errors.New("body limit, workers, partner backlog, stuck-after, retention and comparison deadline must not be negative")
	case !(c.ShadowMinShare >= 0 && c.ShadowMinShare <= 1):
		return errors.New("the shadow's minimum share must be between 0 and 1")
	}
	return CheckControlURLs(c.ControlURLs)
}

// OpenJournal opens the journal in dir, creating dir, and reads it whole:
// a damaged file is an error that wraps boltfile.ErrDamaged. Its entity
// index keeps each event's last-updated stamp as psa.UpdatedAt reads it.
func OpenJournal(dir string) (*journal.Journal, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create ingress data dir: %w", err)
	}
	return journal.Open(filepath.Join(dir, JournalFile), journal.Options{UpdatedAt: psa.UpdatedAt})
}

// Process is a router with what it runs on: its journal, its flags
// provider, and the loops that report to the control service and follow
// the replays asked of it. NewProcess builds it, Start runs it until its
// context ends, Close waits for it and closes the journal.
type Process struct {
	cfg      Config
	router   *Router
	journal  *journal.Journal
	api      *openfeature.EvaluationAPI
	provider *flags.Provider
	controls *Controls
	wg       sync.WaitGroup
}

// NewProcess builds the router on the journal j, which the process then
// owns with cfg.Tier (both are closed if NewProcess fails), and its flags provider, and
// registers the process's metrics on reg. Mount the router's endpoint,
// then Start. It returns Validate's error for a bad cfg.
func NewProcess(cfg Config, j *journal.Journal, reg prometheus.Registerer, log *slog.Logger) (*Process, error) {
	fail := func(err error) (*Process, error) {
		j.Close()
		if cfg.Tier != nil {
			cfg.Tier.Close()
		}
		return nil, err
	}
	if err := cfg.Validate(); err != nil {
		return fail(err)
	}
	controls, err := NewControls(cfg.ControlURLs)
	if err != nil { // Validate checked them
		return fail(err)
	}
	p := &Process{cfg: cfg, journal: j, api: isolated.NewAPI(), controls: controls}
	var up Upstream
	if cfg.Local != nil {
		up = localUpstream{p}
	}
	keys := psa.NewKeyCache(cfg.KeyHosts, nil, time.Hour)
	keys.Now = cfg.Now
	p.router, err = New(Options{
		Upstream: up,
		// Read at each unknown partner, once the provider exists.
		Current: func() bool { return p.provider.Current() },
		Journal: j,
		Tier:    cfg.Tier,
		Flags:   p.api.NewClient(),
		Decoder: &psa.Decoder{Keys: keys, Now: cfg.Now},
		// One idle connection per worker, or every call would dial anew.
		Pipelines: &pipelineclient.Client{HTTP: &http.Client{Transport: &http.Transport{
			MaxIdleConns: 256, MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}}},
		Logger:     log.With("component", "ingress"),
		Registry:   reg,
		Migration:  cfg.Migration,
		Workers:    cfg.Workers,
		BodyLimit:  cfg.BodyLimit,
		StuckAfter: cfg.StuckAfter,
		Retention:  cfg.Retention,

		PartnerBacklog:     cfg.PartnerBacklog,
		ComparisonDeadline: cfg.ComparisonDeadline,
		ShadowMinShare:     cfg.ShadowMinShare,
		Now:                cfg.Now,
	})
	if err == nil {
		p.provider, err = flags.NewProvider(flags.Options{URLs: cfg.ControlURLs, Token: cfg.Token, RouterID: cfg.RouterID,
			SnapshotFile: filepath.Join(cfg.Data, SnapshotFile), OnSnapshot: p.router.OnSnapshot,
			Logger: log.With("component", "flags")})
	}
	if err != nil {
		return fail(err)
	}
	reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
		Name: "switchback_ingress_snapshot_regressions_total",
		Help: "Snapshots the router refused because the control service's store went back to an earlier version (restored from a backup?).",
	}, func() float64 { return float64(p.provider.Regressions()) }))
	return p, nil
}

// Router is the process's router: mount its endpoint, read its replays.
func (p *Process) Router() *Router { return p.router }

// Start runs the process until ctx ends: the flags provider syncs in the
// background (a router restarted during a control-plane outage routes
// from its snapshot file), the workers resume what the journal holds, and
// the router reports its figures to the control service and follows the
// replays asked of it and the noise learned by all routers. It returns the provider's error if it cannot be
// set; nothing runs then.
func (p *Process) Start(ctx context.Context) error {
	if err := p.api.SetProvider(ctx, p.provider); err != nil {
		return err
	}
	client := &http.Client{Timeout: controlTimeout}
	p.wg.Go(func() { p.router.Run(ctx) })
	p.wg.Go(func() {
		p.router.ReportTo(ctx, client, p.controls, p.cfg.Token, p.cfg.RouterID, reportInterval)
	})
	p.wg.Go(func() { p.router.FollowAsked(ctx, client, p.controls, p.cfg.Token, askedInterval) })
	p.wg.Go(func() { p.router.FollowNoise(ctx, client, p.controls, p.cfg.Token, noiseInterval) })
	return nil
}

// Close waits for what Start runs to stop (end Start's context first),
// then shuts the flags provider down and closes the journal, whose error
// it returns.
func (p *Process) Close() error {
	p.wg.Wait()
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	p.api.Shutdown(sctx)
	if p.cfg.Tier != nil {
		p.cfg.Tier.Close()
	}
	return p.journal.Close()
}

// localUpstream is the control service in the router's process, whose
// published snapshot is handed to the router's flags provider directly.
type localUpstream struct{ p *Process }

func (u localUpstream) Published() (string, uint64) { return u.p.cfg.Local.Published() }

func (u localUpstream) CatchUp() error { return u.p.provider.Offer(u.p.cfg.Local.Snapshot()) }
