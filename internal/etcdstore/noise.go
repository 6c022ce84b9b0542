package etcdstore

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// AddNoise adds o.Count to o's path in the paths kept for its migration,
// partner and event type: one key for them all, so that a report's
// observations of one partner's events of one type cost one compare and
// one write.
func (t *tx) AddNoise(o domain.NoiseObservation, keep int) error {
	key := t.s.key("noise", o.Migration, o.Partner, o.EventType)
	v, ok, err := t.get(key)
	if err != nil {
		return err
	}
	var paths map[string]uint64
	if ok {
		if err := json.Unmarshal([]byte(v), &paths); err != nil {
			return fmt.Errorf("noise row %q: %w", key, err)
		}
	}
	return t.putJSON(key, control.AddNoisePath(paths, o.Path, o.Count, keep))
}

// Noise returns the noise paths kept for migration.
func (s *Store) Noise(ctx context.Context, migration string) ([]domain.NoiseObservation, error) {
	ctx, cancel := context.WithTimeout(ctx, readTimeout)
	defer cancel()
	out, err := s.noise(ctx, migration)
	return out, unavailable(err)
}

func (s *Store) noise(ctx context.Context, migration string) ([]domain.NoiseObservation, error) {
	if err := s.check(ctx); err != nil {
		return nil, err
	}
	prefix := s.key("noise", migration) + "/"
	resp, err := s.client.Get(ctx, prefix, clientv3.WithPrefix())
	if err != nil {
		return nil, fmt.Errorf("noise: %w", err)
	}
	out := []domain.NoiseObservation{}
	for _, kv := range resp.Kvs {
		parts := strings.Split(strings.TrimPrefix(string(kv.Key), prefix), "/")
		if len(parts) != 2 {
			return nil, fmt.Errorf("noise key %q is not migration, partner and event type", kv.Key)
		}
		partner, err1 := unescape(parts[0])
		typ, err2 := unescape(parts[1])
		if err1 != nil || err2 != nil {
			return nil, fmt.Errorf("noise key %q is not escaped", kv.Key)
		}
		var paths map[string]uint64
		if err := json.Unmarshal(kv.Value, &paths); err != nil {
			return nil, fmt.Errorf("noise row %q: %w", kv.Key, err)
		}
		for p, n := range paths {
			out = append(out, domain.NoiseObservation{Migration: migration, Partner: partner, EventType: typ, Path: p, Count: n})
		}
	}
	control.SortNoise(out)
	return out, nil
}
