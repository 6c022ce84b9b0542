package console

import (
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/wire"
)

// A target shows its host, events, whether a secret is set and its
// deliveries; an error a receiver's network wrote cannot act on the
// terminal.
func TestNotificationTables(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	st := wire.NotificationStatus{
		NotificationTarget: wire.NotificationTarget{Name: "ops", URL: "https://hooks.example.com/…", Host: "hooks.example.com", Events: []string{"revert", "resume"}, Format: "standard", HasSecret: true},
		Deliveries: []wire.Delivery{
			{Notice: "ntc_2", Event: "resume", At: at, State: wire.DeliveryFailed, Attempts: 1, Status: 400, Error: "HTTP 400\x1b[2J"},
			{Notice: "ntc_1", Event: "revert", At: at.Add(-time.Minute), State: wire.DeliveryDelivered, Attempts: 3, Status: 200},
		},
		Totals: wire.DeliveryTotals{Delivered: 1, Failed: 1, Retries: 2},
	}
	var b strings.Builder
	Notification(&b, st)
	out := b.String()
	for _, want := range []string{"notification target ops: standard to https://hooks.example.com/…, secret set", "events: revert, resume",
		"1 delivered, 1 failed, 0 dropped, 2 retries", "ntc_1", "delivered", "2026-03-01T11:59:00Z"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\x1b") {
		t.Errorf("an escape sequence reached the terminal:\n%q", out)
	}
	b.Reset()
	NotificationList(&b, []wire.NotificationStatus{st})
	if !strings.Contains(b.String(), "revert,resume") || !strings.Contains(b.String(), "set") {
		t.Errorf("list:\n%s", b.String())
	}
}
