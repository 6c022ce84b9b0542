package control

import (
	"context"
	"time"
)

// Revert turns a migration's kill switch on: every partner evaluates to
// legacy, in one new snapshot version. Stages are kept for Resume. Reverting
// a reverted migration changes nothing and returns the current version.
func (s *Service) Revert(ctx context.Context, c Change, key string) (uint64, error) {
	return s.setKillSwitch(ctx, c, []string{key}, true, "migration.revert")
}

// Resume turns a migration's kill switch off: partners evaluate to their
// stages again, exactly as before the revert.
func (s *Service) Resume(ctx context.Context, c Change, key string) (uint64, error) {
	return s.setKillSwitch(ctx, c, []string{key}, false, "migration.resume")
}

// RevertAll turns every migration's kill switch on in one snapshot version.
func (s *Service) RevertAll(ctx context.Context, c Change) (uint64, error) {
	return s.setKillSwitch(ctx, c, nil, true, "revert.all")
}

// setKillSwitch sets the kill switches of keys, or of every migration when
// keys is nil, and returns the snapshot version that holds them.
func (s *Service) setKillSwitch(ctx context.Context, c Change, keys []string, on bool, action string) (uint64, error) {
	var flipped bool
	st, err := s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		all := keys == nil
		if all {
			keys = cur.order
		}
		var flip []string
		for _, k := range keys {
			ms, err := cur.Migration(k)
			if err != nil {
				return plan{}, err
			}
			if ms.Reverted != on {
				flip = append(flip, k)
			}
		}
		if len(flip) == 0 {
			return plan{}, nil
		}
		flipped = true
		next := cur.withReverted(flip, on, now)
		target := "migration/" + flip[0]
		if all {
			target = "migrations"
		}
		return plan{
			next: next,
			writes: func(tx Tx) error {
				for _, k := range flip {
					if err := tx.PutMigration(next.Migrations[k].Migration); err != nil {
						return err
					}
				}
				return nil
			},
			records: []record{{action: action, target: target,
				before: map[string]any{"reverted": !on, "migrations": flip},
				after:  map[string]any{"reverted": on, "migrations": flip}}},
		}, nil
	})
	if err != nil {
		return 0, err
	}
	if on && flipped {
		s.reverts.Add(1)
	}
	return st.Version, nil
}
