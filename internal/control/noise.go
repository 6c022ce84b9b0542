package control

import (
	"cmp"
	"context"
	"slices"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// AddNoisePath adds n to paths[path], saturating, and returns paths
// (allocated when nil); a path not in paths is dropped when keep paths
// already are. The probes, under domain.NoiseProbesPath, are kept whatever
// the paths: without them no path is learned. Stores keep one such map
// per migration, partner and event type and call this, so that every
// store bounds them alike.
func AddNoisePath(paths map[string]uint64, path string, n uint64, keep int) map[string]uint64 {
	if paths == nil {
		paths = map[string]uint64{}
	}
	kept := len(paths)
	if _, ok := paths[domain.NoiseProbesPath]; ok {
		kept--
	}
	if _, ok := paths[path]; !ok && path != domain.NoiseProbesPath && kept >= keep {
		return paths
	}
	paths[path] = domain.AddCounts(paths[path], n)
	return paths
}

// SortNoise sorts observations by partner, event type and path, the order
// Store.Noise returns them in.
func SortNoise(obs []domain.NoiseObservation) {
	slices.SortFunc(obs, func(a, b domain.NoiseObservation) int {
		return cmp.Or(cmp.Compare(a.Partner, b.Partner), cmp.Compare(a.EventType, b.EventType), cmp.Compare(a.Path, b.Path))
	})
}

// noisePerUpdate bounds the noise rows written in one Update: each is a
// read and a write of one key, within etcd's 128 operations.
const noisePerUpdate = 50

// recordNoise adds a report's noise observations to the store, for the
// migrations and partners it knows. They are best-effort counts, outside
// the report's exactly-once accounting: a report sent again counts them
// again (a path is then learned an observation early), and a failed write
// is logged and dropped (the next probes observe the path again).
func (s *Service) recordNoise(ctx context.Context, obs []domain.NoiseObservation) {
	st := s.State()
	known := obs[:0:0]
	for _, o := range obs {
		if _, ok := st.Migrations[o.Migration]; !ok {
			continue
		}
		if _, ok := st.Partners[o.Partner]; ok {
			known = append(known, o)
		}
	}
	// One key per migration, partner and event type: sorted, a chunk
	// splits as few of them as it can.
	SortNoise(known)
	for part := range slices.Chunk(known, noisePerUpdate) {
		err := s.store.Update(ctx, func(tx Tx) error {
			for _, o := range part {
				if err := tx.AddNoise(o, domain.NoisePathsKept); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			s.log.Warn("recording noise observations failed; they are observed again later", "rows", len(part), "err", err)
			return
		}
	}
}

// Noise returns the noise paths of a partner's events in a migration, by
// event type and path: each path seen to differ between two legacy runs,
// with its count over all routers and the probes of its event type, and
// each pinned path, seen or not. It returns a not_found error for an
// unknown migration or partner and store_unavailable when a shared store
// cannot be reached.
func (s *Service) Noise(ctx context.Context, migration, partner string) ([]domain.NoisePath, error) {
	if err := s.Available(); err != nil {
		return nil, err
	}
	st := s.State()
	ms, err := st.Migration(migration)
	if err != nil {
		return nil, err
	}
	if _, err := st.Partner(partner); err != nil {
		return nil, err
	}
	rows, err := s.store.Noise(ctx, migration)
	if err != nil {
		return nil, storeError("read noise", err)
	}
	pins := map[[2]string]domain.Pin{}
	for _, p := range ms.Compare.NoisePins {
		pins[[2]string{p.EventType, p.Path}] = p.As
	}
	probes := map[string]uint64{}
	for _, r := range rows {
		if r.Partner == partner && r.Path == domain.NoiseProbesPath {
			probes[r.EventType] = r.Count
		}
	}
	out := []domain.NoisePath{}
	seen := map[[2]string]bool{}
	for _, r := range rows {
		if r.Partner != partner || r.Path == domain.NoiseProbesPath {
			continue
		}
		k := [2]string{r.EventType, r.Path}
		seen[k] = true
		out = append(out, noisePath(r.EventType, r.Path, r.Count, probes[r.EventType], pins[k]))
	}
	for _, p := range ms.Compare.NoisePins {
		if !seen[[2]string{p.EventType, p.Path}] {
			out = append(out, noisePath(p.EventType, p.Path, 0, probes[p.EventType], p.As))
		}
	}
	slices.SortFunc(out, func(a, b domain.NoisePath) int {
		return cmp.Or(cmp.Compare(a.EventType, b.EventType), cmp.Compare(a.Path, b.Path))
	})
	return out, nil
}

func noisePath(eventType, path string, count, probes uint64, pin domain.Pin) domain.NoisePath {
	return domain.NoisePath{EventType: eventType, Path: path, Count: count, Probes: probes,
		Learned: domain.NoiseLearned(count, probes), Pin: pin, Noise: domain.IsNoise(count, probes, pin)}
}

// LearnedNoise returns, for routers, the paths learned as noise of every
// migration's partners (domain.NoiseLearned) with their counts, and for
// each partner and event type with such a path, the probes row
// (domain.NoiseProbesPath) they were weighed against; pins reach routers
// in the snapshot. It returns store_unavailable when a shared store cannot
// be reached.
func (s *Service) LearnedNoise(ctx context.Context) ([]domain.NoiseObservation, error) {
	if err := s.Available(); err != nil {
		return nil, err
	}
	out := []domain.NoiseObservation{}
	for _, key := range s.State().MigrationKeys() {
		rows, err := s.store.Noise(ctx, key)
		if err != nil {
			return nil, storeError("read noise", err)
		}
		probes := map[[2]string]domain.NoiseObservation{}
		for _, r := range rows {
			if r.Path == domain.NoiseProbesPath {
				probes[[2]string{r.Partner, r.EventType}] = r
			}
		}
		sent := map[[2]string]bool{}
		for _, r := range rows {
			k := [2]string{r.Partner, r.EventType}
			if r.Path == domain.NoiseProbesPath || !domain.NoiseLearned(r.Count, probes[k].Count) {
				continue
			}
			if !sent[k] {
				sent[k] = true
				out = append(out, probes[k])
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// PinNoise pins a path of a migration's event type as noise or signal, for
// every partner, or removes its pin when as is "". The pins are part of
// the migration's compare rules, so they reach routers with the next
// snapshot; the change is audited as noise.pin (noise.unpin). It returns
// an invalid_argument error for a bad pin or reason, and not_found for an
// unknown migration.
func (s *Service) PinNoise(ctx context.Context, c Change, migration, eventType, path string, as domain.Pin) (domain.Migration, error) {
	var out domain.Migration
	_, err := s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		ms, err := cur.Migration(migration)
		if err != nil {
			return plan{}, err
		}
		pin := domain.NoisePin{EventType: eventType, Path: path, As: as}
		check := pin
		if as == "" {
			check.As = domain.PinNoise // only the event type and path are checked
		}
		if err := check.Validate(); err != nil {
			return plan{}, err
		}
		m := ms.Migration
		var before *domain.NoisePin
		pins := make([]domain.NoisePin, 0, len(m.Compare.NoisePins)+1)
		for _, p := range m.Compare.NoisePins {
			if p.EventType == eventType && p.Path == path {
				before = &p
				continue
			}
			pins = append(pins, p)
		}
		if as != "" {
			pins = append(pins, pin)
		}
		if (before == nil && as == "") || (before != nil && before.As == as) {
			out = m
			return plan{}, nil // already so
		}
		slices.SortFunc(pins, func(a, b domain.NoisePin) int {
			return cmp.Or(cmp.Compare(a.EventType, b.EventType), cmp.Compare(a.Path, b.Path))
		})
		if len(pins) == 0 {
			pins = nil
		}
		m.Compare.NoisePins, m.UpdatedAt = pins, now
		if err := m.Validate(); err != nil {
			return plan{}, err
		}
		out = m
		rec := record{action: "noise.pin", target: "migration/" + migration + "/noise/" + eventType + "/" + path, before: before, after: pin}
		if as == "" {
			rec.action, rec.after = "noise.unpin", nil
		}
		return plan{
			next:    cur.withMigration(m),
			writes:  func(tx Tx) error { return tx.PutMigration(m) },
			records: []record{rec},
		}, nil
	})
	return out, err
}
