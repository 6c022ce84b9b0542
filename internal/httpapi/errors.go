package httpapi

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// Codes the transport adds to the domain's.
const (
	codeBodyTooLarge     = "body_too_large"
	codeUnsupportedMedia = "unsupported_media_type"
	codeMethodNotAllowed = "method_not_allowed"
)

// statuses maps every error code to its HTTP status: the one table.
var statuses = map[string]int{
	domain.CodeInvalid:           http.StatusBadRequest,
	domain.CodeUnauthenticated:   http.StatusUnauthorized,
	domain.CodePermissionDenied:  http.StatusForbidden,
	domain.CodeNotFound:          http.StatusNotFound,
	domain.CodeConflict:          http.StatusConflict,
	domain.CodeInvalidTransition: http.StatusConflict,
	domain.CodeGateRefused:       http.StatusConflict,
	domain.CodeMigrationReverted: http.StatusConflict,
	domain.CodeInternal:          http.StatusInternalServerError,
	codeBodyTooLarge:             http.StatusRequestEntityTooLarge,
	codeUnsupportedMedia:         http.StatusUnsupportedMediaType,
	codeMethodNotAllowed:         http.StatusMethodNotAllowed,
}

type errorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Status returns the HTTP status for err's code: the one table that every
// HTTP face of switchback (the API, the UI) answers with.
func Status(err error) int {
	if status, ok := statuses[domain.ErrorCode(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// writeError answers err; internal causes are logged here, once, and never
// sent.
func writeError(w http.ResponseWriter, r *http.Request, log *slog.Logger, err error) {
	code := domain.ErrorCode(err)
	status := Status(err)
	if status >= 500 {
		log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	if code == domain.CodeUnauthenticated {
		w.Header().Set("WWW-Authenticate", `Bearer realm="switchback"`)
	}
	body := map[string]any{"error": errorBody{Code: code, Message: domain.ErrorMessage(err)}}
	var gr *control.GateRefusedError
	if errors.As(err, &gr) {
		body["gate"] = gr.Report
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(v)
}
