package etcdstore_test

import (
	"fmt"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// etcd takes at most 128 operations in a transaction. These are the
// changes whose writes grow with what the store holds: each must fit.

// revert.all over 120 migrations whose autopilots run: the migrations, the
// version, two audit entries (the revert, the pauses) and the head.
func TestRevertAllPausesManyAutopilotsInOneTransaction(t *testing.T) {
	svc, err := control.New(t.Context(), open(t, newPrefix()), control.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	const n = 120
	for i := range n {
		m := replicaMigration(fmt.Sprintf("m%03d", i))
		m.Autopilot = &domain.AutopilotPolicy{Enabled: true, Windows: []domain.AutopilotWindow{{Days: []string{"mon"}, From: "09:00", To: "10:00"}}}
		if _, _, err := svc.PutMigration(t.Context(), setup, m); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := svc.RevertAll(t.Context(), control.Change{Actor: "ops", Reason: "incident"}); err != nil {
		t.Fatalf("RevertAll over %d migrations with running autopilots: %v", n, err)
	}
	for key, ms := range svc.State().Migrations {
		if !ms.Reverted || ms.AutopilotState == nil || !ms.AutopilotState.Paused {
			t.Fatalf("%s: reverted %v, autopilot %+v; want reverted and paused", key, ms.Reverted, ms.AutopilotState)
		}
	}
}

// A store at its bound of ended change requests, with 50 pending ones
// overdue: each expiry run ends some and prunes as many old ones, within
// one transaction, until none is left pending.
func TestExpireChangesFitsOneTransaction(t *testing.T) {
	s := open(t, newPrefix())
	base := time.Now().UTC()
	const overdue = 50
	total := control.MaxEndedChanges + overdue
	for chunk := 0; chunk < total; chunk += 100 {
		err := s.Update(t.Context(), func(tx control.Tx) error {
			for i := chunk; i < min(chunk+100, total); i++ {
				c := domain.ChangeRequest{ID: fmt.Sprintf("chg_%024x", i), Migration: "m", Kind: domain.ChangeAdvance, Cohort: fmt.Sprintf("c%d", i),
					From: domain.StageShadow, To: domain.StageNew, RequestedBy: "a", Required: 1, Approvals: []domain.Approval{}}
				if i < control.MaxEndedChanges {
					at := base.Add(-48*time.Hour + time.Duration(i)*time.Second)
					c.RequestedAt, c.ExpiresAt = at, at.Add(time.Hour)
					c = c.End(domain.ChangeRejected, domain.ChangeEnd{By: "b", At: at, Reason: "no"})
				} else {
					at := base.Add(-25*time.Hour + time.Duration(i)*time.Second)
					c.RequestedAt, c.ExpiresAt, c.State = at, at.Add(24*time.Hour), domain.ChangePending
				}
				if err := tx.PutChange(c); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	svc, err := control.New(t.Context(), s, control.Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ended := 0
	for run := 0; ended < overdue; run++ {
		if run == 5 {
			t.Fatalf("%d of %d overdue requests expired after 5 runs", ended, overdue)
		}
		n, err := svc.ExpireChanges(t.Context())
		if err != nil {
			t.Fatalf("ExpireChanges (run %d, %d ended so far): %v", run+1, ended, err)
		}
		ended += n
	}
	if got := len(svc.Changes(control.ChangeFilter{State: domain.ChangePending})); got != 0 {
		t.Errorf("%d requests still pending", got)
	}
}
