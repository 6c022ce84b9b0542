package httpapi_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
)

// A reason may be as long as the UI allows, counted in characters, and
// span lines as typed in the UI's text areas; the audit log keeps it whole.
func TestReasonAcceptedAsTheUIAcceptsIt(t *testing.T) {
	tests := []struct {
		name, reason string
	}{
		{"MaxReason accented characters", strings.Repeat("é", domain.MaxReason)},
		{"lines and a tab", "incident 42:\r\n\tnew pipeline drops tags\nrolling back"},
		{"other scripts", "切り戻し: 障害対応"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.seed(t)
			f.must(t, http.StatusOK, "operator", http.MethodPost, mig+"/revert", obj{"reason": tt.reason}, nil)
			log := f.auditLog(t, 0)
			last := log[len(log)-1]
			if last.Action != "migration.revert" || last.Reason != tt.reason {
				t.Errorf("last audit entry: got %s with reason %q, want migration.revert with %q", last.Action, last.Reason, tt.reason)
			}
		})
	}
}

// A replay on the router of this process starts before its audit entry is
// written: a reason the audit log would refuse must stop it from starting.
func TestReplayWithABadReasonDoesNotStart(t *testing.T) {
	svc, _, tok := newService(t)
	in := &fakeIngress{}
	srv := httptest.NewServer(httpapi.New(svc, discardLogger(), prometheus.NewRegistry(), httpapi.WithIngress(in)))
	t.Cleanup(srv.Close)
	f := &fixture{svc: svc, srv: srv, tok: tok}
	f.seed(t)
	body := obj{"migration": "tickets", "partners": []string{"acme"}, "from": "2025-03-04T00:00:00Z", "to": "2025-03-04T05:00:00Z",
		"pipeline": "legacy", "filter": "all"}

	body["reason"] = "replay\x1b[2J"
	res := f.call(t, "operator", http.MethodPost, "/v1/replays", body)
	env := checkError(t, res, http.StatusBadRequest, "invalid_argument")
	if env.Error == nil || !strings.Contains(env.Error.Message, "reason") {
		t.Errorf("error message: got %s, want it to name the reason", res.body)
	}
	if started := len(in.Replays()); started != 0 {
		t.Fatalf("replays started: got %d after a refused request, want 0", started)
	}

	body["reason"] = "replay the incident window"
	f.must(t, http.StatusCreated, "operator", http.MethodPost, "/v1/replays", body, nil)
	if started := len(in.Replays()); started != 1 {
		t.Errorf("replays started: got %d, want 1", started)
	}
}
