package flags

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
)

// randomSnapshot is a snapshot of up to 4 migrations and 8 partners, with
// random stages and kill switches.
func randomSnapshot(rng *rand.Rand, version uint64) *Snapshot {
	s := &Snapshot{Version: version, StoreID: "store", Migrations: map[string]*Migration{}, Partners: map[string]Partner{}}
	stages := []string{StageShadow, StageNew, StageDone}
	for i := range rng.IntN(8) {
		id := fmt.Sprintf("p%d", i)
		if rng.IntN(4) > 0 {
			s.Partners[id] = Partner{Name: fmt.Sprintf("P%d", rng.IntN(2)), PSA: "generic"}
		}
	}
	for i := range rng.IntN(4) {
		m := &Migration{Reverted: rng.IntN(3) == 0, Stages: map[string]string{}}
		for id := range s.Partners {
			if rng.IntN(2) == 0 {
				m.Stages[id] = stages[rng.IntN(len(stages))]
			}
		}
		s.Migrations[fmt.Sprintf("m%d", i)] = m
	}
	return s
}

// diff is the delta from a to b, as a control service computes it.
func diff(a, b *Snapshot) *snapshotDelta {
	d := &snapshotDelta{Version: b.Version, Base: a.Version, StoreID: b.StoreID, Audit: b.Audit,
		Migrations: map[string]*migrationDelta{}, Partners: map[string]*Partner{}}
	for k, m := range b.Migrations {
		md := &migrationDelta{Reverted: m.Reverted, Stages: map[string]*string{}}
		old := a.Migrations[k]
		if old == nil {
			old = &Migration{}
		}
		for id, st := range m.Stages {
			if old.Stages[id] != st {
				md.Stages[id] = &st
			}
		}
		for id := range old.Stages {
			if _, ok := m.Stages[id]; !ok {
				md.Stages[id] = nil
			}
		}
		if _, ok := a.Migrations[k]; !ok || len(md.Stages) > 0 || old.Reverted != m.Reverted {
			d.Migrations[k] = md
		}
	}
	for k := range a.Migrations {
		if _, ok := b.Migrations[k]; !ok {
			d.Migrations[k] = nil
		}
	}
	for id, p := range b.Partners {
		if old, ok := a.Partners[id]; !ok || old != p {
			d.Partners[id] = &p
		}
	}
	for id := range a.Partners {
		if _, ok := b.Partners[id]; !ok {
			d.Partners[id] = nil
		}
	}
	return d
}

// A delta applied to its base gives the next snapshot, and tells the same
// changed flags as comparing the two whole snapshots does; the base is
// left as it was.
func TestPatchGivesTheNextSnapshot(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d (rerun a failure by fixing it here)", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	for i := range 2000 {
		a, b := randomSnapshot(rng, 7), randomSnapshot(rng, 8)
		before := randomSnapshotCopy(a)
		got, changed, ok := a.patch(diff(a, b))
		if !ok {
			t.Fatalf("case %d: the delta from version 7 does not apply to version 7", i)
		}
		if d := cmp.Diff(b, got, cmpopts.EquateEmpty()); d != "" {
			t.Fatalf("case %d: patched (-want +got):\n%s", i, d)
		}
		if want := flagChanges(a, b); !slices.Equal(changed, want) && !(len(changed) == 0 && len(want) == 0) {
			t.Fatalf("case %d: changed flags %v, want %v", i, changed, want)
		}
		if d := cmp.Diff(before, a); d != "" {
			t.Fatalf("case %d: patch modified its base (-before +after):\n%s", i, d)
		}
	}
	a := randomSnapshot(rng, 7)
	for _, d := range []*snapshotDelta{{Version: 9, Base: 8, StoreID: "store"}, {Version: 8, Base: 7, StoreID: "another"}} {
		if _, _, ok := a.patch(d); ok {
			t.Errorf("delta %d→%d of %q applied to version 7 of %q", d.Base, d.Version, d.StoreID, a.StoreID)
		}
	}
}

func randomSnapshotCopy(s *Snapshot) *Snapshot {
	c := *s
	c.Migrations = map[string]*Migration{}
	for k, m := range s.Migrations {
		mc := *m
		mc.Stages = map[string]string{}
		for id, st := range m.Stages {
			mc.Stages[id] = st
		}
		c.Migrations[k] = &mc
	}
	c.Partners = map[string]Partner{}
	for id, p := range s.Partners {
		c.Partners[id] = p
	}
	return &c
}

// A delta for another version than the one held (a version missed) makes
// the provider reconnect at once, naming the version it holds, and take
// the whole snapshot; a provider with WholeSnapshots, OnSnapshot or
// SnapshotFile does not ask for deltas.
func TestProviderResyncsOnADeltaItCannotApply(t *testing.T) {
	var mu sync.Mutex
	var asked []string // query and Last-Event-ID of each stream request
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		n := len(asked)
		asked = append(asked, r.URL.RawQuery+" "+r.Header.Get("Last-Event-ID"))
		mu.Unlock()
		w.Header().Set("Content-Type", "text/event-stream")
		if n == 0 {
			fmt.Fprint(w, "id: 3\nevent: snapshot\ndata: {\"version\":3,\"storeId\":\"s\",\"migrations\":{\"m\":{\"reverted\":false,\"stages\":{\"acme\":\"new\"}}},\"partners\":{\"acme\":{\"name\":\"Acme\",\"psa\":\"generic\"}}}\n\n")
			// Version 4 was missed: this delta applies to 4.
			fmt.Fprint(w, "id: 5\nevent: delta\ndata: {\"version\":5,\"base\":4,\"storeId\":\"s\",\"migrations\":{\"m\":{\"reverted\":true}}}\n\n")
		} else {
			fmt.Fprint(w, "id: 5\nevent: snapshot\ndata: {\"version\":5,\"storeId\":\"s\",\"migrations\":{\"m\":{\"reverted\":true,\"stages\":{\"acme\":\"new\"}}},\"partners\":{\"acme\":{\"name\":\"Acme\",\"psa\":\"generic\"}}}\n\n")
		}
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	}))
	t.Cleanup(srv.Close)
	opts, _ := pvOptions(t, srv.URL)
	opts.MinBackoff, opts.MaxBackoff = time.Hour, time.Hour // a resync does not wait for a backoff
	p := pvNewProvider(t, opts)
	if _, _, err := pvRegister(t, p); err != nil {
		t.Fatal(err)
	}
	pvWaitUntil(t, "version 5", func() bool { return pvVersion(p) == 5 })
	if r := p.Resolve("m", "acme"); r.Value != Legacy || r.Reason != ReasonDisabled {
		t.Errorf("after the resync: %+v, want legacy, reverted", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if want := []string{"deltas=1 ", "deltas=1 s:3"}; !slices.Equal(asked, want) {
		t.Errorf("stream requests %q, want %q", asked, want)
	}

	for name, set := range map[string]func(*Options){
		"WholeSnapshots": func(o *Options) { o.WholeSnapshots = true },
		"OnSnapshot":     func(o *Options) { o.OnSnapshot = func(uint64, []byte) {} },
		"SnapshotFile":   func(o *Options) { o.SnapshotFile = t.TempDir() + "/snapshot.json" },
	} {
		o := Options{URL: srv.URL, Token: pvToken}
		set(&o)
		p, err := NewProvider(o)
		if err != nil {
			t.Fatal(err)
		}
		if got := p.replicas[0].stream; got != srv.URL+"/v1/snapshot/stream" {
			t.Errorf("with %s the stream is %s, want whole snapshots", name, got)
		}
	}
}
