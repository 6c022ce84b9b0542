package ingress

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
	"github.com/switchbackhq/switchback/internal/psa"
)

// Options configure a Router.
type Options struct {
	Journal *journal.Journal
	// Tier, if set, is the journal this router shares with others: a
	// webhook is acknowledged once the tier holds it, and the router
	// delivers what the tier hands it (tier.go). Journal is then the
	// router's working set.
	Tier      Tier
	Flags     Evaluator // the migration flag, through OpenFeature
	Decoder   *psa.Decoder
	Pipelines *pipelineclient.Client
	Logger    *slog.Logger
	Registry  prometheus.Registerer
	Now       func() time.Time

	// Upstream, if set, is the control service in the router's own
	// process (the router embedded in serve): before judging a webhook, the
	// router makes sure it holds the snapshot the control service has
	// published, so that it knows every change the API has answered.
	Upstream Upstream
	// Current, if set, tells whether the router's flags provider holds the
	// control service's latest snapshot (flags.Provider.Current). A webhook
	// for a partner the router does not know is answered 404 only then,
	// else 429 with Retry-After: the partner may be one the router has not
	// heard of yet, and a PSA may give up on a 404. Without Upstream or
	// Current, the router takes its snapshot for the latest.
	Current func() bool

	// Migration is the flag key to route by; "" routes by the migration
	// created first.
	Migration string
	// Workers deliver events; events of one entity always go to the same
	// worker, in order. Default 32.
	Workers int
	// MaxAttempts per event before it is dead-lettered. Default 8.
	MaxAttempts int
	// MinBackoff and MaxBackoff bound the delay between attempts.
	// Defaults 200 ms and 30 s.
	MinBackoff, MaxBackoff time.Duration
	// BodyLimit caps a webhook's body. Default 1 MiB.
	BodyLimit int64
	// StuckAfter is how long an event may go without a terminal outcome
	// before the reconciler reports it. Default 5 minutes.
	StuckAfter time.Duration
	// ReconcileEvery is how often the reconciler looks. Default 10 s.
	ReconcileEvery time.Duration
	// Retention is how long events with an outcome are kept. Default 30
	// days.
	Retention time.Duration
	// MaxBacklog bounds the events waiting in memory for a busy worker;
	// past it, webhooks are answered 429 (PSAs retry) until the workers
	// catch up. Default 20000.
	MaxBacklog int
	// PartnerBacklog bounds one partner's events among them: past it, that
	// partner's webhooks are answered 429 while the other partners' are
	// still taken, so that one partner's burst does not refuse everyone's.
	// Default MaxBacklog/4.
	PartnerBacklog int
	// ShadowWorkers run shadow pipelines in dry-run; ShadowQueue bounds
	// the comparisons waiting for them: past it, an event's comparison is
	// shed, recorded as skipped with its outcome. Defaults 16 and 1024.
	ShadowWorkers, ShadowQueue int
	// ShadowMinShare, below 1, lets the router compare only a share of
	// the events while its CPU is contended, down to this share
	// (shadowbudget.go): the others are shed, recorded as skipped with
	// their outcome. Default 1: every event is compared however busy the
	// router is, as the gates' minCoverage expects.
	ShadowMinShare float64
	// ReplayWorkers bound a replay's sends in flight: up to this many of
	// its events go at once, one event of an entity at a time (each
	// entity's in its order), within the job's rate. Default Workers.
	ReplayWorkers int
	// ComparisonDeadline is how long a replay that awaits comparisons (a
	// revert's replay) stays open, from its creation, for the comparisons
	// still to come; past it, the events without one are replayed as
	// unknown. Default 2 minutes.
	ComparisonDeadline time.Duration
}

func (o *Options) defaults() {
	if o.Workers <= 0 {
		o.Workers = 32
	}
	if o.MaxAttempts <= 0 {
		o.MaxAttempts = 8
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 200 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.BodyLimit <= 0 {
		o.BodyLimit = 1 << 20
	}
	if o.StuckAfter <= 0 {
		o.StuckAfter = 5 * time.Minute
	}
	if o.ReconcileEvery <= 0 {
		o.ReconcileEvery = 10 * time.Second
	}
	if o.Retention <= 0 {
		o.Retention = 30 * 24 * time.Hour
	}
	if o.MaxBacklog <= 0 {
		o.MaxBacklog = 20000
	}
	if o.PartnerBacklog <= 0 {
		o.PartnerBacklog = max(1, o.MaxBacklog/4)
	}
	if o.ShadowWorkers <= 0 {
		o.ShadowWorkers = 16
	}
	if o.ShadowQueue <= 0 {
		o.ShadowQueue = 1024
	}
	if o.ShadowMinShare <= 0 || o.ShadowMinShare > 1 {
		o.ShadowMinShare = 1
	}
	if o.ReplayWorkers <= 0 {
		o.ReplayWorkers = o.Workers
	}
	if o.ComparisonDeadline <= 0 {
		o.ComparisonDeadline = 2 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
	if o.Decoder == nil {
		o.Decoder = &psa.Decoder{}
	}
	if o.Pipelines == nil {
		o.Pipelines = &pipelineclient.Client{}
	}
}

// Router is an ingress router.
type Router struct {
	opts    Options
	log     *slog.Logger
	metrics *metrics
	routing routingTable
	// backlog holds the events waiting for a worker; past MaxBacklog of
	// them, or PartnerBacklog of a partner's, webhooks are answered 429
	// before they are journaled (admit).
	backlog *backlog
	// recording counts the outcomes queued for the journal and not yet
	// written: Run waits for them.
	recording sync.WaitGroup

	flightMu sync.Mutex
	inFlight map[uint64]struct{}

	replays *replays
	stats   *stats
	noise   *noiseBook
	// shadowPool holds the comparisons waiting for a shadow worker;
	// shadowBudget decides which events' comparisons may be made.
	shadowPool   *shadowPool
	shadowBudget *shadowBudget
	// contended judges the CPU for the shadow's budget; nil is the
	// runtime's scheduling latencies (cpuContended).
	contended func() bool

	// catchMu serializes catching up with the Upstream; refused is the
	// published snapshot it last failed to take, not tried again.
	catchMu sync.Mutex
	refused published
}

// Upstream is a control service in the router's own process.
type Upstream interface {
	// Published returns the store and version of the snapshot the control
	// service has published: every change its API has answered.
	Published() (storeID string, version uint64)
	// CatchUp hands the published snapshot to the router's flags provider,
	// which passes it to OnSnapshot, and returns once both hold it.
	CatchUp() error
}

type published struct {
	storeID string
	version uint64
}

// table returns the routing to judge a webhook by, and whether it is the
// control service's latest as far as the router can know. With an
// Upstream, it first catches up with the published snapshot if the router
// lags it.
func (rt *Router) table() (*routing, bool) {
	up := rt.opts.Upstream
	if up == nil {
		tbl := rt.routing.load()
		return tbl, tbl.version > 0 && (rt.opts.Current == nil || rt.opts.Current())
	}
	if tbl, ok := rt.caughtUp(up); ok {
		return tbl, true
	}
	rt.catchMu.Lock()
	defer rt.catchMu.Unlock()
	if tbl, ok := rt.caughtUp(up); ok {
		return tbl, true
	}
	// Version 0: the control service has published nothing yet.
	if id, v := up.Published(); v > 0 && rt.refused != (published{id, v}) {
		if err := up.CatchUp(); err != nil {
			rt.refused = published{id, v}
			rt.log.Error("the control service's published snapshot could not be taken", "store", id, "version", v, "err", err)
		}
	}
	return rt.caughtUp(up)
}

// caughtUp reports whether the routing holds the Upstream's published
// snapshot: its store, and a version no older than the one published
// before the routing was read nor newer than the one published after (a
// newer one is a version the store no longer has).
func (rt *Router) caughtUp(up Upstream) (*routing, bool) {
	id, before := up.Published()
	tbl := rt.routing.load()
	if tbl.storeID != id || tbl.version < before || tbl.version == 0 {
		return tbl, false
	}
	_, after := up.Published()
	return tbl, tbl.version <= after
}

// New returns a router; Run starts it.
func New(opts Options) (*Router, error) {
	if opts.Journal == nil || opts.Flags == nil {
		return nil, errors.New("ingress: Options.Journal and Options.Flags are required")
	}
	opts.defaults()
	rt := &Router{opts: opts, log: opts.Logger, metrics: newMetrics(opts.Registry), inFlight: map[uint64]struct{}{}}
	rt.backlog = newBacklog()
	rt.replays = newReplays(rt)
	rt.stats = newStats()
	rt.noise = newNoiseBook()
	rt.shadowPool = newShadowPool(opts.ShadowQueue)
	rt.shadowBudget = newShadowBudget(opts.ShadowMinShare)
	opts.Registry.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchback_ingress_shadow_queue",
		Help: "Comparisons waiting for a shadow worker; while ShadowQueue wait, each new one is shed (counted as skipped).",
	}, func() float64 { return float64(rt.shadowPool.waiting()) }), prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "switchback_ingress_shadow_share",
		Help: "The share of shadowed events whose comparison is made: 1 while the router's CPU has room, down to its minimum while it is contended.",
	}, func() float64 { return float64(rt.shadowBudget.share.Load()) / shareUnit }))
	return rt, nil
}

// OnSnapshot takes each snapshot's raw JSON from the flags provider, for
// the partners' secrets and the pipelines' URLs.
func (rt *Router) OnSnapshot(version uint64, raw []byte) {
	if err := rt.routing.update(raw); err != nil {
		rt.log.Error("snapshot unreadable; keeping the last routing", "version", version, "err", err)
	}
}

// Mount adds the webhook endpoint to r.
func (rt *Router) Mount(r *mux.Router) {
	r.HandleFunc("/hooks/{partner}", rt.hook).Methods(http.MethodPost)
}

// Run delivers events until ctx ends: first every journaled event without
// an outcome (what a crash left), then new ones as they come. It also runs
// the reconciler, the retention sweeper and replays.
func (rt *Router) Run(ctx context.Context) error {
	// Read before any worker starts: an event delivered from now on gets
	// its comparison from the worker, and must not be compared twice.
	due, err := rt.opts.Journal.ComparisonsDue(ctx)
	if err != nil && ctx.Err() == nil {
		rt.log.Error("reading the comparisons due failed", "err", err)
	}
	var wg sync.WaitGroup
	defer context.AfterFunc(ctx, rt.backlog.wake)()
	for range rt.opts.Workers {
		wg.Go(func() { rt.worker(ctx) })
	}
	for range rt.opts.ShadowWorkers {
		wg.Go(func() { rt.shadowWorker(ctx) })
	}
	if rt.shadowBudget.adapts() {
		wg.Go(func() { rt.budgetLoop(ctx) })
	}
	wg.Go(func() { rt.reconcileLoop(ctx) })
	wg.Go(func() { rt.replays.run(ctx) })
	if rt.opts.Tier != nil {
		wg.Go(func() {
			if err := rt.opts.Tier.Run(ctx, rt.takeFromTier); err != nil && ctx.Err() == nil {
				rt.log.Error("taking the tier's events stopped", "err", err)
			}
		})
		wg.Go(func() { rt.holdClaims(ctx) })
	}

	pending, err := rt.opts.Journal.Pending(ctx)
	if err != nil && ctx.Err() == nil {
		rt.log.Error("reading pending events failed", "err", err)
	}
	if rt.opts.Tier != nil {
		// The tier hands out again what this router held before its
		// restart, to it or another router: delivered from here as
		// well, an event would go out twice at once. Those another
		// router has ended meanwhile are recorded here.
		rt.settleFromTier(ctx, pending)
		pending = nil
	}
	if len(pending) > 0 {
		rt.log.Info("resuming journaled events without an outcome", "events", len(pending))
	}
	for _, ev := range pending {
		// A long outage can leave more pending events than the backlog
		// should hold in memory: hand them over as the workers catch up.
		for rt.backlog.len() >= int64(rt.opts.MaxBacklog) {
			if !sleep(ctx, 10*time.Millisecond) {
				break
			}
		}
		if ctx.Err() != nil {
			break
		}
		rt.resubmit(ctx, ev)
	}
	rt.resumeComparisons(ctx, due)
	wg.Wait()
	// The outcomes queued are written before Run returns, so that a
	// router started next on this journal does not deliver them again.
	rt.recording.Wait()
	if rt.opts.Tier != nil {
		rctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		rt.opts.Tier.Release(rctx)
	}
	return nil
}

// RoutingVersion is the version of the snapshot the router routes by; 0
// before the first.
func (rt *Router) RoutingVersion() uint64 { return rt.routing.load().version }
