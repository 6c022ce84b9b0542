// Package natstier is the journal a tier of ingress routers shares on NATS
// JetStream.
//
// A webhook's events are published to one stream and acknowledged to the
// PSA once JetStream has stored them on a quorum of the stream's replicas
// (Publish). The stream deduplicates a delivery across routers by its
// Nats-Msg-Id, the event id journal.EventID derives from the partner and
// the delivery's dedup key, within the stream's duplicate window.
//
// Delivery is spread over Shards durable pull consumers: an entity's events
// all go to one shard (its subject's last token), and each shard's consumer
// hands messages to one router at a time (JetStream's pinned-client
// priority policy). The router that holds a shard takes its messages in
// stream order into its own bbolt journal, its working set, and delivers
// them as it delivers its own webhooks: each entity's events in order, one
// at a time. Once an event's terminal outcome is written there, Done
// records it in the tier's outcome bucket (a JetStream key-value bucket,
// key the event id) and acknowledges the message. A router that dies stops
// pulling: its unacknowledged messages wait out AckWait, and once PinnedTTL
// has passed (longer than AckWait) the shard is pinned to another router,
// which is handed those messages first, in stream order, then the rest.
// An event whose outcome the bucket already holds (the router that applied
// it died before its acknowledgement, or journal copy brought it from a
// router's bbolt journal with its outcome: copy.go) is acknowledged
// without a delivery.
//
// The shards are spread over the routers that deliver (spread.go): each
// announces itself and the shards it holds in the routers bucket, and one
// that holds more than its share gives a shard away once it has delivered
// what it holds of it.
package natstier

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
)

// Names in the NATS account, documented in docs/api.md ("Many routers").
const (
	DefaultStream   = "SWITCHBACK_EVENTS"
	DefaultOutcomes = "SWITCHBACK_OUTCOMES"
	// SubjectPrefix is followed by the partner (its dots written as
	// tildes, which partner ids never hold) and the shard, two digits.
	SubjectPrefix = "switchback.events."
	// group is the priority group every router pulls in.
	group = "routers"
	// pinHeader carries, on each message a pinned consumer hands out, the
	// pin of the router it is pinned to.
	pinHeader = "Nats-Pin-Id"
	// shardsKey in the stream's metadata is the number of shards the
	// stream was created with: every router reads it from there.
	shardsKey = "switchback.shards"
)

// Options configure a Tier.
type Options struct {
	// URLs are the NATS servers, comma separated (nats://host:port,…).
	URLs string
	// Name names this router's connection, as NATS monitoring shows it.
	Name string
	// Stream, Outcomes, Throttle and Routers name the event stream, the
	// outcome bucket, the throttle bucket and the routers bucket. Defaults
	// DefaultStream, DefaultOutcomes, DefaultThrottle, DefaultRouters.
	Stream, Outcomes, Throttle, Routers string
	// Replicas of the stream, the bucket and the consumers when this
	// router creates them. Default 3; a stream that exists keeps its own.
	Replicas int
	// Shards when this router creates the stream. Default 16.
	Shards int
	// DuplicateWindow is how long the stream remembers a delivery's id:
	// a resend within it is answered as a duplicate. Default 10 minutes,
	// past the PSAs' retry periods (Autotask: five tries in two minutes).
	DuplicateWindow time.Duration
	// MaxAge keeps events and outcomes for replays and reconciliations.
	// Default 30 days.
	MaxAge time.Duration
	// MaxBytes bounds the stream; past it, new deliveries are refused
	// (429) rather than old events dropped. Default unlimited (-1).
	MaxBytes int64
	// AckWait is how long a message may go unacknowledged before JetStream
	// hands it out again; a router holding one longer tells JetStream it
	// is in progress. PinnedTTL is how long a shard stays pinned to a
	// router that stopped pulling; it must be longer than AckWait, so that
	// the next router gets the dead router's messages before newer ones,
	// and at least 2 s, as a router renews its pin by pulling again.
	// Defaults 10 s and 15 s. The shards are spread over the routers only
	// with a PinnedTTL of 4 s or more (spread.go); with a shorter one each
	// stays with the router it was first pinned to.
	AckWait, PinnedTTL time.Duration
	// MaxAckPending bounds the messages of a shard out with its router.
	// Default 1024.
	MaxAckPending int
	// ClaimLease is how long a replay's claim may go unrenewed, as
	// another router watches it, before that router takes the replay over
	// (claim.go). Its router renews it every third of it. Default 30 s.
	ClaimLease time.Duration
	// MaxLag, when the shards' consumers lag the stream by more messages,
	// refuses new deliveries (429): the routers are behind. Default 200,000.
	MaxLag int
	// ConnectOptions are added to the connection's (TLS, credentials).
	ConnectOptions []nats.Option
	Logger         *slog.Logger
	Registry       prometheus.Registerer
}

func (o *Options) defaults() {
	if o.Stream == "" {
		o.Stream = DefaultStream
	}
	if o.Outcomes == "" {
		o.Outcomes = DefaultOutcomes
	}
	if o.Throttle == "" {
		o.Throttle = DefaultThrottle
	}
	if o.Routers == "" {
		o.Routers = DefaultRouters
	}
	if o.Replicas <= 0 {
		o.Replicas = 3
	}
	if o.Shards <= 0 {
		o.Shards = 16
	}
	if o.DuplicateWindow <= 0 {
		o.DuplicateWindow = 10 * time.Minute
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 30 * 24 * time.Hour
	}
	if o.MaxBytes == 0 {
		o.MaxBytes = -1
	}
	if o.AckWait <= 0 {
		o.AckWait = 10 * time.Second
	}
	if o.PinnedTTL <= o.AckWait {
		o.PinnedTTL = o.AckWait + o.AckWait/2
	}
	o.PinnedTTL = max(o.PinnedTTL, minPinnedTTL)
	if o.ClaimLease <= 0 {
		o.ClaimLease = 30 * time.Second
	}
	if o.MaxAckPending <= 0 {
		o.MaxAckPending = 1024
	}
	if o.MaxLag <= 0 {
		o.MaxLag = 200_000
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Registry == nil {
		o.Registry = prometheus.NewRegistry()
	}
}

// Tier is one router's handle on the shared journal.
type Tier struct {
	opts     Options
	log      *slog.Logger
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	outcomes jetstream.KeyValue
	shards   int

	mu   sync.Mutex
	held map[string]heldMsg // event id → its message, until Done
	// recording counts the outcomes (and throttles) on their way to their
	// bucket.
	recording sync.WaitGroup

	throttles  jetstream.KeyValue
	throttleMu sync.Mutex
	throttled  map[string]time.Time // partner → until when (throttle.go)
	said       map[string]time.Time // partner → when this router last throttled it

	// lastTaken is when Run last took a message of each shard, and pins
	// the pin the last one carried (Run's goroutine only).
	lastTaken []time.Time
	pins      []string
	// seen is the pin each shard's last message to arrive here carried,
	// taken or not: the shard is pinned to this router while its
	// consumer says that pin.
	pinMu sync.Mutex
	seen  []string
	// retake is set for a shard this router pulls again after it stopped:
	// a message it was sent meanwhile and dropped comes back after newer
	// ones, so its next message begins with a takeover.
	retake []atomic.Bool

	// Spreading the shards (spread.go). inflight counts each shard's
	// messages pulled and not yet held or let go; recordingOf the
	// outcomes of each shard's messages on their way to the bucket (added
	// to under mu, as their message leaves held).
	routers     jetstream.KeyValue
	key         string // this router's key in routers
	inflight    []atomic.Int64
	recordingOf []atomic.Int64
	peerMu      sync.Mutex
	peers       map[string]peer
	peersRead   bool // the bucket's entries have been read once

	// claimOps serializes this router's reads and writes of replay claims
	// (claim.go), so that a renewal never races the write that marks the
	// claim done; claimMu guards the maps.
	claimOps sync.Mutex
	claimMu  sync.Mutex
	mine     map[string]held      // job → this router's claim, to renew
	watched  map[string]watchedAt // job → another router's claim, as first seen

	lag     atomic.Int64
	metrics *metrics
}

// Open connects to the cluster and makes sure the stream, the outcome
// bucket and the shards' consumers exist, creating those that do not. It
// retries until ctx ends while the cluster has no quorum (a leader being
// elected, nodes still starting).
func Open(ctx context.Context, opts Options) (*Tier, error) {
	opts.defaults()
	if opts.URLs == "" {
		return nil, errors.New("natstier: no NATS server URL")
	}
	copts := append([]nats.Option{nats.Name(opts.Name), nats.MaxReconnects(-1), nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true)}, opts.ConnectOptions...)
	nc, err := nats.Connect(opts.URLs, copts...)
	if err != nil {
		return nil, fmt.Errorf("natstier: connecting to %s: %w", redactURLs(opts.URLs), err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	t := &Tier{opts: opts, log: opts.Logger, nc: nc, js: js, held: map[string]heldMsg{},
		throttled: map[string]time.Time{}, said: map[string]time.Time{}, mine: map[string]held{}, watched: map[string]watchedAt{},
		key: routerKey(opts.Name), peers: map[string]peer{}}
	for wait := 100 * time.Millisecond; ; wait = min(2*wait, 2*time.Second) {
		err = t.provision(ctx)
		if err == nil {
			break
		}
		t.log.Warn("the NATS stream is not ready; retrying", "stream", opts.Stream, "err", err)
		select {
		case <-ctx.Done():
			nc.Close()
			return nil, fmt.Errorf("natstier: the stream %s on %s: %w (last: %v)", opts.Stream, redactURLs(opts.URLs), ctx.Err(), err)
		case <-time.After(wait):
		}
	}
	t.metrics = newMetrics(opts.Registry, t)
	return t, nil
}

// provision finds or creates the stream, the bucket and the consumers.
func (t *Tier) provision(ctx context.Context) error {
	o := t.opts
	rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	s, err := t.js.Stream(rctx, o.Stream)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		s, err = t.js.CreateStream(rctx, jetstream.StreamConfig{
			Name:        o.Stream,
			Description: "switchback: every webhook event the ingress routers acknowledged",
			Subjects:    []string{SubjectPrefix + ">"},
			Retention:   jetstream.LimitsPolicy,
			Discard:     jetstream.DiscardNew,
			MaxAge:      o.MaxAge,
			MaxBytes:    o.MaxBytes,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
			Duplicates:  o.DuplicateWindow,
			Metadata:    map[string]string{shardsKey: strconv.Itoa(o.Shards)},
		})
	}
	if err != nil {
		return err
	}
	shards, err := strconv.Atoi(s.CachedInfo().Config.Metadata[shardsKey])
	if err != nil || shards < 1 || shards > 100 {
		return fmt.Errorf("the stream %s has no valid %q in its metadata: not switchback's", o.Stream, shardsKey)
	}
	kv, err := t.js.KeyValue(rctx, o.Outcomes)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = t.js.CreateKeyValue(rctx, jetstream.KeyValueConfig{
			Bucket:      o.Outcomes,
			Description: "switchback: the terminal outcome of each event of " + o.Stream,
			History:     1,
			TTL:         o.MaxAge,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
		})
	}
	if err != nil {
		return err
	}
	throttles, err := t.js.KeyValue(rctx, o.Throttle)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		throttles, err = t.js.CreateKeyValue(rctx, jetstream.KeyValueConfig{
			Bucket:      o.Throttle,
			Description: "switchback: partners whose webhooks the routers refuse for now (their share of the delivery backlog is full)",
			History:     1,
			TTL:         throttleFor,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
		})
	}
	if err != nil {
		return err
	}
	routers, err := t.js.KeyValue(rctx, o.Routers)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		routers, err = t.js.CreateKeyValue(rctx, jetstream.KeyValueConfig{
			Bucket:      o.Routers,
			Description: "switchback: the routers delivering " + o.Stream + ", each with the shards it holds, as each said in the last seconds",
			History:     1,
			TTL:         presenceFor,
			Storage:     jetstream.FileStorage,
			Replicas:    o.Replicas,
		})
	}
	if err != nil {
		return err
	}
	for i := range shards {
		_, err := s.CreateOrUpdateConsumer(rctx, jetstream.ConsumerConfig{
			Durable:        consumerName(i),
			Description:    "switchback: delivery of shard " + shardToken(i),
			FilterSubject:  SubjectPrefix + "*." + shardToken(i),
			DeliverPolicy:  jetstream.DeliverAllPolicy,
			AckPolicy:      jetstream.AckExplicitPolicy,
			AckWait:        o.AckWait,
			MaxDeliver:     -1,
			MaxAckPending:  o.MaxAckPending,
			PriorityPolicy: jetstream.PriorityPolicyPinned,
			PinnedTTL:      o.PinnedTTL,
			PriorityGroups: []string{group},
		})
		if err != nil {
			return err
		}
	}
	t.stream, t.outcomes, t.throttles, t.routers, t.shards = s, kv, throttles, routers, shards
	t.lastTaken, t.pins, t.seen = make([]time.Time, shards), make([]string, shards), make([]string, shards)
	t.retake = make([]atomic.Bool, shards)
	t.inflight, t.recordingOf = make([]atomic.Int64, shards), make([]atomic.Int64, shards)
	return nil
}

// minPinnedTTL leaves room for two pulls within a pin's TTL: a pull
// expires after a second at the least.
const minPinnedTTL = 2 * time.Second

// Close closes the connection once the acknowledgements sent have
// reached the server.
func (t *Tier) Close() error {
	err := t.nc.FlushTimeout(2 * time.Second)
	t.nc.Close()
	if errors.Is(err, nats.ErrConnectionClosed) {
		return nil
	}
	return err
}

// Shards is the number of shards the stream was created with.
func (t *Tier) Shards() int { return t.shards }

// Name is this router's name in the tier (Options.Name).
func (t *Tier) Name() string { return t.opts.Name }

func consumerName(i int) string { return "shard-" + shardToken(i) }
func shardToken(i int) string   { return fmt.Sprintf("%02d", i) }

// Subject is the subject an event is published on: its partner and the
// shard of its entity, so that an entity's events are one shard's, in
// order.
func Subject(e journal.Event, shards int) string {
	h := fnv.New32a()
	if e.EntityID != "" {
		h.Write([]byte(e.Partner))
		h.Write([]byte{0})
		h.Write([]byte(e.Type))
		h.Write([]byte{0})
		h.Write([]byte(e.EntityID))
	} else {
		h.Write([]byte(e.ID))
	}
	return SubjectPrefix + strings.ReplaceAll(e.Partner, ".", "~") + "." + shardToken(int(h.Sum32()%uint32(shards)))
}

// Publish stores events in the stream and returns once JetStream has them
// on a quorum of replicas, or an error a PSA is told to retry after. An
// event the stream already holds (a resend within the duplicate window,
// whichever router took it first) is Duplicate; Seq is its stream
// sequence.
func (t *Tier) Publish(ctx context.Context, events []journal.Event) ([]journal.Appended, error) {
	if lag := t.lag.Load(); lag > int64(t.opts.MaxLag) {
		return nil, &domain.Error{Code: domain.CodeRouterBacklogged, RetryAfter: 5 * time.Second,
			Message: "the routers' delivery lags the tier's journal: retry"}
	}
	out := make([]journal.Appended, len(events))
	for i := range events {
		e := &events[i]
		e.ID = journal.IDOf(*e)
		body, err := json.Marshal(e)
		if err != nil {
			return nil, err
		}
		msg := &nats.Msg{Subject: Subject(*e, t.shards), Data: body, Header: nats.Header{}}
		msg.Header.Set(jetstream.MsgIDHeader, e.ID)
		pctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		ack, err := t.js.PublishMsg(pctx, msg, jetstream.WithExpectStream(t.opts.Stream))
		cancel()
		if err != nil {
			t.metrics.publishErrors.WithLabelValues(publishErrorKind(err)).Inc()
			return nil, refusal(err)
		}
		out[i] = journal.Appended{Seq: ack.Sequence, ID: e.ID, Duplicate: ack.Duplicate}
	}
	return out, nil
}

// refusal is the error a webhook is answered with when the stream did not
// take it: every one a 429 with Retry-After, which every PSA retries,
// never a 202.
func refusal(err error) error {
	retry, msg := 5*time.Second, "the tier's journal cannot take this delivery now: retry"
	switch publishErrorKind(err) {
	case "full":
		msg = "the tier's journal is full: retry"
	case "timeout":
		retry = time.Second
	}
	return &domain.Error{Code: domain.CodeJournalBusy, RetryAfter: retry, Message: msg, Err: err}
}

func publishErrorKind(err error) string {
	var apiErr *jetstream.APIError
	switch {
	case errors.As(err, &apiErr) && strings.Contains(apiErr.Description, "maximum"):
		return "full"
	case errors.Is(err, nats.ErrNoResponders), errors.Is(err, jetstream.ErrNoStreamResponse):
		return "unavailable"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return "timeout"
	}
	return "other"
}

// redactURLs drops user information from the servers' URLs, for errors
// and logs.
func redactURLs(urls string) string {
	parts := strings.Split(urls, ",")
	for i, p := range parts {
		if at := strings.LastIndex(p, "@"); at >= 0 {
			if s := strings.Index(p, "://"); s >= 0 && s < at {
				parts[i] = p[:s+3] + "…@" + p[at+1:]
			} else {
				parts[i] = "…@" + p[at+1:]
			}
		}
	}
	return strings.Join(parts, ",")
}
