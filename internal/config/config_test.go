package config

import (
	"strings"
	"testing"
	"time"
)

func TestServeConfigReadTimeout(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    time.Duration
		wantErr bool
	}{
		{"default", nil, 30 * time.Second, false},
		{"from the environment", map[string]string{"SWITCHBACK_READ_TIMEOUT": "5s"}, 5 * time.Second, false},
		{"zero refused", map[string]string{"SWITCHBACK_READ_TIMEOUT": "0s"}, 0, true},
		{"unparsable environment", map[string]string{"SWITCHBACK_READ_TIMEOUT": "soon"}, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultServe()
			err := cfg.FromEnv(func(k string) string { return tt.env[k] })
			if err == nil {
				err = cfg.Validate()
			}
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && cfg.ReadTimeout != tt.want {
				t.Errorf("ReadTimeout = %v, want %v", cfg.ReadTimeout, tt.want)
			}
		})
	}
}

func TestServeConfigTLSAndProxies(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantErr string
	}{
		{"neither", nil, ""},
		{"both", map[string]string{"SWITCHBACK_TLS_CERT": "c.pem", "SWITCHBACK_TLS_KEY": "k.pem"}, ""},
		{"a cert without its key", map[string]string{"SWITCHBACK_TLS_CERT": "c.pem"}, "go together"},
		{"trusted proxies", map[string]string{"SWITCHBACK_TRUSTED_PROXIES": "10.0.0.0/8,192.168.1.1"}, ""},
		{"a proxy that is no CIDR", map[string]string{"SWITCHBACK_TRUSTED_PROXIES": "proxy.internal"}, "--trusted-proxies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultServe()
			err := cfg.FromEnv(func(k string) string { return tt.env[k] })
			if err == nil {
				err = cfg.Validate()
			}
			if tt.wantErr == "" && err != nil {
				t.Fatalf("err = %v, want none", err)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want one with %q", err, tt.wantErr)
			}
		})
	}
}

func TestServeConfigFlagdSync(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    string
		wantErr string
	}{
		{"off by default", nil, "", ""},
		{"from the environment", map[string]string{"SWITCHBACK_FLAGD_SYNC": "127.0.0.1:8015"}, "127.0.0.1:8015", ""},
		{"with TLS", map[string]string{"SWITCHBACK_FLAGD_SYNC": "127.0.0.1:8015",
			"SWITCHBACK_FLAGD_SYNC_TLS_CERT": "c.pem", "SWITCHBACK_FLAGD_SYNC_TLS_KEY": "k.pem"}, "127.0.0.1:8015", ""},
		{"no port", map[string]string{"SWITCHBACK_FLAGD_SYNC": "localhost"}, "", "host:port"},
		{"a cert without its key", map[string]string{"SWITCHBACK_FLAGD_SYNC": "127.0.0.1:8015",
			"SWITCHBACK_FLAGD_SYNC_TLS_CERT": "c.pem"}, "", "go together"},
		{"TLS without the service", map[string]string{"SWITCHBACK_FLAGD_SYNC_TLS_CERT": "c.pem",
			"SWITCHBACK_FLAGD_SYNC_TLS_KEY": "k.pem"}, "", "go with --flagd-sync"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultServe()
			err := cfg.FromEnv(func(k string) string { return tt.env[k] })
			if err == nil {
				err = cfg.Validate()
			}
			if tt.wantErr == "" && (err != nil || cfg.FlagdSync != tt.want) {
				t.Fatalf("FlagdSync = %q, err = %v; want %q and no error", cfg.FlagdSync, err, tt.want)
			}
			if tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("err = %v, want one with %q", err, tt.wantErr)
			}
		})
	}
}

func TestServeConfigJournal(t *testing.T) {
	tests := []struct {
		name     string
		env      map[string]string
		wantURLs string
		wantErr  string
	}{
		{"default: bbolt", nil, "", ""},
		{"bbolt named", map[string]string{"SWITCHBACK_JOURNAL": "bbolt"}, "", ""},
		{"a NATS cluster", map[string]string{"SWITCHBACK_JOURNAL": "nats://a:4222,nats://b:4222"}, "nats://a:4222,nats://b:4222", ""},
		{"TLS", map[string]string{"SWITCHBACK_JOURNAL": "tls://a:4222"}, "tls://a:4222", ""},
		{"no scheme", map[string]string{"SWITCHBACK_JOURNAL": "a:4222"}, "", "--journal"},
		{"another engine", map[string]string{"SWITCHBACK_JOURNAL": "kafka://a:9092"}, "", "--journal"},
		{"an empty URL in the list", map[string]string{"SWITCHBACK_JOURNAL": "nats://a:4222,"}, "", "--journal"},
		{"replicas beyond JetStream's limit", map[string]string{"SWITCHBACK_JOURNAL_REPLICAS": "7"}, "", "--journal-replicas"},
		{"replicas unparsable", map[string]string{"SWITCHBACK_JOURNAL_REPLICAS": "three"}, "", "SWITCHBACK_JOURNAL_REPLICAS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := DefaultServe()
			err := cfg.FromEnv(func(k string) string { return tt.env[k] })
			if err == nil {
				err = cfg.Validate()
			}
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("err = %v", err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("err = %v, want one naming %s", err, tt.wantErr)
			case err == nil && cfg.TierURLs() != tt.wantURLs:
				t.Errorf("TierURLs = %q, want %q", cfg.TierURLs(), tt.wantURLs)
			}
		})
	}
}
