package httpapi

import (
	"net/http"
	"strconv"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// stream serves the snapshot as Server-Sent Events: the whole snapshot on
// connect (unless Last-Event-ID already names the current version) and on
// every new version, and a heartbeat comment in between.
//
// Each subscriber is served by its own goroutine that, when woken, sends the
// newest state: a subscriber that falls behind skips to the newest version,
// and a slow one delays nobody else. A write that cannot complete within
// the write timeout ends the subscription.
func (a *API) stream(w http.ResponseWriter, r *http.Request, p principal) error {
	rc := http.NewResponseController(w)
	// sent is the version the subscriber holds; -1 when it holds none.
	sent := int64(-1)
	if v, err := strconv.ParseInt(r.Header.Get("Last-Event-ID"), 10, 64); err == nil && v >= 0 {
		sent = v
	}
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
		rc.SetWriteDeadline(time.Now().Add(a.opts.StreamWriteTimeout))
		for _, b := range parts {
			if _, err := w.Write(b); err != nil {
				return false
			}
		}
		return rc.Flush() == nil
	}
	for {
		st, changed := a.svc.Changed()
		if int64(st.Version) > sent {
			id := strconv.AppendUint([]byte("id: "), st.Version, 10)
			if !write(id, []byte("\nevent: snapshot\ndata: "), st.SnapshotJSON(secrets), []byte("\n\n")) {
				return nil
			}
			sent = int64(st.Version)
		}
		select {
		case <-changed:
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
