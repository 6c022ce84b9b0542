package etcdstore_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"math/big"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"go.etcd.io/etcd/server/v3/embed"

	"github.com/switchbackhq/switchback/internal/etcdstore"
)

func TestParseURL(t *testing.T) {
	for _, tt := range []struct {
		name, url string
		want      []string
		errHas    string
	}{
		{"one member", "etcd://127.0.0.1:2379", []string{"127.0.0.1:2379"}, ""},
		{"three members", "etcd://a:2379,b:2379,c:2380", []string{"a:2379", "b:2379", "c:2380"}, ""},
		{"trailing slash", "etcd://a:2379/", []string{"a:2379"}, ""},
		{"scheme in capitals", "ETCD://a:2379", []string{"a:2379"}, ""},
		{"IPv6", "etcd://[::1]:2379,[fe80::1]:2380", []string{"[::1]:2379", "[fe80::1]:2380"}, ""},
		{"other scheme", "http://a:2379", nil, `scheme "http"`},
		{"etcds", "etcds://a:2379", nil, "TLS comes from"},
		{"no scheme", "a:2379", nil, "want etcd://"},
		{"no host", "etcd://", nil, "no host"},
		{"empty host", "etcd://:2379", nil, "no host"},
		{"no port", "etcd://a", nil, "not HOST:PORT"},
		{"empty member", "etcd://a:2379,", nil, "not HOST:PORT"},
		{"bad port", "etcd://a:http", nil, "port"},
		{"port zero", "etcd://a:0", nil, "port"},
		{"path", "etcd://a:2379/switchback", nil, "path"},
		{"query", "etcd://a:2379?x=1", nil, "query"},
		{"credentials", "etcd://root:hunter2@a:2379", nil, "SWITCHBACK_ETCD_PASSWORD"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := etcdstore.ParseURL(tt.url)
			if tt.errHas != "" {
				if err == nil || !strings.Contains(err.Error(), tt.errHas) {
					t.Fatalf("ParseURL(%q) = %v, %v; want an error containing %q", tt.url, got, err, tt.errHas)
				}
				if strings.Contains(err.Error(), "hunter2") {
					t.Errorf("error %q repeats the password", err)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("ParseURL(%q) = %v, %v; want %v", tt.url, got, err, tt.want)
			}
		})
	}
}

func TestReadKeyFile(t *testing.T) {
	key := bytes.Repeat([]byte{0xab}, 32)
	for _, tt := range []struct {
		name    string
		content []byte
		ok      bool
	}{
		{"hex", []byte(hex.EncodeToString(key) + "\n"), true},
		{"base64", []byte(base64.StdEncoding.EncodeToString(key) + "\n"), true},
		{"raw bytes", key, false},
		{"short hex", []byte(hex.EncodeToString(key[:16])), false},
		{"bad hex", []byte(strings.Repeat("zz", 32)), false},
		{"base64 of 31 bytes", []byte(base64.StdEncoding.EncodeToString(key[:31])), false},
		{"empty", nil, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := etcdstore.ReadKeyFile(path)
			if tt.ok {
				if err != nil || !bytes.Equal(got, key) {
					t.Errorf("ReadKeyFile = %x, %v; want %x", got, err, key)
				}
				return
			}
			if err == nil {
				t.Fatalf("ReadKeyFile = %x, want an error", got)
			}
			if len(tt.content) > 0 && strings.Contains(err.Error(), string(tt.content)) {
				t.Errorf("error %q quotes the file", err)
			}
		})
	}
	if _, err := etcdstore.ReadKeyFile(filepath.Join(t.TempDir(), "missing")); err == nil {
		t.Error("ReadKeyFile of a missing file succeeded")
	}
}

func TestDial(t *testing.T) {
	c, err := etcdstore.Dial(t.Context(), etcdstore.Config{Endpoints: client.Endpoints()})
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	defer c.Close()
	if _, err := etcdstore.Open(t.Context(), c, newPrefix()); err != nil {
		t.Errorf("Open on the dialed client: %v", err)
	}
}

// With no member listening, Dial returns ErrUnreachable once its timeout
// is over, not a client that fails later; the password is in no error.
func TestDialUnreachable(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, err := etcdstore.Dial(t.Context(), etcdstore.Config{Endpoints: []string{addr}, DialTimeout: 500 * time.Millisecond, Username: "root", Password: "hunter2"})
	if err == nil {
		c.Close()
		t.Fatal("Dial succeeded with no member listening")
	}
	if !errors.Is(err, etcdstore.ErrUnreachable) {
		t.Errorf("Dial = %v, want ErrUnreachable", err)
	}
	if !strings.Contains(err.Error(), addr) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("error %q: want the endpoint named and no password", err)
	}
}

func TestDialBadConfig(t *testing.T) {
	dir := t.TempDir()
	junk := filepath.Join(dir, "junk.pem")
	os.WriteFile(junk, []byte("not a certificate"), 0o600)
	for _, tt := range []struct {
		name string
		cfg  etcdstore.Config
	}{
		{"no endpoint", etcdstore.Config{}},
		{"missing CA", etcdstore.Config{Endpoints: []string{"a:1"}, CAFile: filepath.Join(dir, "nope")}},
		{"CA without PEM", etcdstore.Config{Endpoints: []string{"a:1"}, CAFile: junk}},
		{"certificate without key", etcdstore.Config{Endpoints: []string{"a:1"}, CertFile: junk}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if c, err := etcdstore.Dial(t.Context(), tt.cfg); err == nil {
				c.Close()
				t.Error("Dial succeeded")
			}
		})
	}
}

// Over TLS with a CA made here: Dial with the CA reaches the member, Dial
// without trusting it does not.
func TestDialTLS(t *testing.T) {
	dir := t.TempDir()
	caFile, certFile, keyFile := writeCerts(t, dir)
	cfg := embed.NewConfig()
	cfg.Dir = filepath.Join(dir, "etcd")
	cfg.Logger, cfg.LogLevel, cfg.LogOutputs = "zap", "error", []string{"stderr"}
	cfg.TickMs, cfg.ElectionMs = 10, 100
	var urls [2]url.URL
	for i, scheme := range []string{"https", "http"} {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		urls[i] = url.URL{Scheme: scheme, Host: l.Addr().String()}
		l.Close()
	}
	cfg.ListenClientUrls, cfg.AdvertiseClientUrls = urls[:1], urls[:1]
	cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = urls[1:], urls[1:]
	cfg.InitialCluster = cfg.InitialClusterFromName(cfg.Name)
	cfg.ClientTLSInfo.CertFile, cfg.ClientTLSInfo.KeyFile = certFile, keyFile
	e, err := embed.StartEtcd(cfg)
	if err != nil {
		t.Fatalf("start etcd: %v", err)
	}
	defer e.Close()
	select {
	case <-e.Server.ReadyNotify():
	case <-time.After(30 * time.Second):
		t.Fatal("etcd did not become ready in 30s")
	}
	ep := urls[0].Host
	c, err := etcdstore.Dial(t.Context(), etcdstore.Config{Endpoints: []string{ep}, CAFile: caFile})
	if err != nil {
		t.Fatalf("Dial with the CA: %v", err)
	}
	if _, err := etcdstore.Open(t.Context(), c, "/tls/"); err != nil {
		t.Errorf("Open over TLS: %v", err)
	}
	c.Close()
	if c, err := etcdstore.Dial(t.Context(), etcdstore.Config{Endpoints: []string{ep}, DialTimeout: 500 * time.Millisecond}); err == nil {
		c.Close()
		t.Error("Dial without TLS to a TLS member succeeded")
	}
}

// writeCerts writes a CA and a server certificate for 127.0.0.1 signed by
// it, and returns the CA's file and the server's certificate and key files.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	srvTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "etcd"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(srvKey)
	if err != nil {
		t.Fatal(err)
	}
	write := func(name, typ string, der []byte) string {
		path := filepath.Join(dir, name)
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server-key.pem", "EC PRIVATE KEY", keyDER)
}
