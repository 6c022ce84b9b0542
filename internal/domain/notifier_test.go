package domain

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func whsec(n int) string {
	return "whsec_" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{0xa5}, n))
}

func TestNotifierValidate(t *testing.T) {
	ok := Notifier{Name: "ops", URL: "https://hooks.example.com/switchback", Events: []string{NoticeGuardRevert, NoticeRevert}, Format: FormatStandard, Secret: whsec(32)}
	tests := []struct {
		name string
		edit func(*Notifier)
		// field is what the error must name; "" for a valid target.
		field string
	}{
		{"valid", func(*Notifier) {}, ""},
		{"every event", func(n *Notifier) { n.Events = NoticeEvents }, ""},
		{"http", func(n *Notifier) { n.URL = "http://127.0.0.1:8080/hook?x=1" }, ""},
		{"slack without secret", func(n *Notifier) { n.Format, n.Secret = FormatSlack, "" }, ""},
		{"slack with a secret", func(n *Notifier) { n.Format = FormatSlack }, ""},
		{"24-byte key", func(n *Notifier) { n.Secret = whsec(24) }, ""},
		{"64-byte key", func(n *Notifier) { n.Secret = whsec(64) }, ""},
		{"unpadded base64", func(n *Notifier) { n.Secret = strings.TrimRight(whsec(25), "=") }, ""},
		{"bad name", func(n *Notifier) { n.Name = "Ops Team" }, "notification target id"},
		{"no url", func(n *Notifier) { n.URL = "" }, "url"},
		{"ftp url", func(n *Notifier) { n.URL = "ftp://example.com/x" }, "url"},
		{"relative url", func(n *Notifier) { n.URL = "/hooks" }, "url"},
		{"credentials in url", func(n *Notifier) { n.URL = "https://u:p@example.com/x" }, "url"},
		{"fragment", func(n *Notifier) { n.URL = "https://example.com/x#y" }, "url"},
		{"control character in url", func(n *Notifier) { n.URL = "https://example.com/\x1b" }, "url"},
		{"no events", func(n *Notifier) { n.Events = nil }, "events"},
		{"unknown event", func(n *Notifier) { n.Events = []string{"revert", "deploy"} }, "events"},
		{"duplicate event", func(n *Notifier) { n.Events = []string{"revert", "resume", "revert"} }, "events"},
		{"no format", func(n *Notifier) { n.Format = "" }, "format"},
		{"unknown format", func(n *Notifier) { n.Format = "teams" }, "format"},
		{"standard without secret", func(n *Notifier) { n.Secret = "" }, "secret"},
		{"secret without prefix", func(n *Notifier) { n.Secret = strings.TrimPrefix(whsec(32), "whsec_") }, "secret"},
		{"secret not base64", func(n *Notifier) { n.Secret = "whsec_not base64!" }, "secret"},
		{"23-byte key", func(n *Notifier) { n.Secret = whsec(23) }, "secret"},
		{"65-byte key", func(n *Notifier) { n.Secret = whsec(65) }, "secret"},
		{"slack with a bad secret", func(n *Notifier) { n.Format, n.Secret = FormatSlack, "hunter2" }, "secret"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := ok
			n.Events = append([]string(nil), ok.Events...)
			tt.edit(&n)
			err := n.Validate()
			if tt.field == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want an error naming %s", tt.field)
			}
			if ErrorCode(err) != CodeInvalid {
				t.Errorf("code = %q, want %q", ErrorCode(err), CodeInvalid)
			}
			if !strings.HasPrefix(err.Error(), tt.field) && !strings.Contains(err.Error(), tt.field+" ") {
				t.Errorf("Validate() = %q, want it to name %q", err, tt.field)
			}
			if n.Secret != "" && len(n.Secret) > 8 && strings.Contains(err.Error(), n.Secret[6:]) {
				t.Errorf("Validate() = %q quotes the secret", err)
			}
		})
	}
}

func TestNotifierKey(t *testing.T) {
	key, err := NotifierKey(whsec(32))
	if err != nil || !bytes.Equal(key, bytes.Repeat([]byte{0xa5}, 32)) {
		t.Fatalf("NotifierKey = %x, %v; want 32 bytes of a5", key, err)
	}
	// The example secret of the Standard Webhooks libraries.
	if key, err := NotifierKey("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"); err != nil || len(key) != 24 {
		t.Errorf("NotifierKey(libraries' example) = %d bytes, %v; want 24 bytes", len(key), err)
	}
}

// A target in a log shows its host, never its secret nor its URL's path
// (a Slack webhook's path is a credential).
func TestNotifierLogValue(t *testing.T) {
	n := Notifier{Name: "slack", URL: "https://hooks.slack.com/services/T0/B0/pathsecret", Events: []string{NoticeRevert}, Format: FormatSlack, Secret: whsec(32)}
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("target", "target", n)
	out := buf.String()
	for _, leak := range []string{"pathsecret", n.Secret[6:]} {
		if strings.Contains(out, leak) {
			t.Errorf("log %s holds %q", out, leak)
		}
	}
	if !strings.Contains(out, "hooks.slack.com") {
		t.Errorf("log %s does not name the host", out)
	}
	if got := fmt.Sprint(n.Host()); got != "hooks.slack.com" {
		t.Errorf("Host() = %q", got)
	}
}
