package psaapi

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

func fullConfig(psa domain.PSA) Config {
	return Config{PSA: psa, BaseURL: "https://psa.example/feed/path-token-123", CompanyID: cwCompany, PublicKey: cwPublic, PrivateKey: cwPrivate,
		ClientID: cwClientID, Username: atUser, Secret: atSecret, IntegrationCode: atCode, ClientSecret: haloSecret, Token: genToken}
}

func TestConfigValidate(t *testing.T) {
	cases := []struct {
		name string
		cfg  Config
		want string // "" for valid
	}{
		{"connectwise", Config{PSA: "connectwise", BaseURL: "https://api-na.myconnectwise.net", CompanyID: "a", PublicKey: "b", PrivateKey: "c", ClientID: "d"}, ""},
		{"connectwise missing", Config{PSA: "connectwise", BaseURL: "https://api-na.myconnectwise.net", PublicKey: "b", ClientID: " "}, "connectwise needs companyId, privateKey, clientId"},
		{"autotask", Config{PSA: "autotask", BaseURL: "https://webservices5.autotask.net/atservicesrest", Username: "u", Secret: "s", IntegrationCode: "i"}, ""},
		{"autotask missing", Config{PSA: "autotask", BaseURL: "https://webservices5.autotask.net/atservicesrest", Username: "u"}, "autotask needs secret, integrationCode"},
		{"halopsa", Config{PSA: "halopsa", BaseURL: "https://acme.halopsa.com", ClientID: "i", ClientSecret: "s"}, ""},
		{"halopsa missing", Config{PSA: "halopsa", BaseURL: "https://acme.halopsa.com"}, "halopsa needs clientId, clientSecret"},
		{"generic", Config{PSA: "generic", BaseURL: "https://feed.example/changes", Token: "t"}, ""},
		{"generic missing", Config{PSA: "generic", BaseURL: "https://feed.example/changes"}, "generic needs token"},
		{"generic on loopback http", Config{PSA: "generic", BaseURL: "http://127.0.0.1:9000/changes", Token: "t"}, ""},
		{"localhost http", Config{PSA: "generic", BaseURL: "http://localhost:9000/changes", Token: "t"}, ""},
		{"unknown psa", Config{PSA: "servicenow", BaseURL: "https://x.example", Token: "t"}, `psa "servicenow" is unknown`},
		{"no base url", Config{PSA: "generic", Token: "t"}, "baseUrl is not an absolute URL"},
		{"relative", Config{PSA: "generic", BaseURL: "/changes", Token: "t"}, "baseUrl is not an absolute URL"},
		{"http elsewhere", Config{PSA: "generic", BaseURL: "http://feed.example/changes", Token: "t"}, "must be https"},
		{"ftp", Config{PSA: "generic", BaseURL: "ftp://feed.example/changes", Token: "t"}, "must be https"},
		{"user info", Config{PSA: "generic", BaseURL: "https://me:pw@feed.example/changes", Token: "t"}, "no user info"},
		{"query", Config{PSA: "generic", BaseURL: "https://feed.example/changes?x=1", Token: "t"}, "no user info, query"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.cfg.Validate()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				if _, err := New(tc.cfg, nil); err != nil {
					t.Fatalf("New: %v", err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidConfig) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Validate: %v, want ErrInvalidConfig with %q", err, tc.want)
			}
			if _, nerr := New(tc.cfg, nil); !errors.Is(nerr, ErrInvalidConfig) {
				t.Errorf("New: %v, want ErrInvalidConfig", nerr)
			}
			noSecret(t, err.Error())
		})
	}
}

// No way of printing a Config shows a credential.
func TestConfigRedacts(t *testing.T) {
	cfg := fullConfig(domain.PSAConnectWise)
	var outs []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		outs = append(outs, fmt.Sprintf(verb, cfg), fmt.Sprintf(verb, &cfg), fmt.Sprintf(verb, []Config{cfg}))
	}
	outs = append(outs, fmt.Sprint(cfg), fmt.Sprintln(struct{ C Config }{cfg}), cfg.String(), cfg.GoString())
	var buf bytes.Buffer
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("psa", "config", cfg)
	slog.New(slog.NewTextHandler(&buf, nil)).Info("psa", "config", cfg, "ptr", &cfg)
	outs = append(outs, buf.String())
	for _, out := range outs {
		noSecret(t, out)
		if strings.Contains(out, "path-token-123") {
			t.Errorf("%s: the base URL's path (it may hold a token) is printed", out)
		}
	}
	if s := cfg.String(); !strings.Contains(s, "connectwise") || !strings.Contains(s, "host: psa.example") ||
		!strings.Contains(s, "privateKey") || !strings.Contains(s, "redacted") {
		t.Errorf("String %q: want the PSA, the base URL's host and which credentials are set", s)
	}
	if !strings.Contains(buf.String(), `"credentials":"redacted"`) {
		t.Errorf("slog JSON %s: want credentials redacted", buf.String())
	}
}

func TestRetryAfter(t *testing.T) {
	r := defaultRetry()
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	r.now = func() time.Time { return now }
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"1", time.Second, true},
		{"0", 0, true},
		{" 120 ", 2 * time.Minute, true},
		{"99999999999999", 24 * time.Hour, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{"", 0, false},
		{"-1", 0, false},
		{"1.5", 0, false},
		{"soon", 0, false},
	}
	for _, tc := range cases {
		got, ok := r.retryAfter(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("retryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// The backoff doubles to its cap, each wait between half and all of the
// step, whatever the jitter draws.
func TestBackoff(t *testing.T) {
	for _, draw := range []string{"none", "all"} {
		r := defaultRetry()
		r.jitter = func(d time.Duration) time.Duration {
			if draw == "all" {
				return d - 1
			}
			return 0
		}
		for n := 1; n <= 40; n++ {
			step := min(r.max, r.base<<min(n-1, 20))
			if got := r.backoff(n); got < step/2 || got >= step {
				t.Errorf("jitter %s: backoff(%d) = %v, want in [%v, %v)", draw, n, got, step/2, step)
			}
		}
	}
}
