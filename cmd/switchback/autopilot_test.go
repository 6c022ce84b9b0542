package main

import (
	"context"
	"encoding/json"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
	"github.com/switchbackhq/switchback/internal/wire"
)

// The autopilot verbs against a real API: status of one and of all, off
// (with its reason) and on, each refusal with a useful message.
func TestCLIAutopilot(t *testing.T) {
	ctx := context.Background()
	svc, err := control.New(ctx, bolttest.Open(t), control.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	admin := control.Change{Actor: "admin", Reason: "setup"}
	_, tok, err := svc.CreateToken(ctx, admin, "alice", domain.RoleOperator)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{"m", "plain"} {
		m := domain.Migration{Key: key, Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://legacy"}, New: domain.Pipeline{URL: "http://new"}},
			Gates: domain.DefaultGates(), Guard: domain.DefaultGuard()}
		if key == "m" {
			m.Autopilot = &domain.AutopilotPolicy{Enabled: true, MaxAdvancesPerDay: 2, Windows: []domain.AutopilotWindow{
				{Days: []string{"mon", "tue", "wed", "thu", "fri", "sat", "sun"}, From: "00:00", To: "24:00", TimeZone: "Europe/Amsterdam"}}}
		}
		if _, _, err := svc.PutMigration(ctx, admin, m); err != nil {
			t.Fatal(err)
		}
	}
	srv := httptest.NewServer(httpapi.New(svc, quietLog(), prometheus.NewRegistry()))
	t.Cleanup(srv.Close)

	out, code := asToken(t, srv.URL, tok, "autopilot", "status")
	if code != 0 || !strings.Contains(out, "autopilot of m: DONE") || strings.Contains(out, "plain") ||
		!strings.Contains(out, "window:     mon,tue,wed,thu,fri,sat,sun 00:00–24:00 Europe/Amsterdam") || !strings.Contains(out, "0 of 2 in the last 24 hours") {
		t.Errorf("autopilot status = %d:\n%s", code, out)
	}
	if out, code := asToken(t, srv.URL, tok, "autopilot", "off", "m"); code != 2 || !strings.Contains(out, "needs --reason") {
		t.Errorf("off without a reason = %d:\n%s", code, out)
	}
	out, code = asToken(t, srv.URL, tok, "autopilot", "off", "m", "--reason", "holiday freeze")
	if code != 0 || !strings.Contains(out, "PAUSED") || !strings.Contains(out, "Paused by alice") || !strings.Contains(out, "holiday freeze") {
		t.Errorf("autopilot off = %d:\n%s", code, out)
	}
	out, code = asToken(t, srv.URL, tok, "autopilot", "on", "m", "--json")
	var st wire.AutopilotStatus
	if code != 0 || json.Unmarshal([]byte(out), &st) != nil || st.State != wire.AutopilotDone || st.Paused != nil {
		t.Errorf("autopilot on --json = %d:\n%s", code, out)
	}
	if out, code := asToken(t, srv.URL, tok, "autopilot", "off", "plain", "--reason", "x"); code != 1 || !strings.Contains(out, "no autopilot policy") {
		t.Errorf("off on a migration without a policy = %d:\n%s", code, out)
	}
	if out, code := asToken(t, srv.URL, tok, "autopilot", "sideways", "m"); code != 2 || !strings.Contains(out, "say on, off or status") {
		t.Errorf("unknown action = %d:\n%s", code, out)
	}
	if out, code := asToken(t, srv.URL, tok, "autopilot", "-h"); code != 2 || !strings.Contains(out, "inside its windows it advances the next cohort") {
		t.Errorf("autopilot -h = %d:\n%s", code, out)
	}
}
