package psa

import (
	"fmt"
	"net/http"
)

// Error codes. The code is part of the ingress API's answers and its
// metrics, so never rename one.
const (
	// CodeUnknownPSA: the partner's PSA kind is none this package knows.
	CodeUnknownPSA = "unknown_psa"
	// CodeNoSecret: the scheme needs a secret and the partner has none
	// configured (nor, for ConnectWise, a key cache to fetch one with).
	CodeNoSecret = "no_secret"
	// CodeInvalidSecret: the configured secret is not in the scheme's
	// format (see the package documentation), so nothing can be verified.
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
	// CodeKeyUnavailable: fetching the ConnectWise signing key failed in a
	// way that may pass (network error, timeout, 429 or 5xx from the key
	// endpoint). Its Status is 429 so that ConnectWise retries the callback.
	CodeKeyUnavailable = "key_unavailable"
	// CodeMissingCompany: the partner is bound to a ConnectWise company and
	// the callback names none (no CompanyId, no ProductInstanceId).
	CodeMissingCompany = "missing_company"
	// CodeWrongCompany: the partner is bound to a ConnectWise company and
	// the callback is for another one.
	CodeWrongCompany = "wrong_company"
	// CodeMalformedBody: the delivery is authentic but cannot be read: not
	// JSON, or a required field (entity type, action, entity id) is missing.
	CodeMalformedBody = "malformed_body"
)

// Error is a rejected delivery. Status is the HTTP status to answer:
// 401 when the delivery is unsigned, wrongly signed or cannot be verified
// (nothing of it was parsed), 400 when it is authentic but malformed, and
// 429 only with CodeKeyUnavailable (ConnectWise retries 429 and drops a
// callback answered with anything else but 404/409/419). Never 413: the
// caller caps bodies. Message is safe to show to the sender: it never holds
// a secret, a signature or a credential. The cause, when there is one, is
// for logs only and reached with errors.Unwrap.
type Error struct {
	Status  int
	Code    string
	Message string

	err error
}

// Error returns the code and the message, never the cause.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Unwrap returns the cause, if any (a network error fetching a key, say).
func (e *Error) Unwrap() error { return e.err }

func unauthorized(code, format string, args ...any) *Error {
	return &Error{Status: http.StatusUnauthorized, Code: code, Message: fmt.Sprintf(format, args...)}
}

func malformed(format string, args ...any) *Error {
	return &Error{Status: http.StatusBadRequest, Code: CodeMalformedBody, Message: fmt.Sprintf(format, args...)}
}
