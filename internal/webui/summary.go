package webui

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// stageOrder lists the stages in their forward order.
var stageOrder = []domain.Stage{domain.StageLegacy, domain.StageShadow, domain.StageNew, domain.StageDone}

// migrationCard summarizes one migration at one snapshot version.
type migrationCard struct {
	Key         string
	Description string
	Reverted    bool
	UpdatedAt   time.Time
	Total       int
	Stages      []stageSlice
	// OnLegacy and OnNew count partners by the pipeline that applies
	// their events now, as routers evaluate the flag: while the kill
	// switch is on, every partner is on legacy whatever its stage.
	OnLegacy, OnNew int
	Shadowed        int // partners with a pipeline in dry-run
	Cohorts         int
}

// stageSlice is one stage's share of a migration's partners, and its place
// in the stacked bar (percentages of the bar's width).
type stageSlice struct {
	Stage domain.Stage
	N     int
	X, W  float64
}

// summaries caches the migration cards of the latest version: every open
// page polls, and counting evaluates every partner of every migration.
type summaries struct {
	mu      sync.Mutex
	version uint64
	cards   []migrationCard
}

// migrationCards returns the cards of st's migrations, oldest first.
func (u *UI) migrationCards(st *control.State) []migrationCard {
	u.cache.mu.Lock()
	defer u.cache.mu.Unlock()
	if u.cache.cards != nil && u.cache.version == st.Version {
		return u.cache.cards
	}
	cards := make([]migrationCard, 0, len(st.Migrations))
	for _, k := range st.MigrationKeys() {
		cards = append(cards, card(st, st.Migrations[k]))
	}
	u.cache.version, u.cache.cards = st.Version, cards
	return cards
}

func card(st *control.State, ms *control.MigrationState) migrationCard {
	c := migrationCard{Key: ms.Key, Description: ms.Description, Reverted: ms.Reverted, UpdatedAt: ms.UpdatedAt,
		Total: len(st.Partners), Cohorts: len(ms.Cohorts)}
	counts := map[domain.Stage]int{}
	snap := st.Flags()
	for id, p := range st.Partners {
		counts[ms.StageOf(p).Stage]++
		res := snap.Evaluate(ms.Key, id)
		if res.Value == flags.New {
			c.OnNew++
		} else {
			c.OnLegacy++
		}
		if res.Shadow != "" {
			c.Shadowed++
		}
	}
	var x float64
	for _, s := range stageOrder {
		sl := stageSlice{Stage: s, N: counts[s], X: x}
		if c.Total > 0 {
			sl.W = 100 * float64(sl.N) / float64(c.Total)
		}
		x += sl.W
		c.Stages = append(c.Stages, sl)
	}
	return c
}

// routerRow is one router and the snapshot version it last confirmed.
type routerRow struct {
	ID        string
	LastSeen  time.Time
	Version   uint64
	Confirmed bool
	Behind    uint64 // versions behind the current one
	Journal   []string
	Conflict  string // why its snapshot is not one of this store's
}

// routerSummary is who has confirmed the current snapshot version.
type routerSummary struct {
	Current          uint64
	Total, Confirmed int
	Rows             []routerRow
}

func (u *UI) routerSummary(current uint64) routerSummary {
	rs := routerSummary{Current: current}
	for _, rt := range u.svc.Routers() {
		row := routerRow{ID: rt.ID, LastSeen: rt.LastSeen, Version: rt.SnapshotVersion,
			Confirmed: rt.SnapshotVersion == current && rt.Conflict == "", Conflict: rt.Conflict}
		if current > rt.SnapshotVersion {
			row.Behind = current - rt.SnapshotVersion
		}
		row.Journal = journalFigures(rt.Journal)
		rs.Total++
		if row.Confirmed {
			rs.Confirmed++
		}
		rs.Rows = append(rs.Rows, row)
	}
	return rs
}

// journalFigures flattens a router's journal report to "name: value" lines.
func journalFigures(raw json.RawMessage) []string {
	if len(raw) == 0 {
		return nil
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		return []string{"(unreadable)"}
	}
	out := make([]string, 0, len(m))
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		switch x := v.(type) {
		case float64:
			out = append(out, fmt.Sprintf("%s: %s", k, formatCount(int64(x))))
		case map[string]any, []any:
			b, _ := json.Marshal(x)
			out = append(out, k+": "+string(b))
		default:
			out = append(out, fmt.Sprintf("%s: %v", k, x))
		}
	}
	return out
}

// liveKeys are what pages follow: "version" changes with every snapshot
// version and whenever an autopilot's window opens or closes, "routers"
// also with every router report, "reconciliations" with every move of a
// reconciliation or its backfill; every one also with every change
// request filed, approved or ended, which the header's badge counts.
func (u *UI) liveKeys(st *control.State) map[string]string {
	h := sha256.New()
	var b [8]byte
	for _, rt := range u.svc.Routers() {
		h.Write([]byte(rt.ID))
		binary.BigEndian.PutUint64(b[:], rt.SnapshotVersion)
		h.Write(b[:])
		binary.BigEndian.PutUint64(b[:], uint64(rt.LastSeen.UnixNano()))
		h.Write(b[:])
	}
	v := fmt.Sprintf("v%d-c%s", st.Version, u.svc.ChangesKey()) + u.windowsKey(st)
	return map[string]string{"version": v, "routers": v + "-" + hex.EncodeToString(h.Sum(nil)[:8]),
		"reconciliations": u.reconcileKey() + "-c" + u.svc.ChangesKey(), "notifications": u.notificationsKey()}
}

// windowsKey moves when the window of an enabled autopilot opens or
// closes: its status changes then without a new snapshot version. It is
// "" while no migration has an enabled autopilot.
func (u *UI) windowsKey(st *control.State) string {
	now := u.opts.Now()
	h := sha256.New()
	found := false
	for _, k := range st.MigrationKeys() {
		p := st.Migrations[k].Autopilot
		if p == nil || !p.Enabled {
			continue
		}
		found = true
		_, open := p.Open(now)
		h.Write([]byte(k))
		if open {
			h.Write([]byte{1})
		} else {
			h.Write([]byte{0})
		}
	}
	if !found {
		return ""
	}
	return "-w" + hex.EncodeToString(h.Sum(nil)[:4])
}

// stateView is the answer of /ui/state.json.
type stateView struct {
	Version    uint64            `json:"version"`
	BuiltAt    time.Time         `json:"builtAt"`
	Migrations []migrationState  `json:"migrations"`
	Routers    routersState      `json:"routers"`
	Keys       map[string]string `json:"keys"`
	// Stale is true while this replica cannot reach its shared store,
	// since StaleSince: the pages show or hide their banner by it.
	Stale      bool       `json:"stale"`
	StaleSince *time.Time `json:"staleSince,omitempty"`
}

type migrationState struct {
	Key      string               `json:"key"`
	Reverted bool                 `json:"reverted"`
	Stages   map[domain.Stage]int `json:"stages"`
	// Primary counts partners by the pipeline applied now.
	Primary map[string]int `json:"primary"`
}

type routersState struct {
	Total     int           `json:"total"`
	Confirmed int           `json:"confirmed"`
	List      []routerState `json:"list"`
}

type routerState struct {
	ID              string    `json:"id"`
	SnapshotVersion uint64    `json:"snapshotVersion"`
	Confirmed       bool      `json:"confirmed"`
	LastSeen        time.Time `json:"lastSeen"`
}

// state serves GET /ui/state.json: what the pages poll.
func (u *UI) state(w http.ResponseWriter, r *http.Request, _ session) error {
	st := u.svc.State()
	out := stateView{Version: st.Version, BuiltAt: st.BuiltAt, Migrations: []migrationState{}, Keys: u.liveKeys(st)}
	if since, stale := u.svc.Stale(); stale {
		out.Stale, out.StaleSince = true, &since
	}
	for _, c := range u.migrationCards(st) {
		ms := migrationState{Key: c.Key, Reverted: c.Reverted, Stages: map[domain.Stage]int{},
			Primary: map[string]int{flags.Legacy: c.OnLegacy, flags.New: c.OnNew}}
		for _, s := range c.Stages {
			ms.Stages[s.Stage] = s.N
		}
		out.Migrations = append(out.Migrations, ms)
	}
	rs := u.routerSummary(st.Version)
	out.Routers = routersState{Total: rs.Total, Confirmed: rs.Confirmed, List: []routerState{}}
	for _, row := range rs.Rows {
		out.Routers.List = append(out.Routers.List, routerState{ID: row.ID, SnapshotVersion: row.Version, Confirmed: row.Confirmed, LastSeen: row.LastSeen})
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}
