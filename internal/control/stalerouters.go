package control

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// RouterStaleAfter is how long a router may go without reporting before
// it is stale: a router reports every few seconds (its journal's figures
// every 5 s), and an etcd registry forgets a router a minute after its
// last entry (etcdstore.RouterTTL), which is stale too.
const RouterStaleAfter = 60 * time.Second

// RouterStale reports whether r, listed at now, has stopped reporting.
func RouterStale(r RouterStatus, now time.Time) bool { return now.Sub(r.LastSeen) > RouterStaleAfter }

// RouterStaleDetail is the detail of a router.stale notice.
type RouterStaleDetail struct {
	Router   string    `json:"router"`
	LastSeen time.Time `json:"lastSeen"`
	// StaleAfterSeconds is RouterStaleAfter.
	StaleAfterSeconds int `json:"staleAfterSeconds"`
	// Expired says that the registry forgot the router (etcd's, a minute
	// after its last report), rather than listing it with an old report.
	Expired bool `json:"expired"`
}

// RouterWatch notices router.stale once for each router that stops
// reporting: when its last report gets older than RouterStaleAfter, or
// the registry forgets it. A router that reports again is watched again.
// It judges only what the registry lists: a registry that cannot answer
// makes no router stale.
//
// On replicas each replica watches the shared registry, so a receiver
// may hear of one router from several; the notice's id is derived from
// the router and its last report as listed, so that receivers
// deduplicating on webhook-id mostly hear it once.
type RouterWatch struct {
	svc     *Service
	known   map[string]RouterStatus // fresh at the last look
	noticed map[string]bool         // stale, and noticed
}

// NewRouterWatch returns a watch of svc's routers.
func NewRouterWatch(svc *Service) *RouterWatch {
	return &RouterWatch{svc: svc, known: map[string]RouterStatus{}, noticed: map[string]bool{}}
}

// Run looks every interval until ctx ends.
func (w *RouterWatch) Run(ctx context.Context, period time.Duration) {
	every(ctx, period, func() { w.Check(ctx) })
}

// Check looks at the routers once, by the service's clock, and notices
// those that became stale since the last look.
func (w *RouterWatch) Check(ctx context.Context) {
	s := w.svc
	ctx, cancel := context.WithTimeout(ctx, registryTimeout)
	defer cancel()
	list, err := s.registry.Routers(ctx)
	if err != nil {
		s.log.Warn("registry: routers not watched this time", "err", err)
		return
	}
	now := s.now().UTC()
	listed := make(map[string]bool, len(list))
	for _, r := range list {
		listed[r.ID] = true
		if !RouterStale(r, now) {
			w.known[r.ID] = r
			delete(w.noticed, r.ID)
			continue
		}
		delete(w.known, r.ID)
		if !w.noticed[r.ID] {
			w.noticed[r.ID] = true
			w.notice(r, now, false)
		}
	}
	for id, r := range w.known {
		if !listed[id] {
			delete(w.known, id)
			w.notice(r, now, true)
		}
	}
	for id := range w.noticed {
		if !listed[id] {
			delete(w.noticed, id) // forgotten: heard of again only once it reports
		}
	}
}

func (w *RouterWatch) notice(r RouterStatus, now time.Time, expired bool) {
	sum := sha256.Sum256([]byte(domain.NoticeRouterStale + "\x00" + r.ID + "\x00" + strconv.FormatInt(r.LastSeen.UnixNano(), 10)))
	ago := now.Sub(r.LastSeen).Round(time.Second)
	w.svc.log.Warn("router stopped reporting", "router", r.ID, "lastSeen", r.LastSeen, "expired", expired)
	w.svc.notice(domain.Notice{
		ID: "ntc_" + hex.EncodeToString(sum[:12]), Event: domain.NoticeRouterStale, At: now, Actor: "control", Target: "router/" + r.ID,
		Text: oneLine(fmt.Sprintf("router %s stopped reporting: its last report was %s ago (%s); it neither confirms snapshots nor reports comparisons",
			r.ID, ago, r.LastSeen.Format(time.RFC3339))),
		Detail: RouterStaleDetail{Router: r.ID, LastSeen: r.LastSeen, StaleAfterSeconds: int(RouterStaleAfter / time.Second), Expired: expired},
	})
}
