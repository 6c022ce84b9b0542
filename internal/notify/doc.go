// Package notify delivers the control service's notices (domain.Notice)
// to the notification targets (domain.Notifier) that ask for their
// events: signed per Standard Webhooks, or as a Slack incoming webhook's
// message, with retries, and a delivery status kept in memory.
//
// # Never in the way
//
// Notifier.Send is what control.Service.OnNotice calls, on the goroutine
// of the change it reports (a revert, the guard's included): it only
// matches the notice against the current targets and appends it to each
// target's queue, under one short lock, and returns. Each target has one
// worker, which posts its queue in order; a target that hangs or fails
// holds up only its own queue. A queue holds Options.QueueSize notices:
// when it is full the oldest queued notice is dropped for the newer one,
// and its delivery says so (state dropped, and the outcome "dropped" of
// switchback_notifications_total).
//
// # One delivery
//
// A worker takes the target as the control service holds it at each
// attempt: a secret rotated or a URL changed meanwhile applies to the
// next attempt, and a target deleted meanwhile ends its deliveries
// (failed). A standard delivery POSTs wire.NoticeWebhook, signed: headers
// webhook-id (the notice's id, the same on every attempt),
// webhook-timestamp (the attempt's Unix seconds) and webhook-signature
// ("v1," and the base64 of HMAC-SHA256 over id.timestamp.body, keyed by
// the secret's key, domain.NotifierKey). A slack delivery POSTs
// wire.SlackMessage with the notice's text, &, < and > escaped as Slack
// asks, unsigned.
//
// Each attempt is bounded by Options.Timeout. A 2xx answer delivers; a
// network error, a timeout, 408, 429 and 5xx are retried after a wait
// that doubles from Options.Backoff up to Options.MaxBackoff, each drawn
// between half and all of it (jitter), and at least the Retry-After of a
// 429 or 503 (up to Options.MaxRetryAfter), up to Options.Attempts
// attempts in all; any other answer (a redirect, which is never
// followed, 410 Gone, another 4xx) fails at once.
//
// # Status
//
// Each target keeps its last Options.Keep deliveries and its totals, in
// memory (wire.NotificationStatus): a restart forgets them, and the
// notices still queued or waiting for a retry are lost. On replicas each
// replica delivers the notices of the changes it made and shows those.
package notify
