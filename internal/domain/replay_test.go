package domain

import (
	"testing"
	"time"
)

func TestReplayRequestValidate(t *testing.T) {
	at := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	ok := ReplayRequest{Migration: "m1", Partners: []string{"acme"}, From: at.Add(-time.Hour), To: at, Pipeline: "legacy", Filter: ReplayMismatched}
	tests := []struct {
		name    string
		edit    func(*ReplayRequest)
		wantErr bool
	}{
		{"mismatched", func(*ReplayRequest) {}, false},
		{"mismatched awaiting comparisons", func(r *ReplayRequest) { r.AwaitComparisons = true }, false},
		{"all awaiting comparisons", func(r *ReplayRequest) { r.Filter, r.AwaitComparisons = ReplayAll, true }, true},
		{"failed awaiting comparisons", func(r *ReplayRequest) { r.Filter, r.AwaitComparisons = ReplayFailed, true }, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := ok
			tt.edit(&r)
			err := r.Validate()
			if got := err != nil; got != tt.wantErr {
				t.Errorf("Validate() = %v, want an error: %v", err, tt.wantErr)
			}
			if err != nil && ErrorCode(err) != CodeInvalid {
				t.Errorf("code = %s, want %s", ErrorCode(err), CodeInvalid)
			}
		})
	}
}
