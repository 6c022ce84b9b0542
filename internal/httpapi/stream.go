package httpapi

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// stream serves the snapshot as Server-Sent Events: the whole snapshot on
// connect (unless Last-Event-ID already names the current version: then an
// event "current"), and on every new version, and a heartbeat comment in
// between. Last-Event-ID is "STORE:VERSION" from flags providers, or a
// version alone; a snapshot of another store, or a version that this store
// does not have now (it went back), gets the current snapshot, so that the
// subscriber learns it.
//
// A subscriber that asks for deltas (?deltas=1) gets, after a whole
// snapshot, an event "delta" for each new version whose predecessor it
// holds: the changes alone, computed once per version however many
// subscribers there are. When it holds anything else (it fell behind, the
// store changed), it gets the whole snapshot as everyone else, and so on
// connect: a version named by Last-Event-ID is trusted for "current", not
// as the base of changes.
//
// Each subscriber is served by its own goroutine that, when woken, sends the
// newest state: a subscriber that falls behind skips to the newest version,
// and a slow one delays nobody else. A write that cannot complete within
// the write timeout ends the subscription.
func (a *API) stream(w http.ResponseWriter, r *http.Request, p principal) error {
	rc := http.NewResponseController(w)
	// A router moving here from another replica may hold a version this
	// replica has not followed yet: catch up first rather than offer it
	// an older one. A replica that cannot reach its shared store sends the
	// router on to another (503); one that becomes stale ends the stream.
	if err := a.svc.Available(); err != nil {
		return err
	}
	if err := a.svc.CatchUp(r.Context()); err != nil {
		return err
	}
	// sent is the version the subscriber holds; -1 when it holds none of
	// this store's.
	sent := heldVersion(r.Header.Get("Last-Event-ID"), a.svc.State().StoreID)
	// sentStore is the store of the version sent, for deltas: a delta
	// applies only to its base version of its own store.
	sentStore := a.svc.State().StoreID
	deltas := r.URL.Query().Get("deltas") == "1"
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return nil // the client is gone
	}
	a.subscribers.Inc()
	defer a.subscribers.Dec()

	secrets := p.role == domain.RoleRouter
	heartbeat := time.NewTicker(a.opts.Heartbeat)
	defer heartbeat.Stop()
	write := func(parts ...[]byte) bool {
		// A connection's deadline is an instant the runtime's poller
		// compares with the real clock, never an injected one.
		rc.SetWriteDeadline(time.Now().Add(a.opts.StreamWriteTimeout))
		for _, b := range parts {
			if _, err := w.Write(b); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	for first := true; ; first = false {
		st, changed := a.svc.Changed()
		if int64(st.Version) != sent {
			id := strconv.AppendUint([]byte("id: "), st.Version, 10)
			event, data := "\nevent: snapshot\ndata: ", []byte(nil)
			if deltas && !first && sent >= 0 && st.StoreID == sentStore {
				if b, base, ok := st.DeltaJSON(secrets); ok && int64(base) == sent {
					event, data = "\nevent: delta\ndata: ", b
				}
			}
			if data == nil {
				data = st.SnapshotJSON(secrets)
			}
			if !write(id, []byte(event), data, []byte("\n\n")) {
				return nil
			}
			sent, sentStore = int64(st.Version), st.StoreID
		} else if first {
			if !write(strconv.AppendUint([]byte("event: current\ndata: "), st.Version, 10), []byte("\n\n")) {
				return nil
			}
		}
		select {
		case <-changed:
			if _, stale := a.svc.Stale(); stale {
				return nil
			}
		case <-heartbeat.C:
			if !write([]byte(": ping\n\n")) {
				return nil
			}
		case <-r.Context().Done():
			return nil
		case <-a.closing:
			return nil
		}
	}
}

// heldVersion reads a Last-Event-ID: the version held if it is of the store
// storeID (or names no store), else -1.
func heldVersion(lastID, storeID string) int64 {
	if i := strings.LastIndexByte(lastID, ':'); i >= 0 {
		if lastID[:i] != storeID {
			return -1
		}
		lastID = lastID[i+1:]
	}
	v, err := strconv.ParseInt(lastID, 10, 64)
	if err != nil || v < 0 {
		return -1
	}
	return v
}
