package etcdstore_test

import (
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// waitChange waits until svc shows change request id in state.
func waitChange(t *testing.T, svc *control.Service, id string, state domain.ChangeState) domain.ChangeRequest {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := svc.ChangeRequest(id)
		if err == nil && c.State == state {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("change request %s never %s on this replica: %+v, %v", id, state, c, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A change request filed on one replica is seen and approved on another,
// which makes the move; the first sees it applied and the partner moved.
// Filing changes no snapshot version: the replicas follow the audit head.
func TestReplicasShareChangeRequests(t *testing.T) {
	prefix := newPrefix()
	a, b := startReplica(t, prefix), startReplica(t, prefix)
	m := replicaMigration("m")
	m.Approvals = &domain.ApprovalPolicy{Required: 1, Stages: []domain.Stage{domain.StageShadow}}
	if _, _, err := a.PutMigration(t.Context(), setup, m); err != nil {
		t.Fatal(err)
	}
	putPartner(t, a, "acme")
	v := a.State().Version
	res, err := a.MoveStage(t.Context(), control.Change{Actor: "alice", Reason: "shadow acme"}, "m", "acme", domain.StageShadow, false)
	if err != nil || res.Change == nil {
		t.Fatalf("MoveStage = %+v, %v; want a change request", res, err)
	}
	if a.State().Version != v {
		t.Errorf("filing moved the version from %d to %d", v, a.State().Version)
	}
	waitChange(t, b, res.Change.ID, domain.ChangePending)
	got, err := b.Approve(t.Context(), control.Change{Actor: "bob"}, res.Change.ID)
	if err != nil || got.State != domain.ChangeApplied {
		t.Fatalf("Approve on replica B = %+v, %v", got, err)
	}
	waitChange(t, a, res.Change.ID, domain.ChangeApplied)
	st := waitVersion(t, a, b.State().Version)
	if got := st.Migrations["m"].StageOf(st.Partners["acme"]).Stage; got != domain.StageShadow {
		t.Errorf("replica A has acme at %s, want shadow", got)
	}
	verifyChain(t, a)
}
