package etcdstore

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	mrand "math/rand/v2"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// SchemaVersion is the layout this package reads and writes.
const SchemaVersion = 1

// DefaultPrefix is the key prefix of a store opened with an empty one.
const DefaultPrefix = "/switchback/"

// Attempts is how many times Update runs fn before it gives up on a
// conflict with another replica.
const Attempts = 5

// etcd's default limits (embed.DefaultMaxTxnOps, DefaultMaxRequestBytes).
const (
	defaultMaxTxnOps       = 128
	defaultMaxRequestBytes = 1536 * 1024
	// requestSlack is kept free of the request limit for what the
	// estimate does not count (protobuf framing, the request header).
	requestSlack = 4 * 1024
)

var (
	// ErrClosed is returned by every call on a closed Store.
	ErrClosed = errors.New("etcd store is closed")
	// ErrConflict is wrapped by Update's conflict error, after Attempts
	// lost races with another replica.
	ErrConflict = errors.New("the change conflicted with concurrent changes")
	// ErrTooLarge is wrapped by Update's error when its writes do not fit
	// in one etcd transaction.
	ErrTooLarge = errors.New("the change does not fit in one etcd transaction")
	// ErrNewerSchema is returned by Open for a store written by a newer switchback.
	ErrNewerSchema = errors.New("the etcd store was written by a newer switchback")
)

// Store is a control.Store on etcd.
type Store struct {
	client *clientv3.Client
	prefix string
	keys   *keyring // nil: secrets stored as given

	maxOps, maxBytes int

	mu      sync.Mutex // serializes Updates
	closed  atomic.Bool
	commits atomic.Uint64
}

var (
	_ control.Store = (*Store)(nil)
	_ control.Tx    = (*tx)(nil)
)

// Option configures Open.
type Option func(*options) error

type options struct {
	keys             [][]byte
	maxOps, maxBytes int
}

// WithSecretsKey seals partners' secrets with key, which must be 32 bytes
// (AES-256): WithSecretsKeys with one key.
func WithSecretsKey(key []byte) Option { return WithSecretsKeys(key) }

// WithSecretsKeys seals partners' secrets with the first key and opens
// them with any of the keys, each 32 bytes (AES-256), so that a key can be
// rotated while replicas run (see Store.Reseal). It makes Open return an
// error for no key, a key of another length, or two keys of one id (a key
// given twice).
func WithSecretsKeys(keys ...[]byte) Option {
	return func(o *options) error {
		if len(keys) == 0 {
			return errors.New("secrets keys: none given")
		}
		seen := map[string]int{}
		o.keys = nil
		for i, key := range keys {
			if len(key) != 32 {
				return fmt.Errorf("secrets key %d: %d bytes, want 32", i+1, len(key))
			}
			id := KeyID(key)
			if j, ok := seen[id]; ok {
				return fmt.Errorf("secrets keys %d and %d have one id, %s: the same key given twice", j+1, i+1, id)
			}
			seen[id] = i
			o.keys = append(o.keys, append([]byte(nil), key...))
		}
		return nil
	}
}

// WithLimits sets the cluster's --max-txn-ops and --max-request-bytes, when
// they are not etcd's defaults.
func WithLimits(maxTxnOps, maxRequestBytes int) Option {
	return func(o *options) error {
		if maxTxnOps < 1 || maxRequestBytes <= requestSlack {
			return fmt.Errorf("etcd limits %d ops, %d bytes: too small", maxTxnOps, maxRequestBytes)
		}
		o.maxOps, o.maxBytes = maxTxnOps, maxRequestBytes
		return nil
	}
}

// Open opens the store under prefix (DefaultPrefix if empty; a "/" is
// added if it does not end with one), creating its identity and schema
// version if they are absent. It returns ErrNewerSchema for a store of a
// newer schema, and an error wrapping the client's when etcd cannot be
// reached before ctx is done.
func Open(ctx context.Context, client *clientv3.Client, prefix string, opts ...Option) (*Store, error) {
	o := options{maxOps: defaultMaxTxnOps, maxBytes: defaultMaxRequestBytes}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	s := &Store{client: client, prefix: prefix, maxOps: o.maxOps, maxBytes: o.maxBytes}
	if o.keys != nil {
		k, err := newKeyring(o.keys)
		if err != nil {
			return nil, err
		}
		s.keys = k
	}
	var id [16]byte
	rand.Read(id[:])
	idKey, schemaKey := s.key("meta", "storeId"), s.key("meta", "schema")
	resp, err := client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(idKey), "=", 0)).
		Then(clientv3.OpPut(idKey, hex.EncodeToString(id[:])), clientv3.OpPut(schemaKey, strconv.Itoa(SchemaVersion))).
		Else(clientv3.OpGet(schemaKey)).
		Commit()
	if err != nil {
		return nil, fmt.Errorf("open etcd store %s: %w", prefix, err)
	}
	if !resp.Succeeded {
		kvs := resp.Responses[0].GetResponseRange().Kvs
		if len(kvs) == 0 {
			return nil, fmt.Errorf("open etcd store %s: it has an identity and no schema version", prefix)
		}
		n, err := strconv.Atoi(string(kvs[0].Value))
		if err != nil {
			return nil, fmt.Errorf("open etcd store %s: schema version %q is unreadable", prefix, kvs[0].Value)
		}
		if n > SchemaVersion {
			return nil, fmt.Errorf("open etcd store %s: %w (schema %d; this one reads %d)", prefix, ErrNewerSchema, n, SchemaVersion)
		}
	}
	return s, nil
}

// Close makes every later call return ErrClosed. It does not close the
// client, which is the caller's.
func (s *Store) Close() error {
	s.closed.Store(true)
	return nil
}

var _ control.RowLimiter = (*Store)(nil)

// rowsPerUpdate is how many statistics rows and mismatches one Update
// takes: each costs at most two compares and two writes (a mismatch
// may push an old one out), so that 40 of them, with the report's
// applied record, stay well under etcd's 128 operations.
const rowsPerUpdate = 40

// MaxRowsPerUpdate tells the control service to write a report of more
// rows than one transaction takes in parts.
func (s *Store) MaxRowsPerUpdate() int { return rowsPerUpdate }

// Commits returns how many transactions Update and SetStoreID have committed to etcd
// (those whose condition failed are not counted), for measuring what a
// change costs.
func (s *Store) Commits() uint64 { return s.commits.Load() }

func (s *Store) check(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	return ctx.Err()
}

// key joins the prefix, a table name and escaped components.
func (s *Store) key(table string, parts ...string) string {
	var b strings.Builder
	b.WriteString(s.prefix)
	b.WriteString(table)
	for _, p := range parts {
		b.WriteByte('/')
		b.WriteString(escape(p))
	}
	return b.String()
}

// update runs fn in one write transaction; see the package doc for how
// it commits and retries. fn may run more than once, each time against a
// fresh Tx: it must have no effect outside the Tx but ones it redoes (the
// control service's functions set their results again on each run). It
// returns fn's error, ctx.Err() when ctx is
// done before a commit, ErrClosed, a conflict error wrapping ErrConflict,
// or an error wrapping ErrTooLarge.
func (s *Store) update(ctx context.Context, fn func(control.Tx) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for attempt := range Attempts {
		if attempt > 0 {
			// Another replica won the last race: wait a random while,
			// longer each time, so that the two do not collide again.
			if err := sleep(ctx, time.Duration(mrand.Int64N(int64(time.Millisecond<<(2*attempt))))); err != nil {
				return err
			}
		}
		if err := s.check(ctx); err != nil {
			return err
		}
		t := &tx{s: s, ctx: ctx, writes: map[string]*string{}, reads: map[string]int64{}, stages: map[string]map[string]stageRecord{}, stageReads: map[string]map[string]valueAt{}}
		if err := fn(t); err != nil {
			return err
		}
		ok, err := t.commit()
		if err != nil || ok {
			return err
		}
	}
	return &domain.Error{Code: domain.CodeConflict, Message: "the change conflicted with concurrent changes by another replica; try again", Err: ErrConflict}
}

func sleep(ctx context.Context, d time.Duration) error {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-timer.C:
		return nil
	}
}

// tx buffers writes and records what it read, at one revision rev.
type tx struct {
	s      *Store
	ctx    context.Context
	rev    int64              // 0 until the first read
	writes map[string]*string // key → value, nil to delete
	reads  map[string]int64   // key → mod revision when read (0: absent)
	ranges []string           // prefixes scanned
	// stages are the stage buckets PutStage changed, by key, decoded
	// once and encoded at commit.
	stages     map[string]map[string]stageRecord
	stageReads map[string]map[string]valueAt // by migration's stages prefix
}

// get returns key's value as this transaction sees it.
func (t *tx) get(key string) (string, bool, error) {
	if v, ok := t.writes[key]; ok {
		if v == nil {
			return "", false, nil
		}
		return *v, true, nil
	}
	resp, err := t.s.client.Get(t.ctx, key, t.revOpts()...)
	if err != nil {
		return "", false, err
	}
	t.at(resp.Header.Revision)
	if len(resp.Kvs) == 0 {
		if _, seen := t.reads[key]; !seen {
			t.reads[key] = 0
		}
		return "", false, nil
	}
	kv := resp.Kvs[0]
	t.reads[key] = kv.ModRevision
	return string(kv.Value), true, nil
}

// scan returns every key and value under prefix as this transaction sees
// it, in no particular order.
func (t *tx) scan(prefix string) (map[string]string, error) {
	resp, err := t.s.client.Get(t.ctx, prefix, append(t.revOpts(), clientv3.WithPrefix())...)
	if err != nil {
		return nil, err
	}
	t.at(resp.Header.Revision)
	t.ranges = append(t.ranges, prefix)
	out := make(map[string]string, len(resp.Kvs))
	for _, kv := range resp.Kvs {
		out[string(kv.Key)] = string(kv.Value)
	}
	for k, v := range t.writes {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		if v == nil {
			delete(out, k)
		} else {
			out[k] = *v
		}
	}
	return out, nil
}

func (t *tx) revOpts() []clientv3.OpOption {
	if t.rev == 0 {
		return nil
	}
	return []clientv3.OpOption{clientv3.WithRev(t.rev)}
}

func (t *tx) at(rev int64) {
	if t.rev == 0 {
		t.rev = rev
	}
}

func (t *tx) put(key, value string) { t.writes[key] = &value }
func (t *tx) del(key string)        { t.writes[key] = nil }

func (t *tx) putJSON(key string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	t.put(key, string(data))
	return nil
}

// commit sends the writes in one etcd transaction, conditional on the
// reads; it reports false when that condition failed.
func (t *tx) commit() (bool, error) {
	if err := t.flushStages(); err != nil {
		return false, err
	}
	if len(t.writes) == 0 {
		return true, nil // nothing to write: the reads were consistent at rev
	}
	var cmps []clientv3.Cmp
	size := 0
	for k, rev := range t.reads {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(k), "=", rev))
		size += len(k) + 32
	}
	for _, p := range t.ranges {
		cmps = append(cmps, clientv3.Compare(clientv3.ModRevision(p), "<", t.rev+1).WithPrefix())
		size += 2*len(p) + 32
	}
	ops := make([]clientv3.Op, 0, len(t.writes))
	for k, v := range t.writes {
		if v == nil {
			ops = append(ops, clientv3.OpDelete(k))
			size += len(k) + 16
		} else {
			ops = append(ops, clientv3.OpPut(k, *v))
			size += len(k) + len(*v) + 16
		}
	}
	if len(ops) > t.s.maxOps || len(cmps) > t.s.maxOps || size > t.s.maxBytes-requestSlack {
		return false, domain.Internal("etcd update", fmt.Errorf("%w: %d writes and %d compares of about %d bytes, and etcd takes at most %d operations of each and %d bytes in one request: "+
			"make the change smaller (fewer partners in the cohort or the migration, fewer rows in the report), or raise the cluster's --max-txn-ops and --max-request-bytes",
			ErrTooLarge, len(ops), len(cmps), size, t.s.maxOps, t.s.maxBytes))
	}
	resp, err := t.s.client.Txn(t.ctx).If(cmps...).Then(ops...).Commit()
	if err != nil {
		return false, fmt.Errorf("etcd commit: %w", err)
	}
	if resp.Succeeded {
		t.s.commits.Add(1)
	}
	return resp.Succeeded, nil
}

func (t *tx) PutPartner(p domain.Partner) error {
	rec, err := t.s.sealPartner(p)
	if err != nil {
		return err
	}
	return t.putJSON(t.s.key("partners", p.ID), rec)
}

func (t *tx) PutMigration(m domain.Migration) error {
	return t.putJSON(t.s.key("migrations", m.Key), m)
}

func (t *tx) PutCohort(migration string, c domain.Cohort) error {
	return t.putJSON(t.s.key("cohorts", migration, c.Name), c)
}

func (t *tx) PutToken(tok domain.Token) error {
	return t.putJSON(t.s.key("tokens", tok.Name), tok)
}

func (t *tx) DeleteToken(name string) error {
	t.del(t.s.key("tokens", name))
	return nil
}

// PutChange keeps a change request under its id.
func (t *tx) PutChange(c domain.ChangeRequest) error {
	return t.putJSON(t.s.key("changes", c.ID), c)
}

// DeleteChange removes a change request.
func (t *tx) DeleteChange(id string) error {
	t.del(t.s.key("changes", id))
	return nil
}

func (t *tx) SetVersion(v uint64) error {
	t.put(t.s.key("meta", "version"), strconv.FormatUint(v, 10))
	return nil
}

// AppendAudit appends e after the audit head. An e that does not follow
// it returns a conflict error: another replica, or an earlier change, took
// its seq.
func (t *tx) AppendAudit(e domain.AuditEntry) error {
	head := t.s.key("meta", "auditHead")
	v, ok, err := t.get(head)
	if err != nil {
		return err
	}
	if ok {
		last, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("audit head %q is unreadable", v)
		}
		if last >= e.Seq {
			return &domain.Error{Code: domain.CodeConflict, Message: fmt.Sprintf("audit seq %d does not follow %d", e.Seq, last)}
		}
	}
	if err := t.putJSON(t.s.seqKey(e.Seq), e); err != nil {
		return err
	}
	t.put(head, strconv.FormatUint(e.Seq, 10))
	return nil
}

func (s *Store) seqKey(seq uint64) string { return s.prefix + "audit/" + pad(seq) }

// AppliedReport returns the seq of the last report applied from router's
// journal epoch, 0 if none.
func (t *tx) AppliedReport(router, epoch string) (uint64, error) {
	v, ok, err := t.get(t.s.key("reports", router, epoch))
	if err != nil || !ok {
		return 0, err
	}
	return strconv.ParseUint(v, 10, 64)
}

// PutAppliedReport records seq as the last report applied from router's
// journal epoch.
func (t *tx) PutAppliedReport(router, epoch string, seq uint64) error {
	t.put(t.s.key("reports", router, epoch), strconv.FormatUint(seq, 10))
	return nil
}
