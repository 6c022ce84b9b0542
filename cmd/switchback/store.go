package main

import (
	"context"
	"fmt"
	"log/slog"

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
	endpoints, err := etcdstore.ParseURL(cfg.Store)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--store: %w", err)
	}
	key, err := etcdstore.ReadKeyFile(cfg.SecretsKeyFile)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--secrets-key-file: %w", err)
	}
	client, err := etcdstore.Dial(ctx, etcdstore.Config{Endpoints: endpoints, CAFile: cfg.EtcdCA, CertFile: cfg.EtcdCert, KeyFile: cfg.EtcdKey,
		Username: cfg.EtcdUsername, Password: cfg.EtcdPassword})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("--store: %w", err)
	}
	store, err := etcdstore.Open(ctx, client, cfg.EtcdPrefix, etcdstore.WithSecretsKey(key))
	if err != nil {
		client.Close()
		return nil, nil, nil, err
	}
	log.Info("control store on etcd", "endpoints", endpoints, "prefix", cfg.EtcdPrefix)
	return store, store.Registry(), func() { store.Close(); client.Close() }, nil
}

// storeName names the store for the log: never its credentials, which
// are not in the URL.
func storeName(cfg config.Serve) string {
	if cfg.Store == "" {
		return "bbolt"
	}
	return cfg.Store + " " + cfg.EtcdPrefix
}
