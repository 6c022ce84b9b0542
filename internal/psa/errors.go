package psa

import (
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// A rejected delivery is a *domain.Error whose code (see the webhook codes
// in package domain) says why, and whose status is in internal/httperr's
// table: 401 when the delivery is unsigned, wrongly signed or cannot be
// verified (nothing of it was parsed), 400 with domain.CodeMalformedBody
// when it is authentic but malformed, and 429 only with
// domain.CodeKeyUnavailable, which carries a RetryAfter (ConnectWise
// retries 429 and drops a callback answered with anything else but
// 404/409/419). Never 413: the caller caps bodies. Its Message is safe to
// show to the sender: it never holds a secret, a signature or a
// credential. The cause, when there is one, is for logs only.

// keyRetryAfter is how long a sender should wait after key_unavailable: a
// key endpoint that failed may well answer a few seconds later.
const keyRetryAfter = 5 * time.Second

func unauthorized(code, format string, args ...any) *domain.Error {
	return domain.Errorf(code, format, args...)
}

func malformed(format string, args ...any) *domain.Error {
	return domain.Errorf(domain.CodeMalformedBody, format, args...)
}
