package control

import (
	"encoding/json"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
)

// Router is what a router last told the control service: the snapshot
// version it holds and its journal figures.
type Router struct {
	ID              string          `json:"id"`
	LastSeen        time.Time       `json:"lastSeen"`
	SnapshotVersion uint64          `json:"snapshotVersion"`
	Journal         json.RawMessage `json:"journal,omitempty"`
}

// routers is the registry of routers. It lives in memory only: routers
// report every few seconds, so a restarted control service knows them all
// again within one report interval.
type routers struct {
	mu sync.Mutex
	m  map[string]Router
}

// maxRouters bounds the registry against a misbehaving router token.
const maxRouters = 10000

// ReportRouter records a router's report.
func (s *Service) ReportRouter(r Router) {
	s.routers.mu.Lock()
	defer s.routers.mu.Unlock()
	if s.routers.m == nil {
		s.routers.m = map[string]Router{}
	}
	if _, known := s.routers.m[r.ID]; !known && len(s.routers.m) >= maxRouters {
		return
	}
	r.LastSeen = s.now().UTC()
	if old, ok := s.routers.m[r.ID]; ok && r.Journal == nil {
		r.Journal = old.Journal
	}
	s.routers.m[r.ID] = r
}

// Routers lists the routers by id.
func (s *Service) Routers() []Router {
	s.routers.mu.Lock()
	defer s.routers.mu.Unlock()
	out := slices.Collect(maps.Values(s.routers.m))
	slices.SortFunc(out, func(a, b Router) int { return strings.Compare(a.ID, b.ID) })
	return out
}
