// Package flags evaluates switchback migration flags in process.
//
// A migration's flag key is the migration key; the targeting key is the
// partner id. The value is the pipeline that applies the partner's events,
// "legacy" or "new"; the variant is the partner's stage; the metadata carries
// the shadow pipeline ("legacy", "new" or ""), the stage and the snapshot
// version. Evaluate is the one function behind every path that answers a flag:
// the control service's /v1/evaluate and OFREP endpoints and the in-process
// OpenFeature provider.
//
// The package imports nothing of switchback's internals: any Go service may
// use it.
package flags
