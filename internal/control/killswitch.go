package control

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Revert turns a migration's kill switch on: every partner evaluates to
// legacy, in one new snapshot version. Stages are kept for Resume. Reverting
// a reverted migration changes nothing and returns the current version.
func (s *Service) Revert(ctx context.Context, c Change, key string) (uint64, error) {
	res, err := s.SetKillSwitch(ctx, c, KillSwitch{Migrations: []string{key}, On: true})
	return res.Version, err
}

// Resume turns a migration's kill switch off: partners evaluate to their
// stages again, exactly as before the revert.
func (s *Service) Resume(ctx context.Context, c Change, key string) (uint64, error) {
	res, err := s.SetKillSwitch(ctx, c, KillSwitch{Migrations: []string{key}})
	return res.Version, err
}

// RevertAll turns every migration's kill switch on in one snapshot version.
func (s *Service) RevertAll(ctx context.Context, c Change) (uint64, error) {
	res, err := s.SetKillSwitch(ctx, c, KillSwitch{On: true})
	return res.Version, err
}

// KillSwitch is a call to kill switches.
type KillSwitch struct {
	// Migrations are the migrations whose switch to set; nil means every
	// migration, in one snapshot version, and is only for turning them on.
	Migrations []string
	// On reverts; off resumes.
	On bool
	// Replay asks, for each migration, the replay through legacy of the
	// events the new pipeline got wrong (see RevertEvent), whether or not
	// the call flipped its switch.
	Replay bool
}

// KillSwitchResult is what a kill switch call did.
type KillSwitchResult struct {
	// Version is the snapshot version that holds the result.
	Version uint64
	// Replays are the replays started, one per migration, in the call's
	// order; nil when none did.
	Replays []ScheduledReplay
}

// SetKillSwitch sets kill switches, audited as migration.revert,
// migration.resume or (every migration) revert.all, and emits a
// RevertEvent for each migration it turned on or whose replay was asked.
// With Replay it returns once the replay scheduler has started the
// replays. It returns a CodeNotFound error for an unknown migration and
// CodeInvalid for resuming every migration at once; nothing is changed
// then.
func (s *Service) SetKillSwitch(ctx context.Context, c Change, k KillSwitch) (KillSwitchResult, error) {
	action := "migration.resume"
	switch {
	case k.Migrations == nil && !k.On:
		return KillSwitchResult{}, domain.Errorf(domain.CodeInvalid, "resume one migration at a time")
	case k.Migrations == nil:
		action = "revert.all"
	case k.On:
		action = "migration.revert"
	}
	// The replay is of the partners on the new pipeline before the call:
	// a revert keeps their stages, but a resume's replay is of the same
	// partners too. On a shared store, "before" is the latest state: what
	// another replica moved to new is replayed too.
	s.CatchUp(ctx)
	before := s.State()
	v, flipped, err := s.setKillSwitch(ctx, c, k.Migrations, k.On, action)
	if err != nil {
		return KillSwitchResult{}, err
	}
	res := KillSwitchResult{Version: v}
	s.noticeKillSwitch(c, k, v, flipped)
	keys := k.Migrations
	if keys == nil {
		keys = before.MigrationKeys()
	}
	at := s.now().UTC()
	for _, key := range keys {
		if !k.Replay && !(k.On && slices.Contains(flipped, key)) {
			continue
		}
		ms, ok := before.Migrations[key]
		if !ok {
			continue // created after the call began: nothing of it ran on new
		}
		ev := RevertEvent{Migration: key, At: at, Change: c, Action: action, Replay: k.Replay}
		for _, id := range before.PartnerIDs() {
			ev.add(ms.StageOf(before.Partners[id]))
		}
		if r, ok := s.emit(ev); ok {
			res.Replays = append(res.Replays, r)
		}
	}
	return res, nil
}

// killSwitchPause is the reason of the autopilot pauses a kill switch
// makes.
func killSwitchPause(c Change) string {
	if strings.TrimSpace(c.Reason) == "" {
		return "kill switch on"
	}
	return "kill switch on: " + c.Reason
}

// setKillSwitch sets the kill switches of keys, or of every migration when
// keys is nil, and returns the snapshot version that holds them and the
// keys whose switch it flipped.
func (s *Service) setKillSwitch(ctx context.Context, c Change, keys []string, on bool, action string) (uint64, []string, error) {
	var flipped, paused []string
	st, err := s.apply(ctx, c, func(cur *State, now time.Time) (plan, error) {
		flipped = nil // decided again when another replica changed the store first
		all, decide := keys == nil, keys
		if all {
			decide = cur.order
		}
		var flip []string
		for _, k := range decide {
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
		flipped = flip
		next := cur.withReverted(flip, on, now)
		target := "migration/" + flip[0]
		if all {
			target = "migrations"
		}
		records := []record{{action: action, target: target,
			before: map[string]any{"reverted": !on, "migrations": flip},
			after:  map[string]any{"reverted": on, "migrations": flip}}}
		// A kill switch turned on pauses the autopilots in the same write:
		// none moves a partner between the revert and its pause. One audit
		// entry for them all: etcd bounds a transaction's operations, and
		// revert.all must fit whatever the number of migrations.
		paused = nil
		for _, k := range flip {
			if on && autopilotRunning(next.Migrations[k]) {
				pauseIn(next, k, Change{Actor: c.Actor, Reason: killSwitchPause(c)}, now)
				paused = append(paused, k)
			}
		}
		if len(paused) > 0 {
			pt := "migration/" + paused[0]
			if len(paused) > 1 {
				pt = "migrations"
			}
			records = append(records, record{action: "autopilot.pause", target: pt,
				after: map[string]any{"paused": true, "migrations": paused}, reason: killSwitchPause(c), actor: c.Actor})
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
			records: records,
		}, nil
	})
	if err != nil {
		return 0, nil, err
	}
	for _, k := range paused {
		s.noticeAutopilotPaused(Change{Actor: c.Actor, Reason: killSwitchPause(c)}, k)
	}
	if on && flipped != nil {
		s.reverts.Add(1)
	}
	return st.Version, flipped, nil
}
