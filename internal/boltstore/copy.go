package boltstore

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

var _ control.Copyable = (*Store)(nil)

// Export calls fn with every statistics row, mismatch and applied report
// mark. It decodes them all in one read transaction and calls fn after it
// ends, so that fn may take its time (write to a remote store) without
// holding the file.
func (s *Store) Export(ctx context.Context, fn func(control.Row) error) error {
	var rows []control.Row
	err := s.db.View(func(tx *bbolt.Tx) error {
		err := tx.Bucket(bucketStats).ForEach(func(k, v []byte) error {
			since, c, rest, err := parseStint(k)
			if err != nil || len(rest) < 10 || rest[0] != 0 || rest[len(rest)-9] != 0 || len(v) != 8 {
				return fmt.Errorf("stats row %q: unexpected key or value", k)
			}
			typ, class, ok := bytes.Cut(rest[1:len(rest)-9], []byte{0})
			if !ok {
				return fmt.Errorf("stats row %q: unexpected key", k)
			}
			rows = append(rows, control.Row{Since: since, Comparison: &domain.ComparisonCount{
				Migration: c.Migration, Partner: c.Partner, Stage: c.Stage,
				EventType: string(typ), Class: domain.Class(class),
				Minute: time.Unix(0, int64(binary.BigEndian.Uint64(rest[len(rest)-8:]))).UTC(),
				Count:  binary.BigEndian.Uint64(v),
			}})
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketCandidate).ForEach(func(k, v []byte) error {
			since, c, rest, err := parseStint(k)
			if err != nil || len(rest) != 0 || len(v) != 16 {
				return fmt.Errorf("candidate row %q: unexpected key or value", k)
			}
			c.Calls, c.Errors = candidateRow(v)
			rows = append(rows, control.Row{Since: since, Candidate: &c})
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketMismatches).ForEach(func(k, v []byte) error {
			var m domain.Mismatch
			if err := json.Unmarshal(v, &m); err != nil {
				return fmt.Errorf("decode mismatch %q: %w", k, err)
			}
			rows = append(rows, control.Row{Mismatch: &m})
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketReports).ForEach(func(k, v []byte) error {
			router, epoch, ok := bytes.Cut(k, []byte{0})
			if !ok || len(v) != 8 {
				return fmt.Errorf("applied report %q: unexpected key or value", k)
			}
			rows = append(rows, control.Row{Report: &control.AppliedReport{Router: string(router), Epoch: string(epoch), Seq: binary.BigEndian.Uint64(v)}})
			return nil
		})
		if err != nil {
			return err
		}
		b := tx.Bucket(bucketNoise)
		if b == nil {
			return nil
		}
		return b.ForEach(func(k, v []byte) error {
			parts := bytes.Split(k, []byte{0})
			var paths map[string]uint64
			if len(parts) != 3 || json.Unmarshal(v, &paths) != nil {
				return fmt.Errorf("noise row %q: unexpected key or value", k)
			}
			for p, n := range paths {
				rows = append(rows, control.Row{Noise: &domain.NoiseObservation{Migration: string(parts[0]), Partner: string(parts[1]), EventType: string(parts[2]), Path: p, Count: n}})
			}
			return nil
		})
	})
	if err != nil {
		return fmt.Errorf("export: %w", err)
	}
	for _, r := range rows {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(r); err != nil {
			return err
		}
	}
	return nil
}

// parseStint splits a key that begins with a stint (see stint) into the
// stint's start, its migration, partner and stage, and what follows it.
func parseStint(k []byte) (time.Time, domain.CandidateCount, []byte, error) {
	var parts [3][]byte
	rest := k
	for i := range parts {
		var ok bool
		if parts[i], rest, ok = bytes.Cut(rest, []byte{0}); !ok {
			return time.Time{}, domain.CandidateCount{}, nil, errors.New("not a stint")
		}
	}
	if len(rest) < 8 {
		return time.Time{}, domain.CandidateCount{}, nil, errors.New("not a stint")
	}
	since := time.Unix(0, int64(binary.BigEndian.Uint64(rest[:8]))).UTC()
	return since, domain.CandidateCount{Migration: string(parts[0]), Partner: string(parts[1]), Stage: domain.Stage(parts[2])}, rest[8:], nil
}

// SetStoreID replaces the file's identity with id.
func (s *Store) SetStoreID(ctx context.Context, id string) error {
	if id == "" {
		return errors.New("set store id: empty id")
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketMeta).Put(keyStoreID, []byte(id)) })
}
