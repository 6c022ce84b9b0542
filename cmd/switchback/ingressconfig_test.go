package main

import (
	"errors"
	"io"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/config"
	"github.com/switchbackhq/switchback/internal/ingress"
)

// The ingress command reads a SWITCHBACK_* variable for each of its flags:
// flags override the environment, which overrides the defaults.
func TestIngressConfigFromEnv(t *testing.T) {
	base := map[string]string{"SWITCHBACK_SERVER": "http://control:8080", "SWITCHBACK_TOKEN": "router-token"}
	full := map[string]string{
		"SWITCHBACK_SERVER": "http://control:8080", "SWITCHBACK_TOKEN": "router-token",
		"SWITCHBACK_DATA": "/var/lib/router", "SWITCHBACK_ADDR": "0.0.0.0:9000", "SWITCHBACK_ROUTER_ID": "edge-7",
		"SWITCHBACK_MIGRATION": "psa-webhooks-v2", "SWITCHBACK_CONNECTWISE_KEY_HOSTS": "api-na.example,api-eu.example",
		"SWITCHBACK_BODY_LIMIT": "2048", "SWITCHBACK_STUCK_AFTER": "1m", "SWITCHBACK_RETENTION": "48h",
		"SWITCHBACK_WORKERS": "4", "SWITCHBACK_PARTNER_BACKLOG": "1000", "SWITCHBACK_COMPARISON_DEADLINE": "30s", "SWITCHBACK_LOG_FORMAT": "json",
		"SWITCHBACK_SHADOW_MIN_SHARE": "0.25",
		"SWITCHBACK_LOG_LEVEL":        "warn", "SWITCHBACK_INIT": "true", "SWITCHBACK_READ_TIMEOUT": "5s",
	}
	fromFull := config.Ingress{
		Config: ingress.Config{Data: "/var/lib/router", ControlURLs: []string{"http://control:8080"}, Token: "router-token", RouterID: "edge-7",
			Migration: "psa-webhooks-v2", KeyHosts: []string{"api-na.example", "api-eu.example"}, BodyLimit: 2048,
			StuckAfter: time.Minute, Retention: 48 * time.Hour, Workers: 4, PartnerBacklog: 1000, ComparisonDeadline: 30 * time.Second,
			ShadowMinShare: 0.25},
		Addr: "0.0.0.0:9000", LogFormat: "json", LogLevel: "warn", ReadTimeout: 5 * time.Second, Init: true,
	}
	defaults := config.DefaultIngress("Host1")
	defaults.ControlURLs, defaults.Token = []string{"http://control:8080"}, "router-token"
	flagged := fromFull
	flagged.RouterID, flagged.Workers, flagged.KeyHosts, flagged.ControlURLs = "edge-8", 8, nil, []string{"http://other:8080"}
	flagged.PartnerBacklog, flagged.ShadowMinShare = 2000, 0.125
	replicas := defaults
	replicas.ControlURLs = []string{"http://control-a:8080", "https://control-b:8443"}

	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    config.Ingress
		wantErr string
	}{
		{"defaults", base, nil, defaults, ""},
		{"every flag from the environment", full, nil, fromFull, ""},
		{"flags win over the environment", full,
			[]string{"--router-id", "edge-8", "--workers", "8", "--partner-backlog", "2000", "--shadow-min-share", "0.125", "--connectwise-key-hosts", "", "--control", "http://other:8080"}, flagged, ""},
		{"no token", map[string]string{"SWITCHBACK_SERVER": "http://control:8080"}, nil, config.Ingress{}, "router token"},
		{"unparsable duration", with(base, "SWITCHBACK_RETENTION", "a month"), nil, config.Ingress{}, "SWITCHBACK_RETENTION"},
		{"unparsable number", with(base, "SWITCHBACK_WORKERS", "many"), nil, config.Ingress{}, "SWITCHBACK_WORKERS"},
		{"unparsable boolean", with(base, "SWITCHBACK_INIT", "sure"), nil, config.Ingress{}, "SWITCHBACK_INIT"},
		{"bad log format", with(base, "SWITCHBACK_LOG_FORMAT", "xml"), nil, config.Ingress{}, "--log-format"},
		{"zero read timeout", with(base, "SWITCHBACK_READ_TIMEOUT", "0s"), nil, config.Ingress{}, "--read-timeout"},
		{"negative workers", with(base, "SWITCHBACK_WORKERS", "-1"), nil, config.Ingress{}, "negative"},
		{"negative partner backlog", base, []string{"--partner-backlog", "-1"}, config.Ingress{}, "negative"},
		{"unparsable partner backlog", with(base, "SWITCHBACK_PARTNER_BACKLOG", "lots"), nil, config.Ingress{}, "SWITCHBACK_PARTNER_BACKLOG"},
		{"shadow share above 1", base, []string{"--shadow-min-share", "1.5"}, config.Ingress{}, "between 0 and 1"},
		{"unparsable shadow share", with(base, "SWITCHBACK_SHADOW_MIN_SHARE", "half"), nil, config.Ingress{}, "SWITCHBACK_SHADOW_MIN_SHARE"},
		{"control URL without a scheme", with(base, "SWITCHBACK_SERVER", "control:8080"), nil, config.Ingress{}, "http or https"},
		{"replicas from the environment", with(base, "SWITCHBACK_SERVER", "http://control-a:8080, https://control-b:8443"), nil, replicas, ""},
		{"replicas from --control", base, []string{"--control", "http://control-a:8080,https://control-b:8443"}, replicas, ""},
		{"a replica URL without a scheme", base, []string{"--control", "http://control-a:8080,control-b:8080"}, config.Ingress{}, `control URL "control-b:8080" must be an http or https URL`},
		{"an empty replica URL", with(base, "SWITCHBACK_SERVER", "http://control-a:8080,,http://control-b:8080"), nil, config.Ingress{}, "control URL 2 of 3 is empty"},
		{"a replica twice", base, []string{"--control", "http://control-a:8080,http://control-b:8080,http://control-a:8080"}, config.Ingress{}, `control URL "http://control-a:8080" is given twice`},
		{"commas only", base, []string{"--control", ","}, config.Ingress{}, "control URL 1 of 2 is empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseIngressConfig(tt.args, config.DefaultIngress("Host1"), func(k string) string { return tt.env[k] }, io.Discard)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one that says %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("config = %+v\nwant     %+v", got, tt.want)
			}
		})
	}
}

// Without a control URL or a token, the command is misused: exit 2.
func TestIngressConfigNeedsControlAndToken(t *testing.T) {
	_, err := parseIngressConfig(nil, config.DefaultIngress("h"), func(string) string { return "" }, io.Discard)
	if !errors.Is(err, errUsage) {
		t.Errorf("err = %v, want a usage error", err)
	}
}

// with returns env with one more variable.
func with(env map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for ek, ev := range env {
		if ek != k {
			out[ek] = ev
		}
	}
	return out
}
