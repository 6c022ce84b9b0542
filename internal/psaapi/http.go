package psaapi

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// MaxPageBytes bounds one answer of a PSA: a longer one fails with
// ErrMalformed rather than filling memory.
const MaxPageBytes = 10 << 20

// retryPolicy says how a caller waits between attempts of one request.
type retryPolicy struct {
	attempts      int           // attempts per request, the first included
	base, max     time.Duration // capped exponential backoff without Retry-After
	maxRetryAfter time.Duration // a longer Retry-After ends the request with ErrUnavailable
	now           func() time.Time
	sleep         func(ctx context.Context, d time.Duration) error
	jitter        func(d time.Duration) time.Duration // uniform in [0, d)
}

func defaultRetry() retryPolicy {
	return retryPolicy{
		attempts:      6,
		base:          500 * time.Millisecond,
		max:           30 * time.Second,
		maxRetryAfter: 2 * time.Minute,
		now:           time.Now,
		sleep:         sleepCtx,
		jitter: func(d time.Duration) time.Duration {
			if d <= 0 {
				return 0
			}
			return rand.N(d)
		},
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// backoff is the wait before attempt n+1 (n from 1): half of the capped
// exponential step plus a random part up to the other half, so that
// clients refused together do not come back together.
func (r retryPolicy) backoff(n int) time.Duration {
	d := r.max
	if n < 30 {
		if step := r.base << (n - 1); step < r.max {
			d = step
		}
	}
	return d/2 + r.jitter(d/2)
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func (r retryPolicy) retryAfter(v string) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		// A day is as good as forever here (it exceeds maxRetryAfter),
		// and keeps the Duration from overflowing.
		if s > 86400 {
			s = 86400
		}
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(r.now()), 0), true
	}
	return 0, false
}

// caller sends the requests of one Source.
type caller struct {
	hc    *http.Client
	retry retryPolicy
	psa   domain.PSA
}

// get sends the request that build makes (once per attempt) and returns
// the body of its 200 answer. It retries 429, 502, 503, 504 and transport
// errors up to retry.attempts times, waiting Retry-After when the PSA
// gives one and the backoff otherwise. Errors wrap ErrCredentialsRefused
// (401, 403), ErrRefused (another status), ErrUnavailable, ErrMalformed
// (a body over MaxPageBytes) or ctx's error, and name the request by what.
func (c *caller) get(ctx context.Context, what string, build func(context.Context) (*http.Request, error)) ([]byte, error) {
	for n := 1; ; n++ {
		req, err := build(ctx)
		if err != nil {
			return nil, fmt.Errorf("psaapi: %s: %s: %w", c.psa, what, err)
		}
		wait, retryable, body, err := c.once(req)
		if err == nil {
			return body, nil
		}
		if ctx.Err() != nil {
			return nil, fmt.Errorf("psaapi: %s: %s: %w", c.psa, what, ctx.Err())
		}
		if !retryable {
			return nil, fmt.Errorf("psaapi: %s: %s: %w", c.psa, what, err)
		}
		last := err.Error()
		if wait > c.retry.maxRetryAfter {
			return nil, fmt.Errorf("psaapi: %s: %s: %w: asked to wait %s: %s", c.psa, what, ErrUnavailable, wait, last)
		}
		if n >= c.retry.attempts {
			return nil, fmt.Errorf("psaapi: %s: %s: %w after %d attempts: %s", c.psa, what, ErrUnavailable, n, last)
		}
		if wait < 0 {
			wait = c.retry.backoff(n)
		}
		if err := c.retry.sleep(ctx, wait); err != nil {
			return nil, fmt.Errorf("psaapi: %s: %s: %w", c.psa, what, err)
		}
	}
}

// once sends req. On failure it says whether to try again and after how
// long (negative: the backoff's choice).
func (c *caller) once(req *http.Request) (wait time.Duration, retryable bool, body []byte, err error) {
	resp, err := c.hc.Do(req)
	if err != nil {
		return -1, true, nil, redactURL(err)
	}
	defer resp.Body.Close()
	switch code := resp.StatusCode; {
	case code == http.StatusOK:
		body, err := io.ReadAll(io.LimitReader(resp.Body, MaxPageBytes+1))
		if err != nil {
			return -1, true, nil, fmt.Errorf("reading the answer: %w", err)
		}
		if len(body) > MaxPageBytes {
			return 0, false, nil, fmt.Errorf("%w: answer larger than %d bytes", ErrMalformed, MaxPageBytes)
		}
		return 0, false, body, nil
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		drain(resp.Body)
		return 0, false, nil, &statusError{code: code, kind: ErrCredentialsRefused}
	case code == http.StatusTooManyRequests || code == http.StatusBadGateway ||
		code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
		drain(resp.Body)
		wait := time.Duration(-1)
		if d, ok := c.retry.retryAfter(resp.Header.Get("Retry-After")); ok {
			wait = d
		}
		return wait, true, nil, fmt.Errorf("HTTP %d", code)
	default:
		drain(resp.Body)
		return 0, false, nil, &statusError{code: code, kind: ErrRefused}
	}
}

// redactURL makes the URL that net/http quotes in a transport error the
// scheme and host alone. A generic feed's path may be its token, and a
// query may hold a tenant or a PSA's opaque cursor; the error reaches the
// log and a reconciliation's answer, which show neither.
func redactURL(err error) error {
	var ue *url.Error
	if !errors.As(err, &ue) {
		return err
	}
	host := "(unparsable URL)"
	if u, perr := url.Parse(ue.URL); perr == nil && u.Host != "" {
		host = (&url.URL{Scheme: u.Scheme, Host: u.Host}).String()
	}
	// A copy keeps Timeout and Unwrap; ue.Err names a host at most
	// (dial tcp 10.0.0.1:443, x509 …), never a path.
	return &url.Error{Op: ue.Op, URL: host, Err: ue.Err}
}

// statusError is a refusal by HTTP status; it wraps its kind.
type statusError struct {
	code int
	kind error
}

func (e *statusError) Error() string { return fmt.Sprintf("%v (HTTP %d)", e.kind, e.code) }
func (e *statusError) Unwrap() error { return e.kind }

// statusOf returns the HTTP status of a refusal in err's chain, or 0.
func statusOf(err error) int {
	var se *statusError
	if errors.As(err, &se) {
		return se.code
	}
	return 0
}

// drain reads a little of a refused answer so the connection may be
// reused; the body itself is never quoted (it might echo a credential).
func drain(r io.Reader) { _, _ = io.Copy(io.Discard, io.LimitReader(r, 64<<10)) }

// malformed wraps a decoding failure of a page.
func malformed(what string, psa domain.PSA, err error) error {
	return fmt.Errorf("psaapi: %s: %s: %w: %v", psa, what, ErrMalformed, err)
}

// pageRepeats helps the page-number APIs (ConnectWise, HaloPSA) notice a
// PSA that answers the same page whatever page is asked.
type pageRepeats struct {
	prev [sha256.Size]byte
	seen bool
}

func (p *pageRepeats) same(body []byte) bool {
	h := sha256.Sum256(body)
	same := p.seen && h == p.prev
	p.prev, p.seen = h, true
	return same
}
