package boltstore

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"

	bbolt "go.etcd.io/bbolt"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// AddNoise adds o.Count to o's path in the paths kept for its migration,
// partner and event type.
func (t *tx) AddNoise(o domain.NoiseObservation, keep int) error {
	b, err := t.CreateBucketIfNotExists(bucketNoise)
	if err != nil {
		return err
	}
	k := join([]byte(o.Migration), []byte(o.Partner), []byte(o.EventType))
	var paths map[string]uint64
	if v := b.Get(k); v != nil {
		if err := json.Unmarshal(v, &paths); err != nil {
			return fmt.Errorf("noise row %q: %w", k, err)
		}
	}
	data, err := json.Marshal(control.AddNoisePath(paths, o.Path, o.Count, keep))
	if err != nil {
		return err
	}
	return b.Put(k, data)
}

// Noise returns the noise paths kept for migration.
func (s *Store) Noise(ctx context.Context, migration string) ([]domain.NoiseObservation, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	out := []domain.NoiseObservation{}
	err := s.db.View(func(tx *bbolt.Tx) error {
		b := tx.Bucket(bucketNoise)
		if b == nil {
			return nil // a file no switchback with noise has written yet
		}
		prefix := append([]byte(migration), 0)
		c := b.Cursor()
		for k, v := c.Seek(prefix); k != nil && bytes.HasPrefix(k, prefix); k, v = c.Next() {
			parts := bytes.Split(k[len(prefix):], []byte{0})
			if len(parts) != 2 {
				return fmt.Errorf("noise key %q is not migration, partner and event type", k)
			}
			var paths map[string]uint64
			if err := json.Unmarshal(v, &paths); err != nil {
				return fmt.Errorf("noise row %q: %w", k, err)
			}
			for p, n := range paths {
				out = append(out, domain.NoiseObservation{Migration: migration, Partner: string(parts[0]), EventType: string(parts[1]), Path: p, Count: n})
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	control.SortNoise(out)
	return out, nil
}
