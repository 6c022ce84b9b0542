package ingress_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

// moveAcme moves acme forward, forced, to each of stages in turn and waits
// for the router to route by the result.
func (e *env) moveAcme(t *testing.T, stages ...domain.Stage) {
	t.Helper()
	for _, st := range stages {
		if _, err := e.svc.SetStage(context.Background(), control.Change{Actor: "t", Reason: "test"}, "psa-webhooks-v2", "acme", st, true); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, "the router to see acme moved", func() bool { return e.router.RoutingVersion() == e.svc.State().Version })
}

// withContact is a new pipeline that, on top of what refpipe answers, also
// updates the contact of every event it is given.
func withContact(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		next.ServeHTTP(rec, r)
		var resp pipelineclient.Response
		if rec.Code != http.StatusOK || json.Unmarshal(rec.Body.Bytes(), &resp) != nil {
			w.WriteHeader(rec.Code)
			w.Write(rec.Body.Bytes())
			return
		}
		resp.Effects = append(resp.Effects, pipelineclient.Effect{Kind: "contact", Op: "upsert", Key: "C-1", Fields: map[string]any{"lastTicket": "T-1"}})
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(resp)
	})
}

// A new pipeline that also updates a contact compares equal when the
// migration allows contact effects, whichever side the new pipeline is on;
// without the allowance it is a type_mismatch.
func TestAllowedExtraKindOnTheNewPipeline(t *testing.T) {
	tests := []struct {
		name   string
		allow  []string
		stages []domain.Stage
		want   domain.Class
	}{
		{"shadow stage, contact allowed", []string{"contact"}, []domain.Stage{domain.StageShadow}, domain.ClassEqual},
		{"new stage, contact allowed", []string{"contact"}, []domain.Stage{domain.StageShadow, domain.StageNew}, domain.ClassEqual},
		{"shadow stage, another kind allowed", []string{"company"}, []domain.Stage{domain.StageShadow}, domain.ClassTypeMismatch},
		{"new stage, nothing allowed", nil, []domain.Stage{domain.StageShadow, domain.StageNew}, domain.ClassTypeMismatch},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, withNewPipeline(withContact), withCompare(domain.CompareRules{AllowExtraKinds: tt.allow}))
			e.moveAcme(t, tt.stages...)
			if status, _ := e.post(t, "acme", "extra-1", "ticket.updated", "T-1", nil, ""); status != http.StatusAccepted {
				t.Fatalf("status = %d, want 202", status)
			}
			var ev journal.Event
			waitFor(t, "the comparison recorded", func() bool { ev, _ = e.journal.Get(t.Context(), 1); return ev.Comparison != "" })
			if got := domain.Class(ev.Comparison); got != tt.want {
				t.Errorf("comparison = %s, want %s", got, tt.want)
			}
		})
	}
}
