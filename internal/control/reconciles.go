package control

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Reconciler starts reconciliations against the PSAs: reconcile.Runner in
// serve's process. Reconcile leaves out the partners without PSA API
// access, and starts nothing when none is left.
type Reconciler interface {
	Reconcile(ctx context.Context, partners []string, from, to time.Time, trigger string) error
}

// ReconcileScheduler starts the reconciliations that the migrations'
// reconcile settings ask for (domain.ReconcilePolicy): after a revert, the
// partners it took off the new pipeline over the time they were on it, once
// their last webhooks have had Delay to arrive; and every period, the
// migration's partners at shadow, new or done over its window. It is the
// one place that decides when a reconciliation starts on its own.
type ReconcileScheduler struct {
	svc *Service
	rec Reconciler
	// Delay is how long after a revert its reconciliation starts: the
	// reconciliation's skew and settle, so that no change made before the
	// revert is too recent to judge.
	Delay time.Duration
	// Tick is how often the periods are checked; default a minute.
	Tick time.Duration
	// Log defaults to the service's logger.
	Log *slog.Logger

	wg   sync.WaitGroup
	last map[string]time.Time // when each migration was last reconciled by its period
	// refused is why each migration's last scheduled reconciliation could
	// not start: a refusal is logged when it differs from the one before,
	// not every period (on etcd every one is refused, the same way).
	refused map[string]string
}

// NewReconcileScheduler returns the scheduler of svc's automatic
// reconciliations, started on rec. Run it.
func NewReconcileScheduler(svc *Service, rec Reconciler, delay time.Duration) *ReconcileScheduler {
	return &ReconcileScheduler{svc: svc, rec: rec, Delay: delay, Tick: time.Minute, Log: svc.log,
		last: map[string]time.Time{}, refused: map[string]string{}}
}

// Run hears the service's reverts and keeps the periods until ctx ends.
// A migration's first scheduled reconciliation comes one period after Run
// starts, or after its policy is set.
func (sc *ReconcileScheduler) Run(ctx context.Context) {
	sc.svc.OnRevert(func(ev RevertEvent) { sc.afterRevert(ctx, ev) })
	defer sc.svc.OnRevert(nil)
	t := time.NewTicker(sc.Tick)
	defer t.Stop()
	sc.periodic(ctx)
	for {
		select {
		case <-t.C:
			sc.periodic(ctx)
		case <-ctx.Done():
			sc.wg.Wait()
			return
		}
	}
}

// afterRevert schedules the reconciliation ev calls for, if its
// migration's policy asks for one. It never blocks the revert.
func (sc *ReconcileScheduler) afterRevert(ctx context.Context, ev RevertEvent) {
	ms, ok := sc.svc.State().Migrations[ev.Migration]
	if !ok || ms.Migration.Reconcile == nil || !ms.Migration.Reconcile.AfterRevert || ctx.Err() != nil {
		return
	}
	sc.wg.Add(1)
	go func() {
		defer sc.wg.Done()
		select {
		case <-time.After(sc.Delay):
		case <-ctx.Done():
			return
		}
		if err := sc.rec.Reconcile(ctx, ev.Partners, ev.Since, ev.At, "revert"); err != nil {
			sc.Log.Error("the reconciliation after a revert could not start", "migration", ev.Migration, "err", err)
		}
	}()
}

// periodic starts the reconciliations whose period has come.
func (sc *ReconcileScheduler) periodic(ctx context.Context) {
	st := sc.svc.State()
	now := sc.svc.now()
	for _, key := range st.MigrationKeys() {
		ms := st.Migrations[key]
		p := ms.Migration.Reconcile
		if p == nil || p.Every <= 0 {
			delete(sc.last, key)
			delete(sc.refused, key)
			continue
		}
		last, seen := sc.last[key]
		if !seen {
			sc.last[key] = now
			continue
		}
		if now.Sub(last) < p.Every {
			continue
		}
		sc.last[key] = now
		var partners []string
		for _, id := range st.PartnerIDs() {
			switch ms.StageOf(st.Partners[id]).Stage {
			case domain.StageShadow, domain.StageNew, domain.StageDone:
				partners = append(partners, id)
			}
		}
		if len(partners) == 0 {
			continue
		}
		sc.refusal(key, sc.rec.Reconcile(ctx, partners, now.Add(-p.EffectiveWindow()), now, "schedule"))
	}
	for key := range sc.refused {
		if _, ok := st.Migrations[key]; !ok {
			delete(sc.refused, key)
		}
	}
}

// refusal logs err, the answer to key's scheduled reconciliation, at
// error level when it is a new reason, and the end of a run of refusals.
func (sc *ReconcileScheduler) refusal(key string, err error) {
	before, wasRefused := sc.refused[key]
	switch {
	case err == nil && wasRefused:
		delete(sc.refused, key)
		sc.Log.Info("scheduled reconciliations of the migration start again", "migration", key, "refusedBefore", before)
	case err == nil:
	case err.Error() == before:
		sc.Log.Debug("a scheduled reconciliation could not start, as before", "migration", key, "err", err)
	default:
		sc.refused[key] = err.Error()
		sc.Log.Error("a scheduled reconciliation could not start; logged again only when the reason changes", "migration", key, "err", err)
	}
}
