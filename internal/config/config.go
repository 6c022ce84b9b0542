package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/etcdstore"
	"github.com/switchbackhq/switchback/internal/httpserve"
	"github.com/switchbackhq/switchback/internal/ingress"
	"github.com/switchbackhq/switchback/internal/webui"
)

// Serve is the configuration of "switchback serve": defaults, then
// SWITCHBACK_* variables, then flags (read by the command).
type Serve struct {
	Data        string
	Addr        string
	LogFormat   string
	LogLevel    string
	LockTimeout time.Duration
	AdminToken  string // only from the environment: argv is visible to every user
	NoIngress   bool
	Migration   string   // the embedded router's migration; "" = the first created
	KeyHosts    []string // hosts ConnectWise signing keys may be fetched from
	// Init allows starting with an empty store in a data dir that shows
	// data existed: without it, an empty or missing database there is an
	// error, not a fresh start.
	Init bool
	// ReadTimeout bounds the time to read a request, headers and body: a
	// body still incomplete then is answered 408.
	ReadTimeout time.Duration
	// TLSCert and TLSKey are PEM files: both set, serve speaks HTTPS.
	TLSCert, TLSKey string
	// TrustedProxies are the CIDRs of proxies whose X-Forwarded-Proto is
	// believed, for the session cookie's Secure attribute.
	TrustedProxies []string
	// Store is where the control state lives: "" for the bbolt file in
	// Data, or etcd://HOST:PORT[,HOST:PORT…] for a cluster that several
	// replicas share.
	Store      string
	EtcdPrefix string
	// EtcdCA, EtcdCert and EtcdKey are PEM files for TLS to etcd.
	EtcdCA, EtcdCert, EtcdKey string
	// EtcdUsername and EtcdPassword authenticate to etcd; only from the
	// environment, like AdminToken.
	EtcdUsername, EtcdPassword string
	// FlagdSync is the host:port of the flagd sync service (package
	// flagdsync) for flagd's in-process providers; "" serves none. It
	// exposes partner ids and stages without authentication: an empty
	// host means loopback (serve binds 127.0.0.1), every interface must be
	// named (0.0.0.0:PORT), and beyond loopback it wants TLS with
	// FlagdSyncTLSCert and FlagdSyncTLSKey (PEM files).
	FlagdSync                         string
	FlagdSyncTLSCert, FlagdSyncTLSKey string
	// SecretsKeyFile holds the keys that seal partners' webhook secrets
	// in etcd, the first sealing (etcdstore.ReadKeysFile); required with
	// an etcd store.
	SecretsKeyFile string
	// Journal and JournalReplicas are the embedded router's, as Ingress's.
	Journal         string
	JournalReplicas int
	// Now is the process's one clock, given to the control service, the
	// web UI and the embedded router so that they agree on every bake
	// time, expiry and stamp; nil is time.Now. Neither a flag nor a
	// variable: end-to-end tests set it.
	Now func() time.Time
}

// DefaultServe returns the defaults of "switchback serve".
func DefaultServe() Serve {
	return Serve{Data: "./switchback-data", Addr: "127.0.0.1:8080", LogFormat: "text", LogLevel: "info", LockTimeout: 2 * time.Second,
		ReadTimeout: httpserve.DefaultReadTimeout, EtcdPrefix: "/switchback/"}
}

// FromEnv overrides c with the SWITCHBACK_* variables getenv returns; it
// returns an error that names the first that does not parse.
func (c *Serve) FromEnv(getenv func(string) string) error {
	for name, dst := range map[string]*string{
		"SWITCHBACK_DATA": &c.Data, "SWITCHBACK_ADDR": &c.Addr, "SWITCHBACK_LOG_FORMAT": &c.LogFormat,
		"SWITCHBACK_LOG_LEVEL": &c.LogLevel, "SWITCHBACK_ADMIN_TOKEN": &c.AdminToken,
		"SWITCHBACK_TLS_CERT": &c.TLSCert, "SWITCHBACK_TLS_KEY": &c.TLSKey,
		"SWITCHBACK_STORE": &c.Store, "SWITCHBACK_ETCD_PREFIX": &c.EtcdPrefix,
		"SWITCHBACK_ETCD_CA": &c.EtcdCA, "SWITCHBACK_ETCD_CERT": &c.EtcdCert, "SWITCHBACK_ETCD_KEY": &c.EtcdKey,
		"SWITCHBACK_ETCD_USERNAME": &c.EtcdUsername, "SWITCHBACK_ETCD_PASSWORD": &c.EtcdPassword,
		"SWITCHBACK_SECRETS_KEY_FILE": &c.SecretsKeyFile,
		"SWITCHBACK_FLAGD_SYNC":       &c.FlagdSync, "SWITCHBACK_FLAGD_SYNC_TLS_CERT": &c.FlagdSyncTLSCert,
		"SWITCHBACK_FLAGD_SYNC_TLS_KEY": &c.FlagdSyncTLSKey, "SWITCHBACK_JOURNAL": &c.Journal,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if v := getenv("SWITCHBACK_LOCK_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("SWITCHBACK_LOCK_TIMEOUT: %w", err)
		}
		c.LockTimeout = d
	}
	if v := getenv("SWITCHBACK_READ_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("SWITCHBACK_READ_TIMEOUT: %w", err)
		}
		c.ReadTimeout = d
	}
	if v := getenv("SWITCHBACK_TRUSTED_PROXIES"); v != "" {
		c.TrustedProxies = strings.Split(v, ",")
	}
	if v := getenv("SWITCHBACK_JOURNAL_REPLICAS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("SWITCHBACK_JOURNAL_REPLICAS: %w", err)
		}
		c.JournalReplicas = n
	}
	return nil
}

// TierURLs returns the NATS servers of the embedded router's Journal, or
// "" for the bbolt journal alone.
func (c Serve) TierURLs() string { return tierURLs(c.Journal) }

// Validate checks the configuration; its errors name the flag at fault.
func (c Serve) Validate() error {
	if c.Data == "" {
		return errors.New("--data must name a directory")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("--addr %q must be host:port: %w", c.Addr, err)
	}
	if err := CheckLog(c.LogFormat, c.LogLevel); err != nil {
		return err
	}
	if c.LockTimeout <= 0 {
		return errors.New("--lock-timeout must be positive")
	}
	if err := checkJournal(c.Journal, c.JournalReplicas); err != nil {
		return err
	}
	if c.AdminToken != "" && len(c.AdminToken) < 16 {
		return errors.New("SWITCHBACK_ADMIN_TOKEN must be at least 16 characters")
	}
	if c.ReadTimeout <= 0 {
		return errors.New("--read-timeout must be positive")
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both or neither")
	}
	if _, err := webui.ParseProxies(c.TrustedProxies); err != nil {
		return fmt.Errorf("--trusted-proxies: %w", err)
	}
	if err := c.validateFlagdSync(); err != nil {
		return err
	}
	return c.validateStore()
}

// validateFlagdSync checks the flagd sync service's settings.
func (c Serve) validateFlagdSync() error {
	if c.FlagdSync == "" {
		if c.FlagdSyncTLSCert != "" || c.FlagdSyncTLSKey != "" {
			return errors.New("--flagd-sync-tls-cert and --flagd-sync-tls-key go with --flagd-sync ADDR")
		}
		return nil
	}
	if _, _, err := net.SplitHostPort(c.FlagdSync); err != nil {
		return fmt.Errorf("--flagd-sync %q must be host:port, such as 127.0.0.1:8015: %w", c.FlagdSync, err)
	}
	if (c.FlagdSyncTLSCert == "") != (c.FlagdSyncTLSKey == "") {
		return errors.New("--flagd-sync-tls-cert and --flagd-sync-tls-key go together: give both or neither")
	}
	return nil
}

// validateStore checks the etcd settings, which only an etcd store takes.
func (c Serve) validateStore() error {
	if c.Store == "" {
		if c.EtcdCA != "" || c.EtcdCert != "" || c.EtcdKey != "" || c.SecretsKeyFile != "" {
			return errors.New("--etcd-ca, --etcd-cert, --etcd-key and --secrets-key-file go with --store etcd://…")
		}
		return nil
	}
	if _, err := etcdstore.ParseURL(c.Store); err != nil {
		return fmt.Errorf("--store: %w", err)
	}
	if c.SecretsKeyFile == "" {
		return errors.New("--store etcd://… needs --secrets-key-file: partners' webhook secrets are sealed with its key in the shared store")
	}
	if (c.EtcdCert == "") != (c.EtcdKey == "") {
		return errors.New("--etcd-cert and --etcd-key go together: give both or neither")
	}
	if !strings.HasPrefix(c.EtcdPrefix, "/") {
		return fmt.Errorf("--etcd-prefix %q must begin with /", c.EtcdPrefix)
	}
	return nil
}

// Ingress is the configuration of "switchback ingress": defaults,
// then SWITCHBACK_* variables (one per flag: --router-id is
// SWITCHBACK_ROUTER_ID; the control URLs are $SWITCHBACK_SERVER, as for the
// CLI, comma-separated), then flags.
type Ingress struct {
	ingress.Config
	Addr        string
	LogFormat   string
	LogLevel    string
	ReadTimeout time.Duration
	// Init allows starting with an empty journal next to a snapshot.json.
	Init bool
	// Journal is where webhooks are made durable before the 202: "" (or
	// "bbolt") for the journal in Data alone, or nats://HOST:PORT[,…] for
	// the NATS JetStream stream a tier of routers shares (natstier).
	Journal string
	// JournalReplicas are the replicas of the stream and its outcome
	// bucket when this router creates them. Default 3.
	JournalReplicas int
}

// TierURLs returns the NATS servers of Journal, or "" for the bbolt
// journal alone.
func (c Ingress) TierURLs() string { return tierURLs(c.Journal) }

func tierURLs(journal string) string {
	if journal == "bbolt" {
		return ""
	}
	return journal
}

// DefaultIngress returns the defaults of "switchback ingress" on the host
// named hostname.
func DefaultIngress(hostname string) Ingress {
	return Ingress{
		Config: ingress.Config{Data: "./switchback-ingress", RouterID: "router-" + strings.ToLower(hostname),
			BodyLimit: 1 << 20, StuckAfter: 5 * time.Minute, Retention: 30 * 24 * time.Hour, Workers: 32,
			ComparisonDeadline: 2 * time.Minute, ShadowMinShare: 1},
		Addr: "127.0.0.1:8081", LogFormat: "text", LogLevel: "info", ReadTimeout: httpserve.DefaultReadTimeout,
	}
}

// FromEnv overrides c with the SWITCHBACK_* variables getenv returns; it
// returns an error that names the first that does not parse.
func (c *Ingress) FromEnv(getenv func(string) string) error {
	for name, dst := range map[string]*string{
		"SWITCHBACK_TOKEN": &c.Token, "SWITCHBACK_DATA": &c.Data,
		"SWITCHBACK_ADDR": &c.Addr, "SWITCHBACK_ROUTER_ID": &c.RouterID, "SWITCHBACK_MIGRATION": &c.Migration,
		"SWITCHBACK_LOG_FORMAT": &c.LogFormat, "SWITCHBACK_LOG_LEVEL": &c.LogLevel, "SWITCHBACK_JOURNAL": &c.Journal,
	} {
		if v := getenv(name); v != "" {
			*dst = v
		}
	}
	if v := getenv("SWITCHBACK_SERVER"); v != "" {
		c.ControlURLs = ingress.ParseControlURLs(v)
	}
	if v := getenv("SWITCHBACK_CONNECTWISE_KEY_HOSTS"); v != "" {
		c.KeyHosts = strings.Split(v, ",")
	}
	for name, dst := range map[string]*time.Duration{
		"SWITCHBACK_STUCK_AFTER": &c.StuckAfter, "SWITCHBACK_RETENTION": &c.Retention,
		"SWITCHBACK_COMPARISON_DEADLINE": &c.ComparisonDeadline, "SWITCHBACK_READ_TIMEOUT": &c.ReadTimeout,
	} {
		if v := getenv(name); v != "" {
			d, err := time.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			*dst = d
		}
	}
	if v := getenv("SWITCHBACK_BODY_LIMIT"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		if err != nil {
			return fmt.Errorf("SWITCHBACK_BODY_LIMIT: %w", err)
		}
		c.BodyLimit = n
	}
	for name, dst := range map[string]*int{"SWITCHBACK_WORKERS": &c.Workers, "SWITCHBACK_PARTNER_BACKLOG": &c.PartnerBacklog,
		"SWITCHBACK_JOURNAL_REPLICAS": &c.JournalReplicas} {
		if v := getenv(name); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			*dst = n
		}
	}
	if v := getenv("SWITCHBACK_SHADOW_MIN_SHARE"); v != "" {
		f, err := strconv.ParseFloat(v, 64)
		if err != nil {
			return fmt.Errorf("SWITCHBACK_SHADOW_MIN_SHARE: %w", err)
		}
		c.ShadowMinShare = f
	}
	if v := getenv("SWITCHBACK_INIT"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("SWITCHBACK_INIT: %w", err)
		}
		c.Init = b
	}
	return nil
}

// ErrNoControl means that the ingress router has no control URL or no
// router token: the command was misused.
var ErrNoControl = errors.New("switchback ingress needs --control URL[,URL...] and a router token in $SWITCHBACK_TOKEN")

// Validate checks the configuration: the command's own fields, then the
// router's (ingress.Config.Validate). It returns ErrNoControl, or an error
// that names the flag at fault.
func (c Ingress) Validate() error {
	if len(c.ControlURLs) == 0 || c.Token == "" {
		return ErrNoControl
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("--addr %q must be host:port: %w", c.Addr, err)
	}
	if err := CheckLog(c.LogFormat, c.LogLevel); err != nil {
		return err
	}
	if c.ReadTimeout <= 0 {
		return errors.New("--read-timeout must be positive")
	}
	if err := checkJournal(c.Journal, c.JournalReplicas); err != nil {
		return err
	}
	return c.Config.Validate()
}

// checkJournal checks a --journal ("", bbolt, or NATS server URLs) and
// --journal-replicas.
func checkJournal(j string, replicas int) error {
	if replicas < 0 || replicas > 5 {
		return errors.New("--journal-replicas must be between 1 and 5 (JetStream's limit), or 0 for 3")
	}
	if tierURLs(j) == "" {
		return nil
	}
	for u := range strings.SplitSeq(j, ",") {
		scheme, hostport, ok := strings.Cut(strings.TrimSpace(u), "://")
		if !ok || (scheme != "nats" && scheme != "tls") || hostport == "" {
			return fmt.Errorf("--journal: %q is neither bbolt nor nats://HOST:PORT[,nats://HOST:PORT…] (tls:// for TLS)", j)
		}
	}
	return nil
}

// CheckLog checks the --log-format and --log-level of a process.
func CheckLog(format, level string) error {
	if format != "text" && format != "json" {
		return fmt.Errorf("--log-format %q: use text or json", format)
	}
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return fmt.Errorf("--log-level %q: use debug, info, warn or error", level)
	}
	return nil
}

// Logger returns the logger of a format and level checked by CheckLog.
func Logger(format, level string, w io.Writer) *slog.Logger {
	var l slog.Level
	l.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: l}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}
