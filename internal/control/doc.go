// Package control is the control service: it owns partners, migrations,
// stages, cohorts, kill switches, tokens and the audit log, applies the
// rollout rules to every change, and publishes an immutable State, with a
// new snapshot version, after each one.
//
// Changes are serialized by one mutex and each is written, with its audit
// entries and the new version, in one storage transaction before the new
// State is published: a change is either durable and visible, or neither.
// Reads never touch storage: they use the published State.
//
// What the service needs from storage is Store and Tx (store.go): rows,
// nothing decided. Every store runs the suite in storetest.
package control
