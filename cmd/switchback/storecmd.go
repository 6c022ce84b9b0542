package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/etcdstore"
	"github.com/switchbackhq/switchback/internal/storecopy"
)

// controlDBFile is the control database's file in serve's data directory.
const controlDBFile = "switchback.db"

// storeLockTimeout is how long store copy waits for a bbolt file held by
// another process before it says so.
const storeLockTimeout = 2 * time.Second

// etcdFlags are the options of the etcd side of the store verbs.
type etcdFlags struct {
	prefix, ca, cert, key, secretsKeyFile string
}

// define declares the etcd flags on fset.
func (ef *etcdFlags) define(fset *flag.FlagSet) {
	fset.StringVar(&ef.prefix, "etcd-prefix", etcdstore.DefaultPrefix, "the key prefix of the store in etcd")
	fset.StringVar(&ef.ca, "etcd-ca", "", "a PEM file of the CA that signed the etcd members' certificates (turns TLS on)")
	fset.StringVar(&ef.cert, "etcd-cert", "", "a PEM client certificate for etcd (with --etcd-key; turns TLS on)")
	fset.StringVar(&ef.key, "etcd-key", "", "the PEM key of --etcd-cert")
	fset.StringVar(&ef.secretsKeyFile, "secrets-key-file", "", "a file of the 32-byte keys that seal partners' secrets in etcd, one a line as 64 hex digits or base64, the first sealing (required with etcd)")
}

// runStore runs "switchback store copy" and "switchback store reseal".
func runStore(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	if len(args) > 0 && args[0] == "reseal" {
		return runStoreReseal(ctx, args[1:], getenv, stderr)
	}
	fset := flag.NewFlagSet("store", flag.ContinueOnError)
	fset.SetOutput(stderr)
	from := fset.String("from", "", "the store to copy: bolt://DIR or etcd://HOST:PORT[,HOST:PORT…]")
	to := fset.String("to", "", "the new store to copy into, in the same forms; it must be empty")
	var ef etcdFlags
	ef.define(fset)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: switchback store copy --from URL --to URL [flags]
       switchback store reseal --store etcd://… --secrets-key-file FILE [flags]
         (see switchback store reseal -h)

Copies a control store whole into a new, empty one: partners with their
secrets, migrations, stages, cohorts, tokens, the snapshot version, the
store's identity, the audit log entry for entry (its hash chain verified
first, and kept), the comparison statistics, mismatches and applied reports.
It writes nothing to the source. Stop switchback serve on the source first.

A URL is one of:
  bolt://DIR                  serve's data directory (--data); its control
                              database is DIR/switchback.db. As a destination,
                              DIR is created and must not hold switchback.db.
  etcd://HOST:PORT[,…]        an etcd cluster, the store under --etcd-prefix.
                              As a destination the prefix must be empty.

For etcd, SWITCHBACK_ETCD_USERNAME and SWITCHBACK_ETCD_PASSWORD authenticate
when the cluster has auth enabled, and --secrets-key-file is required: etcd
holds partners' secrets sealed with that key (make one with
"openssl rand -hex 32" and give serve the same file).

`)
		fset.PrintDefaults()
	}
	pos, err := parseFlags(fset, args, 1, "copy")
	if err != nil {
		return err
	}
	if pos[0] != "copy" || *from == "" || *to == "" {
		fset.Usage()
		return errUsage
	}
	var secretsKeys [][]byte
	if isEtcdURL(*from) || isEtcdURL(*to) {
		if ef.secretsKeyFile == "" {
			return usageError("switchback store copy: --secrets-key-file is required when a side is etcd: etcd holds partners' secrets sealed with it")
		}
		if secretsKeys, err = etcdstore.ReadKeysFile(ef.secretsKeyFile); err != nil {
			return err
		}
	}
	src, closeSrc, err := openCopyStore(ctx, *from, false, ef, secretsKeys, getenv)
	if err != nil {
		return fmt.Errorf("--from %s: %w", safeURL(*from), err)
	}
	defer closeSrc(nil)
	dst, closeDst, err := openCopyStore(ctx, *to, true, ef, secretsKeys, getenv)
	if err != nil {
		return fmt.Errorf("--to %s: %w", safeURL(*to), err)
	}
	n, err := storecopy.Copy(ctx, src, dst, prefixed{stderr})
	closeDst(err)
	if err != nil {
		return fmt.Errorf("store copy: %w", err)
	}
	fmt.Fprintf(stderr, "switchback store copy: %s → %s: %d partners, %d migrations, %d stages, %d cohorts, %d tokens, %d change requests, %d audit entries, %d statistics rows\n",
		safeURL(*from), safeURL(*to), n.Partners, n.Migrations, n.Stages, n.Cohorts, n.Tokens, n.Changes, n.Audit, n.Rows)
	return nil
}

// runStoreReseal runs "switchback store reseal".
func runStoreReseal(ctx context.Context, args []string, getenv func(string) string, stderr io.Writer) error {
	fset := flag.NewFlagSet("store reseal", flag.ContinueOnError)
	fset.SetOutput(stderr)
	u := fset.String("store", "", "the etcd store: etcd://HOST:PORT[,HOST:PORT…]")
	var ef etcdFlags
	ef.define(fset)
	fset.Usage = func() {
		fmt.Fprint(fset.Output(), `Usage: switchback store reseal --store etcd://HOST:PORT[,…] --secrets-key-file FILE [flags]

Rewrites every partner whose webhook secret is not sealed with the first key
of --secrets-key-file (sealed with another of its keys, or stored in plain
text) sealed with the first, and every notification target's secret likewise,
and prints how many. Secrets do not change, so
neither do the snapshot version and the audit log. Replicas may keep
running: each partner is rewritten only if unchanged since it was read.
serve does the same at each start; run this to finish a key rotation
without a restart, or to check that it is finished (it then prints 0).

SWITCHBACK_ETCD_USERNAME and SWITCHBACK_ETCD_PASSWORD authenticate when the
cluster has auth enabled. See "Rotating the secrets key" in the README.

`)
		fset.PrintDefaults()
	}
	if _, err := parseFlags(fset, args, 0, "no arguments"); err != nil {
		return err
	}
	if *u == "" || ef.secretsKeyFile == "" {
		fset.Usage()
		return errUsage
	}
	if !isEtcdURL(*u) {
		return usageError(fmt.Sprintf("switchback store reseal: --store %s: want etcd://HOST:PORT[,HOST:PORT…]: only etcd seals secrets", safeURL(*u)))
	}
	keys, err := etcdstore.ReadKeysFile(ef.secretsKeyFile)
	if err != nil {
		return err
	}
	s, closeStore, err := openEtcd(ctx, *u, etcdSettings{etcdFlags: ef, username: getenv("SWITCHBACK_ETCD_USERNAME"),
		password: getenv("SWITCHBACK_ETCD_PASSWORD"), secretsKeys: keys}, etcdstore.OpenExisting)
	if err != nil {
		return fmt.Errorf("--store %s: %w", safeURL(*u), err)
	}
	defer closeStore()
	n, err := s.Reseal(ctx)
	fmt.Fprintf(stderr, "switchback store reseal: %s %s: %d partners and notification targets resealed with key %s\n", safeURL(*u), ef.prefix, n, etcdstore.KeyID(keys[0]))
	if err != nil {
		return fmt.Errorf("store reseal: %w", err)
	}
	return nil
}

// prefixed writes copy progress as lines of switchback's.
type prefixed struct{ w io.Writer }

func (p prefixed) Write(b []byte) (int, error) {
	if _, err := io.WriteString(p.w, "switchback "); err != nil {
		return 0, err
	}
	return p.w.Write(b)
}

// safeURL is u without what may be credentials (ParseURL refuses them,
// but the refusal must not print them).
func safeURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if i := strings.LastIndex(rest, "@"); ok && i >= 0 {
		return scheme + "://…@" + rest[i+1:]
	}
	return u
}

func isEtcdURL(u string) bool { return strings.HasPrefix(strings.ToLower(u), "etcd") }

// openCopyStore opens the store at u: to read only (a source) or new and
// empty (a destination). Its close function is given the copy's error: a
// bbolt destination it created is removed when the copy failed.
func openCopyStore(ctx context.Context, u string, dest bool, ef etcdFlags, secretsKeys [][]byte, getenv func(string) string) (control.Copyable, func(error), error) {
	if dir, ok := strings.CutPrefix(u, "bolt://"); ok {
		return openBoltStore(dir, dest)
	}
	if !isEtcdURL(u) {
		return nil, nil, usageError(fmt.Sprintf("unknown store URL %q: want bolt://DIR or etcd://HOST:PORT[,HOST:PORT…]", u))
	}
	open := etcdstore.OpenExisting
	if dest {
		open = etcdstore.Open
	}
	s, closeStore, err := openEtcd(ctx, u, etcdSettings{etcdFlags: ef, username: getenv("SWITCHBACK_ETCD_USERNAME"),
		password: getenv("SWITCHBACK_ETCD_PASSWORD"), secretsKeys: secretsKeys}, open)
	if err != nil {
		return nil, nil, err
	}
	return s, func(error) { closeStore() }, nil
}

func openBoltStore(dir string, dest bool) (control.Copyable, func(error), error) {
	if dir == "" {
		return nil, nil, usageError("bolt:// needs a directory: bolt://DIR, serve's --data")
	}
	path := filepath.Join(dir, controlDBFile)
	if !dest {
		s, err := boltstore.OpenReadOnly(path, storeLockTimeout)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil, fmt.Errorf("no control database %s in it", path)
		}
		if err != nil {
			return nil, nil, err
		}
		return s, func(error) { s.Close() }, nil
	}
	if _, err := os.Stat(path); err == nil {
		return nil, nil, fmt.Errorf("%s exists: copy into a new data directory", path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, nil, err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("create the data directory: %w", err)
	}
	s, err := boltstore.Open(path, storeLockTimeout)
	if err != nil {
		return nil, nil, err
	}
	return s, func(copyErr error) {
		s.Close()
		if copyErr != nil {
			// Half a copy would pass for a store: remove what was made.
			os.Remove(path)
		}
	}, nil
}
