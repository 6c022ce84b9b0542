package domain

import (
	"encoding/base64"
	"log/slog"
	"net/url"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

// Formats of a notification target: what its deliveries' bodies hold.
const (
	// FormatStandard is a Standard Webhooks delivery: the notice as JSON
	// ({"type", "timestamp", "data"}), signed with the target's secret.
	FormatStandard = "standard"
	// FormatSlack is a Slack incoming webhook's {"text": …}, unsigned:
	// Slack's URL is its own credential.
	FormatSlack = "slack"
)

// Bounds of a notification target's secret: Standard Webhooks asks for
// 24 to 64 random bytes (192 to 512 bits).
const (
	MinNotifierKey = 24
	MaxNotifierKey = 64
	// maxNotifierURL bounds a target's URL.
	maxNotifierURL = 2048
)

// notifierSecretPrefix marks a Standard Webhooks symmetric secret.
const notifierSecretPrefix = "whsec_"

// Notifier is a notification target: where the control service posts the
// notices of the events it asks for. Secret signs its deliveries; it is
// write-only through the API, never logged, audited or returned, and
// sealed at rest where the store seals secrets (etcd).
type Notifier struct {
	Name   string   `json:"name"`
	URL    string   `json:"url"`
	Events []string `json:"events"`
	Format string   `json:"format"`
	// Secret is "whsec_" and the base64 of 24 to 64 bytes: required for
	// FormatStandard, optional and unused for FormatSlack.
	Secret    string    `json:"secret,omitempty"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
}

// Validate checks the target's fields; each error names the field and
// says what to use. A Format of "" is not valid here: the caller (the
// control service) puts the default, standard, first.
func (n Notifier) Validate() error {
	if err := CheckID("notification target", n.Name); err != nil {
		return err
	}
	if err := CheckNotifierURL(n.URL); err != nil {
		return err
	}
	if len(n.Events) == 0 {
		return Errorf(CodeInvalid, "events: name at least one of %s", strings.Join(NoticeEvents, ", "))
	}
	for i, e := range n.Events {
		if !slices.Contains(NoticeEvents, e) {
			return Errorf(CodeInvalid, "events: %q is not an event: use %s", truncate(e, 64), strings.Join(NoticeEvents, ", "))
		}
		if slices.Contains(n.Events[:i], e) {
			return Errorf(CodeInvalid, "events: %q is listed twice: list each event once", e)
		}
	}
	switch n.Format {
	case FormatStandard:
		if n.Secret == "" {
			return Errorf(CodeInvalid, `secret: required for format "standard": "whsec_" and the base64 of %d to %d random bytes (openssl rand -base64 32)`, MinNotifierKey, MaxNotifierKey)
		}
	case FormatSlack:
	default:
		return Errorf(CodeInvalid, "format %q is unknown: use standard (signed Standard Webhooks) or slack (a Slack incoming webhook)", truncate(n.Format, 32))
	}
	if n.Secret != "" {
		if _, err := NotifierKey(n.Secret); err != nil {
			return err
		}
	}
	return nil
}

// Wants reports whether the target asks for event.
func (n Notifier) Wants(event string) bool { return slices.Contains(n.Events, event) }

// Host is the host (and port) of the target's URL: what logs, the audit
// log and the UI show of it. The rest of a URL may be a credential (a
// Slack incoming webhook's path is).
func (n Notifier) Host() string {
	u, err := url.Parse(n.URL)
	if err != nil {
		return ""
	}
	return u.Host
}

// LogValue is what a log/slog record shows of a target: its name, host,
// format and events, and whether a secret is set, never the secret nor
// the URL's path.
func (n Notifier) LogValue() slog.Value {
	return slog.GroupValue(
		slog.String("name", n.Name),
		slog.String("host", n.Host()),
		slog.String("format", n.Format),
		slog.String("events", strings.Join(n.Events, ",")),
		slog.Bool("secretSet", n.Secret != ""),
	)
}

// CheckNotifierURL returns an invalid_argument error when u is not an
// absolute http or https URL with a host, or carries credentials (user
// info) or a fragment.
func CheckNotifierURL(u string) error {
	if u == "" {
		return Errorf(CodeInvalid, "url: required, the http or https URL the notices are posted to")
	}
	if len(u) > maxNotifierURL {
		return Errorf(CodeInvalid, "url is longer than %d bytes", maxNotifierURL)
	}
	if err := CheckText("url", u, maxNotifierURL); err != nil {
		return err
	}
	p, err := url.Parse(u)
	if err != nil {
		return Errorf(CodeInvalid, "url is not a URL: use an absolute http or https URL such as https://hooks.example.com/switchback")
	}
	switch {
	case p.Scheme != "http" && p.Scheme != "https":
		return Errorf(CodeInvalid, "url: use an http or https URL, not %q", truncate(p.Scheme, 16))
	case p.Host == "" || p.Hostname() == "":
		return Errorf(CodeInvalid, "url has no host: use an absolute URL such as https://hooks.example.com/switchback")
	case p.User != nil:
		return Errorf(CodeInvalid, "url holds credentials (user:password@): a URL is shown and logged by host only but passes through proxies whole; use the secret (format standard) instead")
	case p.Fragment != "" || strings.Contains(u, "#"):
		return Errorf(CodeInvalid, "url has a fragment (#…), which is never sent: remove it")
	}
	return nil
}

// NotifierKey returns the HMAC key of a Standard Webhooks secret: the
// base64 after "whsec_" (standard alphabet, padded or not), decoded. It
// returns an invalid_argument error naming the secret (never quoting it)
// when the secret is not of that form or the key is not 24 to 64 bytes.
func NotifierKey(secret string) ([]byte, error) {
	b64, ok := strings.CutPrefix(secret, notifierSecretPrefix)
	if !ok {
		return nil, Errorf(CodeInvalid, `secret: use "whsec_" and the base64 of %d to %d random bytes (openssl rand -base64 32), as Standard Webhooks secrets are written`, MinNotifierKey, MaxNotifierKey)
	}
	key, err := base64.StdEncoding.DecodeString(b64)
	if err != nil {
		key, err = base64.RawStdEncoding.DecodeString(b64)
	}
	if err != nil {
		return nil, Errorf(CodeInvalid, `secret: what follows "whsec_" is not base64 (standard alphabet): use the output of openssl rand -base64 32`)
	}
	if len(key) < MinNotifierKey || len(key) > MaxNotifierKey {
		return nil, Errorf(CodeInvalid, "secret: its key is %d bytes; use %d to %d random bytes (openssl rand -base64 32)", len(key), MinNotifierKey, MaxNotifierKey)
	}
	return key, nil
}

// truncate cuts s to n bytes for an error message, on a rune boundary.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}
