// Package flagd writes switchback's migration flags as flag definitions in
// flagd's JSON format (the flags.json schema of open-feature/flagd-schemas),
// for flagd's in-process providers (through the sync service of package
// flagdsync) and for a flagd daemon's HTTP source (GET /v1/flagd/flags.json).
//
// Each migration KEY becomes two string flags:
//
//   - KEY, variants "legacy" and "new", default "legacy": the pipeline that
//     applies the partner's events, "new" for the partners at stage new or
//     done;
//   - KEY:shadow, variants "legacy", "new" and "none", default "none": the
//     pipeline run in dry-run, "new" for the partners at stage shadow and
//     "legacy" for those at stage new.
//
// The targeting key is the partner id. A reverted migration has no
// targeting: "legacy" and "none" for everyone, with state ENABLED (a
// DISABLED flag is a missing flag to OpenFeature clients, which would answer
// their code's default instead). The answers are those of
// flags.Snapshot.Evaluate, converted: the value for KEY, and the shadow
// pipeline ("" as "none") for KEY:shadow. Nothing is decided here that
// Evaluate does not decide; the tests hold the two to the same answers.
//
// # Targeting shape
//
// flagd's evaluator decodes a flag's targeting rule from its JSON on every
// evaluation, so the cost of an evaluation grows with the rule's size and
// above all with its number of JSON values. The partners of one answer are
// therefore one string, ",p1,p2,…,", and the rule tests whether
// ","+targetingKey+"," occurs in it: one JSON string to decode and one
// substring search, instead of an array of a thousand strings (a thousand
// values to decode and compare) or a chain of a thousand "==" rules.
// Partner ids never contain a comma (domain.ValidID); a targeting key that
// does is answered with the default before the search, so that "a,b" cannot
// match the partners a and b. See BenchmarkTargetingShape for the figures.
//
// The flag set's metadata carries flagSetId "switchback", the snapshot
// version (as the schema's string "version") and the store id. Nothing
// secret is ever written: the input is flags.Snapshot, which holds partner
// ids, names and stages, never a webhook secret.
package flagd
