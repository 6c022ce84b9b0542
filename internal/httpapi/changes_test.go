package httpapi_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
	"github.com/switchbackhq/switchback/internal/httpapi"
)

// approvalsFixture is the API on a service whose gates judge counts the
// test turns bad at will, on a clock it moves, with two operator tokens
// (operator, operator2); the migration tickets needs one approval for
// moves into new and done, and its cohort first (acme, globex) has been in
// shadow for two hours.
type approvalsFixture struct {
	*fixture
	bad   *atomic.Bool
	clock *movingClock
}

type movingClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *movingClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *movingClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

type switchedStats struct{ bad *atomic.Bool }

func (s switchedStats) StageCounts(context.Context, string, string, domain.Stage, time.Time) (gate.Counts, error) {
	c := gate.Counts{Eligible: 5000, ByClass: map[domain.Class]uint64{domain.ClassEqual: 5000},
		ByType: map[string]uint64{"ticket": 5000}, Types: []string{"ticket"}, CandidateCalls: 5000}
	if s.bad.Load() {
		c.ByClass = map[domain.Class]uint64{domain.ClassEqual: 4999, domain.ClassTypeMismatch: 1}
	}
	return c, nil
}

func newApprovalsFixture(t *testing.T) *approvalsFixture {
	t.Helper()
	ctx := context.Background()
	bad := &atomic.Bool{}
	clock := &movingClock{t: fixedNow}
	svc, err := control.New(ctx, bolttest.Open(t), control.Options{Now: clock.Now, Stats: switchedStats{bad}, Logger: discardLogger()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.Bootstrap(ctx, adminSecret); err != nil {
		t.Fatal(err)
	}
	tok := map[string]string{"admin": adminSecret}
	for _, name := range []string{"viewer", "operator", "operator2"} {
		role := domain.RoleOperator
		if name == "viewer" {
			role = domain.RoleViewer
		}
		_, secret, err := svc.CreateToken(ctx, control.Change{Actor: "test", Reason: "fixture"}, name, role)
		if err != nil {
			t.Fatal(err)
		}
		tok[name] = secret
	}
	api := httpapi.New(svc, discardLogger(), prometheus.NewRegistry())
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	f := &approvalsFixture{fixture: &fixture{svc: svc, srv: srv, tok: tok}, bad: bad, clock: clock}
	f.seed(t)
	body := migrationBody("ticket sync")
	body["approvals"] = obj{"required": 1, "stages": []string{"new", "done"}}
	f.must(t, http.StatusOK, "admin", http.MethodPut, mig, body, nil)
	f.putCohort(t, "tickets", "first", 1, "acme", "globex")
	f.must(t, http.StatusOK, "operator", http.MethodPost, mig+"/cohorts/first/advance", obj{"reason": "shadow first"}, nil)
	clock.Advance(2 * time.Hour)
	return f
}

func TestMigrationCarriesApprovals(t *testing.T) {
	f := newApprovalsFixture(t)
	var got struct {
		Approvals *struct {
			Required int      `json:"required"`
			Stages   []string `json:"stages"`
			TTL      string   `json:"ttl"`
		} `json:"approvals"`
	}
	f.must(t, http.StatusOK, "viewer", http.MethodGet, mig, nil, &got)
	if got.Approvals == nil || got.Approvals.Required != 1 || strings.Join(got.Approvals.Stages, ",") != "new,done" || got.Approvals.TTL != "24h0m0s" {
		t.Errorf("GET migration approvals = %+v, want 1 into new, done within the default 24h", got.Approvals)
	}
	for _, tt := range []struct {
		name      string
		approvals any
		want      string
	}{
		{"required 0", obj{"required": 0, "stages": []string{"new"}}, "approvals: required"},
		{"no stages", obj{"required": 1, "stages": []string{}}, "approvals: stages"},
		{"legacy", obj{"required": 1, "stages": []string{"legacy"}}, "approvals: stage"},
		{"ttl not a duration", obj{"required": 1, "stages": []string{"new"}, "ttl": "tomorrow"}, "not a duration"},
		{"ttl too long", obj{"required": 1, "stages": []string{"new"}, "ttl": "721h"}, "approvals: ttl"},
		{"misspelled field", obj{"Required": 1, "stages": []string{"new"}}, "unknown field"},
		{"misspelled ttl", obj{"required": 1, "stages": []string{"new"}, "tll": "1h"}, "unknown field"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := migrationBody("ticket sync")
			body["approvals"] = tt.approvals
			env := checkError(t, f.call(t, "admin", http.MethodPut, mig, body), http.StatusBadRequest, "invalid_argument")
			if env.Error != nil && !strings.Contains(env.Error.Message, tt.want) {
				t.Errorf("message %q, want it to mention %q", env.Error.Message, tt.want)
			}
		})
	}
}

func TestAdvanceFilesChangeRequest(t *testing.T) {
	f := newApprovalsFixture(t)
	res := f.call(t, "operator", http.MethodPost, mig+"/cohorts/first/advance", obj{"reason": "first to new"})
	if res.status != http.StatusAccepted {
		t.Fatalf("advance into new: got %s, want 202 with a change request", res)
	}
	var ch domain.ChangeRequest
	if err := json.Unmarshal(res.body, &ch); err != nil {
		t.Fatal(err)
	}
	if ch.State != domain.ChangePending || ch.RequestedBy != "operator" || ch.Required != 1 || ch.To != domain.StageNew || ch.Reason != "first to new" {
		t.Errorf("change = %+v", ch)
	}
	if got, want := res.header.Get("Location"), "/v1/changes/"+ch.ID; got != want {
		t.Errorf("Location = %q, want %q", got, want)
	}
	if st := f.stages(t, "tickets"); st["acme"].Stage != "shadow" || st["globex"].Stage != "shadow" {
		t.Errorf("stages after filing: acme %s, globex %s; want both still shadow", st["acme"].Stage, st["globex"].Stage)
	}
	// The same move again: the same request, 202 again.
	var again domain.ChangeRequest
	f.must(t, http.StatusAccepted, "operator2", http.MethodPost, mig+"/cohorts/first/advance", obj{}, &again)
	if again.ID != ch.ID {
		t.Errorf("asking again filed %s, want the pending %s", again.ID, ch.ID)
	}

	var list []domain.ChangeRequest
	f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/changes?state=pending&migration=tickets", nil, &list)
	if len(list) != 1 || list[0].ID != ch.ID {
		t.Errorf("GET /v1/changes?state=pending = %d changes, want the one", len(list))
	}
	f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/changes?state=applied", nil, &list)
	if len(list) != 0 {
		t.Errorf("GET /v1/changes?state=applied = %d, want none", len(list))
	}
	checkError(t, f.call(t, "viewer", http.MethodGet, "/v1/changes?state=open", nil), http.StatusBadRequest, "invalid_argument")
	checkError(t, f.call(t, "viewer", http.MethodGet, "/v1/changes/not-an-id", nil), http.StatusNotFound, "not_found")

	// The requester may not approve; a viewer may not either.
	checkError(t, f.call(t, "operator", http.MethodPost, "/v1/changes/"+ch.ID+"/approve", obj{"reason": "mine"}), http.StatusForbidden, "permission_denied")
	checkError(t, f.call(t, "viewer", http.MethodPost, "/v1/changes/"+ch.ID+"/approve", nil), http.StatusForbidden, "permission_denied")

	var done domain.ChangeRequest
	f.must(t, http.StatusOK, "operator2", http.MethodPost, "/v1/changes/"+ch.ID+"/approve", obj{"reason": "dashboards clean"}, &done)
	if done.State != domain.ChangeApplied || len(done.Approvals) != 1 || done.Approvals[0].By != "operator2" || done.Approvals[0].Reason != "dashboards clean" {
		t.Errorf("approved change = %+v, want applied by operator2", done)
	}
	if st := f.stages(t, "tickets"); st["acme"].Stage != "new" || st["globex"].Stage != "new" {
		t.Errorf("stages after the approval: acme %s, globex %s; want both new", st["acme"].Stage, st["globex"].Stage)
	}
	var got domain.ChangeRequest
	f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/changes/"+ch.ID, nil, &got)
	if got.State != domain.ChangeApplied || got.Result == nil {
		t.Errorf("GET the change = %s with result %s, want applied with its result", got.State, got.Result)
	}
	checkError(t, f.call(t, "operator2", http.MethodPost, "/v1/changes/"+ch.ID+"/approve", nil), http.StatusConflict, "conflict")

	log := f.auditLog(t, 0)
	var actions []string
	for _, e := range log[len(log)-3:] {
		actions = append(actions, e.Action+" by "+e.Actor)
	}
	if want := "change.request by operator,change.approve by operator2,cohort.advance by operator"; strings.Join(actions, ",") != want {
		t.Errorf("audit tail = %v, want %s", actions, want)
	}
}

func TestStagePutFilesAndGateFailsAtApproval(t *testing.T) {
	f := newApprovalsFixture(t)
	res := f.call(t, "operator", http.MethodPut, mig+"/partners/acme", obj{"stage": "new", "reason": "acme first"})
	if res.status != http.StatusAccepted || !strings.HasPrefix(res.header.Get("Location"), "/v1/changes/chg_") {
		t.Fatalf("PUT stage new: got %s (Location %q), want 202 with a change request", res, res.header.Get("Location"))
	}
	var ch domain.ChangeRequest
	if err := json.Unmarshal(res.body, &ch); err != nil || ch.Kind != domain.ChangeStage || ch.Partner != "acme" {
		t.Fatalf("change = %+v, %v", ch, err)
	}
	f.bad.Store(true) // a type_mismatch arrives before the approval
	var got domain.ChangeRequest
	f.must(t, http.StatusOK, "operator2", http.MethodPost, "/v1/changes/"+ch.ID+"/approve", nil, &got)
	if got.State != domain.ChangeFailed || !strings.Contains(got.Failure, "zeroTolerance") || got.Report == nil {
		t.Errorf("approved change = %s (%q), report %s; want failed by the gates with the report", got.State, got.Failure, got.Report)
	}
	if st := f.stages(t, "tickets"); st["acme"].Stage != "shadow" {
		t.Errorf("acme at %s, want shadow", st["acme"].Stage)
	}
	// A move refused by the gates now is refused now, not filed.
	checkError(t, f.call(t, "operator", http.MethodPut, mig+"/partners/acme", obj{"stage": "new"}), http.StatusConflict, "gate_refused")
	var pending []domain.ChangeRequest
	f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/changes?state=pending", nil, &pending)
	if len(pending) != 0 {
		t.Errorf("pending changes = %d after a refusal, want none", len(pending))
	}
}

func TestRejectAndExpireOverHTTP(t *testing.T) {
	f := newApprovalsFixture(t)
	var ch domain.ChangeRequest
	f.must(t, http.StatusAccepted, "operator", http.MethodPost, mig+"/cohorts/first/advance", nil, &ch)
	checkError(t, f.call(t, "operator2", http.MethodPost, "/v1/changes/"+ch.ID+"/reject", obj{}), http.StatusBadRequest, "invalid_argument")
	var got domain.ChangeRequest
	f.must(t, http.StatusOK, "operator2", http.MethodPost, "/v1/changes/"+ch.ID+"/reject", obj{"reason": "freeze week"}, &got)
	if got.State != domain.ChangeRejected || got.Ended == nil || got.Ended.By != "operator2" || got.Ended.Reason != "freeze week" {
		t.Errorf("rejected change = %+v", got)
	}

	// Revert and resume answer at once, with pending changes or not.
	f.must(t, http.StatusAccepted, "operator", http.MethodPost, mig+"/cohorts/first/advance", nil, &ch)
	f.must(t, http.StatusOK, "operator", http.MethodPost, mig+"/revert", obj{"reason": "incident"}, nil)
	f.must(t, http.StatusOK, "operator", http.MethodPost, mig+"/resume", obj{"reason": "fixed"}, nil)

	f.clock.Advance(24 * time.Hour)
	f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/changes/"+ch.ID, nil, &got)
	if got.State != domain.ChangeExpired {
		t.Errorf("a day later the change is %s, want expired", got.State)
	}
	checkError(t, f.call(t, "operator2", http.MethodPost, "/v1/changes/"+ch.ID+"/approve", nil), http.StatusConflict, "conflict")
}
