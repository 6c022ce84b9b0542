package ingress

import (
	"context"
	"encoding/json"
	"sort"
	"sync/atomic"
	"time"

	"github.com/switchbackhq/switchback/internal/compare"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// routing is what the router reads from the control service's snapshot
// besides the flags: partners' PSA kinds and secrets, and the pipelines.
type routing struct {
	version  uint64
	storeID  string
	partners map[string]wire.SnapshotPartner
	// migrations in creation order: the router's default is the first.
	order      []string
	migrations map[string]wire.SnapshotMigration
	rules      map[string]*compare.Rules           // compiled once per snapshot
	pins       map[string]map[[2]string]domain.Pin // noise pins by migration, then event type and path
}

// routingTable holds the latest routing; the flags provider feeds it.
type routingTable struct {
	cur atomic.Pointer[routing]
}

// update decodes a snapshot's raw JSON. A snapshot that does not decode
// is ignored: the router keeps the last one it could read.
func (t *routingTable) update(raw []byte) error {
	var s wire.Snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		return err
	}
	r := &routing{version: s.Version, storeID: s.StoreID, partners: s.Partners, migrations: s.Migrations, rules: map[string]*compare.Rules{},
		pins: map[string]map[[2]string]domain.Pin{}}
	for k, m := range s.Migrations {
		r.order = append(r.order, k)
		r.rules[k] = compare.NewRules(m.Compare)
		r.pins[k] = pinsOf(m.Compare.NoisePins)
	}
	sort.Slice(r.order, func(i, j int) bool {
		a, b := s.Migrations[r.order[i]], s.Migrations[r.order[j]]
		if a.Seq != b.Seq {
			return a.Seq < b.Seq
		}
		return r.order[i] < r.order[j]
	})
	// The flags provider judged the snapshot (a newer version, or another
	// store's) before handing it over; this only keeps a late duplicate
	// from going back.
	if old := t.cur.Load(); old != nil && old.storeID == r.storeID && old.version > r.version {
		return nil
	}
	t.cur.Store(r)
	return nil
}

func (t *routingTable) load() *routing {
	if r := t.cur.Load(); r != nil {
		return r
	}
	return &routing{}
}

// migration returns the key of the migration the router routes by: the
// configured one, else the one created first.
func (r *routing) migration(configured string) (string, bool) {
	if configured != "" {
		_, ok := r.migrations[configured]
		return configured, ok
	}
	if len(r.order) == 0 {
		return "", false
	}
	return r.order[0], true
}

// awaitRouting waits until the router has a snapshot, whose pipelines'
// URLs and rules its work needs; false if ctx ended first.
func (rt *Router) awaitRouting(ctx context.Context) bool {
	for rt.routing.load().version == 0 {
		if !sleep(ctx, 20*time.Millisecond) {
			return false
		}
	}
	return true
}
