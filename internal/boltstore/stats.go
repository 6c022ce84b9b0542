package boltstore

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"encoding/json"
	"slices"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/domain"
)

// The statistics buckets hold rows only (see the layout in bolt.go): what
// they mean for the gates is gate.Tally's, and how many mismatches to keep
// is the caller's.

func join(parts ...[]byte) []byte {
	var b []byte
	for i, p := range parts {
		if i > 0 {
			b = append(b, 0)
		}
		b = append(b, p...)
	}
	return b
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func unixNano(t time.Time) uint64 { return uint64(max(0, t.UnixNano())) }

// stint is the key of a partner's time in a stage.
func stint(migration, partner string, stage domain.Stage, since time.Time) []byte {
	return join([]byte(migration), []byte(partner), []byte(stage), u64(unixNano(since)))
}

// AddComparisons adds c.Count to its row, saturating.
func (t *tx) AddComparisons(since time.Time, c domain.ComparisonCount) error {
	if c.Count == 0 {
		return nil
	}
	b := t.Bucket(bucketStats)
	key := join(stint(c.Migration, c.Partner, c.Stage, since), []byte(c.EventType), []byte(c.Class), u64(unixNano(c.Minute)))
	var cur uint64
	if v := b.Get(key); len(v) == 8 {
		cur = binary.BigEndian.Uint64(v)
	}
	return b.Put(key, u64(domain.AddCounts(cur, c.Count)))
}

// AddCandidate adds c's calls and errors to its stint's row, saturating.
func (t *tx) AddCandidate(since time.Time, c domain.CandidateCount) error {
	if c.Calls == 0 && c.Errors == 0 {
		return nil
	}
	b := t.Bucket(bucketCandidate)
	key := stint(c.Migration, c.Partner, c.Stage, since)
	calls, errs := candidateRow(b.Get(key))
	return b.Put(key, append(u64(domain.AddCounts(calls, c.Calls)), u64(domain.AddCounts(errs, c.Errors))...))
}

func candidateRow(v []byte) (calls, errs uint64) {
	if len(v) != 16 {
		return 0, 0
	}
	return binary.BigEndian.Uint64(v), binary.BigEndian.Uint64(v[8:])
}

// PutMismatch keeps m, dropping the oldest beyond keep for its partner,
// event type and class.
func (t *tx) PutMismatch(m domain.Mismatch, keep int) error {
	b := t.Bucket(bucketMismatches)
	prefix := append(join([]byte(m.Migration), []byte(m.Partner), []byte(m.EventType), []byte(m.Class)), 0)
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := b.Put(append(append(slices.Clip(prefix), u64(unixNano(m.At))...), m.EventID...), v); err != nil {
		return err
	}
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for i := 0; i < len(keys)-max(keep, 0); i++ {
		if err := b.Delete(keys[i]); err != nil {
			return err
		}
	}
	return nil
}

// StageRows returns the rows of the stint that began at since.
func (s *Store) StageRows(ctx context.Context, migration, partner string, stage domain.Stage, since time.Time) (domain.StageRows, error) {
	out := domain.StageRows{Comparisons: []domain.MinuteCount{}}
	key := stint(migration, partner, stage, since)
	err := s.db.View(func(tx *bbolt.Tx) error {
		out.CandidateCalls, out.CandidateErrors = candidateRow(tx.Bucket(bucketCandidate).Get(key))
		prefix := append(key, 0)
		c := tx.Bucket(bucketStats).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			parts := bytes.SplitN(k[len(prefix):], []byte{0}, 3)
			if len(parts) < 3 || len(parts[2]) != 8 || len(v) != 8 {
				continue
			}
			out.Comparisons = append(out.Comparisons, domain.MinuteCount{
				Minute:    time.Unix(0, int64(binary.BigEndian.Uint64(parts[2]))).UTC(),
				EventType: string(parts[0]),
				Class:     domain.Class(parts[1]),
				Count:     binary.BigEndian.Uint64(v),
			})
		}
		return nil
	})
	return out, err
}

// Mismatches returns up to limit of a partner's mismatches at or after
// since, newest first.
func (s *Store) Mismatches(ctx context.Context, migration, partner string, since time.Time, limit int) ([]domain.Mismatch, error) {
	out := []domain.Mismatch{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		prefix := append(join([]byte(migration), []byte(partner)), 0)
		c := tx.Bucket(bucketMismatches).Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			var m domain.Mismatch
			if err := json.Unmarshal(v, &m); err != nil {
				return err
			}
			if !m.At.Before(since) {
				out = append(out, m)
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	// Key order is type, class, then time: newest first across them,
	// ties broken by event id so that the answer does not depend on it.
	slices.SortStableFunc(out, func(a, b domain.Mismatch) int {
		return cmp.Or(b.At.Compare(a.At), cmp.Compare(a.EventID, b.EventID))
	})
	return out[:min(len(out), max(limit, 0))], nil
}
