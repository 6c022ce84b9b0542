// Package httperr is the one table from domain error codes to HTTP
// statuses, and the JSON envelope every HTTP face of switchback answers an
// error with: the API (internal/httpapi), the UI (internal/webui) and the
// ingress router's webhook endpoint (internal/ingress).
//
// It lives apart from internal/httpapi so that the router can answer with
// the same table without importing the API's handlers, and through them
// the control service. It imports the domain and the standard library only.
package httperr

import (
	"encoding/json"
	"errors"
	"net/http"
	"strconv"

	"github.com/switchbackhq/switchback/internal/domain"
)

// statuses maps every error code to its HTTP status: the one table.
// Codes missing from it answer 500.
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
	domain.CodeStoreUnavailable:  http.StatusServiceUnavailable,

	domain.CodeMethodNotAllowed: http.StatusMethodNotAllowed,
	domain.CodeRequestTimeout:   http.StatusRequestTimeout,
	domain.CodeTooLarge:         http.StatusRequestEntityTooLarge,
	domain.CodeUnsupportedMedia: http.StatusUnsupportedMediaType,

	domain.CodeUnknownPSA:         http.StatusUnauthorized,
	domain.CodeNoSecret:           http.StatusUnauthorized,
	domain.CodeInvalidSecret:      http.StatusUnauthorized,
	domain.CodeMissingSignature:   http.StatusUnauthorized,
	domain.CodeBadSignature:       http.StatusUnauthorized,
	domain.CodeBadTimestamp:       http.StatusUnauthorized,
	domain.CodeStaleTimestamp:     http.StatusUnauthorized,
	domain.CodeMissingCredentials: http.StatusUnauthorized,
	domain.CodeBadCredentials:     http.StatusUnauthorized,
	domain.CodeKeyRefused:         http.StatusUnauthorized,
	domain.CodeMissingCompany:     http.StatusUnauthorized,
	domain.CodeWrongCompany:       http.StatusUnauthorized,
	domain.CodeMalformedBody:      http.StatusBadRequest,

	domain.CodeKeyUnavailable:     http.StatusTooManyRequests,
	domain.CodeRouterStarting:     http.StatusTooManyRequests,
	domain.CodeSnapshotNotCurrent: http.StatusTooManyRequests,
	domain.CodeRouterBacklogged:   http.StatusTooManyRequests,
	domain.CodeJournalBusy:        http.StatusTooManyRequests,
}

// Status returns the HTTP status for err's code, 500 for an error without
// a code or with a code the table does not know.
func Status(err error) int {
	if status, ok := statuses[domain.ErrorCode(err)]; ok {
		return status
	}
	return http.StatusInternalServerError
}

// Body is the error inside the envelope {"error": {"code", "message"}}.
type Body struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// BodyOf returns err's code and client-safe message; an internal error's
// cause is never in it.
func BodyOf(err error) Body {
	return Body{Code: domain.ErrorCode(err), Message: domain.ErrorMessage(err)}
}

// SetRetryAfter sets the Retry-After header, in whole seconds and at least
// one, when err asks the client to retry later.
func SetRetryAfter(w http.ResponseWriter, err error) {
	var e *domain.Error
	if !errors.As(err, &e) || e.RetryAfter <= 0 {
		return
	}
	secs := int64(e.RetryAfter.Seconds())
	if secs < 1 {
		secs = 1
	}
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
}

// Write answers err: its status, Retry-After when it asks for a retry, and
// the envelope {"error": {"code", "message"}}. It does not log; the caller
// logs internal causes once, at its edge.
func Write(w http.ResponseWriter, err error) {
	SetRetryAfter(w, err)
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(Status(err))
	json.NewEncoder(w).Encode(map[string]Body{"error": BodyOf(err)})
}
