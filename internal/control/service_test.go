package control_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/boltstore"
	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// flakyStore fails its next write transaction after fn has made its writes,
// the way a full disk would at commit.
type flakyStore struct {
	*boltstore.Store
	mu   sync.Mutex
	fail bool
}

func (f *flakyStore) failNext() { f.mu.Lock(); f.fail = true; f.mu.Unlock() }

func (f *flakyStore) Update(ctx context.Context, fn func(control.Tx) error) error {
	f.mu.Lock()
	fail := f.fail
	f.fail = false
	f.mu.Unlock()
	return f.Store.Update(ctx, func(tx control.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		if fail {
			return errors.New("injected: disk full")
		}
		return nil
	})
}

func TestFailedWriteChangesNothing(t *testing.T) {
	store := &flakyStore{Store: bolttest.Open(t)}
	c := newClock()
	svc, err := control.New(ctx, store, control.Options{Now: c.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatal(err)
	}
	e := &env{svc: svc, store: store.Store, clock: c}
	e.migration(t, "m")
	for _, id := range []string{"a", "b"} {
		e.partner(t, id)
	}
	e.cohort(t, "m", "w", 1, "a", "b")
	if _, _, err := svc.Bootstrap(ctx, "sbk_admin"); err != nil {
		t.Fatal(err)
	}

	changes := []struct {
		name string
		do   func() error
	}{
		{"advance", func() error { _, err := svc.Advance(ctx, ops, "m", "w", false); return err }},
		{"set stage", func() error { _, err := svc.SetStage(ctx, ops, "m", "a", domain.StageLegacy, false); return err }},
		{"revert", func() error { _, err := svc.Revert(ctx, ops, "m"); return err }},
		{"partner", func() error {
			_, _, err := svc.PutPartner(ctx, admin, control.PartnerInput{ID: "c", Name: "C", PSA: domain.PSAGeneric})
			return err
		}},
		{"migration", func() error { _, _, err := svc.PutMigration(ctx, admin, migration("n")); return err }},
		{"revert all", func() error { _, err := svc.RevertAll(ctx, ops); return err }},
		{"cohort", func() error {
			_, _, err := svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "w2", Partners: []string{"c"}})
			return err
		}},
		{"token", func() error { _, _, err := svc.CreateToken(ctx, admin, "ops", domain.RoleOperator); return err }},
		{"revoke", func() error { return svc.DeleteToken(ctx, admin, "ops") }},
	}
	for _, tt := range changes {
		t.Run(tt.name, func(t *testing.T) {
			before, ch := svc.Changed()
			stored, err := store.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			tokens := svc.Tokens()
			n := len(e.auditLog(t))
			c.Advance(time.Minute)

			store.failNext()
			err = tt.do()
			wantCode(t, err, domain.CodeInternal)
			if svc.State() != before {
				t.Errorf("a failed write published a new state")
			}
			select {
			case <-ch:
				t.Errorf("a failed write closed the Changed channel")
			default:
			}
			after, err := store.Load(ctx)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(stored, after); diff != "" {
				t.Errorf("a failed write left data behind (-before +after):\n%s", diff)
			}
			if diff := cmp.Diff(tokens, svc.Tokens()); diff != "" {
				t.Errorf("a failed write changed the tokens (-before +after):\n%s", diff)
			}
			if got := len(e.auditLog(t)); got != n {
				t.Errorf("audit entries = %d, want %d", got, n)
			}

			// The same change succeeds next time and chains to the log.
			if err := tt.do(); err != nil {
				t.Fatalf("retry: %v", err)
			}
			if got := len(e.auditLog(t)); got != n+1 {
				t.Errorf("audit entries after the retry = %d, want %d", got, n+1)
			}
			if v := svc.State().Version; v > before.Version+1 {
				t.Errorf("version after the retry = %d, want at most %d", v, before.Version+1)
			}
		})
	}
}

func TestStatsErrorIsInternal(t *testing.T) {
	stats := fakeStats{counts: func(string, string, domain.Stage, time.Time) (gate.Counts, error) {
		return gate.Counts{}, errors.New("stats store down")
	}}
	e := newEnv(t, stats)
	e.migration(t, "m")
	e.partner(t, "a")
	e.moveTo(t, "m", "a", domain.StageShadow)
	v := e.svc.State().Version
	_, err := e.svc.SetStage(ctx, ops, "m", "a", domain.StageNew, false)
	wantCode(t, err, domain.CodeInternal)
	if got := e.svc.State().Version; got != v {
		t.Errorf("version = %d, want %d", got, v)
	}
}

func TestConcurrentChanges(t *testing.T) {
	// Writers and readers at once; run with -race. Versions seen by a reader
	// never go back, and every change is in the audit chain.
	e := newEnv(t, nil)
	e.migration(t, "m")
	partners := []string{"a", "b", "c", "d"}
	for _, id := range partners {
		e.partner(t, id)
	}
	v0 := e.svc.State().Version
	stop := make(chan struct{})
	readerDone := make(chan string)
	go func() {
		var last uint64
		var problem string
		for {
			select {
			case <-stop:
				readerDone <- problem
				return
			default:
			}
			st := e.svc.State()
			if st.Version < last && problem == "" {
				problem = "version went back"
			}
			last = st.Version
			for _, p := range partners {
				if r := st.Flags().Evaluate("m", p); r.Value != flags.Legacy && r.Value != flags.New && problem == "" {
					problem = "bad value " + r.Value
				}
			}
		}
	}()
	var wg sync.WaitGroup
	for i, p := range partners {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 10 {
				to := domain.StageShadow
				if j%2 == 1 {
					to = domain.StageLegacy
				}
				if _, err := e.svc.SetStage(ctx, ops, "m", p, to, false); err != nil && domain.ErrorCode(err) != domain.CodeMigrationReverted {
					t.Errorf("SetStage(%s): %v", p, err)
				}
				if i == 0 && j == 4 {
					if _, err := e.svc.Revert(ctx, ops, "m"); err != nil {
						t.Errorf("Revert: %v", err)
					}
					if _, err := e.svc.Resume(ctx, ops, "m"); err != nil {
						t.Errorf("Resume: %v", err)
					}
				}
			}
		}()
	}
	wg.Wait()
	close(stop)
	if problem := <-readerDone; problem != "" {
		t.Error(problem)
	}
	log := e.auditLog(t)
	if got, want := e.svc.State().Version-v0, uint64(len(log))-v0; got != want {
		t.Errorf("%d new versions but %d new audit entries", got, want)
	}
	for _, p := range partners {
		if st := e.stage(t, "m", p).Stage; st != domain.StageLegacy {
			t.Errorf("%s at %s after its last move back, want legacy", p, st)
		}
	}
}
