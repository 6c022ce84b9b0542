package control_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

// reconciliations records what a ReconcileScheduler starts.
type reconciliations struct {
	mu    sync.Mutex
	asked []asked
}

type asked struct {
	partners []string
	from, to time.Time
	trigger  string
}

func (r *reconciliations) Reconcile(_ context.Context, partners []string, from, to time.Time, trigger string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.asked = append(r.asked, asked{partners, from, to, trigger})
	return nil
}

func (r *reconciliations) list() []asked {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.asked)
}

func (e *env) runReconcileScheduler(t *testing.T, rec control.Reconciler) *control.ReconcileScheduler {
	t.Helper()
	sc := control.NewReconcileScheduler(e.svc, rec, time.Millisecond)
	sc.Tick = time.Millisecond
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return sc
}

func waitAsked(t *testing.T, rec *reconciliations, n int) []asked {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for len(rec.list()) < n {
		if time.Now().After(deadline) {
			t.Fatalf("reconciliations started = %+v, want %d", rec.list(), n)
		}
		time.Sleep(time.Millisecond)
	}
	return rec.list()
}

func withPolicy(t *testing.T, e *env, key string, p *domain.ReconcilePolicy) {
	t.Helper()
	m := migration(key)
	m.Reconcile = p
	if _, _, err := e.svc.PutMigration(ctx, admin, m); err != nil {
		t.Fatal(err)
	}
}

// A revert reconciles the partners it took off the new pipeline over the
// time they were on it, when the migration asks for it; never otherwise.
func TestRevertReconcilesThePartnersItMoved(t *testing.T) {
	e := newEnv(t, nil)
	e.partner(t, "acme")
	e.partner(t, "globex")
	withPolicy(t, e, "m", &domain.ReconcilePolicy{AfterRevert: true})
	withPolicy(t, e, "quiet", nil)
	for _, key := range []string{"m", "quiet"} {
		e.moveTo(t, key, "acme", domain.StageNew)
		e.moveTo(t, key, "globex", domain.StageShadow)
	}
	since := e.stage(t, "m", "acme").Since
	rec := &reconciliations{}
	e.runReconcileScheduler(t, rec)

	e.clock.Advance(time.Hour)
	if _, err := e.svc.SetKillSwitch(ctx, control.Change{Actor: "alice", Reason: "INC-1"}, control.KillSwitch{Migrations: []string{"quiet"}, On: true}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.SetKillSwitch(ctx, control.Change{Actor: "alice", Reason: "INC-2"}, control.KillSwitch{Migrations: []string{"m"}, On: true}); err != nil {
		t.Fatal(err)
	}
	got := waitAsked(t, rec, 1)
	time.Sleep(20 * time.Millisecond) // a second one, for "quiet", would have come by now
	if got = rec.list(); len(got) != 1 {
		t.Fatalf("reconciliations = %+v, want only m's", got)
	}
	a := got[0]
	if !slices.Equal(a.partners, []string{"acme"}) || !a.from.Equal(since) || !a.to.Equal(e.clock.Now().UTC()) || a.trigger != "revert" {
		t.Errorf("reconciliation = %+v, want acme (globex was in shadow) from %s to the revert at %s", a, since, e.clock.Now())
	}
}

// Every period, the partners at shadow, new or done are reconciled over
// the window; the first period starts when the scheduler does.
func TestPeriodicReconciliations(t *testing.T) {
	e := newEnv(t, nil)
	for _, id := range []string{"acme", "globex", "initech"} {
		e.partner(t, id)
	}
	withPolicy(t, e, "m", &domain.ReconcilePolicy{Every: time.Hour, Window: 2 * time.Hour})
	e.moveTo(t, "m", "acme", domain.StageNew)
	e.moveTo(t, "m", "globex", domain.StageShadow) // initech stays at legacy
	rec := &reconciliations{}
	e.runReconcileScheduler(t, rec)

	time.Sleep(20 * time.Millisecond)
	if got := rec.list(); len(got) != 0 {
		t.Fatalf("reconciled %+v before the first period", got)
	}
	now := e.clock.Advance(time.Hour).UTC()
	a := waitAsked(t, rec, 1)[0]
	if !slices.Equal(a.partners, []string{"acme", "globex"}) || !a.to.Equal(now) || !a.from.Equal(now.Add(-2*time.Hour)) || a.trigger != "schedule" {
		t.Errorf("reconciliation = %+v, want acme and globex over the two hours to %s", a, now)
	}
	e.clock.Advance(30 * time.Minute)
	time.Sleep(20 * time.Millisecond)
	if got := rec.list(); len(got) != 1 {
		t.Errorf("reconciled again within the period: %+v", got)
	}
	e.clock.Advance(30 * time.Minute)
	waitAsked(t, rec, 2)
}
