package httpapi_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/wire"
)

// fakeIngress is a router in the same process that records the replays
// asked of it.
type fakeIngress struct {
	mu   sync.Mutex
	jobs []domain.ReplayJob
}

var _ httpapi.Ingress = (*fakeIngress)(nil)

func (f *fakeIngress) StartReplay(_ context.Context, req domain.ReplayRequest) (domain.ReplayJob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	j := domain.ReplayJob{ID: "rpl_embedded" + strings.Repeat("0", len(f.jobs)), Status: domain.ReplayQueued, Request: req, CreatedAt: fixedNow}
	f.jobs = append(f.jobs, j)
	return j, nil
}

func (f *fakeIngress) Replay(id string) (domain.ReplayJob, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, j := range f.jobs {
		if j.ID == id {
			return j, nil
		}
	}
	return domain.ReplayJob{}, domain.Errorf(domain.CodeNotFound, "replay %q does not exist", id)
}

func (f *fakeIngress) Replays() []domain.ReplayJob {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]domain.ReplayJob(nil), f.jobs...)
}

func (f *fakeIngress) StuckEvents(context.Context) ([]wire.Event, error) { return nil, nil }

// runScheduler runs sc until the test ends, as serve does.
func runScheduler(t *testing.T, svc *control.Service, router control.ReplayStarter) {
	t.Helper()
	sc, err := control.NewReplayScheduler(svc, router)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { sc.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// A revert with "replay": true starts at once a replay that awaits the
// comparisons still to come, on the router of this process, or, without
// one, asked of the routers: both show it in GET /v1/replays.
func TestRevertReplayAwaitsComparisons(t *testing.T) {
	tests := []struct {
		name     string
		embedded bool
	}{
		{"embedded router", true},
		{"routers asked", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			svc, _, tok := newService(t)
			var opts []httpapi.Option
			in := &fakeIngress{}
			var starter control.ReplayStarter
			if tt.embedded {
				opts = append(opts, httpapi.WithIngress(in))
				starter = in
			}
			runScheduler(t, svc, starter)
			api := httpapi.New(svc, discardLogger(), prometheus.NewRegistry(), opts...)
			srv := httptest.NewServer(api)
			t.Cleanup(srv.Close)
			f := &fixture{svc: svc, srv: srv, tok: tok}
			f.seed(t)
			f.moveTo(t, "tickets", "acme", "new")
			since := f.stages(t, "tickets")["acme"].Since

			var rv struct {
				Replay []string `json:"replay"`
			}
			f.must(t, http.StatusOK, "operator", http.MethodPost, mig+"/revert", obj{"reason": "INC-1", "replay": true}, &rv)
			var jobs []struct {
				ID                 string               `json:"id"`
				Request            domain.ReplayRequest `json:"request"`
				AwaitingComparison *int                 `json:"awaitingComparison"`
				Unknown            *int                 `json:"unknown"`
			}
			f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/replays", nil, &jobs)
			if len(jobs) != 1 {
				t.Fatalf("GET /v1/replays = %+v, want the revert's replay at once", jobs)
			}
			j := jobs[0]
			if want := "tickets: 1 partners since " + since.Format("2006-01-02T15:04:05Z07:00") + ", replay " + j.ID; len(rv.Replay) != 1 || rv.Replay[0] != want {
				t.Errorf("replay = %q, want [%q]", rv.Replay, want)
			}
			r := j.Request
			if !r.AwaitComparisons || r.Filter != domain.ReplayMismatched || r.Pipeline != "legacy" || len(r.Partners) != 1 || r.Partners[0] != "acme" || !r.From.Equal(since) {
				t.Errorf("request = %+v, want acme's mismatched events since %v through legacy, awaiting comparisons", r, since)
			}
			if j.AwaitingComparison == nil || j.Unknown == nil {
				t.Errorf("job = %+v, want awaitingComparison and unknown shown", j)
			}
			if got := len(in.Replays()); tt.embedded && got != 1 || !tt.embedded && got != 0 {
				t.Errorf("embedded router got %d replays", got)
			}
			entries := f.auditLog(t, 0)
			if e := entries[len(entries)-1]; e.Action != "replay.start" || e.Target != "replay/"+j.ID {
				t.Errorf("last audit entry = %s %s, want replay.start replay/%s", e.Action, e.Target, j.ID)
			}
		})
	}
}
