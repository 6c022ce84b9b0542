package etcdstore

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchbackhq/switchback/internal/domain"
)

// The statistics keys hold rows only (see the layout in doc.go): what they
// mean for the gates is gate.Tally's, and how many mismatches to keep is
// the caller's.

func escape(s string) string { return url.PathEscape(s) }

func unescape(s string) (string, error) { return url.PathUnescape(s) }

// pad writes n in 20 digits, so that keys sort by number.
func pad(n uint64) string { return fmt.Sprintf("%020d", n) }

func unixNano(t time.Time) uint64 { return uint64(max(0, t.UnixNano())) }

// stint is the key suffix of a partner's time in a stage.
func stint(migration, partner string, stage domain.Stage, since time.Time) []string {
	return []string{migration, partner, string(stage), pad(unixNano(since))}
}

// AddComparisons adds c.Count to its row, saturating.
func (t *tx) AddComparisons(since time.Time, c domain.ComparisonCount) error {
	if c.Count == 0 {
		return nil
	}
	key := t.s.key("stats", append(stint(c.Migration, c.Partner, c.Stage, since), c.EventType, string(c.Class), pad(unixNano(c.Minute)))...)
	v, _, err := t.get(key)
	if err != nil {
		return err
	}
	cur, err := parseCount(v)
	if err != nil {
		return fmt.Errorf("stats row %q: %w", key, err)
	}
	t.put(key, strconv.FormatUint(domain.AddCounts(cur, c.Count), 10))
	return nil
}

// AddCandidate adds c's calls and errors to its stint's row, saturating.
func (t *tx) AddCandidate(since time.Time, c domain.CandidateCount) error {
	if c.Calls == 0 && c.Errors == 0 {
		return nil
	}
	key := t.s.key("candidate", stint(c.Migration, c.Partner, c.Stage, since)...)
	v, _, err := t.get(key)
	if err != nil {
		return err
	}
	calls, errs, err := candidateRow(v)
	if err != nil {
		return fmt.Errorf("candidate row %q: %w", key, err)
	}
	t.put(key, strconv.FormatUint(domain.AddCounts(calls, c.Calls), 10)+" "+strconv.FormatUint(domain.AddCounts(errs, c.Errors), 10))
	return nil
}

func parseCount(v string) (uint64, error) {
	if v == "" {
		return 0, nil
	}
	return strconv.ParseUint(v, 10, 64)
}

func candidateRow(v string) (calls, errs uint64, err error) {
	if v == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(v, " ")
	if !ok {
		return 0, 0, fmt.Errorf("value %q is not two counts", v)
	}
	if calls, err = strconv.ParseUint(a, 10, 64); err != nil {
		return 0, 0, err
	}
	errs, err = strconv.ParseUint(b, 10, 64)
	return calls, errs, err
}

// PutMismatch keeps m, dropping the oldest beyond keep for its partner,
// event type and class, by At then event id.
func (t *tx) PutMismatch(m domain.Mismatch, keep int) error {
	prefix := t.s.key("mismatches", m.Migration, m.Partner, m.EventType, string(m.Class)) + "/"
	if err := t.putJSON(prefix+pad(unixNano(m.At))+"/"+escape(m.EventID), m); err != nil {
		return err
	}
	kept, err := t.scan(prefix)
	if err != nil {
		return err
	}
	type row struct {
		key string
		m   domain.Mismatch
	}
	rows := make([]row, 0, len(kept))
	for k, v := range kept {
		var x domain.Mismatch
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			return fmt.Errorf("decode %q: %w", k, err)
		}
		rows = append(rows, row{k, x})
	}
	slices.SortFunc(rows, func(a, b row) int {
		return cmp.Or(cmp.Compare(unixNano(a.m.At), unixNano(b.m.At)), cmp.Compare(a.m.EventID, b.m.EventID))
	})
	for i := 0; i < len(rows)-max(keep, 0); i++ {
		t.del(rows[i].key)
	}
	return nil
}

// get reads keys at one revision: the first Get's, or rev if not 0.
type reader struct {
	s   *Store
	ctx context.Context
	rev int64
}

func (r *reader) get(key string, opts ...clientv3.OpOption) (*clientv3.GetResponse, error) {
	if r.rev != 0 {
		opts = append(opts, clientv3.WithRev(r.rev))
	}
	resp, err := r.s.client.Get(r.ctx, key, opts...)
	if err != nil {
		return nil, err
	}
	if r.rev == 0 {
		r.rev = resp.Header.Revision
	}
	return resp, nil
}

// each decodes every value under prefix into *out, in key order.
func each[T any](r *reader, prefix string, out *[]T) error {
	resp, err := r.get(prefix, clientv3.WithPrefix())
	if err != nil {
		return err
	}
	for _, kv := range resp.Kvs {
		var x T
		if err := json.Unmarshal(kv.Value, &x); err != nil {
			return fmt.Errorf("decode %q: %w", kv.Key, err)
		}
		*out = append(*out, x)
	}
	return nil
}

// load returns everything stored but the audit log and the statistics, as
// of one revision.
func (s *Store) load(ctx context.Context) (domain.Data, error) {
	if err := s.check(ctx); err != nil {
		return domain.Data{}, err
	}
	d := domain.Data{Stages: map[string][]domain.PartnerStage{}, Cohorts: map[string][]domain.Cohort{}}
	r := &reader{s: s, ctx: ctx}
	resp, err := r.get(s.prefix+"meta/", clientv3.WithPrefix())
	if err != nil {
		return d, fmt.Errorf("load: %w", err)
	}
	meta := map[string]string{}
	for _, kv := range resp.Kvs {
		meta[strings.TrimPrefix(string(kv.Key), s.prefix+"meta/")] = string(kv.Value)
	}
	d.StoreID = meta["storeId"]
	if d.Version, err = parseCount(meta["version"]); err != nil {
		return d, fmt.Errorf("load: version: %w", err)
	}
	var partners []partnerRecord
	if err := each(r, s.prefix+"partners/", &partners); err != nil {
		return d, fmt.Errorf("load: %w", err)
	}
	for _, rec := range partners {
		p, err := s.openPartner(rec)
		if err != nil {
			return d, fmt.Errorf("load: %w", err)
		}
		d.Partners = append(d.Partners, p)
	}
	if err := each(r, s.prefix+"migrations/", &d.Migrations); err != nil {
		return d, fmt.Errorf("load: %w", err)
	}
	if err := each(r, s.prefix+"tokens/", &d.Tokens); err != nil {
		return d, fmt.Errorf("load: %w", err)
	}
	if err := each(r, s.prefix+"changes/", &d.Changes); err != nil {
		return d, fmt.Errorf("load: %w", err)
	}
	var notifiers []notifierRecord
	if err := each(r, s.prefix+"notifiers/", &notifiers); err != nil {
		return d, fmt.Errorf("load: %w", err)
	}
	for _, rec := range notifiers {
		n, err := s.openNotifier(rec)
		if err != nil {
			return d, fmt.Errorf("load: %w", err)
		}
		d.Notifiers = append(d.Notifiers, n)
	}
	for _, m := range d.Migrations {
		resp, err := r.get(s.key("stages", m.Key)+"/", clientv3.WithPrefix())
		if err != nil {
			return d, fmt.Errorf("load: %w", err)
		}
		var st []domain.PartnerStage
		for _, kv := range resp.Kvs {
			if st, err = bucketStages(string(kv.Key), kv.Value, st); err != nil {
				return d, fmt.Errorf("load: %w", err)
			}
		}
		sortStages(st)
		d.Stages[m.Key] = st
		var cs []domain.Cohort
		if err := each(r, s.key("cohorts", m.Key)+"/", &cs); err != nil {
			return d, fmt.Errorf("load: %w", err)
		}
		d.Cohorts[m.Key] = cs
	}
	if head, ok := meta["auditHead"]; ok {
		seq, err := strconv.ParseUint(head, 10, 64)
		if err != nil {
			return d, fmt.Errorf("load: audit head %q is unreadable", head)
		}
		resp, err := r.get(s.seqKey(seq))
		if err != nil {
			return d, fmt.Errorf("load: %w", err)
		}
		if len(resp.Kvs) == 0 {
			return d, fmt.Errorf("load: audit entry %d, the head, is missing", seq)
		}
		if err := json.Unmarshal(resp.Kvs[0].Value, &d.LastAudit); err != nil {
			return d, fmt.Errorf("load: decode audit entry %d: %w", seq, err)
		}
	}
	return d, nil
}

// auditLog returns up to limit entries with seq > after, in seq order.
func (s *Store) auditLog(ctx context.Context, after uint64, limit int) ([]domain.AuditEntry, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	out := []domain.AuditEntry{}
	if after == math.MaxUint64 || limit <= 0 {
		return out, nil // nothing follows the last possible seq; after+1 would wrap
	}
	end := clientv3.GetPrefixRangeEnd(s.prefix + "audit/")
	resp, err := s.client.Get(ctx, s.seqKey(after+1), clientv3.WithRange(end), clientv3.WithLimit(int64(limit)),
		clientv3.WithSort(clientv3.SortByKey, clientv3.SortAscend))
	if err != nil {
		return nil, fmt.Errorf("audit log: %w", err)
	}
	for _, kv := range resp.Kvs {
		var e domain.AuditEntry
		if err := json.Unmarshal(kv.Value, &e); err != nil {
			return nil, fmt.Errorf("decode audit entry %q: %w", kv.Key, err)
		}
		out = append(out, e)
	}
	return out, nil
}

// stageRows returns the rows of the stint that began at since, as of one
// revision.
func (s *Store) stageRows(ctx context.Context, migration, partner string, stage domain.Stage, since time.Time) (domain.StageRows, error) {
	out := domain.StageRows{Comparisons: []domain.MinuteCount{}}
	if err := s.check(ctx); err != nil {
		return out, err
	}
	r := &reader{s: s, ctx: ctx}
	st := stint(migration, partner, stage, since)
	resp, err := r.get(s.key("candidate", st...))
	if err != nil {
		return out, fmt.Errorf("stage rows: %w", err)
	}
	if len(resp.Kvs) > 0 {
		if out.CandidateCalls, out.CandidateErrors, err = candidateRow(string(resp.Kvs[0].Value)); err != nil {
			return out, fmt.Errorf("candidate row %q: %w", resp.Kvs[0].Key, err)
		}
	}
	prefix := s.key("stats", st...) + "/"
	if resp, err = r.get(prefix, clientv3.WithPrefix()); err != nil {
		return out, fmt.Errorf("stage rows: %w", err)
	}
	for _, kv := range resp.Kvs {
		parts := strings.Split(strings.TrimPrefix(string(kv.Key), prefix), "/")
		if len(parts) != 3 {
			return out, fmt.Errorf("stats row %q: unexpected key", kv.Key)
		}
		typ, err1 := unescape(parts[0])
		class, err2 := unescape(parts[1])
		minute, err3 := strconv.ParseUint(parts[2], 10, 64)
		count, err4 := parseCount(string(kv.Value))
		if err := cmp.Or(err1, err2, err3, err4); err != nil {
			return out, fmt.Errorf("stats row %q: %w", kv.Key, err)
		}
		out.Comparisons = append(out.Comparisons, domain.MinuteCount{
			Minute:    time.Unix(0, int64(minute)).UTC(),
			EventType: typ,
			Class:     domain.Class(class),
			Count:     count,
		})
	}
	return out, nil
}

// mismatches returns up to limit of a partner's mismatches at or after
// since, newest first. It reads all the partner's kept mismatches, which
// PutMismatch bounds per event type and class.
func (s *Store) mismatches(ctx context.Context, migration, partner string, since time.Time, limit int) ([]domain.Mismatch, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	out := []domain.Mismatch{}
	resp, err := s.client.Get(ctx, s.key("mismatches", migration, partner)+"/", clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("mismatches: %w", err)
	}
	for _, kv := range resp.Kvs {
		var m domain.Mismatch
		if err := json.Unmarshal(kv.Value, &m); err != nil {
			return nil, fmt.Errorf("decode %q: %w", kv.Key, err)
		}
		if !m.At.Before(since) {
			out = append(out, m)
		}
	}
	slices.SortStableFunc(out, func(a, b domain.Mismatch) int {
		return cmp.Or(b.At.Compare(a.At), cmp.Compare(a.EventID, b.EventID))
	})
	return out[:min(len(out), max(limit, 0))], nil
}
