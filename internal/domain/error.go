package domain

import (
	"errors"
	"fmt"
	"time"
)

// Error codes: the one list. Each maps to one HTTP status in the table of
// internal/httperr, which the API, the UI and the webhook endpoint share; the
// code is part of the API contract (docs/api.md), so never rename one.
const (
	CodeInvalid           = "invalid_argument"
	CodeUnauthenticated   = "unauthenticated"
	CodePermissionDenied  = "permission_denied"
	CodeNotFound          = "not_found"
	CodeConflict          = "conflict"
	CodeInvalidTransition = "invalid_transition"
	CodeGateRefused       = "gate_refused"
	CodeMigrationReverted = "migration_reverted"
	CodeInternal          = "internal"
	// CodeStoreUnavailable: a replica cannot reach its shared store (etcd)
	// now; the change was not made and may be sent again (Retry-After).
	CodeStoreUnavailable = "store_unavailable"

	// Codes of the HTTP transport itself, raised before a request reaches
	// a handler's rules.
	CodeMethodNotAllowed = "method_not_allowed"
	CodeRequestTimeout   = "request_timeout"
	CodeTooLarge         = "body_too_large"
	CodeUnsupportedMedia = "unsupported_media_type"
)

// Codes of the webhook endpoint: a delivery that is not verified (401), that
// cannot be read (400), or that cannot be taken now. Every "retry later" is a
// 429 with a RetryAfter, never a 5xx: every PSA retries a 429, and
// ConnectWise drops a callback answered with anything else but 404/409/419.
const (
	// CodeUnknownPSA: the partner's PSA kind is none the router knows.
	CodeUnknownPSA = "unknown_psa"
	// CodeNoSecret: the scheme needs a secret and the partner has none
	// configured (nor, for ConnectWise, a key cache to fetch one with).
	CodeNoSecret = "no_secret"
	// CodeInvalidSecret: the configured secret is not in the scheme's
	// format (see package psa), so nothing can be verified.
	CodeInvalidSecret = "invalid_secret"
	// CodeMissingSignature: a header the signature scheme needs is absent.
	CodeMissingSignature = "missing_signature"
	// CodeBadSignature: no signature matches the body.
	CodeBadSignature = "bad_signature"
	// CodeBadTimestamp: the Standard Webhooks timestamp is not Unix seconds.
	CodeBadTimestamp = "bad_timestamp"
	// CodeStaleTimestamp: the Standard Webhooks timestamp is more than five
	// minutes from now, in either direction.
	CodeStaleTimestamp = "stale_timestamp"
	// CodeMissingCredentials: a HaloPSA delivery has no Authorization header.
	CodeMissingCredentials = "missing_credentials"
	// CodeBadCredentials: a HaloPSA delivery's Authorization header does not
	// match the configured credentials.
	CodeBadCredentials = "bad_credentials"
	// CodeKeyRefused: the ConnectWise signing key cannot be used: its
	// Metadata.key_url is missing, not https, not on an allowed host, or the
	// key endpoint redirected, answered too much, a 4xx or no signing_key.
	CodeKeyRefused = "key_refused"
	// CodeMissingCompany: the partner is bound to a ConnectWise company and
	// the callback names none (no CompanyId, no ProductInstanceId).
	CodeMissingCompany = "missing_company"
	// CodeWrongCompany: the partner is bound to a ConnectWise company and
	// the callback is for another one.
	CodeWrongCompany = "wrong_company"

	// CodeMalformedBody: the delivery cannot be read: its body could not be
	// received, or it is authentic but not JSON, or a required field
	// (entity type, action, entity id) is missing.
	CodeMalformedBody = "malformed_body"

	// CodeKeyUnavailable: fetching the ConnectWise signing key failed in a
	// way that may pass (network error, timeout, 429 or 5xx from the key
	// endpoint).
	CodeKeyUnavailable = "key_unavailable"
	// CodeRouterStarting: the router has no snapshot yet.
	CodeRouterStarting = "router_starting"
	// CodeSnapshotNotCurrent: the partner is not in the router's snapshot,
	// which may not be the control service's latest.
	CodeSnapshotNotCurrent = "snapshot_not_current"
	// CodeRouterBacklogged: the router's delivery backlog is full.
	CodeRouterBacklogged = "router_backlogged"
	// CodeJournalBusy: the journal refused an append it may take later.
	CodeJournalBusy = "journal_busy"
)

// Error is the one error type of the domain. Message is safe to show to a
// client; Err, the cause, is for logs only and never printed by Error.
type Error struct {
	Code    string
	Message string
	// RetryAfter, when positive, is how long the client should wait before
	// sending the request again (an HTTP answer's Retry-After).
	RetryAfter time.Duration
	// Detail is structured data safe to show beside the message, such as
	// the gate report of a gate_refused error; nil for most errors.
	Detail any
	Err    error
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with the given code and a formatted message.
func Errorf(code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Internal wraps an unexpected cause; clients see only "internal error".
func Internal(op string, err error) *Error {
	return &Error{Code: CodeInternal, Message: "internal error", Err: fmt.Errorf("%s: %w", op, err)}
}

// ErrorCode returns the code of err's *Error, or CodeInternal when it has none.
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// ErrorMessage returns the client-safe message of err.
func ErrorMessage(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Code != CodeInternal {
		return e.Message
	}
	return "internal error"
}
