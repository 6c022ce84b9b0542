package flags

import (
	"bytes"
	"encoding/json"
	"errors"
	"maps"
	"slices"
)

// snapshotDelta is the change from the snapshot of version Base to that of
// Version, as the control service sends it on the snapshot stream to the
// providers that ask for deltas: the package's copy of the fields of
// wire.SnapshotDelta it needs (a test checks that they agree).
type snapshotDelta struct {
	Version    uint64                     `json:"version"`
	Base       uint64                     `json:"base"`
	StoreID    string                     `json:"storeId,omitempty"`
	Audit      AuditHead                  `json:"audit,omitzero"`
	Migrations map[string]*migrationDelta `json:"migrations"`
	Partners   map[string]*Partner        `json:"partners"`
}

// migrationDelta is a migration added or changed: Reverted whole, and the
// stages that changed, null for a partner back at legacy.
type migrationDelta struct {
	Reverted bool               `json:"reverted"`
	Stages   map[string]*string `json:"stages"`
}

// decodeDelta decodes a delta's JSON. It returns an error for anything but
// a JSON object with a version above its base.
func decodeDelta(data []byte) (*snapshotDelta, error) {
	data = bytes.TrimSpace(data)
	if len(data) == 0 || data[0] != '{' {
		return nil, errors.New("delta is not a JSON object")
	}
	var d snapshotDelta
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	if d.Version <= d.Base {
		return nil, errors.New("delta's version is not above its base")
	}
	return &d, nil
}

// patch returns the snapshot that d makes of s, and the flags whose
// answers it changes, sorted (as flagChanges tells them); or false when d
// does not apply to s (another store, or another version than its base).
// s is not modified: what d leaves alone is shared with it.
func (s *Snapshot) patch(d *snapshotDelta) (*Snapshot, []string, bool) {
	if s == nil || s.StoreID != d.StoreID || s.Version != d.Base {
		return nil, nil, false
	}
	n := &Snapshot{Version: d.Version, StoreID: d.StoreID, Audit: d.Audit, Migrations: s.Migrations, Partners: s.Partners}
	changed := []string{} // not nil: known
	if len(d.Migrations) > 0 {
		n.Migrations = maps.Clone(s.Migrations)
		if n.Migrations == nil {
			n.Migrations = make(map[string]*Migration, len(d.Migrations))
		}
		for k, md := range d.Migrations {
			old := s.Migrations[k]
			if md == nil {
				if _, ok := s.Migrations[k]; ok {
					changed = append(changed, k)
				}
				delete(n.Migrations, k)
				continue
			}
			m := &Migration{Reverted: md.Reverted}
			if old != nil {
				m.Stages = old.Stages
			}
			moved := false
			if len(md.Stages) > 0 {
				m.Stages = maps.Clone(m.Stages)
				if m.Stages == nil {
					m.Stages = make(map[string]string, len(md.Stages))
				}
				for id, st := range md.Stages {
					was, had := m.Stages[id]
					if st == nil {
						delete(m.Stages, id)
						moved = moved || had
					} else {
						m.Stages[id] = *st
						moved = moved || !had || was != *st
					}
				}
			}
			if old == nil || old.Reverted != m.Reverted || moved {
				changed = append(changed, k)
			}
			n.Migrations[k] = m
		}
	}
	if len(d.Partners) > 0 {
		n.Partners = maps.Clone(s.Partners)
		if n.Partners == nil {
			n.Partners = make(map[string]Partner, len(d.Partners))
		}
		joined := false // a partner added or removed: every flag answers it otherwise
		for id, p := range d.Partners {
			_, had := s.Partners[id]
			if p == nil {
				delete(n.Partners, id)
			} else {
				n.Partners[id] = *p
			}
			joined = joined || had == (p == nil)
		}
		if joined {
			changed = changed[:0]
			for k := range n.Migrations {
				changed = append(changed, k)
			}
			for k := range s.Migrations {
				if _, ok := n.Migrations[k]; !ok {
					changed = append(changed, k)
				}
			}
		}
	}
	slices.Sort(changed)
	return n, changed, true
}
