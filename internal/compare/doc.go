// Package compare classifies one shadowed event: it compares the effects the
// primary pipeline applied with those the shadow pipeline would have applied
// and returns exactly one domain.Class with a readable diff.
//
// The order of the checks is the contract (the classes are listed in
// docs/api.md, "Gate report"):
// errors first (shadow_error, then primary_error when the primary's
// pipeline was unavailable or error_asymmetry when it refused the event),
// then type_mismatch, empty, missing, extra, value_diff, and equal last.
// primary_error is a coverage gap like shadow_error: an outage of the
// primary's pipeline says nothing about the shadow. Rules (ignore paths and set
// paths) normalize only the effects' fields, after the effects have been
// matched by identity (kind, key, op), so they can hide a value_diff and
// nothing else: a type_mismatch, missing, extra, empty or error_asymmetry
// verdict never depends on them.
//
// Noise works the same way, after Compare: a value_diff returns the field
// paths that differ (Result.Paths, each named by the kind of the effects
// it differs in, kind:fields.a, with list indices written [] by PathOf),
// and Reclassify turns a value_diff whose every path is noise into the
// class noise. No other class has paths, so no other class can become
// noise; nor can a value_diff where a whole list element or a whole list
// differs (an element lost, added or moved), which NoisePaths also keeps
// from being learned.
//
// Compare is on the router's hot path (every shadowed event), so its
// equal case allocates almost nothing: fields are compared in place, each
// value normalized on the fly only where it must be (ignored paths skipped,
// set slices sorted, numbers compared by value, RFC 3339 times as
// instants). Only a comparison that is not equal builds normalized copies
// of the differing fields, and only then does go-cmp walk them to write
// the diff that a release engineer reads. Rules are compiled once per
// migration with Compile or NewRules, are immutable afterwards, and are
// safe for concurrent use.
package compare
