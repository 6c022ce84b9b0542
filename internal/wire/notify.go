package wire

import (
	"net/url"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// NotificationTarget is a notification target as the API, the UI, the
// CLI and the audit log show it: never its secret (HasSecret says whether
// one is set) nor its URL's path and query, which may be a credential (a
// Slack incoming webhook's path is): URL is the scheme and host only,
// followed by "/…" when the URL has more.
type NotificationTarget struct {
	Name      string    `json:"name"`
	URL       string    `json:"url"`
	Host      string    `json:"host"`
	Events    []string  `json:"events"`
	Format    string    `json:"format"`
	HasSecret bool      `json:"hasSecret"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// TargetOf is the one view of a target that leaves the control service:
// every answer and audit entry about a target goes through it.
func TargetOf(n domain.Notifier) NotificationTarget {
	return NotificationTarget{Name: n.Name, URL: RedactURL(n.URL), Host: n.Host(), Events: append([]string{}, n.Events...),
		Format: n.Format, HasSecret: n.Secret != "", CreatedAt: n.CreatedAt, UpdatedAt: n.UpdatedAt}
}

// RedactURL returns u's scheme and host, and "/…" when u has a path,
// query or user info beyond them: what may be shown of a URL that may
// carry a credential.
func RedactURL(u string) string {
	p, err := url.Parse(u)
	if err != nil || p.Scheme == "" || p.Host == "" {
		return "…"
	}
	out := p.Scheme + "://" + p.Host
	if (p.Path != "" && p.Path != "/") || p.RawQuery != "" || p.User != nil || p.Fragment != "" {
		out += "/…"
	}
	return out
}

// The states of a delivery of one notice to one target.
const (
	// DeliveryQueued: waiting behind the target's earlier deliveries.
	DeliveryQueued = "queued"
	// DeliveryRetrying: an attempt failed and another is due (NextAttempt).
	DeliveryRetrying = "retrying"
	// DeliveryDelivered: the target answered 2xx.
	DeliveryDelivered = "delivered"
	// DeliveryFailed: given up, after the last attempt or an answer not
	// worth retrying (a 4xx other than 408 and 429, a redirect), or the
	// target was deleted meanwhile.
	DeliveryFailed = "failed"
	// DeliveryDropped: pushed out of a full queue by a newer notice, never
	// sent.
	DeliveryDropped = "dropped"
)

// Delivery is one notice's delivery to one target: its outcome so far.
type Delivery struct {
	Notice string    `json:"notice"` // the notice's id, webhook-id on every attempt
	Event  string    `json:"event"`
	At     time.Time `json:"at"` // when the notice was made
	State  string    `json:"state"`
	// Attempts counts the POSTs made so far.
	Attempts int `json:"attempts"`
	// Status is the last HTTP status the target answered, 0 if none.
	Status int `json:"status,omitempty"`
	// Error says why the last attempt failed (the status, a timeout, the
	// network's error) or why the delivery was given up or dropped;
	// never a secret nor the URL's path.
	Error       string    `json:"error,omitempty"`
	LastAttempt time.Time `json:"lastAttempt,omitzero"`
	NextAttempt time.Time `json:"nextAttempt,omitzero"`
}

// DeliveryTotals count a target's deliveries since the process started.
type DeliveryTotals struct {
	Delivered uint64 `json:"delivered"`
	Failed    uint64 `json:"failed"`
	Dropped   uint64 `json:"dropped"`
	// Retries counts the attempts that failed and were tried again.
	Retries uint64 `json:"retries"`
	// Queued is how many notices wait now, the one being sent included.
	Queued int `json:"queued"`
}

// NotificationStatus is a target with what this process delivered to it:
// the last deliveries, newest first (Deliveries is left out of lists),
// and its totals.
type NotificationStatus struct {
	NotificationTarget
	Deliveries []Delivery     `json:"deliveries,omitempty"`
	Totals     DeliveryTotals `json:"totals"`
}

// NoticeWebhook is the body of a standard delivery, the Standard Webhooks
// payload: Type is the event, Timestamp when the notice was made, Data
// the notice itself.
type NoticeWebhook struct {
	Type      string        `json:"type"`
	Timestamp time.Time     `json:"timestamp"`
	Data      domain.Notice `json:"data"`
}

// SlackMessage is the body of a slack delivery: a Slack incoming
// webhook's message.
type SlackMessage struct {
	Text string `json:"text"`
}
