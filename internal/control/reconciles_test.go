package control_test

import (
	"bytes"
	"context"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
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
// time they were on it, when the migration asks for it; never otherwise:
// whichever way it reverts (a kill switch, revert-all, a partner set back
// to legacy by hand, the guard).
func TestRevertReconcilesThePartnersItMoved(t *testing.T) {
	alice := func(reason string) control.Change { return control.Change{Actor: "alice", Reason: reason} }
	for _, tt := range []struct {
		name   string
		revert func(t *testing.T, e *env) error
	}{
		{"kill switch", func(t *testing.T, e *env) error {
			if _, err := e.svc.SetKillSwitch(ctx, alice("INC-1"), control.KillSwitch{Migrations: []string{"quiet"}, On: true}); err != nil {
				return err
			}
			_, err := e.svc.SetKillSwitch(ctx, alice("INC-2"), control.KillSwitch{Migrations: []string{"m"}, On: true})
			return err
		}},
		{"revert-all", func(t *testing.T, e *env) error {
			_, err := e.svc.RevertAll(ctx, alice("INC-3"))
			return err
		}},
		{"stage set back to legacy", func(t *testing.T, e *env) error {
			if _, err := e.svc.SetStage(ctx, alice("INC-4"), "quiet", "acme", domain.StageLegacy, false); err != nil {
				return err
			}
			_, err := e.svc.SetStage(ctx, alice("INC-4"), "m", "acme", domain.StageLegacy, false)
			return err
		}},
		{"guard", func(t *testing.T, e *env) error {
			for _, key := range []string{"quiet", "m"} {
				if _, err := e.svc.IngestReport(ctx, wire.Report{Router: "r1", Guard: []domain.GuardSample{{Migration: key, Partner: "acme",
					EventID: "evt_" + key, Outcomes: []string{string(domain.ClassMissing)}}}}); err != nil {
					return err
				}
			}
			if st := e.stage(t, "m", "acme").Stage; st != domain.StageShadow {
				t.Fatalf("the guard left acme at %s", st)
			}
			return nil
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
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
			if err := tt.revert(t, e); err != nil {
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
		})
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

// refusingReconciler answers the n-th reconciliation (from 1) with
// answer(n), counting them.
type refusingReconciler struct {
	mu     sync.Mutex
	n      int
	answer func(n int) error
}

func (r *refusingReconciler) Reconcile(context.Context, []string, time.Time, time.Time, string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n++
	return r.answer(r.n)
}

func (r *refusingReconciler) calls() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.n
}

// logBuffer is a log's text, written and read from several goroutines.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// A scheduled reconciliation refused period after period (as on etcd,
// where every one is) is logged at error level once, and again only when
// the reason changes or after one has started since.
func TestRefusedScheduledReconciliationLoggedOnce(t *testing.T) {
	e := newEnv(t, nil)
	e.partner(t, "acme")
	withPolicy(t, e, "m", &domain.ReconcilePolicy{Every: time.Hour})
	e.moveTo(t, "m", "acme", domain.StageNew)
	otherJournals := domain.Errorf(domain.CodeConflict, "other journals may hold events of the window")
	rec := &refusingReconciler{answer: func(n int) error {
		switch {
		case n <= 3 || n >= 7:
			return otherJournals
		case n <= 5:
			return domain.Errorf(domain.CodeStoreUnavailable, "cannot tell which routers' journals hold events")
		}
		return nil // the sixth starts
	}}
	logs := &logBuffer{}
	sc := control.NewReconcileScheduler(e.svc, rec, time.Millisecond)
	sc.Tick = time.Millisecond
	sc.Log = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	runCtx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sc.Run(runCtx); close(done) }()
	defer func() { cancel(); <-done }()

	// Periods until the eighth is asked, which happens only once the
	// seventh's answer is logged (one goroutine keeps the periods). The
	// answers depend on the count alone, so an hour the scheduler sees
	// late (a period more or fewer) changes nothing logged.
	deadline := time.Now().Add(10 * time.Second)
	for rec.calls() < 8 {
		if time.Now().After(deadline) {
			t.Fatalf("%d scheduled reconciliations asked, want 8", rec.calls())
		}
		e.clock.Advance(time.Hour)
		time.Sleep(time.Millisecond)
	}
	var errs []string
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "level=ERROR") {
			errs = append(errs, line)
		}
	}
	// Periods 1 (other journals), 4 (a new reason) and 7 (refused again
	// after the sixth started); 2, 3 and 5 repeat the reason before.
	want := []string{"other journals", "cannot tell", "other journals"}
	if len(errs) != len(want) {
		t.Fatalf("%d refusals logged at error level, want %d:\n%s", len(errs), len(want), strings.Join(errs, "\n"))
	}
	for i, w := range want {
		if !strings.Contains(errs[i], w) || !strings.Contains(errs[i], "migration=m") {
			t.Errorf("error %d: %s\nwant migration m and %q", i+1, errs[i], w)
		}
	}
	if n := strings.Count(logs.String(), "start again"); n != 1 {
		t.Errorf("the end of the refusals logged %d times, want once (period 6):\n%s", n, logs.String())
	}
}
