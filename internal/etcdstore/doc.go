// Package etcdstore stores the control service's data in etcd, so that
// several control replicas share one state. It implements control.Store
// and passes the same conformance suite as package boltstore.
//
// # Key layout (schema 1)
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
//	P partners/<id>               JSON domain.Partner; its secret sealed (see Secrets)
//	P migrations/<key>            JSON domain.Migration
//	P stages/<mig>/<partner>      JSON domain.PartnerStage: one key per partner per migration
//	P cohorts/<mig>/<name>        JSON domain.Cohort
//	P tokens/<name>               JSON domain.Token (the secret's SHA-256 only)
//	P audit/<seq, 20 digits>      JSON domain.AuditEntry: one key per entry
//	P stats/<stint>/<type>/<class>/<minute T>   decimal count: one key per row
//	P candidate/<stint>           "calls errors" of the new pipeline
//	P mismatches/<mig>/<partner>/<type>/<class>/<at T>/<event id>   JSON domain.Mismatch
//	P reports/<router>/<epoch>    decimal seq of the last report applied
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
// etcd refuses a transaction of more than 128 operations (--max-txn-ops)
// or a request over 1.5 MiB (--max-request-bytes) by default. The layout
// keeps each write small: a stage change is one key per partner, an audit
// entry one key, a statistics row one key whose count saturates (see
// domain.AddCounts), a mismatch one key, trimmed to the newest kept. An
// Update whose writes or compares exceed the limits (WithLimits; etcd's
// defaults otherwise) is refused before it is sent, with an error wrapping
// ErrTooLarge that counts them: a cohort advance of more than about 120
// partners must be split by its caller into several Updates.
//
// # Secrets
//
// With WithSecretsKey, a partner's webhook secret is sealed with AES-256-GCM
// (the partner id as additional data) and stored as sealedSecret, never in
// plain text. A partner stored in plain text (before a key was set) still
// loads; a sealed one without the key, or with another key, is an error.
//
// # Closing
//
// The Store does not own its client: Close only makes every later call
// return ErrClosed; the caller closes the client.
package etcdstore
