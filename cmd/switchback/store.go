package main

import (
	"context"
	"fmt"
	"log/slog"

	clientv3 "go.etcd.io/etcd/client/v3"

	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/config"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/datadir"
	"github.com/switchbackhq/switchback/internal/etcdstore"
)

// openStore opens the control store cfg names: the bbolt file at dbPath,
// or the etcd cluster of --store with the registry the replicas share
// (nil for bbolt: the service's own, in memory). The returned func closes
// them.
func openStore(ctx context.Context, cfg config.Serve, dbPath string, log *slog.Logger) (control.Store, control.Registry, func(), error) {
	if cfg.Store == "" {
		store, err := boltstore.Open(dbPath, cfg.LockTimeout)
		if err != nil {
			return nil, nil, nil, datadir.DamagedControlDB(err, dbPath)
		}
		return store, nil, func() { store.Close() }, nil
	}
	keys, err := etcdstore.ReadKeysFile(cfg.SecretsKeyFile)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--secrets-key-file: %w", err)
	}
	store, closeStore, err := openEtcd(ctx, cfg.Store, etcdSettings{
		etcdFlags: etcdFlags{prefix: cfg.EtcdPrefix, ca: cfg.EtcdCA, cert: cfg.EtcdCert, key: cfg.EtcdKey},
		username:  cfg.EtcdUsername, password: cfg.EtcdPassword, secretsKeys: keys}, etcdstore.Open)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--store: %w", err)
	}
	log.Info("control store on etcd", "store", cfg.Store, "prefix", cfg.EtcdPrefix,
		"sealingKey", etcdstore.KeyID(keys[0]), "keys", len(keys))
	// Resealing at each start finishes a key rotation as the replicas
	// restart. A failure does not stop serve: a partner (or target) it could not open
	// stops the load that follows with the reason, and one that changed
	// under it is resealed at the next start or by store reseal.
	n, err := store.Reseal(ctx)
	switch {
	case err != nil:
		log.Warn("could not reseal every partner's and notification target's secret with the first key of --secrets-key-file", "resealed", n, "sealingKey", etcdstore.KeyID(keys[0]), "err", err)
	case n > 0:
		log.Info("resealed partners' and notification targets' secrets with the first key of --secrets-key-file", "resealed", n, "sealingKey", etcdstore.KeyID(keys[0]))
	}
	return store, store.Registry(), closeStore, nil
}

// etcdSettings are how serve and the store verbs reach an etcd store.
type etcdSettings struct {
	etcdFlags
	username, password string
	secretsKeys        [][]byte // the first seals
}

// openEtcd dials the cluster at u and opens the store under the prefix
// with open (etcdstore.Open, or OpenExisting for a store that must be
// there). The returned func closes the store and its client.
func openEtcd(ctx context.Context, u string, es etcdSettings,
	open func(context.Context, *clientv3.Client, string, ...etcdstore.Option) (*etcdstore.Store, error)) (*etcdstore.Store, func(), error) {
	endpoints, err := etcdstore.ParseURL(u)
	if err != nil {
		return nil, nil, usageError(err.Error())
	}
	client, err := etcdstore.Dial(ctx, etcdstore.Config{Endpoints: endpoints, CAFile: es.ca, CertFile: es.cert, KeyFile: es.key,
		Username: es.username, Password: es.password})
	if err != nil {
		return nil, nil, err
	}
	store, err := open(ctx, client, es.prefix, etcdstore.WithSecretsKeys(es.secretsKeys...))
	if err != nil {
		client.Close()
		return nil, nil, err
	}
	return store, func() { store.Close(); client.Close() }, nil
}

// storeName names the store for the log: never its credentials, which
// are not in the URL.
func storeName(cfg config.Serve) string {
	if cfg.Store == "" {
		return "bbolt"
	}
	return cfg.Store + " " + cfg.EtcdPrefix
}
