package simulate

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/psa"
)

// Bounds that keep a run finite.
const (
	DefaultRate     = 20
	DefaultDuration = 30 * time.Second
	MaxRate         = 10000
	MaxDuration     = 24 * time.Hour
	MaxConcurrency  = 256
	MaxBurstSize    = 10000
	// MaxLedger caps Stats.Ledger; entries past it are counted in
	// Stats.LedgerDropped.
	MaxLedger = 1 << 20

	defaultRetries      = 4
	defaultMaxRetryWait = 10 * time.Second
	defaultTimeout      = 10 * time.Second
	answerLimit         = 64 << 10
)

// Entity types, as the router canonicalizes them and as Config.Mix names
// them.
const (
	Ticket        = psa.EntityTicket
	ScheduleEntry = psa.EntityScheduleEntry
	TimeEntry     = psa.EntityTimeEntry
	Company       = psa.EntityCompany
	Contact       = psa.EntityContact
)

// EntityTypes are the entity types the simulator sends, in a fixed order.
var EntityTypes = []string{Ticket, ScheduleEntry, TimeEntry, Company, Contact}

// DefaultMix is the entity type mix of an MSP's PSA: mostly tickets, then
// the time logged and the visits scheduled on them, a few contact and
// company changes.
var DefaultMix = map[string]float64{
	Ticket:        0.45,
	TimeEntry:     0.22,
	ScheduleEntry: 0.13,
	Contact:       0.12,
	Company:       0.08,
}

// Partner is one PSA tenant whose webhooks the simulator sends.
type Partner struct {
	// ID is the partner's id at the router: deliveries go to
	// URL/hooks/ID.
	ID string `json:"id"`
	// PSA is "connectwise", "autotask", "halopsa" or "generic".
	PSA string `json:"psa"`
	// Secret is configured at the router for this partner, in the format
	// internal/psa expects for the kind: the ConnectWise signing key (not
	// empty), the Autotask webhook secret, "basic:USER:PASSWORD" or
	// "bearer:TOKEN" for HaloPSA, "whsec_" and base64 for generic.
	Secret string `json:"secret"`
	// PSAAPI, optional, holds the credentials the ChangeAPI asks of a
	// client for this partner: the fields the PSA takes in a partner's
	// psaApi (psaapi.FromPartner); its baseUrl is ignored, the ChangeAPI's
	// address decides it. Without it they are derived (see ChangeAPI).
	PSAAPI *domain.PSAAPI `json:"psaApi,omitempty"`
}

// Burst adds bulk edits: after every Every paced deliveries, Size
// deliveries of one partner (picked by the seed), mostly updates, are sent
// back to back without waiting for the rate.
type Burst struct {
	Every int `json:"every"`
	Size  int `json:"size"`
}

// Config is one simulation run. Zero fields take the defaults.
type Config struct {
	// URL is the router's base URL; deliveries go to URL+"/hooks/"+partner.
	URL      string
	Partners []Partner
	// Rate is deliveries per second over all partners (burst deliveries
	// come on top). Default 20, at most 10000.
	Rate float64
	// Duration is how long to send. When both Duration and Count are 0 it
	// is 30 s; at most 24 h.
	Duration time.Duration
	// Count stops the run after this many deliveries (resends, bursts and
	// dropped deliveries included; a retry after a 429 is not another
	// delivery), if > 0.
	Count int
	// Seed decides the whole sequence of deliveries.
	Seed uint64
	// Duplicates is the share of deliveries sent again a few deliveries
	// later as the PSA resends them, with the same delivery id (0 to 1).
	Duplicates float64
	// Drop is the share of deliveries the PSA never sends, as in an
	// outage (0 to 1): picked by the seed, apart from the rest of the
	// traffic, so a seed sends the same changes whatever Drop is. A
	// dropped delivery's resend is dropped too. Stats.DroppedChanges lists
	// their events, and the ChangeAPI still holds the changes.
	Drop float64
	// ChangeAPI, if not nil, is told every change as the PSA makes it
	// (before its webhook is sent or dropped), so that it serves each
	// partner's change API. It must know every partner (NewChangeAPI).
	ChangeAPI *ChangeAPI
	// Burst adds bulk edits; the zero value adds none.
	Burst Burst
	// Mix weighs the entity types: "ticket", "schedule_entry",
	// "time_entry", "company", "contact". Empty means DefaultMix.
	Mix map[string]float64
	// Concurrency is how many partners send at once (each partner sends
	// one delivery at a time). Default and maximum: the number of
	// partners, at most 256 (default at most 32).
	Concurrency int
	// HTTPClient sends the deliveries; nil means a client with a 10 s
	// timeout. It is used without following redirects.
	HTTPClient *http.Client
	// Retries is how many times a delivery is tried again after a 429 or
	// no answer. 0 means 4 (five tries, as Autotask makes); negative, none.
	Retries int
	// MaxRetryWait caps the wait before a retry, whatever Retry-After
	// says. Default 10 s.
	MaxRetryWait time.Duration
	// Timeout bounds each try, from the request to the end of the answer.
	// Default 10 s (ConnectWise gives up after 5 s).
	Timeout time.Duration
	// ProgressEvery is how often progress is called. Default 1 s.
	ProgressEvery time.Duration
}

// LedgerEntry is one event the router acknowledged, as the router reads it.
type LedgerEntry struct {
	Partner    string `json:"partner"`
	EntityType string `json:"entityType"`
	EntityID   string `json:"entityId"`
	Action     string `json:"action"`
	DeliveryID string `json:"deliveryId"`
}

// PartnerStats are one partner's counts.
type PartnerStats struct {
	PSA          string `json:"psa"`
	Sent         int    `json:"sent"`
	Dropped      int    `json:"dropped,omitempty"`
	Acknowledged int    `json:"acknowledged"`
	Refused      int    `json:"refused"`
	Errors       int    `json:"errors"`
}

// Stats are a run's counts and, at its end, its ledger.
type Stats struct {
	Elapsed time.Duration `json:"elapsed"`
	// Sent counts deliveries sent (each once, whatever its retries).
	Sent int `json:"sent"`
	// Events counts the events in the sent deliveries (a batched HaloPSA
	// delivery holds several).
	Events int `json:"events"`
	// Duplicates counts the sent deliveries that were resends.
	Duplicates int `json:"duplicates"`
	// Bursts counts the bursts started.
	Bursts int `json:"bursts"`
	// Acknowledged counts deliveries answered 202.
	Acknowledged int `json:"acknowledged"`
	// Deduplicated counts acknowledged deliveries whose every event the
	// router reported as a duplicate ({"events":[{"duplicate":true}]}).
	Deduplicated int `json:"deduplicated"`
	// Refused counts deliveries finally answered with another status, by
	// status (a 429 only when retries ran out).
	Refused map[int]int `json:"refused"`
	// Retried counts tries made again after a 429 or no answer.
	Retried int `json:"retried"`
	// Errors counts deliveries that got no answer at all.
	Errors int `json:"errors"`
	// Partners are the counts per partner id.
	Partners map[string]PartnerStats `json:"partners"`
	// Ledger lists every acknowledged event once, in generation order (see
	// the package documentation). It is filled in Run's result only, not
	// in progress reports.
	Ledger []LedgerEntry `json:"ledger,omitempty"`
	// LedgerDropped counts acknowledged events past MaxLedger.
	LedgerDropped int `json:"ledgerDropped,omitempty"`
	// Dropped counts the deliveries never sent (Config.Drop), resends of
	// them included. They are not in Sent.
	Dropped int `json:"dropped,omitempty"`
	// DroppedChanges lists the events of the dropped deliveries (not
	// their resends), in generation order, at most MaxLedger, in Run's
	// result only.
	DroppedChanges []DroppedChange `json:"droppedChanges,omitempty"`
	// DroppedChangesPast counts dropped events past MaxLedger.
	DroppedChangesPast int `json:"droppedChangesPast,omitempty"`
}

// DroppedChange is one event of a delivery the PSA never sent: the
// router's reading of it (LedgerEntry), the stamp it would have carried.
type DroppedChange struct {
	LedgerEntry
	// UpdatedAt is the stamp the event carried (psa.UpdatedAt; for a
	// ConnectWise deletion, which carries none, the time to the second),
	// the updatedAt the ChangeAPI reports for the change.
	UpdatedAt time.Time `json:"updatedAt"`
	// Detectable says that at the end of the run a reconciliation over a
	// window holding the run can find the change missing from what the
	// router received: the ChangeAPI lists it (it is the entity's latest
	// change, and the partner's API serves it: every change for generic,
	// tickets not deleted for the vendors), and its stamp is later than
	// that of every webhook sent about the entity before it (ConnectWise
	// stamps whole seconds: a change dropped in the second of one sent
	// carries the same stamp).
	Detectable bool `json:"detectable"`
}

// RefusedTotal is the number of deliveries refused, whatever the status.
func (s Stats) RefusedTotal() int {
	n := 0
	for _, c := range s.Refused {
		n += c
	}
	return n
}

// normalize validates cfg and fills in its defaults.
func (cfg Config) normalize() (Config, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return cfg, fmt.Errorf("simulate: the router URL %q is not an http(s) base URL", cfg.URL)
	}
	cfg.URL = strings.TrimRight(u.String(), "/")

	if len(cfg.Partners) == 0 {
		return cfg, errors.New("simulate: no partners")
	}
	seen := map[string]bool{}
	for _, p := range cfg.Partners {
		if !domain.ValidID(p.ID) {
			return cfg, fmt.Errorf("simulate: partner id %q is not valid (lower-case letters, digits, then . _ -; at most 63)", p.ID)
		}
		if seen[p.ID] {
			return cfg, fmt.Errorf("simulate: partner %q is listed twice", p.ID)
		}
		seen[p.ID] = true
		if err := checkSecret(p); err != nil {
			return cfg, err
		}
	}

	switch {
	case cfg.Rate == 0:
		cfg.Rate = DefaultRate
	case !(cfg.Rate > 0 && cfg.Rate <= MaxRate):
		return cfg, fmt.Errorf("simulate: rate %v is not between 0 and %d deliveries/s", cfg.Rate, MaxRate)
	}
	if cfg.Count < 0 {
		return cfg, errors.New("simulate: count is negative")
	}
	if cfg.Duration < 0 || cfg.Duration > MaxDuration {
		return cfg, fmt.Errorf("simulate: duration %s is not between 0 and %s", cfg.Duration, MaxDuration)
	}
	if cfg.Duration == 0 {
		if cfg.Count == 0 {
			cfg.Duration = DefaultDuration
		} else {
			cfg.Duration = MaxDuration
		}
	}
	if !(cfg.Duplicates >= 0 && cfg.Duplicates <= 1) {
		return cfg, fmt.Errorf("simulate: duplicates %v is not a share between 0 and 1", cfg.Duplicates)
	}
	if !(cfg.Drop >= 0 && cfg.Drop <= 1) {
		return cfg, fmt.Errorf("simulate: drop %v is not a share between 0 and 1", cfg.Drop)
	}
	if cfg.ChangeAPI != nil {
		for _, p := range cfg.Partners {
			if !cfg.ChangeAPI.serves(p) {
				return cfg, fmt.Errorf("simulate: the change API does not serve partner %s (%s)", p.ID, p.PSA)
			}
		}
	}
	if cfg.Burst.Every < 0 || cfg.Burst.Size < 0 || cfg.Burst.Size > MaxBurstSize {
		return cfg, fmt.Errorf("simulate: a burst needs Every >= 0 and Size between 0 and %d", MaxBurstSize)
	}
	if cfg.Burst.Every == 0 || cfg.Burst.Size == 0 {
		cfg.Burst = Burst{}
	}

	mix := cfg.Mix
	if len(mix) == 0 {
		mix = DefaultMix
	}
	total := 0.0
	for k, w := range mix {
		if !slices.Contains(EntityTypes, k) {
			return cfg, fmt.Errorf("simulate: mix names %q: use %s", k, strings.Join(EntityTypes, ", "))
		}
		if !(w >= 0) || math.IsInf(w, 0) {
			return cfg, fmt.Errorf("simulate: mix weight %v for %s is not a finite number >= 0", w, k)
		}
		total += w
	}
	if !(total > 0) || math.IsInf(total, 0) {
		return cfg, errors.New("simulate: the mix weighs no entity type")
	}
	cfg.Mix = mix

	switch {
	case cfg.Concurrency < 0:
		return cfg, errors.New("simulate: concurrency is negative")
	case cfg.Concurrency == 0:
		cfg.Concurrency = min(len(cfg.Partners), 32)
	}
	cfg.Concurrency = min(cfg.Concurrency, len(cfg.Partners), MaxConcurrency)

	switch {
	case cfg.Retries == 0:
		cfg.Retries = defaultRetries
	case cfg.Retries < 0:
		cfg.Retries = 0
	}
	switch {
	case cfg.MaxRetryWait < 0:
		return cfg, errors.New("simulate: MaxRetryWait is negative")
	case cfg.MaxRetryWait == 0:
		cfg.MaxRetryWait = defaultMaxRetryWait
	}
	switch {
	case cfg.Timeout < 0:
		return cfg, errors.New("simulate: Timeout is negative")
	case cfg.Timeout == 0:
		cfg.Timeout = defaultTimeout
	}
	if cfg.ProgressEvery <= 0 {
		cfg.ProgressEvery = time.Second
	}

	// Never follow a redirect: traffic stays on the given URL.
	var c http.Client
	if cfg.HTTPClient != nil {
		c = *cfg.HTTPClient
	} else {
		c = http.Client{Timeout: defaultTimeout, Transport: &http.Transport{
			Proxy:               nil,
			MaxIdleConnsPerHost: cfg.Concurrency,
			IdleConnTimeout:     30 * time.Second,
		}}
	}
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	cfg.HTTPClient = &c
	return cfg, nil
}

// run is one Run in progress.
type run struct {
	cfg   Config
	start time.Time

	mu     sync.Mutex
	stats  Stats
	seen   map[string]bool // partner "\x00" delivery id, acknowledged
	ledger []ledgerItem
	// dropped are the dropped events; tracked follows, per entity that
	// is live or whose latest change was dropped, what a reconciliation
	// would hold against it (only when Config.Drop > 0).
	dropped []droppedItem
	tracked map[entityKey]tracked
}

type entityKey struct{ partner, typ, id string }

type tracked struct {
	sent    time.Time // the latest stamp of a change sent
	dropped int       // 1 + the index in dropped of its latest change, if dropped
}

type droppedItem struct {
	seq, sub int
	c        DroppedChange
	listed   bool // the change API lists the change while it is the latest
	latest   bool
}

type ledgerItem struct {
	seq, sub int
	e        LedgerEntry
}

// Run sends deliveries as cfg says until Count deliveries were sent,
// Duration passed or ctx ends, then returns the counts and the ledger. It
// calls progress, if not nil, every ProgressEvery from another goroutine
// with the counts so far (no ledger); progress must return promptly. When
// ctx ends first, Run returns what it counted and ctx's error. An invalid
// cfg is an error before anything is sent.
func Run(ctx context.Context, cfg Config, progress func(Stats)) (Stats, error) {
	ownClient := cfg.HTTPClient == nil
	cfg, err := cfg.normalize()
	if err != nil {
		return Stats{}, err
	}
	if ownClient {
		defer cfg.HTTPClient.CloseIdleConnections()
	}
	gen, err := newGenerator(cfg)
	if err != nil {
		return Stats{}, err
	}
	// The simulator sends real traffic on the real clock: its pacing, its
	// signatures' timestamps and Retry-After are wall-clock time, as a PSA's.
	r := &run{cfg: cfg, start: time.Now(), seen: map[string]bool{}, tracked: map[entityKey]tracked{}}
	r.stats.Refused = map[int]int{}
	r.stats.Partners = map[string]PartnerStats{}
	for _, p := range cfg.Partners {
		r.stats.Partners[p.ID] = PartnerStats{PSA: p.PSA}
	}

	// window ends when no delivery may start any more.
	window, stop := context.WithDeadline(ctx, r.start.Add(cfg.Duration))
	defer stop()

	queues := make([]chan *delivery, cfg.Concurrency)
	var wg sync.WaitGroup
	for i := range queues {
		queues[i] = make(chan *delivery, 64)
		wg.Go(func() { r.work(ctx, window, queues[i]) })
	}
	var progressDone chan struct{}
	quit := make(chan struct{})
	if progress != nil {
		progressDone = make(chan struct{})
		go func() {
			defer close(progressDone)
			t := time.NewTicker(cfg.ProgressEvery)
			defer t.Stop()
			for {
				select {
				case <-t.C:
					progress(r.snapshot(false))
				case <-quit:
					return
				}
			}
		}()
	}

	r.pace(window, gen, queues)
	for _, q := range queues {
		close(q)
	}
	wg.Wait()
	close(quit)
	if progressDone != nil {
		<-progressDone
	}
	st := r.snapshot(true)
	return st, ctx.Err()
}

// pace generates the deliveries and hands each to its partner's worker
// when it is due.
func (r *run) pace(window context.Context, g *generator, queues []chan *delivery) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for n := 0; r.cfg.Count == 0 || n < r.cfg.Count; n++ {
		if !g.inBurst() {
			due := r.start.Add(time.Duration(float64(g.paced) * float64(time.Second) / r.cfg.Rate))
			if wait := time.Until(due); wait > 0 {
				timer.Reset(wait)
				select {
				case <-timer.C:
				case <-window.Done():
					return
				}
			}
		}
		if window.Err() != nil {
			return
		}
		d, burst := g.next(time.Now())
		if burst {
			r.mu.Lock()
			r.stats.Bursts++
			r.mu.Unlock()
		}
		select {
		case queues[d.partner.worker] <- d:
		case <-window.Done():
			return
		}
	}
}

// work sends its partners' deliveries one at a time, in order, or drops
// them. Each delivery's changes are made at the PSA first, as a PSA makes
// a change before it sends its webhook; once the window is closed it only
// drains its queue, and the changes it drains are never made.
func (r *run) work(ctx, window context.Context, q <-chan *delivery) {
	for d := range q {
		if window.Err() != nil {
			continue
		}
		if !d.dup {
			r.change(d)
		}
		if d.drop {
			r.count(func(s *Stats) {
				s.Dropped++
				p := s.Partners[d.partner.p.ID]
				p.Dropped++
				s.Partners[d.partner.p.ID] = p
			})
			continue
		}
		r.deliver(ctx, window, d)
	}
}

// change makes d's changes at the PSA: it tells the ChangeAPI, and when
// deliveries are dropped, notes which dropped changes a reconciliation can
// find.
func (r *run) change(d *delivery) {
	id := d.partner.p.ID
	if r.cfg.ChangeAPI != nil {
		r.cfg.ChangeAPI.record(id, d.changes)
	}
	if r.cfg.Drop == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, c := range d.changes {
		k := entityKey{id, c.typ, c.id}
		tr := r.tracked[k]
		if tr.dropped > 0 {
			r.dropped[tr.dropped-1].latest = false
			tr.dropped = 0
		}
		deleted := c.action == psa.ActionDeleted
		if d.drop {
			if len(r.dropped) >= MaxLedger {
				r.stats.DroppedChangesPast++
			} else {
				r.dropped = append(r.dropped, droppedItem{
					seq: d.seq, sub: i,
					c:      DroppedChange{LedgerEntry: d.events[i], UpdatedAt: c.updatedAt},
					listed: c.data != nil && c.updatedAt.After(tr.sent),
					latest: true,
				})
				tr.dropped = len(r.dropped)
			}
		} else if c.updatedAt.After(tr.sent) {
			tr.sent = c.updatedAt
		}
		// ids are never reused: an entity deleted for good is done with.
		if deleted && tr.dropped == 0 {
			delete(r.tracked, k)
		} else {
			r.tracked[k] = tr
		}
	}
}

// deliver sends d, retrying a 429 or a missing answer, and records the
// outcome.
func (r *run) deliver(ctx, window context.Context, d *delivery) {
	id := d.partner.p.ID
	r.mu.Lock()
	r.stats.Sent++
	r.stats.Events += len(d.events)
	if d.dup {
		r.stats.Duplicates++
	}
	ps := r.stats.Partners[id]
	ps.Sent++
	r.stats.Partners[id] = ps
	r.mu.Unlock()

	for try := 0; ; try++ {
		status, retryAfter, allDup, err := r.post(ctx, d)
		last := try >= r.cfg.Retries
		switch {
		case err != nil:
			if !last && ctx.Err() == nil && r.sleep(window, backoff(try, r.cfg.MaxRetryWait)) {
				r.count(func(s *Stats) { s.Retried++ })
				continue
			}
			r.count(func(s *Stats) {
				s.Errors++
				p := s.Partners[id]
				p.Errors++
				s.Partners[id] = p
			})
			return
		case status == http.StatusTooManyRequests && !last:
			if r.sleep(window, min(retryAfter, r.cfg.MaxRetryWait)) {
				r.count(func(s *Stats) { s.Retried++ })
				continue
			}
		case status == http.StatusAccepted:
			r.ack(d, allDup)
			return
		}
		r.count(func(s *Stats) {
			s.Refused[status]++
			p := s.Partners[id]
			p.Refused++
			s.Partners[id] = p
		})
		return
	}
}

// sleep waits d unless the window closes first; it reports whether it
// waited the whole time.
func (r *run) sleep(window context.Context, d time.Duration) bool {
	if d <= 0 {
		return window.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-window.Done():
		return false
	}
}

// backoff is the wait after the try-th try got no answer.
func backoff(try int, limit time.Duration) time.Duration {
	return min(250*time.Millisecond<<min(try, 10), limit)
}

func (r *run) count(f func(*Stats)) {
	r.mu.Lock()
	f(&r.stats)
	r.mu.Unlock()
}

// ack records an acknowledged delivery and puts its new events in the
// ledger.
func (r *run) ack(d *delivery, allDup bool) {
	id := d.partner.p.ID
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.Acknowledged++
	if allDup {
		r.stats.Deduplicated++
	}
	ps := r.stats.Partners[id]
	ps.Acknowledged++
	r.stats.Partners[id] = ps
	for i, e := range d.events {
		key := id + "\x00" + e.DeliveryID
		if r.seen[key] {
			continue
		}
		if len(r.ledger) >= MaxLedger {
			r.stats.LedgerDropped++
			continue
		}
		r.seen[key] = true
		r.ledger = append(r.ledger, ledgerItem{seq: d.seq, sub: i, e: e})
	}
}

// snapshot copies the counts, and the ledger in generation order if
// withLedger.
func (r *run) snapshot(withLedger bool) Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Elapsed = time.Since(r.start)
	s.Refused = make(map[int]int, len(r.stats.Refused))
	for k, v := range r.stats.Refused {
		s.Refused[k] = v
	}
	s.Partners = make(map[string]PartnerStats, len(r.stats.Partners))
	for k, v := range r.stats.Partners {
		s.Partners[k] = v
	}
	s.Ledger = nil
	if withLedger && len(r.dropped) > 0 {
		items := slices.Clone(r.dropped)
		slices.SortFunc(items, func(a, b droppedItem) int {
			return cmp.Or(cmp.Compare(a.seq, b.seq), cmp.Compare(a.sub, b.sub))
		})
		s.DroppedChanges = make([]DroppedChange, len(items))
		for i, it := range items {
			s.DroppedChanges[i] = it.c
			s.DroppedChanges[i].Detectable = it.listed && it.latest
		}
	}
	if withLedger {
		items := slices.Clone(r.ledger)
		slices.SortFunc(items, func(a, b ledgerItem) int {
			return cmp.Or(cmp.Compare(a.seq, b.seq), cmp.Compare(a.sub, b.sub))
		})
		s.Ledger = make([]LedgerEntry, len(items))
		for i, it := range items {
			s.Ledger[i] = it.e
		}
	}
	return s
}

// post makes one try of d: its status, the Retry-After of a 429, whether
// the router said every event was a duplicate, or the error when there was
// no answer.
func (r *run) post(ctx context.Context, d *delivery) (status int, retryAfter time.Duration, allDup bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.cfg.URL+"/hooks/"+url.PathEscape(d.partner.p.ID), bytes.NewReader(d.body))
	if err != nil {
		return 0, 0, false, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "switchback-simulate ("+d.partner.p.PSA+")")
	d.partner.sign(req.Header, d, time.Now())
	resp, err := r.cfg.HTTPClient.Do(req)
	if err != nil {
		return 0, 0, false, err
	}
	answer, _ := io.ReadAll(io.LimitReader(resp.Body, answerLimit))
	io.Copy(io.Discard, io.LimitReader(resp.Body, answerLimit))
	resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		var a struct {
			Events []struct {
				Duplicate bool `json:"duplicate"`
			} `json:"events"`
		}
		if json.Unmarshal(answer, &a) == nil && len(a.Events) > 0 {
			allDup = true
			for _, e := range a.Events {
				allDup = allDup && e.Duplicate
			}
		}
	}
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), time.Now()), allDup, nil
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date; without a
// usable one, the wait is one second.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return time.Second
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return time.Second
		}
		return time.Duration(min(s, int64(MaxDuration/time.Second))) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0)
	}
	return time.Second
}
