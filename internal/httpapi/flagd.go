package httpapi

import (
	"net/http"
)

// flagdFlags serves the migrations as flagd flag definitions (package
// flagd), for a flagd daemon's HTTP sync source: every migration, or the
// one named by ?selector=KEY. The ETag is a hash of the document, so a
// source polling with If-None-Match gets 304 until the flags change.
func (a *API) flagdFlags(w http.ResponseWriter, r *http.Request, _ principal) error {
	doc, err := a.flagd.Get(a.svc.State().Flags(), r.URL.Query().Get("selector"))
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("ETag", doc.ETag)
	h.Set("Cache-Control", "no-cache")
	if etagMatch(r.Header.Get("If-None-Match"), doc.ETag) {
		w.WriteHeader(http.StatusNotModified)
		return nil
	}
	h.Set("Content-Type", "application/json")
	w.Write(doc.JSON)
	return nil
}
