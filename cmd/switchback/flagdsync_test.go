package main

import (
	"context"
	"crypto/tls"
	"log/slog"
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"buf.build/gen/go/open-feature/flagd/grpc/go/flagd/sync/v1/syncv1grpc"
	syncv1 "buf.build/gen/go/open-feature/flagd/protocolbuffers/go/flagd/sync/v1"
	flagdprovider "github.com/open-feature/go-sdk-contrib/providers/flagd/pkg"
	"github.com/open-feature/go-sdk/openfeature"
	"github.com/open-feature/go-sdk/openfeature/isolated"
	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/config"
	"github.com/switchbackhq/switchback/internal/control"
)

var flagdSyncOn = regexp.MustCompile(`flagd sync \((\w+)\) on 127\.0\.0\.1:(\d+)`)

// serve --flagd-sync with its TLS files: flagd's Go provider in
// in-process mode, over TLS, answers KEY and KEY:shadow as the flags
// provider and POST /v1/evaluate do, follows a revert, and serve stops
// gracefully with the provider still connected.
func TestServeFlagdSyncOverTLS(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t, t.TempDir())
	srv := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin, "SWITCHBACK_FLAGD_SYNC_TLS_CERT": certFile},
		"--data", t.TempDir(), "--no-ingress", "--log-level", "error",
		"--flagd-sync", "127.0.0.1:0", "--flagd-sync-tls-key", keyFile)
	m := flagdSyncOn.FindStringSubmatch(srv.stdout.String())
	if m == nil || m[1] != "TLS" {
		t.Fatalf("serve did not announce the flagd sync service over TLS: %s", srv.stdout.String())
	}
	port, _ := strconv.Atoi(m[2])

	base := srv.url
	for _, p := range []string{"acme", "globex", "initech"} {
		if got := call(t, "PUT", base+"/v1/partners/"+p, crashAdmin, map[string]any{"name": p, "psa": "generic"}, nil); got != 201 {
			t.Fatalf("partner %s = %d", p, got)
		}
	}
	if got := call(t, "PUT", base+"/v1/migrations/tickets", crashAdmin, map[string]any{"pipelines": map[string]any{
		"legacy": map[string]string{"url": "http://127.0.0.1:9/legacy"}, "new": map[string]string{"url": "http://127.0.0.1:9/new"}}}, nil); got != 201 {
		t.Fatalf("migration = %d", got)
	}
	for _, mv := range []struct{ partner, stage string }{{"acme", "shadow"}, {"acme", "new"}, {"globex", "shadow"}} {
		body := map[string]any{"stage": mv.stage, "force": mv.stage != "shadow", "reason": "test"}
		if got := call(t, "PUT", base+"/v1/migrations/tickets/partners/"+mv.partner, crashAdmin, body, nil); got != 200 {
			t.Fatalf("%s to %s = %d", mv.partner, mv.stage, got)
		}
	}

	ctx := context.Background()
	fp, err := flagdprovider.NewProvider(flagdprovider.WithInProcessResolver(), flagdprovider.WithHost("127.0.0.1"),
		flagdprovider.WithPort(uint16(port)), flagdprovider.WithTLS(certFile))
	if err != nil {
		t.Fatal(err)
	}
	flagdAPI := isolated.NewAPI()
	if err := flagdAPI.SetProviderAndWait(ctx, fp); err != nil {
		t.Fatal(err)
	}
	flagdClient := flagdAPI.NewClient()

	fl, err := flags.NewProvider(flags.Options{URL: base, Token: crashAdmin, Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	flagsAPI := isolated.NewAPI()
	if err := flagsAPI.SetProviderAndWait(ctx, fl); err != nil {
		t.Fatal(err)
	}
	flagsClient := flagsAPI.NewClient()

	type answer struct{ value, shadow string }
	viaFlagd := func(p string) answer {
		ec := openfeature.NewEvaluationContext(p, nil)
		v, _ := flagdClient.StringValue(ctx, "tickets", "code-default", ec)
		s, _ := flagdClient.StringValue(ctx, "tickets:shadow", "code-default", ec)
		return answer{v, s}
	}
	viaFlags := func(p string) answer {
		d, _ := flagsClient.StringValueDetails(ctx, "tickets", "code-default", openfeature.NewEvaluationContext(p, nil))
		s, _ := d.FlagMetadata.GetString("shadow")
		if s == "" {
			s = "none"
		}
		return answer{d.Value, s}
	}
	viaEvaluate := func(p string) answer {
		var e struct {
			Value    string `json:"value"`
			Metadata struct {
				Shadow string `json:"shadow"`
			} `json:"metadata"`
		}
		if got := call(t, "POST", base+"/v1/evaluate", crashAdmin, map[string]any{"flag": "tickets", "context": map[string]any{"targetingKey": p}}, &e); got != 200 {
			t.Fatalf("evaluate %s = %d", p, got)
		}
		if e.Metadata.Shadow == "" {
			e.Metadata.Shadow = "none"
		}
		return answer{e.Value, e.Metadata.Shadow}
	}
	agree := func(what string) {
		t.Helper()
		for _, p := range []string{"acme", "globex", "initech", "unknown"} {
			var got answer
			for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(5 * time.Millisecond) {
				got = viaFlagd(p)
				if got == viaEvaluate(p) && got == viaFlags(p) || time.Now().After(deadline) {
					break
				}
			}
			if got != viaEvaluate(p) || got != viaFlags(p) {
				t.Errorf("%s, %s: flagd %+v, flags provider %+v, /v1/evaluate %+v", what, p, got, viaFlags(p), viaEvaluate(p))
			}
		}
	}
	agree("before the revert")
	if got := viaFlagd("acme"); got != (answer{"new", "legacy"}) {
		t.Errorf("acme through flagd: %+v, want new with a legacy dry-run", got)
	}
	if got := call(t, "POST", base+"/v1/migrations/tickets/revert", crashAdmin, map[string]any{"reason": "test"}, nil); got != 200 {
		t.Fatalf("revert = %d", got)
	}
	agree("after the revert")
	if got := viaFlagd("acme"); got != (answer{"legacy", "none"}) {
		t.Errorf("acme through flagd after the revert: %+v, want legacy and no dry-run", got)
	}

	// The providers leave first: flagd's (v0.6.0) races with itself when
	// its server goes away under it. A stream of a plain gRPC client
	// stays open while serve stops, and is ended.
	flagdAPI.Shutdown(ctx)
	flagsAPI.Shutdown(ctx)
	conn, err := grpc.NewClient("127.0.0.1:"+m[2], grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{RootCAs: pool})))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	stream, err := syncv1grpc.NewFlagSyncServiceClient(conn).SyncFlags(ctx, &syncv1.SyncFlagsRequest{Selector: "tickets"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Recv(); err != nil {
		t.Fatal(err)
	}
	if err := srv.stop(); err != nil {
		t.Errorf("serve stopped with %v", err)
	}
	if _, err := stream.Recv(); err == nil {
		t.Errorf("the stream is still open after serve stopped")
	}
}

// The flagd sync service answers anyone who reaches it with partner ids
// and stages: an address with no host listens on loopback only, every
// interface must be named, and then, without TLS, serve warns.
func TestFlagdSyncListensOnLoopbackUnlessTold(t *testing.T) {
	ctx := context.Background()
	svc, err := control.New(ctx, bolttest.Open(t), control.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile, _ := selfSigned(t, t.TempDir())
	announced := regexp.MustCompile(`flagd sync \((\w+)\) on (\S+)\n`)
	for _, tt := range []struct {
		name, addr, cert, key string
		loopback, wantWarning bool
	}{
		{"no host", ":0", "", "", true, false},
		{"loopback named", "127.0.0.1:0", "", "", true, false},
		{"every interface, plaintext", "0.0.0.0:0", "", "", false, true},
		{"every interface, TLS", "0.0.0.0:0", certFile, keyFile, false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var logs, stdout syncBuffer
			log := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelWarn}))
			cfg := config.Serve{FlagdSync: tt.addr, FlagdSyncTLSCert: tt.cert, FlagdSyncTLSKey: tt.key}
			stop, err := startFlagdSync(ctx, cfg, svc, prometheus.NewRegistry(), log, &stdout)
			if err != nil {
				t.Fatal(err)
			}
			defer stop()
			m := announced.FindStringSubmatch(stdout.String())
			if m == nil {
				t.Fatalf("no announcement of the flagd sync service: %q", stdout.String())
			}
			host, port, err := net.SplitHostPort(m[2])
			if err != nil {
				t.Fatal(err)
			}
			// Go binds 0.0.0.0 dual-stack, announced as [::].
			if ip := net.ParseIP(host); tt.loopback && !ip.Equal(net.IPv4(127, 0, 0, 1)) || !tt.loopback && !ip.IsUnspecified() {
				t.Errorf("listening on %s, want loopback %v", m[2], tt.loopback)
			}
			warned := strings.Contains(logs.String(), "listens beyond loopback without TLS")
			if warned != tt.wantWarning {
				t.Errorf("warned = %v, want %v; log: %q", warned, tt.wantWarning, logs.String())
			}
			if !tt.loopback {
				return
			}
			// Loopback only: this host's other addresses refuse the port.
			addrs, _ := net.InterfaceAddrs()
			for _, a := range addrs {
				ipn, ok := a.(*net.IPNet)
				if !ok || ipn.IP.IsLoopback() || ipn.IP.IsLinkLocalUnicast() {
					continue
				}
				if c, err := net.Dial("tcp", net.JoinHostPort(ipn.IP.String(), port)); err == nil {
					c.Close()
					t.Errorf("the flagd sync service on %s answers on %s too", m[2], ipn.IP)
				}
			}
		})
	}
}
