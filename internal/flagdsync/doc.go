// Package flagdsync serves switchback's migration flags over flagd's sync
// protocol (flagd.sync.v1.FlagSyncService, as open-feature/flagd-schemas
// publishes it), so that flagd's providers in in-process mode, in any
// language, evaluate them locally and follow every new snapshot version:
// SyncFlags streams the whole configuration first and again on every
// version; FetchAllFlags answers it once; GetMetadata answers the flag set's
// metadata. The configuration is package flagd's.
//
// A client's selector (the flagd-selector header, or the deprecated
// request field) is a migration key, or empty for every migration.
//
// The service authenticates nobody, as flagd's own does not: what it
// serves, partner ids and their stages, is readable by whoever reaches the
// listener. serve listens where --flagd-sync says (the documentation's
// examples use loopback), over TLS with --flagd-sync-tls-cert and
// --flagd-sync-tls-key.
package flagdsync
