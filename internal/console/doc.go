// Package console prints what the command line shows an operator: the
// tables of migrations, routers and audit entries, gate reports, a
// replay's progress bar, and JSON. Whatever came from the control service
// may hold text a partner or an operator typed, so everything printed from
// it goes through TerminalSafe (or TerminalSafeJSON) first: an escape
// sequence in a reason must not clear the screen or rewrite what the
// operator reads.
//
// It only formats; the calls that fetch what it prints are in
// internal/client.
package console
