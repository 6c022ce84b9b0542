package etcdstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

var _ control.Copyable = (*Store)(nil)

// ErrNoStore is returned by OpenExisting when no store is under the prefix.
var ErrNoStore = errors.New("no switchback store under this etcd prefix")

// OpenExisting opens the store under prefix as Open does, but writes
// nothing: it returns an error wrapping ErrNoStore when the prefix holds
// no store (no identity), instead of creating one.
func OpenExisting(ctx context.Context, client *clientv3.Client, prefix string, opts ...Option) (*Store, error) {
	if prefix == "" {
		prefix = DefaultPrefix
	}
	if !strings.HasSuffix(prefix, "/") {
		prefix += "/"
	}
	resp, err := client.Get(ctx, prefix+"meta/storeId", clientv3.WithCountOnly())
	if err != nil {
		return nil, fmt.Errorf("open etcd store %s: %w", prefix, err)
	}
	if resp.Count == 0 {
		return nil, fmt.Errorf("open etcd store %s: %w", prefix, ErrNoStore)
	}
	return Open(ctx, client, prefix, opts...)
}

// Export calls fn with every statistics row, mismatch and applied report
// mark, read at one revision. It reads each table in one request.
func (s *Store) Export(ctx context.Context, fn func(control.Row) error) error {
	if err := s.check(ctx); err != nil {
		return err
	}
	r := &reader{s: s, ctx: ctx}
	tables := []struct {
		name  string
		parse func(parts []string, v []byte) (control.Row, error)
	}{
		{"stats", parseStatsRow},
		{"candidate", parseCandidateRow},
		{"mismatches", func(_ []string, v []byte) (control.Row, error) {
			var m domain.Mismatch
			err := json.Unmarshal(v, &m)
			return control.Row{Mismatch: &m}, err
		}},
		{"reports", func(parts []string, v []byte) (control.Row, error) {
			if len(parts) != 2 {
				return control.Row{}, errors.New("unexpected key")
			}
			seq, err := strconv.ParseUint(string(v), 10, 64)
			return control.Row{Report: &control.AppliedReport{Router: parts[0], Epoch: parts[1], Seq: seq}}, err
		}},
	}
	for _, tbl := range tables {
		prefix := s.prefix + tbl.name + "/"
		resp, err := r.get(prefix, clientv3.WithPrefix())
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		for _, kv := range resp.Kvs {
			parts := strings.Split(strings.TrimPrefix(string(kv.Key), prefix), "/")
			for i, p := range parts {
				if parts[i], err = unescape(p); err != nil {
					return fmt.Errorf("export: key %q: %w", kv.Key, err)
				}
			}
			row, err := tbl.parse(parts, kv.Value)
			if err != nil {
				return fmt.Errorf("export: key %q: %w", kv.Key, err)
			}
			if err := fn(row); err != nil {
				return err
			}
		}
	}
	// Noise keys hold many rows each (a path → count object), so they do
	// not fit the one-row parsers above.
	prefix := s.prefix + "noise/"
	resp, err := r.get(prefix, clientv3.WithPrefix())
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	for _, kv := range resp.Kvs {
		parts := strings.Split(strings.TrimPrefix(string(kv.Key), prefix), "/")
		var paths map[string]uint64
		if len(parts) != 3 || json.Unmarshal(kv.Value, &paths) != nil {
			return fmt.Errorf("export: noise key %q: unexpected key or value", kv.Key)
		}
		for i, p := range parts {
			if parts[i], err = unescape(p); err != nil {
				return fmt.Errorf("export: key %q: %w", kv.Key, err)
			}
		}
		for p, n := range paths {
			if err := fn(control.Row{Noise: &domain.NoiseObservation{Migration: parts[0], Partner: parts[1], EventType: parts[2], Path: p, Count: n}}); err != nil {
				return err
			}
		}
	}
	return nil
}

// parseStint reads a stint's migration, partner, stage and start from the
// first four parts of a key.
func parseStint(parts []string) (time.Time, domain.CandidateCount, error) {
	since, err := strconv.ParseUint(parts[3], 10, 64)
	if err != nil {
		return time.Time{}, domain.CandidateCount{}, err
	}
	return time.Unix(0, int64(since)).UTC(), domain.CandidateCount{Migration: parts[0], Partner: parts[1], Stage: domain.Stage(parts[2])}, nil
}

func parseStatsRow(parts []string, v []byte) (control.Row, error) {
	if len(parts) != 7 {
		return control.Row{}, errors.New("unexpected key")
	}
	since, c, err1 := parseStint(parts)
	minute, err2 := strconv.ParseUint(parts[6], 10, 64)
	count, err3 := parseCount(string(v))
	if err := cmp.Or(err1, err2, err3); err != nil {
		return control.Row{}, err
	}
	return control.Row{Since: since, Comparison: &domain.ComparisonCount{
		Migration: c.Migration, Partner: c.Partner, Stage: c.Stage,
		EventType: parts[4], Class: domain.Class(parts[5]),
		Minute: time.Unix(0, int64(minute)).UTC(), Count: count,
	}}, nil
}

func parseCandidateRow(parts []string, v []byte) (control.Row, error) {
	if len(parts) != 4 {
		return control.Row{}, errors.New("unexpected key")
	}
	since, c, err := parseStint(parts)
	if err != nil {
		return control.Row{}, err
	}
	if c.Calls, c.Errors, err = candidateRow(string(v)); err != nil {
		return control.Row{}, err
	}
	return control.Row{Since: since, Candidate: &c}, nil
}

// SetStoreID replaces the store's identity with id.
func (s *Store) SetStoreID(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("set store id: empty id")
	}
	if err := s.check(ctx); err != nil {
		return err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, err := s.client.Put(ctx, s.key("meta", "storeId"), id); err != nil {
		return fmt.Errorf("set store id: %w", err)
	}
	s.commits.Add(1)
	return nil
}
