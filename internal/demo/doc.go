// Package demo reproduces, on one machine, the incident switchback exists
// for, and narrates how it is caught: it serves the legacy pipeline and a
// rewritten one whose handler cache is keyed by partner alone, has the
// control service started (by the command, through a ServeFunc), sets up
// partners of every PSA kind in three cohorts through the control API,
// drives the PSA simulator, narrates the mismatches caught, the gate's
// refusal and the guard's revert and replay, and waits for every
// journaled event to settle. Its noisy scenario turns the tables: a legacy
// pipeline that stamps every effect and a rewrite correct but for wave-2;
// it narrates the stamps learned as noise, the canary's gate going from
// waiting for data to pass, the canary's advance to new, and wave-2's gate
// failing on type_mismatch all the same. Its Result holds the simulator's ledger and
// both pipelines, so that a test can check that no acknowledged update
// was lost.
package demo
