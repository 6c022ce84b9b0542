package domain

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestApprovalPolicyJSON(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    ApprovalPolicy
		wantErr string
	}{
		{"every field", `{"required":2,"stages":["new","done"],"ttl":"90m"}`, ApprovalPolicy{Required: 2, Stages: []Stage{StageNew, StageDone}, TTL: 90 * time.Minute}, ""},
		{"no ttl is the default", `{"required":1,"stages":["new"]}`, ApprovalPolicy{Required: 1, Stages: []Stage{StageNew}}, ""},
		{"null ttl is the default", `{"required":1,"stages":["new"],"ttl":null}`, ApprovalPolicy{Required: 1, Stages: []Stage{StageNew}}, ""},
		{"ttl not a duration", `{"required":1,"stages":["new"],"ttl":"a day"}`, ApprovalPolicy{}, "not a duration"},
		{"ttl 0s", `{"required":1,"stages":["new"],"ttl":"0s"}`, ApprovalPolicy{}, "more than 0s"},
		{"ttl negative", `{"required":1,"stages":["new"],"ttl":"-1h"}`, ApprovalPolicy{}, "more than 0s"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got ApprovalPolicy
			err := json.Unmarshal([]byte(tt.in), &got)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || ErrorCode(err) != CodeInvalid {
					t.Fatalf("Unmarshal(%s) = %v, want an invalid_argument error mentioning %q", tt.in, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Unmarshal(%s) = %v", tt.in, err)
			}
			if diff := cmp.Diff(tt.want, got); diff != "" {
				t.Errorf("Unmarshal(%s) (-want +got):\n%s", tt.in, diff)
			}
		})
	}
	b, err := json.Marshal(ApprovalPolicy{Required: 1, Stages: []Stage{StageNew}})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := string(b), `{"required":1,"stages":["new"],"ttl":"24h0m0s"}`; got != want {
		t.Errorf("Marshal(no ttl) = %s, want %s: the ttl in force is shown", got, want)
	}
}

func TestApprovalPolicyRequires(t *testing.T) {
	var none *ApprovalPolicy
	if none.Requires(StageNew) {
		t.Error("a nil policy requires approvals")
	}
	p := &ApprovalPolicy{Required: 1, Stages: []Stage{StageNew, StageDone}}
	for st, want := range map[Stage]bool{StageLegacy: false, StageShadow: false, StageNew: true, StageDone: true} {
		if got := p.Requires(st); got != want {
			t.Errorf("Requires(%s) = %v, want %v", st, got, want)
		}
	}
}

func TestChangeRequestAsOf(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	c := ChangeRequest{ID: NewChangeID(), State: ChangePending, RequestedAt: t0, ExpiresAt: t0.Add(time.Hour),
		Approvals: []Approval{{By: "bob", At: t0}}}
	if got := c.AsOf(t0.Add(time.Hour - time.Nanosecond)); got.State != ChangePending || got.Ended != nil {
		t.Errorf("AsOf(before expiry) = %s, %+v; want pending", got.State, got.Ended)
	}
	got := c.AsOf(t0.Add(time.Hour))
	if got.State != ChangeExpired || got.Ended == nil || got.Ended.By != ChangeActor || !got.EndedAt.Equal(c.ExpiresAt) {
		t.Errorf("AsOf(at expiry) = %s, %+v; want expired by %s at %s", got.State, got.Ended, ChangeActor, c.ExpiresAt)
	}
	if c.State != ChangePending || c.Ended != nil {
		t.Errorf("AsOf changed its receiver: %s", c.State)
	}
	rejected := c.End(ChangeRejected, ChangeEnd{By: "carol", At: t0, Reason: "not today"})
	if got := rejected.AsOf(t0.Add(2 * time.Hour)); got.State != ChangeRejected {
		t.Errorf("an ended change AsOf after its expiry = %s, want it to stay rejected", got.State)
	}
	if !ValidChangeID(c.ID) || ValidChangeID("chg_x") || ValidChangeID("ntc_"+c.ID[4:]) {
		t.Errorf("ValidChangeID does not tell %q from malformed ids", c.ID)
	}
}
