package notify

import (
	"context"
	"log/slog"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// Defaults of Options.
const (
	DefaultTimeout       = 15 * time.Second
	DefaultAttempts      = 10
	DefaultBackoff       = 2 * time.Second
	DefaultMaxBackoff    = 5 * time.Minute
	DefaultMaxRetryAfter = 10 * time.Minute
	DefaultQueueSize     = 100
	DefaultKeep          = 50
	// pruneEvery is how often Run forgets the queues of deleted targets (Prune).
	pruneEvery = time.Minute
)

// Options configure a Notifier. Targets is required; the zero value of
// every other field is its default.
type Options struct {
	// Targets returns the current targets, with their secrets: the
	// control service's (State().NotifierList). It is called by Send and
	// before each attempt, so it must be cheap and must not block.
	Targets func() []domain.Notifier
	// Client posts the deliveries (a copy of it: its redirects are never
	// followed). The default uses http.DefaultTransport, so HTTPS_PROXY and
	// HTTP_PROXY are honoured, and has no timeout of its own: Timeout
	// bounds each attempt.
	Client *http.Client
	// Timeout bounds one attempt, connection to answer; default 15 s,
	// what Standard Webhooks asks receivers to answer within.
	Timeout time.Duration
	// Attempts bounds the attempts of one delivery; default 10.
	Attempts int
	// Backoff is the wait before the second attempt, doubled for each
	// next one up to MaxBackoff; defaults 2 s and 5 min (about a quarter
	// of an hour of retries with 10 attempts).
	Backoff, MaxBackoff time.Duration
	// MaxRetryAfter bounds how long a receiver's Retry-After may make a
	// delivery wait; default 10 min.
	MaxRetryAfter time.Duration
	// QueueSize bounds each target's queue; default 100.
	QueueSize int
	// Keep is how many deliveries a target's status keeps; default 50.
	Keep int
	// Registerer takes switchback_notifications_total; nil registers
	// nothing.
	Registerer prometheus.Registerer
	Log        *slog.Logger
	// Now stamps notices without a time; default time.Now.
	Now func() time.Time
}

// Notifier delivers notices to the targets that ask for them. Send never
// blocks; Run runs the deliveries.
type Notifier struct {
	opts    Options
	metrics *prometheus.CounterVec

	mu      sync.Mutex
	lanes   map[string]*lane
	ctx     context.Context // Run's, nil until Run starts and after it ends
	workers sync.WaitGroup
}

// lane is one target's queue, deliveries and worker. Guarded by
// Notifier.mu.
type lane struct {
	name     string
	queue    []*item
	inflight bool
	recent   []*wire.Delivery // newest first, at most Keep
	totals   wire.DeliveryTotals
	running  bool          // a worker serves it
	wake     chan struct{} // buffered 1: something was queued
	stop     chan struct{} // closed when the target is gone
}

// item is one notice queued for one target, with its delivery's record.
type item struct {
	notice domain.Notice
	rec    *wire.Delivery
}

// New returns a Notifier; its deliveries start with Run.
func New(opts Options) *Notifier {
	// A client's own redirect policy is replaced too: a redirect fails
	// the attempt (see noRedirects).
	client := http.Client{}
	if opts.Client != nil {
		client = *opts.Client
	}
	client.CheckRedirect = noRedirects
	opts.Client = &client
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	if opts.Attempts <= 0 {
		opts.Attempts = DefaultAttempts
	}
	if opts.Backoff <= 0 {
		opts.Backoff = DefaultBackoff
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = DefaultMaxBackoff
	}
	if opts.MaxRetryAfter <= 0 {
		opts.MaxRetryAfter = DefaultMaxRetryAfter
	}
	if opts.QueueSize <= 0 {
		opts.QueueSize = DefaultQueueSize
	}
	if opts.Keep <= 0 {
		opts.Keep = DefaultKeep
	}
	if opts.Log == nil {
		opts.Log = slog.Default()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	n := &Notifier{opts: opts, lanes: map[string]*lane{},
		metrics: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "switchback_notifications_total",
			Help: "Notices to notification targets by outcome: delivered, failed (given up), dropped (a full queue), retried (an attempt that failed and is tried again)."},
			[]string{"target", "outcome"})}
	if opts.Registerer != nil {
		opts.Registerer.MustRegister(n.metrics)
	}
	return n
}

// noRedirects makes a redirect the answer: Standard Webhooks counts it a
// failure, and following it would send the secret's signature elsewhere.
func noRedirects(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// Run delivers until ctx ends, then waits for the workers to stop. The
// notices still queued then are lost (they live in memory only).
func (n *Notifier) Run(ctx context.Context) {
	n.mu.Lock()
	n.ctx = ctx
	for _, l := range n.lanes {
		n.startLocked(l)
	}
	n.mu.Unlock()
	t := time.NewTicker(pruneEvery)
	defer t.Stop()
	for done := false; !done; {
		select {
		case <-ctx.Done():
			done = true
		case <-t.C:
			n.Prune()
		}
	}
	n.mu.Lock()
	n.ctx = nil
	for _, l := range n.lanes {
		l.running = false
	}
	n.mu.Unlock()
	n.workers.Wait()
}

// startLocked starts l's worker if Run runs and none serves it.
func (n *Notifier) startLocked(l *lane) {
	if n.ctx == nil || l.running {
		return
	}
	l.running = true
	ctx := n.ctx
	n.workers.Go(func() { n.work(ctx, l) })
}

// Send queues notice for every target that asks for its event, stamping
// it with an id and the time when it has none. It never blocks: see the
// package doc.
func (n *Notifier) Send(notice domain.Notice) {
	n.stamp(&notice)
	for _, t := range n.opts.Targets() {
		if t.Wants(notice.Event) {
			n.enqueue(t.Name, notice)
		}
	}
}

// SendTo queues notice for the named target whatever events it asks for
// (a test notice). It returns a not_found error when there is no such
// target.
func (n *Notifier) SendTo(name string, notice domain.Notice) error {
	if _, ok := n.target(name); !ok {
		return domain.Errorf(domain.CodeNotFound, "notification target %q does not exist", name)
	}
	n.stamp(&notice)
	n.enqueue(name, notice)
	return nil
}

func (n *Notifier) stamp(notice *domain.Notice) {
	if notice.ID == "" {
		notice.ID = domain.NewNoticeID()
	}
	if notice.At.IsZero() {
		notice.At = n.opts.Now().UTC()
	}
}

// target returns the named target as the control service holds it now.
func (n *Notifier) target(name string) (domain.Notifier, bool) {
	for _, t := range n.opts.Targets() {
		if t.Name == name {
			return t, true
		}
	}
	return domain.Notifier{}, false
}

// enqueue appends notice to the target's queue, dropping the oldest
// queued notice when it is full.
func (n *Notifier) enqueue(name string, notice domain.Notice) {
	n.mu.Lock()
	defer n.mu.Unlock()
	l, ok := n.lanes[name]
	if !ok {
		l = &lane{name: name, wake: make(chan struct{}, 1), stop: make(chan struct{})}
		n.lanes[name] = l
	}
	it := &item{notice: notice, rec: &wire.Delivery{Notice: notice.ID, Event: notice.Event, At: notice.At, State: wire.DeliveryQueued}}
	if len(l.queue) >= n.opts.QueueSize {
		old := l.queue[0]
		l.queue = slices.Delete(l.queue, 0, 1)
		old.rec.State, old.rec.Error = wire.DeliveryDropped, "dropped unsent: the target's queue was full and a newer notice came"
		l.totals.Dropped++
		n.metrics.WithLabelValues(name, "dropped").Inc()
		n.opts.Log.Warn("notification dropped: the target's queue is full", "target", name, "notice", old.notice.ID, "event", old.notice.Event, "queue", n.opts.QueueSize)
	}
	l.queue = append(l.queue, it)
	l.recent = slices.Insert(l.recent, 0, it.rec)
	if len(l.recent) > n.opts.Keep {
		l.recent = l.recent[:n.opts.Keep]
	}
	select {
	case l.wake <- struct{}{}:
	default:
	}
	n.startLocked(l)
}

// work posts l's queue in order until ctx ends or the target is gone.
func (n *Notifier) work(ctx context.Context, l *lane) {
	for {
		n.mu.Lock()
		if len(l.queue) == 0 {
			n.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-l.stop:
				n.giveUpQueue(l)
				return
			case <-l.wake:
			}
			continue
		}
		it := l.queue[0]
		l.queue = slices.Delete(l.queue, 0, 1)
		l.inflight = true
		n.mu.Unlock()
		n.deliver(ctx, l, it)
		n.mu.Lock()
		l.inflight = false
		n.mu.Unlock()
		if ctx.Err() != nil {
			return
		}
	}
}

// Prune forgets the queues of targets that no longer exist: their
// workers stop, their queued notices and any waiting for a retry fail,
// and their metrics go. Run calls it every minute (a worker finds its
// target gone at its next attempt anyway); call it to do so at once.
func (n *Notifier) Prune() {
	exists := map[string]bool{}
	for _, t := range n.opts.Targets() {
		exists[t.Name] = true
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	for name, l := range n.lanes {
		if exists[name] {
			continue
		}
		delete(n.lanes, name)
		close(l.stop)
		if !l.running {
			n.giveUpQueueLocked(l)
		}
		for _, o := range []string{"delivered", "failed", "dropped", "retried"} {
			n.metrics.DeleteLabelValues(name, o)
		}
	}
}

func (n *Notifier) giveUpQueue(l *lane) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.giveUpQueueLocked(l)
}

func (n *Notifier) giveUpQueueLocked(l *lane) {
	for _, it := range l.queue {
		it.rec.State, it.rec.Error = wire.DeliveryFailed, errDeleted
	}
	l.queue = nil
}

// errDeleted is why a delivery to a deleted target ended.
const errDeleted = "the notification target was deleted"

// Status returns the named target, as wire.TargetOf shows it, with its
// last deliveries, newest first, and its totals. It returns a not_found
// error when there is no such target.
func (n *Notifier) Status(name string) (wire.NotificationStatus, error) {
	t, ok := n.target(name)
	if !ok {
		return wire.NotificationStatus{}, domain.Errorf(domain.CodeNotFound, "notification target %q does not exist", name)
	}
	return n.status(t, true), nil
}

// Statuses returns every target with its totals, by name, without
// deliveries.
func (n *Notifier) Statuses() []wire.NotificationStatus {
	ts := n.opts.Targets()
	out := make([]wire.NotificationStatus, 0, len(ts))
	for _, t := range ts {
		out = append(out, n.status(t, false))
	}
	slices.SortFunc(out, func(a, b wire.NotificationStatus) int {
		switch {
		case a.Name < b.Name:
			return -1
		case a.Name > b.Name:
			return 1
		}
		return 0
	})
	return out
}

func (n *Notifier) status(t domain.Notifier, deliveries bool) wire.NotificationStatus {
	out := wire.NotificationStatus{NotificationTarget: wire.TargetOf(t)}
	n.mu.Lock()
	defer n.mu.Unlock()
	l, ok := n.lanes[t.Name]
	if !ok {
		if deliveries {
			out.Deliveries = []wire.Delivery{}
		}
		return out
	}
	out.Totals = l.totals
	out.Totals.Queued = len(l.queue)
	if l.inflight {
		out.Totals.Queued++
	}
	if deliveries {
		out.Deliveries = make([]wire.Delivery, len(l.recent))
		for i, r := range l.recent {
			out.Deliveries[i] = *r
		}
	}
	return out
}
