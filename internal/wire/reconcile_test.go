package wire

import "testing"

// A reconciliation has ended once it and any backfill of it have: the
// runner shows the backfill asked at the start running from the moment the
// reconciliation is done, so following one never stops in between.
func TestReconciliationEnded(t *testing.T) {
	tests := []struct {
		name string
		job  Reconciliation
		want bool
	}{
		{"running", Reconciliation{State: ReconcileRunning}, false},
		{"done, no backfill asked", Reconciliation{State: ReconcileDone, GapCount: 2}, true},
		{"done, backfill asked, no gap", Reconciliation{State: ReconcileDone, Request: ReconcileRequest{Backfill: true}}, true},
		{"backfill running", Reconciliation{State: ReconcileDone, GapCount: 2, Backfill: &BackfillProgress{State: ReconcileRunning}}, false},
		{"failed, its backfill of the other partners' gaps running", Reconciliation{State: ReconcileFailed, GapCount: 2, Backfill: &BackfillProgress{State: ReconcileRunning}}, false},
		{"backfill done", Reconciliation{State: ReconcileDone, GapCount: 2, Backfill: &BackfillProgress{State: ReconcileDone}}, true},
		{"failed", Reconciliation{State: ReconcileFailed}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.job.Ended(); got != tt.want {
				t.Errorf("Ended = %v, want %v", got, tt.want)
			}
		})
	}
}
