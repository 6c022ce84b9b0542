package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
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
	"github.com/switchbackhq/switchback/internal/wire"
)

// userAgent names switchback to receivers.
const userAgent = "switchback-notify/1"

// attempt is what one POST came to.
type attempt struct {
	status     int           // the answer's status, 0 without one
	err        string        // why it failed; "" when delivered
	retry      bool          // worth another attempt
	retryAfter time.Duration // the receiver's Retry-After, 0 if none
}

// deliver makes the attempts of one notice to l's target, recording each
// in the item's delivery, until one delivers, one fails for good, the
// attempts run out, the target is deleted or ctx ends (the delivery is
// then left as it was: lost with the process).
func (n *Notifier) deliver(ctx context.Context, l *lane, it *item) {
	for try := 1; ; try++ {
		t, ok := n.target(l.name)
		if !ok {
			n.finish(l, it, wire.DeliveryFailed, errDeleted)
			return
		}
		a := n.post(ctx, t, it.notice)
		if ctx.Err() != nil {
			return
		}
		n.mu.Lock()
		it.rec.Attempts, it.rec.Status, it.rec.Error, it.rec.LastAttempt, it.rec.NextAttempt = try, a.status, a.err, time.Now().UTC(), time.Time{}
		n.mu.Unlock()
		switch {
		case a.err == "":
			n.finish(l, it, wire.DeliveryDelivered, "")
			return
		case !a.retry:
			n.finish(l, it, wire.DeliveryFailed, a.err)
			return
		case try >= n.opts.Attempts:
			n.finish(l, it, wire.DeliveryFailed, fmt.Sprintf("gave up after %d attempts; the last: %s", try, a.err))
			return
		}
		wait := n.backoff(try, a.retryAfter)
		n.mu.Lock()
		it.rec.State, it.rec.NextAttempt = wire.DeliveryRetrying, time.Now().Add(wait).UTC()
		l.totals.Retries++
		n.mu.Unlock()
		n.metrics.WithLabelValues(l.name, "retried").Inc()
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-l.stop:
			timer.Stop()
			n.finish(l, it, wire.DeliveryFailed, errDeleted)
			return
		case <-timer.C:
		}
	}
}

// finish ends a delivery in state, counts it and logs a failure.
func (n *Notifier) finish(l *lane, it *item, state, why string) {
	n.mu.Lock()
	it.rec.State, it.rec.NextAttempt = state, time.Time{}
	if why != "" {
		it.rec.Error = why
	}
	attempts := it.rec.Attempts
	if state == wire.DeliveryDelivered {
		l.totals.Delivered++
	} else {
		l.totals.Failed++
	}
	n.mu.Unlock()
	if state == wire.DeliveryDelivered {
		n.metrics.WithLabelValues(l.name, "delivered").Inc()
		n.opts.Log.Debug("notification delivered", "target", l.name, "notice", it.notice.ID, "event", it.notice.Event, "attempts", attempts)
		return
	}
	if why != errDeleted {
		// A deleted target's series are gone (Prune): not a receiver's
		// failure.
		n.metrics.WithLabelValues(l.name, "failed").Inc()
	}
	n.opts.Log.Warn("notification failed", "target", l.name, "notice", it.notice.ID, "event", it.notice.Event, "attempts", attempts, "err", why)
}

// backoff is the wait after attempt try: Backoff doubled try-1 times, at
// most MaxBackoff, drawn between half and all of it; at least the
// receiver's Retry-After, at most MaxRetryAfter.
func (n *Notifier) backoff(try int, retryAfter time.Duration) time.Duration {
	d := n.opts.Backoff
	for i := 1; i < try && d < n.opts.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, n.opts.MaxBackoff)
	d = d/2 + rand.N(d/2+1)
	return max(d, min(retryAfter, n.opts.MaxRetryAfter))
}

// post makes one attempt of notice to t, within Timeout.
func (n *Notifier) post(ctx context.Context, t domain.Notifier, notice domain.Notice) attempt {
	body, err := Body(t.Format, notice)
	if err != nil {
		return attempt{err: "the notice does not encode: " + err.Error()}
	}
	actx, cancel := context.WithTimeout(ctx, n.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodPost, t.URL, bytes.NewReader(body))
	if err != nil {
		return attempt{err: "the target's url is not usable"}
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", userAgent)
	if t.Format == domain.FormatStandard {
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		sig, err := Sign(t.Secret, notice.ID, ts, body)
		if err != nil {
			return attempt{err: "the target's secret is not usable: put a new one"}
		}
		req.Header.Set("webhook-id", notice.ID)
		req.Header.Set("webhook-timestamp", ts)
		req.Header.Set("webhook-signature", sig)
	}
	resp, err := n.opts.Client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			return attempt{err: fmt.Sprintf("no answer within %s", n.opts.Timeout), retry: true}
		}
		return attempt{err: netError(err), retry: true}
	}
	// Read a little of the answer, so the connection may be kept; what it
	// says is the receiver's, never shown.
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
	resp.Body.Close()
	a := attempt{status: resp.StatusCode}
	switch code := resp.StatusCode; {
	case code >= 200 && code < 300:
	case code >= 300 && code < 400:
		a.err = fmt.Sprintf("HTTP %d, a redirect: redirects are not followed; set the target's url to where it points", code)
	case code == http.StatusGone:
		a.err = "HTTP 410 Gone: the receiver no longer takes these; fix the target's url or delete the target"
	case code == http.StatusTooManyRequests || code == http.StatusRequestTimeout || code >= 500:
		a.err, a.retry, a.retryAfter = fmt.Sprintf("HTTP %d", code), true, retryAfter(resp.Header.Get("Retry-After"))
	default:
		a.err = fmt.Sprintf("HTTP %d: not retried; check the target's url and secret", code)
	}
	return a
}

// netError is a network error without the request's URL, whose path may
// be a credential: url.Error's inner error names the host at most.
func netError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	s := err.Error()
	if len(s) > 300 {
		s = s[:300] + "…"
	}
	return s
}

// retryAfter reads a Retry-After header: seconds, or an HTTP date.
func retryAfter(v string) time.Duration {
	if v == "" {
		return 0
	}
	if s, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && s > 0 {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(0, time.Until(t))
	}
	return 0
}

// Body is what a delivery of notice posts in format: wire.NoticeWebhook
// for standard, wire.SlackMessage with the text escaped for Slack for
// slack.
func Body(format string, notice domain.Notice) ([]byte, error) {
	if format == domain.FormatSlack {
		return json.Marshal(wire.SlackMessage{Text: slackEscape(notice.Text)})
	}
	return json.Marshal(wire.NoticeWebhook{Type: notice.Event, Timestamp: notice.At, Data: notice})
}

// slackEscape escapes what Slack reads as markup (links, mentions such as
// <!channel>): a partner id or an event id in a text is shown as written.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

// Sign returns the webhook-signature of a Standard Webhooks delivery:
// "v1," and the base64 of HMAC-SHA256 over id.timestamp.body, keyed by
// the secret's key (domain.NotifierKey, whose error it returns).
func Sign(secret, id, timestamp string, body []byte) (string, error) {
	key, err := domain.NotifierKey(secret)
	if err != nil {
		return "", err
	}
	mac := hmac.New(sha256.New, key)
	mac.Write([]byte(id + "." + timestamp + "."))
	mac.Write(body)
	return "v1," + base64.StdEncoding.EncodeToString(mac.Sum(nil)), nil
}
