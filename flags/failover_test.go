package flags

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/open-feature/go-sdk/openfeature"
)

// fakeReplica serves a fakeControl's state as one more replica of the same
// store: every replica streams the same versions of the same store, as
// replicas on one etcd do. While down it answers 503 to everything.
type fakeReplica struct {
	srv     *httptest.Server
	down    atomic.Bool
	reports atomic.Int32 // reports it took
}

func (f *fakeControl) startReplica(t *testing.T) *fakeReplica {
	t.Helper()
	r := &fakeReplica{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if r.down.Load() {
			http.Error(w, "replica down", http.StatusServiceUnavailable)
			return
		}
		if req.URL.Path == "/v1/reports" {
			r.reports.Add(1)
		}
		f.handler.ServeHTTP(w, req)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

// kill takes the replica down: its streams are cut and it answers 503.
func (r *fakeReplica) kill() {
	r.down.Store(true)
	r.srv.CloseClientConnections()
}

// publishLive publishes w to the streams open, as a new version of the
// store does, without dropping them.
func (f *fakeControl) publishLive(w storeWire) {
	b, err := json.Marshal(w)
	if err != nil {
		panic(err)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.version, f.raw = w.Version, string(b)
	close(f.changed)
	f.changed = make(chan struct{})
}

// A provider given the URLs of several replicas of one control service
// follows one stream, moves to the next replica when that one fails (cut
// and answering 503; then closed for good), round robin, and resumes there
// from the version it holds: a replica that lags behind cannot take it
// back. Its reports follow it, and it answers every evaluation throughout.
func TestProviderFailsOverBetweenReplicas(t *testing.T) {
	f := startFakeControl(t)
	a, b := f.startReplica(t), f.startReplica(t)
	f.publishLive(storeSnapshot("store-a", 5, 11, "h11"))

	opts, _ := pvOptions(t, "")
	opts.URL, opts.URLs = "", []string{a.srv.URL, b.srv.URL}
	opts.RouterID = "router-1"
	var takenMu sync.Mutex
	var taken []uint64
	opts.OnSnapshot = func(v uint64, _ []byte) {
		takenMu.Lock()
		defer takenMu.Unlock()
		taken = append(taken, v)
	}
	p := pvNewProvider(t, opts)
	client, _, err := pvRegister(t, p)
	if err != nil {
		t.Fatalf("Init: %v", err)
	}
	pvWaitUntil(t, "version 5 is current", func() bool { return pvVersion(p) == 5 && p.Current() })
	if got := p.ControlURL(); got != a.srv.URL {
		t.Fatalf("ControlURL() = %q, want the first replica %q", got, a.srv.URL)
	}

	// Evaluations run throughout: each answers from a snapshot, never
	// from an older one than the last answer's.
	var answers atomic.Int64
	var badMu sync.Mutex
	var bad []string
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var last int64
		for {
			select {
			case <-stop:
				return
			default:
			}
			d := pvEval(client, "psa-webhooks-v2", "acme", "default")
			v, err := d.FlagMetadata.GetInt("snapshotVersion")
			if d.Reason == openfeature.ErrorReason || d.Value != Legacy || err != nil || v < last {
				badMu.Lock()
				bad = append(bad, fmt.Sprintf("%q %s version %d after %d (%v)", d.Value, d.Reason, v, last, err))
				badMu.Unlock()
			}
			last = max(last, v)
			answers.Add(1)
		}
	})
	waitAnswers := func(what string) {
		t.Helper()
		n := answers.Load()
		pvWaitUntil(t, "evaluations answer "+what, func() bool { return answers.Load() > n })
	}
	waitAnswers("before the failover")

	// The second replica lags: it first streams version 4 of the store.
	f.setPreludes("id: 4\nevent: snapshot\ndata: " + mustJSON(storeSnapshot("store-a", 4, 10, "h10")) + "\n\n")
	a.kill()
	pvWaitUntil(t, "the provider follows the second replica", func() bool {
		return p.ControlURL() == b.srv.URL && p.Current() && p.Regressions() == 1
	})
	waitAnswers("during the failover")
	f.publishLive(storeSnapshot("store-a", 6, 12, "h12"))
	pvWaitUntil(t, "version 6 through the second replica", func() bool { return pvVersion(p) == 6 })
	pvWaitUntil(t, "a report of version 6 to the second replica", func() bool {
		return b.reports.Load() > 0 && slices.ContainsFunc(f.receivedReports(), func(r pvReport) bool { return r.SnapshotVersion == 6 })
	})

	// Round robin: the first replica is back, the second dies for good.
	a.down.Store(false)
	b.srv.CloseClientConnections()
	b.srv.Close()
	pvWaitUntil(t, "the provider is back on the first replica", func() bool { return p.ControlURL() == a.srv.URL && p.Current() })
	f.publishLive(storeSnapshot("store-a", 7, 13, "h13"))
	pvWaitUntil(t, "version 7 through the first replica", func() bool { return pvVersion(p) == 7 })
	waitAnswers("after the failovers")
	close(stop)
	wg.Wait()

	badMu.Lock()
	if len(bad) > 0 {
		t.Errorf("%d of %d evaluations answered wrong, the first: %s", len(bad), answers.Load(), bad[0])
	}
	badMu.Unlock()
	takenMu.Lock()
	if want := []uint64{5, 6, 7}; !slices.Equal(taken, want) {
		t.Errorf("snapshots taken: %v, want %v", taken, want)
	}
	takenMu.Unlock()
	ids := f.streamRequests()
	for _, want := range []string{"store-a:5", "store-a:6"} {
		if !slices.Contains(ids, want) {
			t.Errorf("Last-Event-ID of the stream requests = %q, want one resuming from %s", ids, want)
		}
	}
	if i := slices.Index(ids[1:], ""); i >= 0 {
		t.Errorf("stream request %d after the first named no snapshot held (Last-Event-IDs %q)", i+1, ids)
	}
}

func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
