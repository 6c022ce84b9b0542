package wire_test

import (
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// The notification contracts are pinned like the others: what GET
// /v1/notifications/{name} answers, and the bodies a standard and a slack
// target receive (docs/api.md, "Notifications").
func TestNotificationGolden(t *testing.T) {
	created := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	target := domain.Notifier{Name: "ops", URL: "https://hooks.example.com/switchback?team=web", Events: []string{domain.NoticeGuardRevert, domain.NoticeRevert},
		Format: domain.FormatStandard, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", CreatedAt: created, UpdatedAt: created.Add(time.Hour)}
	notice := domain.Notice{ID: "ntc_0123456789abcdef01234567", Event: domain.NoticeGuardRevert, At: created.Add(2 * time.Hour), Actor: "guard",
		Migration: "psa-webhooks-v2", Target: "migration/psa-webhooks-v2/partner/acme", Reason: "zero-tolerance class missing: …",
		Text:   "guard reverted acme in psa-webhooks-v2 to shadow: zero-tolerance class missing: …",
		Detail: map[string]any{"migration": "psa-webhooks-v2", "scope": "partner", "partners": []string{"acme"}, "evidence": "zero-tolerance class missing: …"}}
	tests := []struct {
		name string
		v    any
	}{
		{"notification-status", wire.NotificationStatus{NotificationTarget: wire.TargetOf(target),
			Deliveries: []wire.Delivery{
				{Notice: "ntc_0123456789abcdef01234568", Event: domain.NoticeRevert, At: created.Add(3 * time.Hour), State: wire.DeliveryRetrying, Attempts: 2,
					Status: 503, Error: "HTTP 503", LastAttempt: created.Add(3*time.Hour + 2*time.Second), NextAttempt: created.Add(3*time.Hour + 6*time.Second)},
				{Notice: notice.ID, Event: notice.Event, At: notice.At, State: wire.DeliveryDelivered, Attempts: 1, Status: 200, LastAttempt: notice.At},
			},
			Totals: wire.DeliveryTotals{Delivered: 1, Retries: 2, Queued: 1}}},
		{"notice-webhook", wire.NoticeWebhook{Type: notice.Event, Timestamp: notice.At, Data: notice}},
		{"notice-slack", wire.SlackMessage{Text: "guard reverted acme in psa-webhooks-v2 to shadow: &lt;!channel&gt;"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { checkGolden(t, tt.name, tt.v) })
	}
}

func TestRedactURL(t *testing.T) {
	for in, want := range map[string]string{
		"https://hooks.slack.com/services/T/B/X": "https://hooks.slack.com/…",
		"https://hooks.example.com":              "https://hooks.example.com",
		"https://hooks.example.com/":             "https://hooks.example.com",
		"http://127.0.0.1:8080/?token=x":         "http://127.0.0.1:8080/…",
		"not a url":                              "…",
	} {
		if got := wire.RedactURL(in); got != want {
			t.Errorf("RedactURL(%q) = %q, want %q", in, got, want)
		}
	}
}
