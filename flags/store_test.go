package flags

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
)

// storeWire is a snapshot with its store's identity and audit head.
type storeWire struct {
	pvWire
	StoreID string    `json:"storeId"`
	Audit   AuditHead `json:"audit"`
}

func storeSnapshot(store string, version uint64, auditSeq uint64, auditHash string) storeWire {
	return storeWire{pvWire: pvBaseWire(version), StoreID: store, Audit: AuditHead{Seq: auditSeq, Hash: auditHash}}
}

// publishStore publishes w and drops the open streams, so that the
// provider reconnects and gets it whatever the version it holds.
func (f *fakeControl) publishStore(w storeWire) {
	b, err := json.Marshal(w)
	if err != nil {
		panic(err)
	}
	// Only the drop wakes the streams: one woken by a change could take
	// the new drop channel, never closed, and miss the drop.
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version, f.raw = w.Version, string(b)
	close(f.drop)
	f.drop = make(chan struct{})
}

func TestJudge(t *testing.T) {
	held := &Snapshot{Version: 5, StoreID: "a", Audit: AuditHead{Seq: 9, Hash: "h9"}}
	for _, tt := range []struct {
		name string
		held *Snapshot
		got  Snapshot
		want verdict
	}{
		{"nothing held", nil, Snapshot{Version: 1, StoreID: "a"}, takeNewer},
		{"newer version of the store", held, Snapshot{Version: 6, StoreID: "a"}, takeNewer},
		{"the version held", held, Snapshot{Version: 5, StoreID: "a", Audit: AuditHead{Seq: 9, Hash: "h9"}}, skipSame},
		{"the version held, without audit head", held, Snapshot{Version: 5, StoreID: "a"}, skipSame},
		{"lower version of the store: it went back", held, Snapshot{Version: 3, StoreID: "a"}, refuseOlder},
		{"same version, another history", held, Snapshot{Version: 5, StoreID: "a", Audit: AuditHead{Seq: 7, Hash: "h7"}}, refuseDiverged},
		{"another store, lower version: resync", held, Snapshot{Version: 1, StoreID: "b"}, takeOtherStore},
		{"another store, higher version", held, Snapshot{Version: 90, StoreID: "b"}, takeOtherStore},
		{"a store id after none: resync", &Snapshot{Version: 50}, Snapshot{Version: 3, StoreID: "a"}, takeOtherStore},
		{"no store ids, lower version", &Snapshot{Version: 50}, Snapshot{Version: 3}, refuseOlder},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := judge(tt.held, &tt.got); got != tt.want {
				t.Errorf("judge = %d, want %d", got, tt.want)
			}
		})
	}
}

// A store restored from a backup hands out lower versions of the same
// store: the provider refuses them, counts and reports it, and is not
// current; a later version of the store, or another store, is taken.
func TestProviderStoreWentBack(t *testing.T) {
	f := startFakeControl(t)
	f.publishStore(storeSnapshot("store-a", 5, 11, "h11"))
	opts, logs := pvOptions(t, f.srv.URL)
	opts.RouterID = "router-1"
	opts.SnapshotFile = filepath.Join(t.TempDir(), "snapshot.json")
	p := pvNewProvider(t, opts)
	if _, _, err := pvRegister(t, p); err != nil {
		t.Fatalf("Init: %v", err)
	}
	pvWaitUntil(t, "version 5 is current", func() bool { return p.Snapshot().Version == 5 && p.Current() })

	f.publishStore(storeSnapshot("store-a", 3, 8, "h8")) // the backup
	pvWaitUntil(t, "the lower version is refused", func() bool { return p.Regressions() == 1 })
	if got := p.Snapshot().Version; got != 5 {
		t.Errorf("after a lower version of the store: holds version %d, want 5", got)
	}
	if p.Current() {
		t.Errorf("Current() = true after refusing the control service's snapshot, want false")
	}
	// Counted, then logged: wait for the log line rather than race it.
	pvWaitUntil(t, "an error logged for the refused snapshot", func() bool { return strings.Contains(logs.String(), "store went backwards") })
	pvWaitUntil(t, "a report of the refusal", func() bool {
		return slices.ContainsFunc(f.receivedReports(), func(r pvReport) bool {
			return r.Refused == 3 && r.SnapshotVersion == 5 && r.StoreID == "store-a"
		})
	})
	if ids := f.streamRequests(); !slices.Contains(ids, "store-a:5") {
		t.Errorf("Last-Event-ID of the reconnections = %q, want one naming store-a:5", ids)
	}

	f.publishStore(storeSnapshot("store-a", 6, 9, "h9")) // moved past the router's version
	pvWaitUntil(t, "version 6 is taken", func() bool { return p.Snapshot().Version == 6 && p.Current() })

	f.publishStore(storeSnapshot("store-b", 2, 1, "b1")) // a fresh store
	pvWaitUntil(t, "the other store is taken", func() bool { return p.Snapshot().StoreID == "store-b" })
	if got := p.Snapshot().Version; got != 2 {
		t.Errorf("after resync: version %d, want 2", got)
	}

	f.publishStore(storeSnapshot("store-b", 2, 4, "b4")) // same version, another history
	pvWaitUntil(t, "the diverged snapshot is refused", func() bool { return p.Regressions() == 2 })
	if got := p.Snapshot().Audit; got != (AuditHead{Seq: 1, Hash: "b1"}) {
		t.Errorf("after a diverged snapshot: holds audit head %+v, want the one of b1", got)
	}

	want := []AuditHead{{"store-a", 11, "h11"}, {"store-a", 9, "h9"}, {"store-b", 1, "b1"}}
	if got := p.AuditHeads(); !slices.Equal(got, want) {
		t.Errorf("AuditHeads() = %+v, want %+v", got, want)
	}
	p.Shutdown()
	got, err := ReadAuditHeads(opts.SnapshotFile)
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(got, want) {
		t.Errorf("ReadAuditHeads(snapshot file) = %+v, want %+v", got, want)
	}
	// A provider started on the file keeps witnessing them.
	p2 := pvNewProvider(t, opts)
	f.close()
	p2.Init(openfeature.EvaluationContext{})
	defer p2.Shutdown()
	if got := p2.AuditHeads(); !slices.Equal(got, want) {
		t.Errorf("AuditHeads() of a provider started on the file = %+v, want %+v", got, want)
	}
}

func TestOffer(t *testing.T) {
	opts, _ := pvOptions(t, "http://127.0.0.1:1")
	var seen []uint64
	opts.OnSnapshot = func(v uint64, _ []byte) { seen = append(seen, v) }
	p := pvNewProvider(t, opts)
	raw := func(store string, v uint64) []byte {
		b, _ := json.Marshal(storeSnapshot(store, v, v, fmt.Sprint("h", v)))
		return b
	}
	for _, tt := range []struct {
		name    string
		raw     []byte
		wantErr bool
		want    uint64
	}{
		{"first", raw("a", 4), false, 4},
		{"newer", raw("a", 5), false, 5},
		{"the same", raw("a", 5), false, 5},
		{"older: the store went back", raw("a", 2), true, 5},
		{"another store", raw("b", 1), false, 1},
		{"not a snapshot", []byte(`[]`), true, 1},
	} {
		err := p.Offer(tt.raw)
		if (err != nil) != tt.wantErr {
			t.Errorf("%s: Offer = %v, want error %v", tt.name, err, tt.wantErr)
		}
		if got := p.Snapshot().Version; got != tt.want {
			t.Errorf("%s: holds version %d, want %d", tt.name, got, tt.want)
		}
	}
	if want := []uint64{4, 5, 1}; !slices.Equal(seen, want) {
		t.Errorf("OnSnapshot saw versions %v, want %v", seen, want)
	}
	if p.Current() {
		t.Errorf("Current() = true without a stream, want false")
	}
}

func TestKeepHeadBounded(t *testing.T) {
	var heads []AuditHead
	heads = keepHead(heads, AuditHead{StoreID: "a", Seq: 1, Hash: "a1"})
	heads = keepHead(heads, AuditHead{StoreID: "a", Seq: 1, Hash: "a1"})
	if len(heads) != 1 {
		t.Fatalf("a head seen twice is kept %d times, want once", len(heads))
	}
	heads = keepHead(heads, AuditHead{StoreID: "b", Seq: 1, Hash: "b1"})
	for seq := uint64(2); seq <= 1000; seq++ {
		heads = keepHead(heads, AuditHead{StoreID: "b", Seq: seq, Hash: fmt.Sprint("b", seq)})
	}
	if len(heads) > maxHeads {
		t.Errorf("kept %d heads, want at most %d", len(heads), maxHeads)
	}
	if heads[0].Hash != "a1" || heads[1].Hash != "b1" {
		t.Errorf("oldest heads %+v, want a1 and the first head of store b kept", heads[:2])
	}
	if last := heads[len(heads)-1]; last.Seq != 1000 {
		t.Errorf("newest head %+v, want seq 1000", last)
	}
	// The kept heads still span the log: no gap is more than a third of it.
	for i := 2; i < len(heads); i++ {
		if gap := heads[i].Seq - heads[i-1].Seq; gap > 333 {
			t.Errorf("gap of %d between kept heads %d and %d", gap, heads[i-1].Seq, heads[i].Seq)
		}
	}
}
