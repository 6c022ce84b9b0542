package control_test

import (
	"context"
	"strings"
	"testing"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// faultyStore answers the next Update with store_unavailable: after
// committing it when commit is set (the answer was lost on the way back),
// before it otherwise.
type faultyStore struct {
	control.Store
	fail, commit bool
}

func (f *faultyStore) Update(ctx context.Context, fn func(control.Tx) error) error {
	if !f.fail {
		return f.Store.Update(ctx, fn)
	}
	f.fail = false
	if f.commit {
		if err := f.Store.Update(ctx, fn); err != nil {
			return err
		}
	}
	return &domain.Error{Code: domain.CodeStoreUnavailable, Message: "etcd: request timed out"}
}

// A write whose answer is lost is judged by its audit entry: the one that
// committed answers success and is published, the one that did not says
// that nothing was changed.
func TestLostAnswerOfTheStore(t *testing.T) {
	for _, committed := range []bool{true, false} {
		store := &faultyStore{Store: bolttest.Open(t)}
		svc, err := control.New(ctx, store, control.Options{Logger: quietLogger()})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := svc.PutMigration(ctx, admin, migration("m")); err != nil {
			t.Fatal(err)
		}
		store.fail, store.commit = true, committed
		_, err = svc.Revert(ctx, ops, "m")
		log, logErr := svc.AuditLog(ctx, 0, 10)
		if logErr != nil {
			t.Fatal(logErr)
		}
		if committed {
			if err != nil || !svc.State().Migrations["m"].Reverted || len(log) != 2 {
				t.Errorf("committed: revert = %v, reverted %v, %d audit entries; want success, reverted, 2", err, svc.State().Migrations["m"].Reverted, len(log))
			}
			continue
		}
		if domain.ErrorCode(err) != domain.CodeStoreUnavailable || !strings.Contains(domain.ErrorMessage(err), "nothing was changed") {
			t.Errorf("not committed: revert = %v, want store_unavailable saying nothing was changed", err)
		}
		if svc.State().Migrations["m"].Reverted || len(log) != 1 {
			t.Errorf("not committed: reverted %v, %d audit entries; want neither", svc.State().Migrations["m"].Reverted, len(log))
		}
		// And the next try lands, on the same chain.
		if _, err := svc.Revert(ctx, ops, "m"); err != nil {
			t.Errorf("second revert: %v", err)
		}
	}
}

// A guard trip whose revert the store refuses for a moment (etcd without
// a leader, say) is retried until it lands: the window it cleared is not
// lost with it.
func TestGuardRevertWaitsOutTheStore(t *testing.T) {
	store := &faultyStore{Store: bolttest.Open(t)}
	svc, err := control.New(ctx, store, control.Options{Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{svc: svc}
	e.partner(t, "acme")
	e.migration(t, "m")
	e.moveTo(t, "m", "acme", domain.StageNew)
	store.fail = true
	if _, err := svc.IngestReport(ctx, wire.Report{Router: "r1", Guard: []domain.GuardSample{{Migration: "m", Partner: "acme",
		EventID: "evt_1", Outcomes: []string{string(domain.ClassTypeMismatch)}}}}); err != nil {
		t.Fatal(err)
	}
	if got := e.stage(t, "m", "acme").Stage; got != domain.StageShadow {
		t.Errorf("acme after a type mismatch, its first revert refused by the store: %s, want shadow", got)
	}
}
