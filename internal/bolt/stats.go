package bolt

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"math"
	"sort"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// Comparison statistics live in two more buckets:
//
//	stats       migration 0 partner 0 stage 0 since(8) 0 event type 0 class 0 minute(8) → 8-byte count
//	mismatches  migration 0 partner 0 event type 0 class 0 at(8) event id → JSON domain.Mismatch
//
// The candidate pipeline's calls and errors are counted in stats under the
// pseudo-classes below, with an empty event type.
var (
	bucketStats      = []byte("stats")
	bucketMismatches = []byte("mismatches")
)

const (
	classCandidateCalls  = "~calls"
	classCandidateErrors = "~errors"
)

// MismatchesKept bounds the mismatches kept per partner, event type and
// class: the newest stay.
const MismatchesKept = 20

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

func stagePrefix(migration, partner string, stage domain.Stage, since time.Time) []byte {
	return append(join([]byte(migration), []byte(partner), []byte(stage), u64(unixNano(since))), 0)
}

// AddComparisons adds counts to the partner's stage that began at since.
func (t *tx) AddComparisons(since time.Time, c domain.ComparisonCount) error {
	key := append(stagePrefix(c.Migration, c.Partner, c.Stage, since),
		join([]byte(c.EventType), []byte(c.Class), u64(unixNano(c.Minute.Truncate(time.Minute))))...)
	return add(t, key, c.Count)
}

// AddCandidate adds the new pipeline's calls and errors to a stage.
func (t *tx) AddCandidate(since time.Time, c domain.CandidateCount) error {
	p := stagePrefix(c.Migration, c.Partner, c.Stage, since)
	if err := add(t, append(append([]byte{}, p...), join(nil, []byte(classCandidateCalls), u64(0))...), c.Calls); err != nil {
		return err
	}
	return add(t, append(append([]byte{}, p...), join(nil, []byte(classCandidateErrors), u64(0))...), c.Errors)
}

func add(t *tx, key []byte, n uint64) error {
	if n == 0 {
		return nil
	}
	b, err := t.CreateBucketIfNotExists(bucketStats)
	if err != nil {
		return err
	}
	var cur uint64
	if v := b.Get(key); len(v) == 8 {
		cur = binary.BigEndian.Uint64(v)
	}
	return b.Put(key, u64(satAdd(cur, n)))
}

// satAdd adds counts without wrapping: a counter stuck at the maximum
// still fails every gate, one wrapped to a small number passes them.
func satAdd(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// PutMismatch keeps m, dropping the oldest beyond MismatchesKept for its
// partner, event type and class.
func (t *tx) PutMismatch(m domain.Mismatch) error {
	b, err := t.CreateBucketIfNotExists(bucketMismatches)
	if err != nil {
		return err
	}
	prefix := append(join([]byte(m.Migration), []byte(m.Partner), []byte(m.EventType), []byte(m.Class)), 0)
	v, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if err := b.Put(append(append(append([]byte{}, prefix...), u64(unixNano(m.At))...), m.EventID...), v); err != nil {
		return err
	}
	var keys [][]byte
	c := b.Cursor()
	for k, _ := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, _ = c.Next() {
		keys = append(keys, append([]byte(nil), k...))
	}
	for i := 0; i < len(keys)-MismatchesKept; i++ {
		if err := b.Delete(keys[i]); err != nil {
			return err
		}
	}
	return nil
}

// StageCounts sums a partner's comparisons in the stage that began at since.
func (s *Store) StageCounts(ctx context.Context, migration, partner string, stage domain.Stage, since time.Time) (gate.Counts, error) {
	out := gate.Counts{ByClass: map[domain.Class]uint64{}, ByType: map[string]uint64{}}
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketStats)
		if b == nil {
			return nil
		}
		prefix := stagePrefix(migration, partner, stage, since)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			parts := bytes.SplitN(k[len(prefix):], []byte{0}, 3)
			if len(parts) < 2 || len(v) != 8 {
				continue
			}
			n := binary.BigEndian.Uint64(v)
			typ, class := string(parts[0]), string(parts[1])
			switch class {
			case classCandidateCalls:
				out.CandidateCalls = satAdd(out.CandidateCalls, n)
			case classCandidateErrors:
				out.CandidateErrors = satAdd(out.CandidateErrors, n)
			default:
				cl := domain.Class(class)
				out.ByClass[cl] = satAdd(out.ByClass[cl], n)
				out.Eligible = satAdd(out.Eligible, n)
				if cl.Compared() {
					out.ByType[typ] = satAdd(out.ByType[typ], n)
				}
			}
		}
		return nil
	})
	return out, err
}

// Comparisons returns a partner's counts by event type and class in the
// stage that began at since, and its latest mismatches, newest first.
func (s *Store) Comparisons(ctx context.Context, migration, partner string, stage domain.Stage, since time.Time, limit int) (map[string]map[domain.Class]uint64, []domain.Mismatch, error) {
	counts := map[string]map[domain.Class]uint64{}
	mismatches := []domain.Mismatch{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(bucketStats); b != nil {
			prefix := stagePrefix(migration, partner, stage, since)
			c := b.Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				parts := bytes.SplitN(k[len(prefix):], []byte{0}, 3)
				if len(parts) < 2 || len(v) != 8 || bytes.HasPrefix(parts[1], []byte("~")) {
					continue
				}
				typ := string(parts[0])
				if counts[typ] == nil {
					counts[typ] = map[domain.Class]uint64{}
				}
				cl := domain.Class(parts[1])
				counts[typ][cl] = satAdd(counts[typ][cl], binary.BigEndian.Uint64(v))
			}
		}
		if b := tx.Bucket(bucketMismatches); b != nil {
			prefix := append(join([]byte(migration), []byte(partner)), 0)
			c := b.Cursor()
			for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
				var m domain.Mismatch
				if err := json.Unmarshal(v, &m); err != nil {
					return err
				}
				if !m.At.Before(since) {
					mismatches = append(mismatches, m)
				}
			}
		}
		return nil
	})
	sort.Slice(mismatches, func(i, j int) bool { return mismatches[i].At.After(mismatches[j].At) })
	if len(mismatches) > limit {
		mismatches = mismatches[:limit]
	}
	return counts, mismatches, err
}

// Timeline returns a partner's comparison counts per minute, event type and
// class in the stage that began at since, sorted by minute, then type, then
// class. The new pipeline's calls and errors are left out.
func (s *Store) Timeline(ctx context.Context, migration, partner string, stage domain.Stage, since time.Time) ([]domain.MinuteCount, error) {
	out := []domain.MinuteCount{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketStats)
		if b == nil {
			return nil
		}
		prefix := stagePrefix(migration, partner, stage, since)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			parts := bytes.SplitN(k[len(prefix):], []byte{0}, 3)
			if len(parts) < 3 || len(parts[2]) != 8 || len(v) != 8 || bytes.HasPrefix(parts[1], []byte("~")) {
				continue
			}
			out = append(out, domain.MinuteCount{
				Minute:    time.Unix(0, int64(binary.BigEndian.Uint64(parts[2]))).UTC(),
				EventType: string(parts[0]),
				Class:     domain.Class(parts[1]),
				Count:     binary.BigEndian.Uint64(v),
			})
		}
		return nil
	})
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if !a.Minute.Equal(b.Minute) {
			return a.Minute.Before(b.Minute)
		}
		if a.EventType != b.EventType {
			return a.EventType < b.EventType
		}
		return a.Class < b.Class
	})
	return out, err
}
