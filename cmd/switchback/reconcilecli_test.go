package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/controlclient"
	"github.com/switchbackhq/switchback/internal/reconcile"
)

// The verb exits 0 only when nothing is left to do: no gap, or a backfill
// that applied every gap; anything else names what is left.
func TestReconcileOutcome(t *testing.T) {
	done := func(gaps int, bf *reconcile.BackfillResult) reconcile.Job {
		return reconcile.Job{ID: "rec_0123456789abcdef", State: reconcile.StateDone, GapCount: gaps, Backfill: bf}
	}
	tests := []struct {
		name    string
		job     reconcile.Job
		wantErr string // "" for exit 0
	}{
		{"no gap", done(0, nil), ""},
		{"uncertain changes only", reconcile.Job{State: reconcile.StateDone, Uncertain: 3}, ""},
		{"gaps not backfilled", done(2, nil), "2 gaps found and not backfilled: send them with \"switchback reconcile backfill rec_0123456789abcdef\""},
		{"every gap backfilled and applied", done(2, &reconcile.BackfillResult{State: reconcile.StateDone, Events: 2, Journaled: 2, Applied: 2}), ""},
		{"a gap dead-lettered", done(2, &reconcile.BackfillResult{State: reconcile.StateDone, Events: 2, Journaled: 2, Applied: 1, DeadLettered: 1}),
			"left 1 of 2 gaps unapplied: 1 dead-lettered, 0 still pending"},
		{"a gap still pending after the wait", done(2, &reconcile.BackfillResult{State: reconcile.StateDone, Events: 2, Journaled: 2, Applied: 1, Pending: 1}),
			"left 1 of 2 gaps unapplied: 0 dead-lettered, 1 still pending"},
		{"the backfill failed", done(2, &reconcile.BackfillResult{State: reconcile.StateFailed, Error: "journal full"}), "the backfill of rec_0123456789abcdef failed: journal full"},
		{"the reconciliation failed", reconcile.Job{ID: "rec_1", State: reconcile.StateFailed, Error: "acme: PSA answered 401"}, "reconciliation rec_1 failed: acme: PSA answered 401"},
		{"an error with an escape sequence", reconcile.Job{ID: "rec_1", State: reconcile.StateFailed, Error: "\x1b[2J"}, `failed: "\x1b[2J"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := reconcileOutcome(tt.job)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("outcome = %v, want exit 0", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("outcome = %v, want an error with %q", err, tt.wantErr)
			}
			if exitCode(err) != 1 {
				t.Errorf("exit code = %d, want 1", exitCode(err))
			}
		})
	}
}

// A job started with backfill has not ended between its gaps being known
// and its backfill starting: following it must not stop there.
func TestReconcileEnded(t *testing.T) {
	tests := []struct {
		name string
		job  reconcile.Job
		want bool
	}{
		{"running", reconcile.Job{State: reconcile.StateRunning}, false},
		{"done, no backfill asked", reconcile.Job{State: reconcile.StateDone, GapCount: 2}, true},
		{"done, backfill asked, not started yet", reconcile.Job{State: reconcile.StateDone, GapCount: 2, Request: reconcile.Request{Backfill: true}}, false},
		{"done, backfill asked, no gap", reconcile.Job{State: reconcile.StateDone, Request: reconcile.Request{Backfill: true}}, true},
		{"backfill running", reconcile.Job{State: reconcile.StateDone, GapCount: 2, Backfill: &reconcile.BackfillResult{State: reconcile.StateRunning}}, false},
		{"backfill done", reconcile.Job{State: reconcile.StateDone, GapCount: 2, Backfill: &reconcile.BackfillResult{State: reconcile.StateDone}}, true},
		{"failed with backfill asked", reconcile.Job{State: reconcile.StateFailed, GapCount: 2, Request: reconcile.Request{Backfill: true}}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := controlclient.ReconcileEnded(tt.job); got != tt.want {
				t.Errorf("ReconcileEnded = %v, want %v", got, tt.want)
			}
		})
	}
}

// The flags become the request as the API documents it: from as written
// (the service resolves "2h" by its clock), a --to written as a duration
// resolved to a time, durations checked; mistakes are usage errors.
func TestReconcileRequest(t *testing.T) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		name    string
		flags   reconcileFlags
		want    controlclient.ReconcileRequest
		wantErr string
	}{
		{"a duration ago", reconcileFlags{partners: "acme, beta", from: "2h"},
			controlclient.ReconcileRequest{Partners: []string{"acme", "beta"}, From: "2h", Reason: "INC-1"}, ""},
		{"a window with skew and settle", reconcileFlags{partners: "acme", from: "2026-03-01T09:00:00Z", to: "30m", skew: "5m", settle: "0s", backfill: true},
			controlclient.ReconcileRequest{Partners: []string{"acme"}, From: "2026-03-01T09:00:00Z", To: "2026-03-01T11:30:00Z",
				Skew: "5m", Settle: "0s", Backfill: true, Reason: "INC-1"}, ""},
		{"no partners", reconcileFlags{from: "2h"}, controlclient.ReconcileRequest{}, "needs --partners and --from"},
		{"a from that is neither", reconcileFlags{partners: "acme", from: "yesterday"}, controlclient.ReconcileRequest{}, `--from: "yesterday" is neither`},
		{"a skew that is no duration", reconcileFlags{partners: "acme", from: "2h", skew: "2"}, controlclient.ReconcileRequest{}, `--skew: "2" is not a duration`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.flags.request("INC-1", now)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, errUsage) {
					t.Fatalf("request = %+v, %v; want a usage error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("request = %+v, want %+v", got, tt.want)
			}
		})
	}
}
