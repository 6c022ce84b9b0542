package httpapi_test

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

func TestAutopilotEndpoints(t *testing.T) {
	f := newApprovalsFixture(t)
	everyHour := []obj{{"days": []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, "from": "00:00", "to": "24:00", "timeZone": "UTC"}}
	body := migrationBody("ticket sync")
	body["approvals"] = obj{"required": 1, "stages": []string{"new", "done"}}
	body["autopilot"] = obj{"enabled": true, "windows": everyHour, "maxAdvancesPerDay": 2}
	f.must(t, http.StatusOK, "admin", http.MethodPut, mig, body, nil)

	var st wire.AutopilotStatus
	f.must(t, http.StatusOK, "viewer", http.MethodGet, mig+"/autopilot", nil, &st)
	if st.State != wire.AutopilotReady || !st.InWindow || st.Next == nil || st.Next.Cohort != "first" || st.Next.To != domain.StageNew || st.MaxAdvancesPerDay != 2 {
		t.Errorf("GET autopilot = %+v, want ready to move first to new", st)
	}
	checkError(t, f.call(t, "viewer", http.MethodGet, "/v1/migrations/nope/autopilot", nil), http.StatusNotFound, "not_found")

	// Its step files a change request, as the autopilot.
	if _, err := f.svc.AutopilotStep(context.Background(), "tickets"); err != nil {
		t.Fatal(err)
	}
	var list []domain.ChangeRequest
	f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/changes?state=pending", nil, &list)
	if len(list) != 1 || list[0].RequestedBy != control.AutopilotActor {
		t.Errorf("pending changes = %+v, want one filed by the autopilot", list)
	}
	f.must(t, http.StatusOK, "viewer", http.MethodGet, mig+"/autopilot", nil, &st)
	if st.State != wire.AutopilotApproval || st.Change != list[0].ID || st.MovesToday != 1 {
		t.Errorf("GET autopilot after filing = %+v, want waiting on %s", st, list[0].ID)
	}

	checkError(t, f.call(t, "viewer", http.MethodPost, mig+"/autopilot/pause", obj{"reason": "freeze"}), http.StatusForbidden, "permission_denied")
	checkError(t, f.call(t, "operator", http.MethodPost, mig+"/autopilot/pause", obj{}), http.StatusBadRequest, "invalid_argument")
	f.must(t, http.StatusOK, "operator", http.MethodPost, mig+"/autopilot/pause", obj{"reason": "holiday freeze"}, &st)
	if st.State != wire.AutopilotPaused || st.Paused == nil || st.Paused.PausedBy != "operator" || st.Paused.PausedReason != "holiday freeze" {
		t.Errorf("after pause = %+v", st)
	}
	var m struct {
		AutopilotState *domain.AutopilotState `json:"autopilotState"`
	}
	f.must(t, http.StatusOK, "viewer", http.MethodGet, mig, nil, &m)
	if m.AutopilotState == nil || !m.AutopilotState.Paused || len(m.AutopilotState.Moves) != 1 {
		t.Errorf("the migration's autopilotState = %+v, want paused with one move", m.AutopilotState)
	}
	// A PUT may not set the state, which is the service's; without it, it
	// keeps it.
	body["autopilotState"] = obj{"paused": false}
	checkError(t, f.call(t, "admin", http.MethodPut, mig, body), http.StatusBadRequest, "invalid_argument")
	delete(body, "autopilotState")
	body["description"] = "ticket sync, driven"
	f.must(t, http.StatusOK, "admin", http.MethodPut, mig, body, nil)
	f.must(t, http.StatusOK, "viewer", http.MethodGet, mig+"/autopilot", nil, &st)
	if st.State != wire.AutopilotPaused {
		t.Errorf("a PUT of the migration changed the autopilot's state: %s", st.State)
	}
	f.must(t, http.StatusOK, "operator2", http.MethodPost, mig+"/autopilot/resume", obj{"reason": "back"}, &st)
	if st.State != wire.AutopilotApproval {
		t.Errorf("after resume = %s, want approval", st.State)
	}
	log := f.auditLog(t, 0)
	var actions []string
	for _, e := range log[len(log)-3:] {
		actions = append(actions, e.Action+" by "+e.Actor)
	}
	if want := "autopilot.pause by operator,migration.update by admin,autopilot.resume by operator2"; strings.Join(actions, ",") != want {
		t.Errorf("audit tail = %v, want %s", actions, want)
	}

	for _, tt := range []struct {
		name      string
		autopilot obj
		want      string
	}{
		{"enabled without windows", obj{"enabled": true}, "at least one window"},
		{"unknown day", obj{"enabled": true, "windows": []obj{{"days": []string{"monday"}, "from": "09:00", "to": "16:00"}}}, "monday"},
		{"to before from", obj{"enabled": true, "windows": []obj{{"days": []string{"mon"}, "from": "16:00", "to": "09:00"}}}, "after from"},
		{"unknown zone", obj{"enabled": true, "windows": []obj{{"days": []string{"mon"}, "from": "09:00", "to": "16:00", "timeZone": "Mars/Olympus"}}}, "IANA"},
		{"bad time", obj{"enabled": true, "windows": []obj{{"days": []string{"mon"}, "from": "9am", "to": "16:00"}}}, "HH:MM"},
		{"too many a day", obj{"enabled": true, "windows": everyHour, "maxAdvancesPerDay": 101}, "maxAdvancesPerDay"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body := migrationBody("ticket sync")
			body["autopilot"] = tt.autopilot
			env := checkError(t, f.call(t, "admin", http.MethodPut, mig, body), http.StatusBadRequest, "invalid_argument")
			if env.Error != nil && !strings.Contains(env.Error.Message, tt.want) {
				t.Errorf("message %q, want it to mention %q", env.Error.Message, tt.want)
			}
		})
	}
}
