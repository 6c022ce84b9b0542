package bench

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/open-feature/go-sdk/openfeature/isolated"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpserve"
	"github.com/switchbackhq/switchback/internal/ingress"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// Bounds that keep a load run on loopback short and finite.
const (
	maxSenders       = 1024
	maxIngressPeriod = 5 * time.Minute
)

// IngressConfig is one ingress load run. Zero fields take the defaults.
type IngressConfig struct {
	// Senders are concurrent keep-alive HTTP clients, each posting one
	// delivery after another. Default 64, at most 1024.
	Senders int
	// Duration is how long each mode is driven. Default 10 s, at most 5 min.
	Duration time.Duration
	// Partners are the generic (Standard Webhooks) partners the deliveries
	// are spread over. Default 8.
	Partners int
	// Workers are the router's delivery workers. Default 32, as serve runs.
	Workers int
	// Stage puts the partners at legacy (default) or shadow, where every
	// event also runs through the new pipeline in dry-run and is compared:
	// run both to see what shadowing costs the primary path.
	Stage domain.Stage
	// NoiseSampleRate is the migration's compare.noiseSampleRate: the
	// share of shadowed events run through legacy a second time to learn
	// noise. Nil takes the default (domain.DefaultNoiseSampleRate); run
	// with 0 and the default to see what noise sampling costs.
	NoiseSampleRate *float64
}

func (c *IngressConfig) defaults() error {
	if c.Senders == 0 {
		c.Senders = 64
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Partners == 0 {
		c.Partners = 8
	}
	if c.Workers == 0 {
		c.Workers = 32
	}
	if c.Senders < 1 || c.Senders > maxSenders || c.Duration < 0 || c.Duration > maxIngressPeriod || c.Partners < 1 || c.Workers < 1 {
		return fmt.Errorf("ingress: want 1-%d senders, a duration up to %s, at least one partner and one worker", maxSenders, maxIngressPeriod)
	}
	return nil
}

// IngressRun is what one mode measured.
type IngressRun struct {
	Mode     string `json:"mode"`
	MaxBatch int    `json:"maxBatch"` // the journal's; 0 is its default
	Sent     int    `json:"sent"`
	Acked    int    `json:"acked"`   // answered 202: durably journaled
	Refused  int    `json:"refused"` // answered 429: the journal's queue was full
	Errors   int    `json:"errors"`  // anything else, transport errors included
	FirstErr string `json:"firstError,omitempty"`
	// PerSecond is acknowledgements per second.
	PerSecond float64       `json:"perSecond"`
	Elapsed   time.Duration `json:"elapsed"`
	// Latency is from sending a delivery to having read its 202 answer
	// to the end: what a sender waits before its connection carries the
	// next delivery. Status is to the 202 status line alone.
	Latency Latencies `json:"latency"`
	Status  Latencies `json:"status"`
	// Commits and Committed are the journal's transactions (each one
	// fsync) and the writes in them: appends and delivery outcomes.
	Commits       uint64  `json:"commits"`
	Committed     uint64  `json:"committed"`
	WritesPerSync float64 `json:"writesPerFsync"`
	// Delivered is how many acknowledged events had an outcome (applied
	// through the reference pipeline) when the senders stopped: whether
	// delivery kept up with the acknowledgements.
	Delivered int `json:"delivered"`
	// Journaled is how many acknowledged events were found, with the id
	// the 202 answer gave, in the journal file reopened after the run;
	// Lost is how many were not. Lost must be 0.
	Journaled int `json:"journaled"`
	Lost      int `json:"lost"`
}

// IngressResult compares group commit with one fsync per event.
type IngressResult struct {
	Senders       int           `json:"senders"`
	Duration      time.Duration `json:"duration"`
	Partners      int           `json:"partners"`
	GroupCommit   IngressRun    `json:"groupCommit"`
	FsyncPerEvent IngressRun    `json:"fsyncPerEvent"`
	// Speedup is group commit's acknowledgements per second over one fsync
	// per event's.
	Speedup float64 `json:"speedup"`
}

// Ingress starts, on 127.0.0.1, a control service, the reference legacy
// and new pipelines and a full ingress router (journal, flags provider,
// delivery workers), then drives the router's webhook endpoint with
// cfg.Senders keep-alive clients posting signed Standard Webhooks
// deliveries of 1-2 KiB, each with a webhook-id of its own, for
// cfg.Duration: once with the journal's group commit, once with one fsync
// per event, each on a fresh journal. After each mode it reopens the
// journal file and looks for every acknowledged delivery; any missing is
// an error, returned with the figures.
func Ingress(ctx context.Context, cfg IngressConfig) (IngressResult, error) {
	if err := cfg.defaults(); err != nil {
		return IngressResult{}, err
	}
	dir, err := os.MkdirTemp("", "switchback-bench-ingress-")
	if err != nil {
		return IngressResult{}, err
	}
	defer os.RemoveAll(dir)
	fx, err := startFixture(ctx, dir, cfg.Partners, cfg.Stage, cfg.NoiseSampleRate)
	if err != nil {
		return IngressResult{}, err
	}
	defer fx.close()

	out := IngressResult{Senders: cfg.Senders, Duration: cfg.Duration, Partners: cfg.Partners}
	for _, m := range []struct {
		run      *IngressRun
		name     string
		maxBatch int
	}{
		{&out.GroupCommit, "group commit", 0},
		{&out.FsyncPerEvent, "fsync per event", 1},
	} {
		*m.run, err = fx.ingressRun(ctx, filepath.Join(dir, strconv.Itoa(m.maxBatch)), cfg, m.name, m.maxBatch)
		if err != nil {
			return out, fmt.Errorf("%s: %w", m.name, err)
		}
	}
	if out.FsyncPerEvent.PerSecond > 0 {
		out.Speedup = out.GroupCommit.PerSecond / out.FsyncPerEvent.PerSecond
	}
	var lost []string
	for _, r := range []IngressRun{out.GroupCommit, out.FsyncPerEvent} {
		if r.Lost > 0 {
			lost = append(lost, fmt.Sprintf("%s: %d of %d acknowledged deliveries are not in the journal", r.Mode, r.Lost, r.Acked))
		}
	}
	if len(lost) > 0 {
		return out, errors.New(strings.Join(lost, "; "))
	}
	return out, nil
}

// fixture is what every router of a run talks to: a control service
// holding one migration whose pipelines are the reference ones, and the
// partners with their webhook secret.
type fixture struct {
	srv         *Server
	routerToken string
	partners    []string
	key         []byte // the partners' Standard Webhooks key
	// legacy and newer are the pipelines when they run in this process;
	// nil when they run in their own (separate.go).
	legacy  *refpipe.Pipeline
	newer   *refpipe.Pipeline
	stage   domain.Stage // the partners'
	closers []func()
}

func (f *fixture) close() {
	for i := len(f.closers) - 1; i >= 0; i-- {
		f.closers[i]()
	}
}

// startFixture starts the control service and both reference pipelines on
// loopback, points the migration at the pipelines and adds that many
// generic partners with a whsec_ secret, at stage (legacy when "").
func startFixture(ctx context.Context, dir string, partners int, stage domain.Stage, noiseRate *float64) (*fixture, error) {
	f := &fixture{legacy: refpipe.New("legacy", refpipe.Faults{}, 1), newer: refpipe.New("new", refpipe.Faults{}, 2)}
	var urls [2]string
	for i, p := range []*refpipe.Pipeline{f.legacy, f.newer} {
		url, stop, err := serveLoopback(p)
		if err != nil {
			f.close()
			return nil, err
		}
		urls[i] = url
		f.closers = append(f.closers, stop)
	}
	if err := f.seed(ctx, dir, partners, stage, noiseRate, urls); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

// startControl starts the control service as startFixture does, for
// pipelines that run elsewhere at urls (legacy, new).
func startControl(ctx context.Context, dir string, partners int, stage domain.Stage, noiseRate *float64, urls [2]string) (*fixture, error) {
	f := &fixture{}
	if err := f.seed(ctx, dir, partners, stage, noiseRate, urls); err != nil {
		f.close()
		return nil, err
	}
	return f, nil
}

// seed starts the control service with its data in dir and seeds it.
func (f *fixture) seed(ctx context.Context, dir string, partners int, stage domain.Stage, noiseRate *float64, urls [2]string) error {
	var err error
	if f.srv, err = StartServer(ctx, dir, 0); err != nil {
		return err
	}
	f.closers = append(f.closers, f.srv.Close)
	c := control.Change{Actor: "bench", Reason: "ingress benchmark"}
	m := domain.Migration{Key: f.srv.Migration, Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(),
		Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: urls[0]}, New: domain.Pipeline{URL: urls[1]}},
		Compare:   domain.CompareRules{NoiseSampleRate: noiseRate}}
	if _, _, err := f.srv.Svc.PutMigration(ctx, c, m); err != nil {
		return err
	}
	f.key = make([]byte, 32)
	rand.Read(f.key)
	secret := "whsec_" + base64.StdEncoding.EncodeToString(f.key)
	for i := range partners {
		id := fmt.Sprintf("bench-psa-%03d", i)
		if _, _, err := f.srv.Svc.PutPartner(ctx, c, control.PartnerInput{ID: id, Name: id, PSA: domain.PSAGeneric, Secret: &secret}); err != nil {
			return err
		}
		f.partners = append(f.partners, id)
	}
	f.stage = domain.StageLegacy
	if stage != "" {
		if err := f.setStage(ctx, stage); err != nil {
			return err
		}
	}
	f.routerToken, err = f.srv.Token(ctx, "bench-router", domain.RoleRouter)
	return err
}

// setStage moves every partner to stage: forward one stage at a time (as
// the service moves them), back in one step.
func (f *fixture) setStage(ctx context.Context, stage domain.Stage) error {
	c := control.Change{Actor: "bench", Reason: "ingress benchmark"}
	var path []domain.Stage
	if stage.Index() > f.stage.Index() {
		for st := f.stage; st != stage; {
			st, _ = st.Next()
			path = append(path, st)
		}
	} else if stage != f.stage {
		path = []domain.Stage{stage}
	}
	for _, st := range path {
		for _, id := range f.partners {
			if _, err := f.srv.Svc.SetStage(ctx, c, f.srv.Migration, id, st, true); err != nil {
				return err
			}
		}
		f.stage = st
	}
	return nil
}

// serveLoopback serves h on 127.0.0.1 and returns its URL and a stop.
func serveLoopback(h http.Handler) (string, func(), error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: httpserve.MaxHeaderTimeout, IdleTimeout: httpserve.IdleTimeout}
	done := make(chan struct{})
	go func() { defer close(done); srv.Serve(ln) }()
	return "http://" + ln.Addr().String(), func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
		<-done
	}, nil
}

// router is an ingress router on loopback, wired as serve wires it: its
// own journal, an isolated OpenFeature API with the flags provider on the
// control service's snapshot stream, delivery workers.
type router struct {
	rt      *ingress.Router
	journal *journal.Journal
	url     string // base URL of its webhook endpoint
	stop    func() // stops serving, delivering, syncing
}

func (f *fixture) startRouter(ctx context.Context, j *journal.Journal, workers int) (*router, error) {
	log := slog.New(slog.DiscardHandler)
	api := isolated.NewAPI()
	// A transport of its own that keeps a connection per worker: with
	// http.DefaultTransport's two idle connections per host, 32 workers
	// would open and close a connection per call and measure that.
	tr := &http.Transport{MaxIdleConns: workers + 8, MaxIdleConnsPerHost: workers + 8}
	rt, err := ingress.New(ingress.Options{Journal: j, Flags: api.NewClient(), Logger: log, Workers: workers,
		Pipelines: &pipelineclient.Client{HTTP: &http.Client{Transport: tr}}})
	if err != nil {
		return nil, err
	}
	p, err := flags.NewProvider(flags.Options{URL: f.srv.URL, Token: f.routerToken, Logger: log, OnSnapshot: rt.OnSnapshot})
	if err != nil {
		return nil, err
	}
	if err := api.SetProviderAndWait(ctx, p); err != nil {
		api.Shutdown(context.Background())
		return nil, fmt.Errorf("flags provider: %w", err)
	}
	if got, want := rt.RoutingVersion(), f.srv.Svc.State().Version; got != want {
		api.Shutdown(context.Background())
		return nil, fmt.Errorf("the router routes by snapshot %d, want %d", got, want)
	}
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); rt.Run(runCtx) }()
	r := mux.NewRouter()
	rt.Mount(r)
	url, stopServing, err := serveLoopback(r)
	if err != nil {
		cancel()
		<-done
		api.Shutdown(context.Background())
		return nil, err
	}
	return &router{rt: rt, journal: j, url: url, stop: func() {
		// Cancel delivery first: a handler that has answered 202 may be
		// waiting for room in a worker's queue, and gives up on it then
		// (the event stays pending in the journal).
		cancel()
		stopServing()
		<-done
		api.Shutdown(context.Background())
		tr.CloseIdleConnections()
	}}, nil
}

// ack is one acknowledged delivery: its webhook-id and the event id the
// router answered with.
type ack struct{ delivery, event string }

// ingressRun drives one router, on a fresh journal in dir, for cfg.Duration.
func (f *fixture) ingressRun(ctx context.Context, dir string, cfg IngressConfig, mode string, maxBatch int) (IngressRun, error) {
	out := IngressRun{Mode: mode, MaxBatch: maxBatch}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return out, err
	}
	path := filepath.Join(dir, "journal.db")
	j, err := journal.Open(path, journal.Options{MaxBatch: maxBatch})
	if err != nil {
		return out, err
	}
	rtr, err := f.startRouter(ctx, j, cfg.Workers)
	if err != nil {
		j.Close()
		return out, err
	}

	start := time.Now()
	lr := load{urls: []string{rtr.url}, partners: f.partners, key: f.key, senders: cfg.Senders, duration: cfg.Duration, tag: strconv.Itoa(maxBatch)}.run(ctx)
	out.Elapsed = lr.elapsed

	st, statsErr := j.Stats(ctx)
	rtr.stop()
	closeErr := j.Close()
	if err := errors.Join(statsErr, closeErr); err != nil {
		return out, err
	}
	acks := lr.acks
	out.Sent, out.Refused, out.Errors = lr.sent, lr.refused, lr.errors
	if lr.firstErr != nil {
		out.FirstErr = lr.firstErr.Error()
	}
	out.Acked = len(acks)
	out.PerSecond = float64(out.Acked) / out.Elapsed.Seconds()
	out.Latency, out.Status = Summarize(lr.lat), Summarize(lr.status)
	out.Commits, out.Committed = st.Commits, st.Committed
	if st.Commits > 0 {
		out.WritesPerSync = float64(st.Committed) / float64(st.Commits)
	}
	out.Delivered = st.Events - st.Pending

	// Nothing acknowledged may be missing from the file.
	found, err := journaledDeliveries(ctx, path, f.partners, start.Add(-time.Minute), time.Now().Add(time.Minute))
	if err != nil {
		return out, fmt.Errorf("reading the journal back: %w", err)
	}
	for _, a := range acks {
		if found[a.delivery] == a.event {
			out.Journaled++
		} else {
			out.Lost++
		}
	}
	if out.Acked == 0 {
		return out, fmt.Errorf("no delivery was acknowledged (%d sent, %d refused, %d errors, the first: %s)", out.Sent, out.Refused, out.Errors, out.FirstErr)
	}
	return out, nil
}

// load is a closed-loop load of signed Standard Webhooks deliveries: each
// of senders keep-alive clients posts one delivery to url/hooks/PARTNER,
// reads the answer to the end, and posts the next, for duration.
type load struct {
	// urls are the servers the webhooks go to, one after the other over
	// all the senders' requests, as a round-robin load balancer would
	// spread them.
	urls     []string
	partners []string
	key      []byte // the partners' signing key
	senders  int
	duration time.Duration
	// tag makes the webhook-ids of this load differ from other loads'.
	tag string
	// entityEach makes each delivery about an entity of its own, rather
	// than about one of 50 per sender.
	entityEach bool
}

// loadResult is what the senders saw: the acknowledgements (202 with one
// event) and their latencies, the 429s and anything else.
type loadResult struct {
	// lat is from sending to having read the 202 answer to the end;
	// status to its status line.
	lat, status           []time.Duration
	acks                  []ack
	sent, refused, errors int
	firstErr              error
	elapsed               time.Duration
	// perURL are the acknowledgements' latencies by urls' index.
	perURL [][]time.Duration
}

// run sends until the duration is over or ctx ends.
func (l load) run(ctx context.Context) loadResult {
	tr := &http.Transport{MaxIdleConns: l.senders * len(l.urls), MaxIdleConnsPerHost: l.senders, MaxConnsPerHost: l.senders}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	results := make([]loadResult, l.senders)
	var next atomic.Uint64 // the round robin over l.urls
	start := time.Now()
	deadline := start.Add(l.duration)
	var wg sync.WaitGroup
	for s := range l.senders {
		wg.Go(func() {
			r := &results[s]
			r.perURL = make([][]time.Duration, len(l.urls))
			var body []byte
			for i := 0; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				id := "msg_" + l.tag + "_" + strconv.Itoa(s) + "_" + strconv.Itoa(i)
				partner := l.partners[(s+i)%len(l.partners)]
				entity := i % 50
				if l.entityEach {
					entity = i
				}
				body = appendDelivery(body[:0], s, i, entity)
				ts := strconv.FormatInt(time.Now().Unix(), 10)
				u := 0
				if len(l.urls) > 1 {
					u = int((next.Add(1) - 1) % uint64(len(l.urls)))
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, l.urls[u]+"/hooks/"+partner, bytes.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("User-Agent", "switchback-bench")
				req.Header.Set("Webhook-Id", id)
				req.Header.Set("Webhook-Timestamp", ts)
				req.Header.Set("Webhook-Signature", signStandardWebhooks(l.key, id, ts, body))
				r.sent++
				t0 := time.Now()
				resp, err := client.Do(req)
				status := time.Since(t0)
				var answer []byte
				if err == nil {
					answer, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				lat := time.Since(t0)
				switch {
				case err != nil:
					r.errors++
					r.firstErr = cmpErr(r.firstErr, err)
				case resp.StatusCode == http.StatusAccepted:
					var a struct {
						Events []struct {
							ID string `json:"id"`
						} `json:"events"`
					}
					if err := json.Unmarshal(answer, &a); err != nil || len(a.Events) != 1 {
						r.errors++
						r.firstErr = cmpErr(r.firstErr, fmt.Errorf("202 with an answer that is not one event: %.200s", answer))
						continue
					}
					r.lat, r.status = append(r.lat, lat), append(r.status, status)
					r.perURL[u] = append(r.perURL[u], lat)
					r.acks = append(r.acks, ack{id, a.Events[0].ID})
				case resp.StatusCode == http.StatusTooManyRequests:
					r.refused++
				default:
					r.errors++
					r.firstErr = cmpErr(r.firstErr, fmt.Errorf("status %d: %.200s", resp.StatusCode, answer))
				}
			}
		})
	}
	wg.Wait()
	out := loadResult{perURL: make([][]time.Duration, len(l.urls))}
	out.elapsed = time.Since(start)
	for _, r := range results {
		for u, lat := range r.perURL {
			out.perURL[u] = append(out.perURL[u], lat...)
		}
		out.lat, out.status = append(out.lat, r.lat...), append(out.status, r.status...)
		out.acks = append(out.acks, r.acks...)
		out.sent += r.sent
		out.refused += r.refused
		out.errors += r.errors
		out.firstErr = cmpErr(out.firstErr, r.firstErr)
	}
	return out
}

// cmpErr keeps the first error.
func cmpErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// journaledDeliveries reopens the journal at path and returns the event id
// of every delivery of partners received in [from, to), by webhook-id.
func journaledDeliveries(ctx context.Context, path string, partners []string, from, to time.Time) (map[string]string, error) {
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		return nil, err
	}
	defer j.Close()
	out := map[string]string{}
	for _, p := range partners {
		err := j.Scan(ctx, p, journal.Position{At: from}, to, func(e journal.Event) bool {
			out[e.DeliveryID] = e.ID
			return true
		})
		if err != nil {
			return nil, err
		}
	}
	return out, nil
}

// deliveryTypes are the Standard Webhooks event types the senders cycle
// through.
var deliveryTypes = []string{"ticket.updated", "ticket.created", "schedule_entry.updated", "time_entry.created", "ticket.updated"}

// notes pads bodies to their size.
var notes = strings.Repeat("Customer reports the printer on the third floor is on fire again. ", 32)

// deliveryBody appends to b the body of sender s's i-th delivery: a
// Standard Webhooks JSON object of 1-2 KiB about one of 50 entities.
func deliveryBody(b []byte, s, i int) []byte { return appendDelivery(b, s, i, i%50) }

// appendDelivery appends to b the body of sender s's i-th delivery, of
// 1-2 KiB, about the sender's entity number entity.
func appendDelivery(b []byte, s, i, entity int) []byte {
	typ := deliveryTypes[i%len(deliveryTypes)]
	b = fmt.Appendf(b, `{"type":%q,"timestamp":%q,"data":{"id":"E-%d-%d","status":"open","priority":%d,"summary":"bench delivery %d","notes":"`,
		typ, time.Now().UTC().Format(time.RFC3339), s, entity, i%5, i)
	size := 1024 + (s*131+i*37)%1024 // the whole body, 1-2 KiB
	pad := max(0, size-len(b)-3)
	b = append(b, notes[:min(pad, len(notes))]...)
	return append(b, `"}}`...)
}

// signStandardWebhooks is the webhook-signature header of a delivery.
func signStandardWebhooks(key []byte, id, ts string, body []byte) string {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(id + "." + ts + "."))
	m.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(m.Sum(nil))
}
