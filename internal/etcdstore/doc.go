// Package etcdstore stores the control service's data in etcd, so that
// several control replicas share one state. It implements control.Store
// and passes the same conformance suite as package boltstore.
//
// # Key layout (schema 1)
//
// Schema 1 is not released (no switchback serve reads etcd yet), so it was
// changed in place when stages moved into buckets: no store of the old
// layout exists to upgrade.
//
// Every key is under the store's prefix P (default "/switchback/"); each
// component written <c> below is escaped with url.PathEscape, so it never
// holds a "/" and a prefix scan never strays into a neighbour whose name
// merely begins the same way. Numbers are decimal; times (T) are Unix
// nanoseconds, clamped at 0, zero-padded to 20 digits so that keys sort by
// time.
//
//	P meta/schema                 decimal schema version
//	P meta/storeId                the store's identity, 32 random hex digits, set once
//	P meta/version                decimal snapshot version
//	P meta/auditHead              decimal seq of the last audit entry (the audit head)
//	P partners/<id>               JSON domain.Partner; its secret sealed, with the sealing
//	                              key's id (see Secrets)
//	P migrations/<key>            JSON domain.Migration
//	P stages/<mig>/<bucket>       JSON object partner id → {"stage", "since"}: the stages of
//	                              the partners whose bucket (2 digits) is fnv32a(id) mod 64
//	P cohorts/<mig>/<name>        JSON domain.Cohort
//	P tokens/<name>               JSON domain.Token (the secret's SHA-256 only)
//	P changes/<id>                JSON domain.ChangeRequest: every pending one and the latest
//	                              ended ones (control.MaxEndedChanges); Load reads them all
//	P notifiers/<name>            JSON domain.Notifier, a notification target; its secret
//	                              sealed, with the sealing key's id (see Secrets)
//	P audit/<seq, 20 digits>      JSON domain.AuditEntry: one key per entry
//	P stats/<stint>/<type>/<class>/<minute T>   decimal count: one key per row
//	P candidate/<stint>           "calls errors" of the new pipeline
//	P mismatches/<mig>/<partner>/<type>/<class>/<at T>/<event id>   JSON domain.Mismatch
//	P reports/<router>/<epoch>    decimal seq of the last report applied
//	P noise/<mig>/<partner>/<type>   JSON object field path → count: what routers saw differ
//	                              between two legacy runs, at most domain.NoisePathsKept paths
//
// A stint, a partner's time in a stage, is <mig>/<partner>/<stage>/<since T>.
//
// # Transactions
//
// Update runs fn against a Tx that buffers its writes (and reads what it
// wrote); its reads go to etcd at one revision, the first read's. Its
// writes then commit in one etcd transaction, conditional on what fn read
// being unchanged since: each key read compares its mod revision (0 for a
// key that was absent), and each prefix scanned (a partner's mismatches)
// compares that no key in it changed after the read revision. Appending
// to the audit log reads and writes meta/auditHead, so two replicas
// appending at once conflict and the chain stays linear. When the
// condition fails, fn runs again from fresh reads after a random wait
// that grows each time (at most a quarter of a second), up to Attempts
// times in all, and Update then returns a domain error of code conflict wrapping
// ErrConflict. fn may thus run more than once (control.Store's contract
// does not say so yet: bbolt runs it once). Updates within one Store are
// also serialized by a mutex, so that a process never races itself.
//
// Known gaps: a prefix compare catches keys created or changed in the
// prefix, not keys deleted from it (only PutMismatch scans, and it always
// writes in its prefix, so two of them conflict). A statistics row costs a
// compare and a write, so a report of more than about 120 rows is refused
// as too large until reports are split.
//
// # Limits
//
// etcd refuses a transaction of more than 128 compares or 128 writes
// (--max-txn-ops) or a request over 1.5 MiB (--max-request-bytes) by
// default. An Update whose writes or compares exceed the limits (WithLimits;
// etcd's defaults otherwise) is refused whole before it is sent, with an
// error wrapping ErrTooLarge that counts them and says what to do.
//
// A change of stages must be atomic however many partners it moves: a
// cohort advance moves its whole cohort or nothing. So a migration's
// stages live in StageBuckets (64) keys, not one key per partner: whatever
// the number of partners moved, the change costs at most 64 compares and
// 64 writes, plus its snapshot version, its audit entry and the audit head
// (three writes, one compare). A cohort advance of 1,000 partners, or of
// all of a migration's, is thus one transaction, and so is a global kill
// switch (one write per migration: at most about 120 migrations).
//
// What bounds a migration is bytes: an advance touching every bucket
// rewrites the migration's whole stage table. A partner costs its id plus
// at most 67 bytes in its bucket ({"stage":…,"since":…} in UTC with
// nanoseconds), 130 bytes with the longest id (63 characters); the audit
// entry of an advance lists the partners moved (the id plus 3 bytes each).
// So a migration holds at most about 11,000 partners with 63-character ids
// (TestStagesLimit writes 11,000 and is refused 13,000), about 20,000 with
// 10-character ids; beyond that its advances, and any change to its
// stages, fail with ErrTooLarge until the cluster's --max-request-bytes is
// raised (and given to WithLimits). Two changes of different partners in
// the same bucket conflict, and the later one runs again (see
// Transactions).
//
// A change request is one key; the one of a cohort advance lists the
// partners it moved, as the advance's audit entry does, and a failed
// one's gate report holds at most domain.MaxChangeReportPartners partners.
//
// Other writes stay small: an audit entry is one key, a statistics row one
// key whose count saturates (see domain.AddCounts), a mismatch one key,
// trimmed to the newest kept.
//
// # Secrets
//
// With WithSecretsKey, a partner's webhook secret is sealed with AES-256-GCM
// (the partner id as additional data) and stored as sealedSecret, never in
// plain text, beside secretKeyId, the sealing key's KeyID (8 hex digits of
// its SHA-256, never the key). Its PSA API access (psaApi), the whole JSON
// object with its base URL, is sealed by the same key as sealedPsaApi
// (additional data: the partner id and "/psaApi"). A partner stored in
// plain text (before a key was set) still loads; a sealed one without the
// key is an error that names the missing key's id.
//
// A notification target's secret is sealed the same way, as sealedSecret
// beside secretKeyId (additional data: "notifier/" and its name), so that
// neither a partner's secret nor another target's can be passed off as
// it.
//
// Rotation: WithSecretsKeys takes several keys (ReadKeysFile reads them
// from a file, one a line). The first seals; each opens the secrets
// sealed with it, picked by id; a secret sealed before key ids is tried
// with each. Reseal rewrites the partners not sealed with the first key
// (their secrets and PSA API access together), and the notification
// targets likewise, in conditional
// transactions within the limits, without touching the snapshot version
// or the audit log. Replicas may run with different key files meanwhile:
// each opens what the others seal as long as its file holds their first
// key.
//
// # Connecting
//
// ParseURL reads etcd://HOST:PORT[,HOST:PORT…]; Dial makes the client
// from a Config (TLS when a CA or client certificate is given, etcd auth
// with a username and password that no error repeats) and returns only
// once a member has answered, or ErrUnreachable after the dial timeout.
// ReadKeysFile reads the secrets keys of WithSecretsKeys from a file.
//
// # Copying
//
// Store implements control.Copyable (Export and SetStoreID), which
// package storecopy uses to copy a store into or out of etcd. OpenExisting
// opens a store to copy from without creating one.
//
// # Closing
//
// The Store does not own its client: Close only makes every later call
// return ErrClosed; the caller closes the client.
package etcdstore
