package etcdstore

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"time"

	clientv3 "go.etcd.io/etcd/client/v3"
	"go.uber.org/zap"
)

// DefaultDialTimeout is Dial's timeout when Config sets none.
const DefaultDialTimeout = 5 * time.Second

// Config is how to reach an etcd cluster.
type Config struct {
	// Endpoints are the members' HOST:PORT, as ParseURL returns them.
	Endpoints []string
	// CAFile verifies the members' certificates; with it (or a client
	// certificate), the connection is TLS.
	CAFile string
	// CertFile and KeyFile are the client certificate and its key, both
	// or neither.
	CertFile, KeyFile string
	// Username and Password authenticate to etcd when auth is enabled on
	// it. The password is never printed in an error.
	Username, Password string
	// DialTimeout bounds Dial's wait for a member to answer
	// (DefaultDialTimeout if 0).
	DialTimeout time.Duration
}

// ErrUnreachable is wrapped by Dial's error when no member answered.
var ErrUnreachable = errors.New("no etcd member answered")

// Dial connects to the cluster and checks that a member answers before it
// returns, within c.DialTimeout (the client itself connects lazily). The
// caller closes the client. It returns an error for a Config that cannot
// be used (no endpoint, an unreadable CA or certificate, a certificate
// without its key), an error wrapping ErrUnreachable when no member
// answered in time, or ctx.Err().
func Dial(ctx context.Context, c Config) (*clientv3.Client, error) {
	if len(c.Endpoints) == 0 {
		return nil, errors.New("etcd: no endpoint given")
	}
	if c.DialTimeout <= 0 {
		c.DialTimeout = DefaultDialTimeout
	}
	tlsConfig, err := c.tls()
	if err != nil {
		return nil, err
	}
	cfg := clientv3.Config{
		Endpoints:   c.Endpoints,
		DialTimeout: c.DialTimeout,
		TLS:         tlsConfig,
		Username:    c.Username,
		Password:    c.Password,
		Logger:      zap.NewNop(),
	}
	where := strings.Join(c.Endpoints, ",")
	client, err := clientv3.New(cfg)
	if err != nil {
		// With a username, New authenticates at once, and an unreachable
		// cluster shows as its deadline passing.
		if ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) {
			return nil, fmt.Errorf("etcd %s: %w within %s: %w", where, ErrUnreachable, c.DialTimeout, redact(err, c.Password))
		}
		return nil, fmt.Errorf("etcd %s: %w", where, redact(err, c.Password))
	}
	wait, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	var last error
	for _, ep := range c.Endpoints {
		if _, err := client.Status(wait, ep); err != nil {
			last = err
			continue
		}
		return client, nil
	}
	client.Close()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("etcd %s: %w within %s: %w", where, ErrUnreachable, c.DialTimeout, redact(last, c.Password))
}

// redact keeps a password out of an error, should a library ever print it.
func redact(err error, password string) error {
	if err == nil || password == "" || !strings.Contains(err.Error(), password) {
		return err
	}
	return errors.New(strings.ReplaceAll(err.Error(), password, "<password>"))
}

func (c Config) tls() (*tls.Config, error) {
	if c.CAFile == "" && c.CertFile == "" && c.KeyFile == "" {
		return nil, nil
	}
	cfg := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.CAFile != "" {
		pem, err := os.ReadFile(c.CAFile)
		if err != nil {
			return nil, fmt.Errorf("etcd CA: %w", err)
		}
		cfg.RootCAs = x509.NewCertPool()
		if !cfg.RootCAs.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("etcd CA %s: no PEM certificate in it", c.CAFile)
		}
	}
	if (c.CertFile == "") != (c.KeyFile == "") {
		return nil, errors.New("etcd client certificate: give both the certificate and its key, or neither")
	}
	if c.CertFile != "" {
		cert, err := tls.LoadX509KeyPair(c.CertFile, c.KeyFile)
		if err != nil {
			return nil, fmt.Errorf("etcd client certificate %s: %w", c.CertFile, err)
		}
		cfg.Certificates = []tls.Certificate{cert}
	}
	return cfg, nil
}

// ParseURL returns the endpoints of etcd://HOST:PORT[,HOST:PORT…] (an
// IPv6 host in brackets; a trailing "/" allowed). TLS is not in the URL:
// it is on when a CA or client certificate is given (see Config), so
// there is one way to ask for it. It returns an error for another scheme,
// no host, a host without a port, a path, a query, or credentials in the
// URL (they go in Config, so that they stay out of process lists); the
// error never repeats credentials.
func ParseURL(s string) ([]string, error) {
	const scheme = "etcd://"
	if len(s) < len(scheme) || !strings.EqualFold(s[:len(scheme)], scheme) {
		if i := strings.Index(s, "://"); i >= 0 {
			return nil, fmt.Errorf("etcd URL: scheme %q, want etcd://HOST:PORT[,HOST:PORT…] (TLS comes from the CA and certificate options)", s[:i])
		}
		return nil, errors.New("etcd URL: want etcd://HOST:PORT[,HOST:PORT…]")
	}
	rest := s[len(scheme):]
	if strings.ContainsAny(rest, "@") {
		return nil, errors.New("etcd URL: credentials in the URL are not accepted: give the username and password in SWITCHBACK_ETCD_USERNAME and SWITCHBACK_ETCD_PASSWORD")
	}
	if i := strings.IndexAny(rest, "?#"); i >= 0 {
		return nil, fmt.Errorf("etcd URL %s: a query or fragment is not accepted", s)
	}
	rest = strings.TrimSuffix(rest, "/")
	if strings.Contains(rest, "/") {
		return nil, fmt.Errorf("etcd URL %s: a path is not accepted (the key prefix is an option of its own)", s)
	}
	if rest == "" {
		return nil, fmt.Errorf("etcd URL %s: no host", s)
	}
	var out []string
	for _, hp := range strings.Split(rest, ",") {
		host, port, err := net.SplitHostPort(hp)
		if err != nil {
			return nil, fmt.Errorf("etcd URL %s: %q is not HOST:PORT", s, hp)
		}
		if host == "" {
			return nil, fmt.Errorf("etcd URL %s: %q has no host", s, hp)
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("etcd URL %s: %q: port %q is not a number from 1 to 65535", s, hp, port)
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	return out, nil
}

// ReadKeysFile reads the secrets keys of WithSecretsKeys from path, one a
// line, the key that seals first: each 64 hex digits, or 32 bytes in
// standard base64 (44 characters). Blank lines, white space around a key
// and comments from "#" to the end of a line are ignored. Raw bytes are
// not taken: 32 bytes of text (a 128-bit key in hex, say) would pass for
// a key. Make a key with `openssl rand -hex 32`. It returns an error for
// an unreadable file, a file without a key, a line that is not a key
// (named by its number), or a key given twice; no error quotes the file.
func ReadKeysFile(path string) ([][]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("secrets key file: %w", err)
	}
	var keys [][]byte
	lines := map[string]int{} // key id → line
	for n, line := range bytes.Split(data, []byte("\n")) {
		if i := bytes.IndexByte(line, '#'); i >= 0 {
			line = line[:i]
		}
		text := bytes.TrimSpace(line)
		if len(text) == 0 {
			continue
		}
		key, ok := decodeKey(text)
		if !ok {
			return nil, fmt.Errorf("secrets key file %s: line %d: want a 32-byte key as 64 hex digits or 44 characters of base64; it holds %d characters that are neither (make one with: openssl rand -hex 32)", path, n+1, len(text))
		}
		id := KeyID(key)
		if first, ok := lines[id]; ok {
			return nil, fmt.Errorf("secrets key file %s: line %d repeats the key of line %d (id %s)", path, n+1, first, id)
		}
		lines[id] = n + 1
		keys = append(keys, key)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("secrets key file %s: no key in it (make one with: openssl rand -hex 32)", path)
	}
	return keys, nil
}

// ReadKeyFile reads a file of one secrets key (see WithSecretsKey) as
// ReadKeysFile does. It returns ReadKeysFile's errors, and an error for a
// file of several keys, whose extra keys it would otherwise ignore.
func ReadKeyFile(path string) ([]byte, error) {
	keys, err := ReadKeysFile(path)
	if err != nil {
		return nil, err
	}
	if len(keys) > 1 {
		return nil, fmt.Errorf("secrets key file %s: %d keys, want one", path, len(keys))
	}
	return keys[0], nil
}

// decodeKey reads a 32-byte key from 64 hex digits or 44 characters of
// base64.
func decodeKey(text []byte) ([]byte, bool) {
	switch len(text) {
	case 64:
		key := make([]byte, 32)
		if _, err := hex.Decode(key, text); err == nil {
			return key, true
		}
	case 44:
		key, err := base64.StdEncoding.DecodeString(string(text))
		if err == nil && len(key) == 32 {
			return key, true
		}
	}
	return nil, false
}
