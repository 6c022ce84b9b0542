package flags

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/open-feature/go-sdk/openfeature"
)

// ProviderName is the name the provider gives in its OpenFeature metadata
// and events.
const ProviderName = "switchback"

// Defaults for the Options left zero.
const (
	DefaultInitTimeout      = 5 * time.Second
	DefaultStaleGrace       = 30 * time.Second
	DefaultMinBackoff       = 100 * time.Millisecond
	DefaultMaxBackoff       = 30 * time.Second
	DefaultHeartbeatTimeout = 45 * time.Second
	DefaultReportInterval   = 15 * time.Second
)

// Options configures a Provider. Zero durations take the defaults above.
type Options struct {
	// URL is the control service's base URL, http or https: the same as
	// URLs with this one element. Set URL or URLs, not both.
	URL string
	// URLs are the base URLs of several replicas of one control service
	// (one store behind them all), http or https. The provider follows the
	// snapshot stream of one at a time, starting with the first, and moves
	// to the next, round robin, when that stream fails: the connection is
	// refused or lost, the answer is not the stream, the stream ends or
	// stays silent past HeartbeatTimeout. It waits the usual backoff before
	// each attempt and resumes from the version it holds, so it never takes
	// a lower version of the store from a replica that lags behind. Reports
	// go to the replica of the stream. ControlURL tells which it is.
	URLs []string
	// Token is the bearer token sent to the control service. Required; a
	// router's token (role router) is needed for RouterID reports and for
	// snapshots that carry the partners' webhook secrets.
	Token string

	// RouterID, if set, makes the provider report the snapshot version it
	// holds to the control service (POST /v1/reports) after each new
	// snapshot and every ReportInterval.
	RouterID       string
	ReportInterval time.Duration

	// SnapshotFile, if set, is where the provider keeps its last snapshot,
	// so that a process restarted while the control service is down
	// evaluates as before. The file may hold webhook secrets: it is written
	// with mode 0600.
	SnapshotFile string

	// OnSnapshot, if set, is called with the raw JSON of each snapshot the
	// provider takes (from the stream, or from SnapshotFile at start)
	// before evaluations see it, so a router can read the fields this
	// package does not decode (pipelines, webhook secrets) in step with the
	// flags. It runs on the provider's sync goroutine: keep it short, and
	// do not modify raw.
	OnSnapshot func(version uint64, raw []byte)

	// WholeSnapshots makes the provider take a whole snapshot for every
	// new version. Otherwise, after the first, it asks for deltas: each
	// new version's changes alone, far cheaper to decode when a snapshot
	// holds many partners (a control service that predates deltas sends
	// whole snapshots anyway). A provider with OnSnapshot or SnapshotFile
	// set always takes whole snapshots: they need the snapshot's JSON.
	WholeSnapshots bool

	// HTTPClient makes the requests; nil means a client of the provider's
	// own. It must have no Timeout: the snapshot stream is a request that
	// lasts. The provider bounds its requests itself.
	HTTPClient *http.Client
	// Logger receives the provider's logs; nil means slog.Default().
	Logger *slog.Logger

	// InitTimeout bounds how long Init waits for the first snapshot when no
	// SnapshotFile could be loaded.
	InitTimeout time.Duration
	// StaleGrace is how long the provider may be disconnected from the
	// control service before it reports PROVIDER_ERROR (it reports
	// PROVIDER_STALE at once). It keeps answering from its last snapshot
	// either way.
	StaleGrace time.Duration
	// MinBackoff and MaxBackoff bound the reconnection delays: capped
	// exponential backoff with full jitter, reset after each successful
	// connection.
	MinBackoff time.Duration
	MaxBackoff time.Duration
	// HeartbeatTimeout is how long the stream may stay silent (the control
	// service sends a heartbeat at least every 15 s) before the provider
	// drops it and reconnects.
	HeartbeatTimeout time.Duration
}

// Validate reports the first problem with o: no URL, both URL and URLs
// set, a URL that is not an absolute http or https URL or that URLs repeat,
// a missing Token, a negative duration, or a MinBackoff above MaxBackoff.
// It does not fill in defaults.
func (o Options) Validate() error {
	if o.URL != "" && len(o.URLs) > 0 {
		return errors.New("flags: set Options.URL or Options.URLs, not both")
	}
	if o.URL == "" && len(o.URLs) == 0 {
		return errors.New("flags: Options.URL (or URLs) is required")
	}
	if o.URL != "" {
		if _, err := parseBaseURL(o.URL); err != nil {
			return fmt.Errorf("flags: Options.URL %w", err)
		}
	}
	for i, raw := range o.URLs {
		if _, err := parseBaseURL(raw); err != nil {
			return fmt.Errorf("flags: Options.URLs[%d] %w", i, err)
		}
		if j := slices.Index(o.URLs[:i], raw); j >= 0 {
			return fmt.Errorf("flags: Options.URLs[%d] repeats URLs[%d] (%s)", i, j, raw)
		}
	}
	if o.Token == "" {
		return errors.New("flags: Options.Token is required")
	}
	for _, d := range []struct {
		name string
		v    time.Duration
	}{
		{"ReportInterval", o.ReportInterval},
		{"InitTimeout", o.InitTimeout},
		{"StaleGrace", o.StaleGrace},
		{"MinBackoff", o.MinBackoff},
		{"MaxBackoff", o.MaxBackoff},
		{"HeartbeatTimeout", o.HeartbeatTimeout},
	} {
		if d.v < 0 {
			return fmt.Errorf("flags: Options.%s must not be negative, got %s", d.name, d.v)
		}
	}
	if o.MinBackoff != 0 && o.MaxBackoff != 0 && o.MinBackoff > o.MaxBackoff {
		return fmt.Errorf("flags: Options.MinBackoff (%s) is above MaxBackoff (%s)", o.MinBackoff, o.MaxBackoff)
	}
	return nil
}

// parseBaseURL parses a control service's base URL. Its errors read after
// the name of the option.
func parseBaseURL(raw string) (*url.URL, error) {
	if raw == "" {
		return nil, errors.New("is empty")
	}
	u, err := url.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("does not parse: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return nil, fmt.Errorf("must be an http or https URL, got scheme %q", u.Scheme)
	}
	if u.Host == "" {
		return nil, fmt.Errorf("has no host: %s", raw)
	}
	return u, nil
}

// baseURLs returns the control service's base URLs, URL or URLs.
func (o Options) baseURLs() []string {
	if o.URL != "" {
		return []string{o.URL}
	}
	return o.URLs
}

func (o Options) withDefaults() Options {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&o.ReportInterval, DefaultReportInterval)
	def(&o.InitTimeout, DefaultInitTimeout)
	def(&o.StaleGrace, DefaultStaleGrace)
	def(&o.MinBackoff, DefaultMinBackoff)
	def(&o.MaxBackoff, DefaultMaxBackoff)
	def(&o.HeartbeatTimeout, DefaultHeartbeatTimeout)
	if o.MinBackoff > o.MaxBackoff { // one of them was defaulted
		o.MinBackoff = o.MaxBackoff
	}
	return o
}

// deltas reports whether the provider asks for deltas: see WholeSnapshots.
func (o Options) deltas() bool {
	return !o.WholeSnapshots && o.OnSnapshot == nil && o.SnapshotFile == ""
}

// Provider is an OpenFeature provider that evaluates switchback migration
// flags in process, from a local copy of the control service's snapshot
// kept in sync over the snapshot stream.
//
// Register it with an OpenFeature API (SetProvider and friends); the API
// calls Init, which starts the sync, and Shutdown, which stops it. Resolve
// and Snapshot serve callers that want no OpenFeature client in the way.
// A Provider is safe for concurrent use; evaluations never wait for the
// sync.
type Provider struct {
	opts Options
	// replicas are the control service's replicas, in the order of the
	// Options; active indexes the one the stream uses, or tries next.
	// Written only by the sync goroutine.
	replicas   []replica
	active     atomic.Int32
	client     *http.Client
	ownsClient bool
	log        *slog.Logger
	maxEvent   int // the largest SSE event accepted; a field so tests can lower it

	events chan openfeature.Event

	// cur is the snapshot evaluations read: written only by the sync
	// goroutine (and by Init when it loads the file), read by anyone.
	cur        atomic.Pointer[held]
	synced     chan struct{} // closed once the provider first holds a snapshot
	syncedOnce sync.Once

	// lc serializes Init and Shutdown.
	lc     sync.Mutex
	cancel context.CancelFunc // non-nil while the goroutines run
	runCtx context.Context
	done   chan struct{} // closed when the goroutines have stopped

	// mu guards the state the OpenFeature API was last told, and the last
	// sync error.
	mu      sync.Mutex
	status  status
	lastErr error

	// applyMu serializes apply: the stream and Offer both take snapshots.
	// It guards heads.
	applyMu sync.Mutex
	// heads are the audit heads witnessed, oldest first (see keepHead).
	heads []AuditHead
	// current is true while the provider is connected to the stream and
	// holds the last snapshot it brought; see Current.
	current atomic.Bool
	// regressions counts the snapshots refused because their store went
	// backwards; refused is the version last refused, 0 once a snapshot
	// was taken since.
	regressions atomic.Uint64
	refused     atomic.Uint64

	// pending is the latest snapshot not yet written to SnapshotFile, with
	// the heads witnessed so far.
	pendingMu    sync.Mutex
	pending      []byte
	pendingHeads []AuditHead
	persistSig   chan struct{}

	reportSig chan struct{}
}

// status is what the provider last told the OpenFeature API, through Init's
// answer or an event.
type status int

const (
	stInit  status = iota // Init is waiting; its answer will tell
	stReady               // READY (or CONFIGURATION_CHANGED)
	stStale               // STALE: disconnected, within StaleGrace
	stError               // ERROR: Init failed, or disconnected past StaleGrace
)

// replica is one control service replica's endpoints.
type replica struct {
	base, stream, report string
}

// held is a snapshot with what evaluation derives from it once.
type held struct {
	snap *Snapshot
	// meta holds one FlagMetadata per (stage, shadow) pair, so evaluation
	// hands out a shared map instead of building one per call. Indexed by
	// stageIndex and shadowIndex; built by the first evaluation that needs
	// it, not by the sync: a provider taking many versions between
	// evaluations builds it only for those evaluated.
	metaOnce sync.Once
	meta     [5][3]openfeature.FlagMetadata
}

func newHeld(s *Snapshot) *held { return &held{snap: s} }

// metadata returns the FlagMetadata of the (stage, shadow) pair i, j.
func (h *held) metadata(i, j int) openfeature.FlagMetadata {
	h.metaOnce.Do(func() {
		stages := [...]string{"", StageLegacy, StageShadow, StageNew, StageDone}
		shadows := [...]string{"", Legacy, New}
		for i, st := range stages {
			for j, sh := range shadows {
				h.meta[i][j] = openfeature.FlagMetadata{
					"stage":           st,
					"shadow":          sh,
					"snapshotVersion": int64(h.snap.Version),
				}
			}
		}
	})
	return h.meta[i][j]
}

func stageIndex(s string) int {
	switch s {
	case "":
		return 0
	case StageLegacy:
		return 1
	case StageShadow:
		return 2
	case StageNew:
		return 3
	case StageDone:
		return 4
	}
	return -1
}

func shadowIndex(s string) int {
	switch s {
	case "":
		return 0
	case Legacy:
		return 1
	case New:
		return 2
	}
	return -1
}

// Compile-time checks of the OpenFeature contracts the provider meets.
var (
	_ openfeature.FeatureProvider          = (*Provider)(nil)
	_ openfeature.StateHandler             = (*Provider)(nil)
	_ openfeature.ContextAwareStateHandler = (*Provider)(nil)
	_ openfeature.EventHandler             = (*Provider)(nil)
)

// NewProvider returns a provider for the control service at opts.URL, or
// its replicas at opts.URLs. It does no I/O: Init starts the sync. It
// returns an error if opts does not validate (see Options.Validate).
func NewProvider(opts Options) (*Provider, error) {
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	opts = opts.withDefaults()
	var replicas []replica
	for _, raw := range opts.baseURLs() {
		base, err := parseBaseURL(raw)
		if err != nil { // Validate parsed it
			return nil, fmt.Errorf("flags: control URL %w", err)
		}
		stream := base.JoinPath("v1", "snapshot", "stream")
		if opts.deltas() {
			stream.RawQuery = "deltas=1"
		}
		replicas = append(replicas, replica{
			base:   raw,
			stream: stream.String(),
			report: base.JoinPath("v1", "reports").String(),
		})
	}
	p := &Provider{
		opts:       opts,
		replicas:   replicas,
		client:     opts.HTTPClient,
		log:        opts.Logger,
		maxEvent:   maxEventBytes,
		events:     make(chan openfeature.Event, 64),
		synced:     make(chan struct{}),
		persistSig: make(chan struct{}, 1),
		reportSig:  make(chan struct{}, 1),
	}
	if p.client == nil {
		// A client of its own, so that Shutdown can close its idle
		// connections without touching anyone else's.
		p.client = &http.Client{Transport: http.DefaultTransport.(*http.Transport).Clone()}
		p.ownsClient = true
	}
	if p.log == nil {
		p.log = slog.Default()
	}
	return p, nil
}

// Metadata names the provider "switchback".
func (p *Provider) Metadata() openfeature.Metadata {
	return openfeature.Metadata{Name: ProviderName}
}

// Hooks returns no hooks.
func (p *Provider) Hooks() []openfeature.Hook { return nil }

// EventChannel returns the channel of the provider's events: READY on the
// first snapshot and on recovery, CONFIGURATION_CHANGED with the changed
// flag keys, STALE when the stream is lost, ERROR after StaleGrace of
// disconnection. If nobody reads it, the oldest events are dropped: the
// sync never waits for a reader.
func (p *Provider) EventChannel() <-chan openfeature.Event { return p.events }

// Snapshot returns the snapshot the provider evaluates with, nil if it has
// never held one. Treat it as read-only.
func (p *Provider) Snapshot() *Snapshot {
	if h := p.cur.Load(); h != nil {
		return h.snap
	}
	return nil
}

// Resolve evaluates flag for the partner targetingKey against the current
// snapshot, as Snapshot.Evaluate does (ErrProviderNotReady before the first
// snapshot). It does not allocate.
func (p *Provider) Resolve(flag, targetingKey string) Resolution {
	h := p.cur.Load()
	if h == nil {
		return (*Snapshot)(nil).Evaluate(flag, targetingKey)
	}
	return h.snap.Evaluate(flag, targetingKey)
}

// StringEvaluation answers a migration flag: the value is the primary
// pipeline ("legacy" or "new"), the variant the stage, the metadata the
// shadow pipeline, the stage and the snapshot version. The targeting key
// is the partner id and must be a string. On any error the value is
// defaultValue. The FlagMetadata map is shared between calls: do not
// modify it (the OpenFeature client hands out a copy).
func (p *Provider) StringEvaluation(_ context.Context, flag string, defaultValue string, flatCtx openfeature.FlattenedContext) openfeature.StringResolutionDetail {
	key := ""
	if v, ok := flatCtx[openfeature.TargetingKey]; ok {
		s, isString := v.(string)
		if !isString {
			return stringError(defaultValue, openfeature.NewInvalidContextResolutionError("targetingKey must be a string (the partner id)"), nil)
		}
		key = s
	}
	h := p.cur.Load()
	if h == nil {
		return stringError(defaultValue, openfeature.NewProviderNotReadyResolutionError("no snapshot synced from the control service yet"), nil)
	}
	r := h.snap.Evaluate(flag, key)
	if r.Reason == ReasonError {
		var re openfeature.ResolutionError
		switch r.ErrorCode {
		case ErrFlagNotFound:
			re = openfeature.NewFlagNotFoundResolutionError("no such migration in the snapshot")
		case ErrTargetingKeyMissing:
			re = openfeature.NewTargetingKeyMissingResolutionError("targetingKey (the partner id) is required")
		case ErrProviderNotReady:
			re = openfeature.NewProviderNotReadyResolutionError("no snapshot synced from the control service yet")
		case ErrParse:
			re = openfeature.NewParseErrorResolutionError("the partner's stage is not one this provider knows")
		default:
			re = openfeature.NewGeneralResolutionError("evaluation failed")
		}
		return stringError(defaultValue, re, h.metadata(0, 0))
	}
	var meta openfeature.FlagMetadata
	if i, j := stageIndex(r.Stage), shadowIndex(r.Shadow); i >= 0 && j >= 0 {
		meta = h.metadata(i, j)
	}
	return openfeature.StringResolutionDetail{
		Value: r.Value,
		ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
			Reason:       openfeature.Reason(r.Reason),
			Variant:      r.Variant,
			FlagMetadata: meta,
		},
	}
}

func stringError(def string, re openfeature.ResolutionError, meta openfeature.FlagMetadata) openfeature.StringResolutionDetail {
	return openfeature.StringResolutionDetail{
		Value: def,
		ProviderResolutionDetail: openfeature.ProviderResolutionDetail{
			ResolutionError: re,
			Reason:          openfeature.ErrorReason,
			FlagMetadata:    meta,
		},
	}
}

func typeMismatch() openfeature.ProviderResolutionDetail {
	return openfeature.ProviderResolutionDetail{
		ResolutionError: openfeature.NewTypeMismatchResolutionError("switchback flags are strings"),
		Reason:          openfeature.ErrorReason,
	}
}

// BooleanEvaluation returns defaultValue with TYPE_MISMATCH: migration
// flags are strings.
func (p *Provider) BooleanEvaluation(_ context.Context, _ string, defaultValue bool, _ openfeature.FlattenedContext) openfeature.BoolResolutionDetail {
	return openfeature.BoolResolutionDetail{Value: defaultValue, ProviderResolutionDetail: typeMismatch()}
}

// FloatEvaluation returns defaultValue with TYPE_MISMATCH.
func (p *Provider) FloatEvaluation(_ context.Context, _ string, defaultValue float64, _ openfeature.FlattenedContext) openfeature.FloatResolutionDetail {
	return openfeature.FloatResolutionDetail{Value: defaultValue, ProviderResolutionDetail: typeMismatch()}
}

// IntEvaluation returns defaultValue with TYPE_MISMATCH.
func (p *Provider) IntEvaluation(_ context.Context, _ string, defaultValue int64, _ openfeature.FlattenedContext) openfeature.IntResolutionDetail {
	return openfeature.IntResolutionDetail{Value: defaultValue, ProviderResolutionDetail: typeMismatch()}
}

// ObjectEvaluation returns defaultValue with TYPE_MISMATCH.
func (p *Provider) ObjectEvaluation(_ context.Context, _ string, defaultValue any, _ openfeature.FlattenedContext) openfeature.InterfaceResolutionDetail {
	return openfeature.InterfaceResolutionDetail{Value: defaultValue, ProviderResolutionDetail: typeMismatch()}
}

// Init is InitWithContext without a context.
func (p *Provider) Init(evalCtx openfeature.EvaluationContext) error {
	return p.InitWithContext(context.Background(), evalCtx)
}

// InitWithContext starts the sync with the control service. If
// Options.SnapshotFile holds a valid snapshot, the provider loads it and
// returns nil at once (the sync goes on). Otherwise it waits up to
// InitTimeout for the first snapshot and returns an error if none came,
// the context was done first, or Shutdown was called meanwhile; the sync
// goes on and emits PROVIDER_READY when a snapshot comes.
func (p *Provider) InitWithContext(ctx context.Context, _ openfeature.EvaluationContext) error {
	p.lc.Lock()
	if p.cur.Load() == nil && p.opts.SnapshotFile != "" {
		p.loadSnapshotFile()
	}
	p.mu.Lock()
	if p.cur.Load() != nil {
		p.status = stReady
	} else {
		p.status = stInit
	}
	p.mu.Unlock()
	if p.cancel == nil {
		p.runCtx, p.cancel = context.WithCancel(context.Background())
		p.done = make(chan struct{})
		go p.run(p.runCtx, p.done)
	}
	stopped := p.runCtx.Done()
	p.lc.Unlock()

	if p.cur.Load() != nil {
		// The sync may have taken the first snapshot since the status was
		// set: seeing stInit, it left the READY to this answer.
		p.mu.Lock()
		if p.status == stInit {
			p.status = stReady
		}
		p.mu.Unlock()
		return nil
	}
	timer := time.NewTimer(p.opts.InitTimeout)
	defer timer.Stop()
	var err error
	select {
	case <-p.synced:
	case <-timer.C:
		err = fmt.Errorf("flags: no snapshot from the control service within %s", p.opts.InitTimeout)
	case <-ctx.Done():
		err = fmt.Errorf("flags: waiting for the first snapshot: %w", ctx.Err())
	case <-stopped:
		err = errors.New("flags: provider shut down during Init")
	}

	p.mu.Lock()
	defer p.mu.Unlock()
	// Decide under mu: a snapshot that came as the wait ended is taken, and
	// the sync goroutine, seeing stInit, left the READY to this answer.
	if p.cur.Load() != nil {
		p.status = stReady
		return nil
	}
	p.status = stError
	if p.lastErr != nil {
		err = fmt.Errorf("%w (last error: %v)", err, p.lastErr)
	}
	return err
}

// Shutdown is ShutdownWithContext without a deadline.
func (p *Provider) Shutdown() {
	_ = p.ShutdownWithContext(context.Background())
}

// ShutdownWithContext stops the sync, the reporter and the file writer
// (which first writes the latest snapshot) and waits for them. It returns
// the context's error if that ends first. The provider keeps answering from
// its last snapshot, and Init may start it again.
func (p *Provider) ShutdownWithContext(ctx context.Context) error {
	p.lc.Lock()
	cancel, done := p.cancel, p.done
	p.cancel, p.done = nil, nil
	p.lc.Unlock()
	if cancel == nil {
		return nil
	}
	cancel()
	select {
	case <-done:
	case <-ctx.Done():
		return fmt.Errorf("flags: shutdown: %w", ctx.Err())
	}
	if p.ownsClient {
		p.client.CloseIdleConnections()
	}
	return nil
}

// run owns the provider's goroutines: the sync, and the file writer and
// reporter when configured. It closes done when all have stopped.
func (p *Provider) run(ctx context.Context, done chan<- struct{}) {
	defer close(done)
	var wg sync.WaitGroup
	persistStop := make(chan struct{})
	if p.opts.SnapshotFile != "" {
		wg.Go(func() { p.persistLoop(persistStop) })
	}
	if p.opts.RouterID != "" {
		wg.Go(func() { p.reportLoop(ctx) })
	}
	p.sync(ctx)
	// The writer stops after the sync, so the last snapshot applied is on
	// disk before Shutdown returns.
	close(persistStop)
	wg.Wait()
}

// verdict is how a snapshot compares with the one held.
type verdict int

const (
	takeNewer      verdict = iota // same store, higher version
	takeOtherStore                // another store: resync, whatever the version
	skipSame                      // the version held, or an older one already replaced
	refuseOlder                   // same store, lower version: the store went backwards
	refuseDiverged                // same store and version, another audit head: another history
)

// judge decides whether s replaces held. A store's versions only grow, so
// within one store a lower version, or the same version with another audit
// head, means the store went back (restored from a backup) and is an error
// to report, not a snapshot to take or to skip in silence.
func judge(held, s *Snapshot) verdict {
	switch {
	case held == nil:
		return takeNewer
	case s.StoreID != held.StoreID:
		return takeOtherStore
	case s.Version > held.Version:
		return takeNewer
	case s.Version < held.Version:
		return refuseOlder
	case s.Audit.Hash != "" && held.Audit.Hash != "" && s.Audit != held.Audit:
		return refuseDiverged
	}
	return skipSame
}

// apply swaps in s if judge takes it, then hands it to the file writer and
// the reporter and tells the OpenFeature API. fromStream says the stream
// brought it, so that the provider now holds the stream's latest.
func (p *Provider) apply(s *Snapshot, raw []byte, fromStream bool) verdict {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	return p.applyLocked(s, raw, fromStream, nil)
}

// applyDelta applies a delta from the stream to the snapshot held, and
// reports false when it does not apply to it (another version or store
// held): the provider must then get the whole snapshot.
func (p *Provider) applyDelta(d *snapshotDelta) bool {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	h := p.cur.Load()
	if h == nil {
		return false
	}
	s, changed, ok := h.snap.patch(d)
	if !ok {
		return false
	}
	p.applyLocked(s, nil, true, changed)
	return true
}

// applyLocked is apply; the caller holds applyMu. changed, if not nil,
// are the flags whose answers s changes, as flagChanges would tell them.
func (p *Provider) applyLocked(s *Snapshot, raw []byte, fromStream bool, changed []string) verdict {
	old := p.cur.Load()
	var held *Snapshot
	if old != nil {
		held = old.snap
	}
	v := judge(held, s)
	switch v {
	case skipSame:
		p.log.Debug("flags: snapshot not newer than the one held, ignored", "version", s.Version, "held", held.Version)
		if fromStream && s.Version == held.Version {
			p.current.Store(true)
		}
		return v
	case refuseOlder, refuseDiverged:
		p.regressions.Add(1)
		p.refused.Store(s.Version)
		if fromStream {
			p.current.Store(false)
		}
		p.log.Error("flags: the control service's store went backwards (restored from a backup?): snapshot refused until its version passes the one held",
			"store", s.StoreID, "version", s.Version, "held", held.Version, "diverged", v == refuseDiverged)
		p.signalReport() // the report tells the control service, which moves its version past ours
		return v
	case takeOtherStore:
		p.log.Warn("flags: snapshot of another control store: resyncing to it", "store", s.StoreID, "version", s.Version,
			"heldStore", held.StoreID, "held", held.Version)
	}
	if p.opts.OnSnapshot != nil && raw != nil {
		p.opts.OnSnapshot(s.Version, raw)
	}
	p.cur.Store(newHeld(s))
	p.refused.Store(0)
	if fromStream {
		p.current.Store(true)
	}
	if s.Audit.Seq > 0 {
		p.heads = keepHead(p.heads, AuditHead{StoreID: s.StoreID, Seq: s.Audit.Seq, Hash: s.Audit.Hash})
	}
	p.syncedOnce.Do(func() { close(p.synced) })
	if raw != nil {
		p.persist(raw, slices.Clone(p.heads))
	}
	p.signalReport()
	if old != nil && changed == nil {
		changed = flagChanges(old.snap, s)
	}
	p.log.Info("flags: snapshot applied", "version", s.Version, "changed", len(changed))

	p.mu.Lock()
	defer p.mu.Unlock()
	switch p.status {
	case stInit:
		// Init's answer tells the API.
	case stReady:
		// A newer version that changes no flag (only pipelines, comparison
		// rules...) changes no answer but snapshotVersion: no event.
		if len(changed) > 0 {
			p.emit(openfeature.ProviderConfigChange, "new snapshot", changed, s.Version)
		}
	default:
		p.status = stReady
		p.emit(openfeature.ProviderReady, "snapshot synced", nil, s.Version)
	}
	return v
}

func (p *Provider) signalReport() {
	select {
	case p.reportSig <- struct{}{}:
	default: // a report is already due; it reads the latest version
	}
}

// Offer hands the provider a snapshot's JSON from another source than its
// stream, such as the control service in the same process, and returns
// once the provider holds it. It is judged as the stream's snapshots are:
// taken if newer or of another store. It returns an error if raw does not
// decode or the snapshot is refused because its store went backwards.
func (p *Provider) Offer(raw []byte) error {
	s, err := decodeSnapshot(raw)
	if err != nil {
		return fmt.Errorf("flags: offered snapshot: %w", err)
	}
	switch p.apply(s, raw, false) {
	case refuseOlder, refuseDiverged:
		return fmt.Errorf("flags: offered snapshot version %d refused: its store went backwards", s.Version)
	}
	return nil
}

// Current reports whether the provider holds the control service's latest
// snapshot as far as it can know: it is connected to the snapshot stream,
// and holds the last snapshot the stream brought (or the stream said the
// one held is current). A provider that runs on its snapshot file, is
// disconnected, or refused a snapshot is not current.
func (p *Provider) Current() bool { return p.current.Load() }

// ControlURL returns the base URL, one of Options.URLs (or Options.URL),
// of the control service replica whose snapshot stream the provider
// follows, or tries next while it is disconnected.
func (p *Provider) ControlURL() string { return p.replicas[p.active.Load()].base }

// Regressions counts the snapshots refused because the control service's
// store went backwards: a lower version of the store held (or the same
// version with another history), as after a restore from a backup. Each is
// also logged as an error; the control service moves its version past the
// one reported, and the provider takes that.
func (p *Provider) Regressions() uint64 { return p.regressions.Load() }

// AuditHeads returns the audit heads the provider has witnessed, oldest
// first: they are kept in Options.SnapshotFile, and "switchback audit
// verify --witness" checks that the control service's audit log still
// holds them.
func (p *Provider) AuditHeads() []AuditHead {
	p.applyMu.Lock()
	defer p.applyMu.Unlock()
	return slices.Clone(p.heads)
}

// maxHeads bounds the audit heads a provider keeps.
const maxHeads = 64

// keepHead adds h to heads. The newest heads are the best witnesses (each
// vouches for every entry before it), but a rewrite that a control service
// follows with new entries hands out a new head that no longer vouches for
// the old ones: older heads are kept too, thinned out as they age so that
// the list stays bounded and still spans the log.
func keepHead(heads []AuditHead, h AuditHead) []AuditHead {
	for _, k := range heads {
		if k == h {
			return heads
		}
	}
	heads = append(heads, h)
	if len(heads) <= maxHeads {
		return heads
	}
	// Drop one of the older half, the one closest in seq to the head kept
	// before it: the gaps grow with age, like a log scale.
	best, gap := 1, uint64(math.MaxUint64)
	for i := 1; i < len(heads)/2; i++ {
		a, b := heads[i-1], heads[i]
		if a.StoreID != b.StoreID || b.Seq < a.Seq {
			continue // the first head after a change of store, or a store that went back: evidence, kept
		}
		if d := b.Seq - a.Seq; d < gap {
			best, gap = i, d
		}
	}
	return slices.Delete(heads, best, best+1)
}

// onConnected runs when a stream is established: it recovers from STALE or
// ERROR if the provider holds a snapshot (the control service sends one
// only if it is newer than ours).
func (p *Provider) onConnected() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = nil
	h := p.cur.Load()
	if h != nil && (p.status == stStale || p.status == stError) {
		p.status = stReady
		p.emit(openfeature.ProviderReady, "reconnected to the control service", nil, h.snap.Version)
	}
}

// onDisconnected runs when a stream ends or a connection fails.
func (p *Provider) onDisconnected(wasConnected bool, err error) {
	p.current.Store(false)
	p.mu.Lock()
	defer p.mu.Unlock()
	p.lastErr = err
	if h := p.cur.Load(); wasConnected && h != nil && p.status == stReady {
		p.status = stStale
		p.emit(openfeature.ProviderStale, "lost the control service's snapshot stream", nil, h.snap.Version)
	}
}

// onGraceExpired runs when the provider has been disconnected StaleGrace.
func (p *Provider) onGraceExpired() {
	p.mu.Lock()
	defer p.mu.Unlock()
	h := p.cur.Load()
	if h == nil || (p.status != stReady && p.status != stStale) {
		return
	}
	p.status = stError
	p.log.Error("flags: control service unreachable past the grace period; serving the last snapshot",
		"grace", p.opts.StaleGrace, "version", h.snap.Version, "err", p.lastErr)
	p.emit(openfeature.ProviderError, "control service unreachable for "+p.opts.StaleGrace.String()+"; serving the last snapshot", nil, h.snap.Version)
}

// emit queues an event without ever blocking: when the channel is full
// (nobody reads it), the oldest event is dropped, since the latest ones
// carry the state. Call with mu held, so events keep the order of the
// status changes.
func (p *Provider) emit(t openfeature.EventType, msg string, changed []string, version uint64) {
	ev := openfeature.Event{
		ProviderName: ProviderName,
		EventType:    t,
		ProviderEventDetails: openfeature.ProviderEventDetails{
			Message:       msg,
			FlagChanges:   changed,
			EventMetadata: map[string]any{"snapshotVersion": int64(version)},
		},
	}
	if t == openfeature.ProviderError {
		ev.ErrorCode = openfeature.GeneralCode
	}
	for range 2 {
		select {
		case p.events <- ev:
			return
		default:
		}
		select {
		case <-p.events:
		default:
		}
	}
	p.log.Warn("flags: event dropped", "event", string(t))
}

// flagChanges returns, sorted, the keys of the migrations whose answers may
// differ between old and cur: added, removed, kill switch or stages
// changed. A change in the set of partners changes every flag (a partner
// moves between DEFAULT and TARGETING_MATCH).
func flagChanges(old, cur *Snapshot) []string {
	partnersChanged := len(old.Partners) != len(cur.Partners)
	if !partnersChanged {
		for id := range cur.Partners {
			if _, ok := old.Partners[id]; !ok {
				partnersChanged = true
				break
			}
		}
	}
	var changed []string
	for k, m := range cur.Migrations {
		om, ok := old.Migrations[k]
		if !ok || partnersChanged || !sameFlag(om, m) {
			changed = append(changed, k)
		}
	}
	for k := range old.Migrations {
		if _, ok := cur.Migrations[k]; !ok {
			changed = append(changed, k)
		}
	}
	slices.Sort(changed)
	return changed
}

func sameFlag(a, b *Migration) bool {
	if a == nil || b == nil {
		return a == b
	}
	return a.Reverted == b.Reverted && maps.Equal(a.Stages, b.Stages)
}

// reportLoop tells the control service which snapshot version this router
// holds, after each new snapshot and every ReportInterval. Signals coalesce:
// a report sends the version held when it starts.
func (p *Provider) reportLoop(ctx context.Context) {
	t := time.NewTicker(p.opts.ReportInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-p.reportSig:
		case <-t.C:
		}
		h := p.cur.Load()
		if h == nil {
			continue
		}
		if err := p.report(ctx, h.snap); err != nil && ctx.Err() == nil {
			p.log.Warn("flags: router report failed", "router", p.opts.RouterID, "version", h.snap.Version, "err", err)
		}
	}
}

// refusedFor returns the version last refused, if s carries a store id.
func (p *Provider) refusedFor(s *Snapshot) uint64 {
	if s.StoreID == "" {
		return 0
	}
	return p.refused.Load()
}

func (p *Provider) report(ctx context.Context, s *Snapshot) error {
	// A report may take as long as the interval, and never less than 5 s:
	// one slow answer must not make every report fail.
	ctx, cancel := context.WithTimeout(ctx, max(p.opts.ReportInterval, 5*time.Second))
	defer cancel()
	// storeId and refused go only with a snapshot that has a store id: a
	// control service old enough to send none refuses unknown fields.
	body, err := json.Marshal(struct {
		Router          string `json:"router"`
		SnapshotVersion uint64 `json:"snapshotVersion"`
		StoreID         string `json:"storeId,omitempty"`
		Refused         uint64 `json:"refused,omitempty"`
	}{p.opts.RouterID, s.Version, s.StoreID, p.refusedFor(s)})
	if err != nil {
		return err
	}
	// The replica of the stream: it answers, as far as the provider knows.
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, p.replicas[p.active.Load()].report, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+p.opts.Token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := p.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return errors.New("control service answered " + strconv.Itoa(resp.StatusCode))
	}
	return nil
}
