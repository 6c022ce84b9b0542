package main

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httpapi"
)

// changesServer is the API on a real bbolt store with two operator
// tokens, alice and bob, a migration m whose moves into shadow need one
// approval, and a cohort wave (p1, p2) at legacy.
func changesServer(t *testing.T) (svc *control.Service, url string, tok map[string]string) {
	t.Helper()
	ctx := context.Background()
	svc, err := control.New(ctx, bolttest.Open(t), control.Options{Logger: quietLog()})
	if err != nil {
		t.Fatal(err)
	}
	admin := control.Change{Actor: "admin", Reason: "setup"}
	tok = map[string]string{}
	for _, name := range []string{"alice", "bob"} {
		_, secret, err := svc.CreateToken(ctx, admin, name, domain.RoleOperator)
		if err != nil {
			t.Fatal(err)
		}
		tok[name] = secret
	}
	for _, id := range []string{"p1", "p2"} {
		if _, _, err := svc.PutPartner(ctx, admin, control.PartnerInput{ID: id, Name: id, PSA: domain.PSAGeneric}); err != nil {
			t.Fatal(err)
		}
	}
	m := domain.Migration{Key: "m", Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://legacy"}, New: domain.Pipeline{URL: "http://new"}},
		Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(),
		Approvals: &domain.ApprovalPolicy{Required: 1, Stages: []domain.Stage{domain.StageShadow}, TTL: time.Hour}}
	if _, _, err := svc.PutMigration(ctx, admin, m); err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PutCohort(ctx, admin, "m", domain.Cohort{Name: "wave", Order: 1, Partners: []string{"p1", "p2"}}); err != nil {
		t.Fatal(err)
	}
	api := httpapi.New(svc, quietLog(), prometheus.NewRegistry())
	srv := httptest.NewServer(api)
	t.Cleanup(srv.Close)
	t.Cleanup(api.Close)
	return svc, srv.URL, tok
}

func quietLog() *slog.Logger { return slog.New(slog.DiscardHandler) }

// asToken runs a verb with the token secret and returns its output and exit code.
func asToken(t *testing.T, url, secret string, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	env := map[string]string{"SWITCHBACK_SERVER": url, "SWITCHBACK_TOKEN": secret}
	err := run(context.Background(), args, func(k string) string { return env[k] }, &out, &errOut)
	code := 0
	if err != nil {
		code = exitCode(err)
		errOut.WriteString(err.Error())
	}
	return out.String() + errOut.String(), code
}

func TestCLIChangeRequests(t *testing.T) {
	svc, url, tok := changesServer(t)
	stageOf := func(p string) domain.Stage {
		st := svc.State()
		return st.Migrations["m"].StageOf(st.Partners[p]).Stage
	}

	out, code := asToken(t, url, tok["alice"], "advance", "m", "wave", "--reason", "shadow the wave")
	if code != 0 || !strings.Contains(out, "waits for 1 approval") || !strings.Contains(out, "cohort wave from legacy to shadow") {
		t.Fatalf("advance = %d:\n%s\nwant the filed change and the approval it waits for", code, out)
	}
	id := regexp.MustCompile(`chg_[0-9a-f]{24}`).FindString(out)
	if id == "" || !strings.Contains(out, "switchback approve "+id) {
		t.Fatalf("advance printed no change id and how to approve it:\n%s", out)
	}
	if stageOf("p1") != domain.StageLegacy {
		t.Fatalf("p1 moved before any approval")
	}

	out, code = asToken(t, url, tok["bob"], "changes")
	if code != 0 || !strings.Contains(out, id) || !strings.Contains(out, "pending") || !strings.Contains(out, "0 of 1") {
		t.Errorf("changes = %d:\n%s\nwant the pending change with 0 of 1 approvals", code, out)
	}
	out, code = asToken(t, url, tok["bob"], "changes", "--json", "--migration", "m")
	var list []domain.ChangeRequest
	if code != 0 || json.Unmarshal([]byte(out), &list) != nil || len(list) != 1 || list[0].ID != id {
		t.Errorf("changes --json = %d:\n%s\nwant a JSON list with the change", code, out)
	}

	out, code = asToken(t, url, tok["alice"], "approve", id)
	if code != 1 || !strings.Contains(out, "permission_denied") {
		t.Errorf("approve by the requester = %d:\n%s\nwant exit 1, permission_denied", code, out)
	}
	if out, code = asToken(t, url, tok["bob"], "reject", id); code != 2 || !strings.Contains(out, "--reason") {
		t.Errorf("reject without a reason = %d:\n%s\nwant a usage error naming --reason", code, out)
	}

	out, code = asToken(t, url, tok["bob"], "approve", id, "--reason", "looked at it")
	if code != 0 || !strings.Contains(out, "APPLIED") || !strings.Contains(out, "bob") {
		t.Fatalf("approve by bob = %d:\n%s\nwant the change applied", code, out)
	}
	if stageOf("p1") != domain.StageShadow || stageOf("p2") != domain.StageShadow {
		t.Errorf("after the approval p1 is %s, p2 %s; want both in shadow", stageOf("p1"), stageOf("p2"))
	}
	out, _ = asToken(t, url, tok["bob"], "changes")
	if !strings.Contains(out, "no change requests") {
		t.Errorf("changes (pending) after the approval:\n%s\nwant none", out)
	}
	out, _ = asToken(t, url, tok["bob"], "changes", "--state", "all")
	if !strings.Contains(out, id) || !strings.Contains(out, "applied") {
		t.Errorf("changes --state all:\n%s\nwant the applied change", out)
	}
	if out, code = asToken(t, url, tok["bob"], "changes", "--state", "open"); code != 1 || !strings.Contains(out, "invalid_argument") {
		t.Errorf("changes --state open = %d:\n%s\nwant exit 1, invalid_argument", code, out)
	}

	// A partner's stage: filed, then approved while the kill switch is on,
	// which makes its move fail: exit 1, saying why.
	if _, err := svc.SetStage(context.Background(), control.Change{Actor: "alice", Reason: "back"}, "m", "p1", domain.StageLegacy, false); err != nil {
		t.Fatal(err)
	}
	out, code = asToken(t, url, tok["alice"], "stage", "m", "p1", "shadow", "--reason", "p1 again")
	id2 := regexp.MustCompile(`chg_[0-9a-f]{24}`).FindString(out)
	if code != 0 || id2 == "" || !strings.Contains(out, "partner p1 from legacy to shadow") {
		t.Fatalf("stage = %d:\n%s\nwant a filed change", code, out)
	}
	if out, code := asToken(t, url, tok["alice"], "revert", "m", "--reason", "incident"); code != 0 {
		t.Fatalf("revert with a change pending = %d:\n%s", code, out)
	}
	out, code = asToken(t, url, tok["bob"], "approve", id2)
	if code != 1 || !strings.Contains(out, "FAILED") || !strings.Contains(out, "reverted") {
		t.Errorf("approve of a reverted migration's change = %d:\n%s\nwant exit 1 with the failure", code, out)
	}
	out, code = asToken(t, url, tok["bob"], "changes", id2)
	if code != 0 || !strings.Contains(out, "ended:      failed by bob") {
		t.Errorf("changes ID = %d:\n%s\nwant the failed change in full", code, out)
	}
}

func TestCLIChangeVerbsHelp(t *testing.T) {
	for verb, want := range map[string]string{
		"changes": "Usage: switchback changes [flags] [ID]",
		"approve": "not the requester's; each token counts once",
		"reject":  "--reason is required",
		"advance": "files a change request instead",
	} {
		out, code := asToken(t, "http://127.0.0.1:1", "x", verb, "-h")
		if code != 2 || !strings.Contains(out, want) {
			t.Errorf("%s -h = %d:\n%s\nwant %q", verb, code, out, want)
		}
	}
	out, _ := asToken(t, "", "x", "help")
	for _, want := range []string{"changes [ID]", "approve ID", "reject ID --reason R"} {
		if !strings.Contains(out, want) {
			t.Errorf("help lacks %q", want)
		}
	}
}
