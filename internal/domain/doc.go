// Package domain holds switchback's types and the rules that need no I/O:
// partners, migrations, stages and their transitions, cohorts, tokens and
// roles, audit entries, and the one error type every layer speaks.
//
// It knows nothing of HTTP or bbolt; transport and storage depend on it.
package domain
