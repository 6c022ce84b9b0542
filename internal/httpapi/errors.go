package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
	"github.com/switchbackhq/switchback/internal/httperr"
)

// writeError answers err with the status of httperr's table; internal
// causes are logged here, once, and never sent. A gate_refused error's
// report goes under "gate", beside "error".
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	status := httperr.Status(err)
	if status >= 500 {
		// A domain error's text is what the client sees: log its cause.
		cause := err
		var de *domain.Error
		if errors.As(err, &de) && de.Err != nil {
			cause = de.Err
		}
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err, "cause", cause)
	}
	if domain.ErrorCode(err) == domain.CodeUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchback"`)
	}
	httperr.SetRetryAfter(w, err)
	body := map[string]any{"error": httperr.BodyOf(err)}
	var e *domain.Error
	if errors.As(err, &e) {
		if rep, ok := e.Detail.(gate.Report); ok {
			body["gate"] = rep
		}
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
