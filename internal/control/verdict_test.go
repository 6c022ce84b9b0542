package control_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
	"github.com/switchbackhq/switchback/internal/wire"
)

// An advance on an inconclusive report is refused like a fail, with
// gate_refused and the verdict in the report, and its message says what
// data it waits for. Here, from the store's own counts: plenty of tickets
// but 49 contacts, and companies that were only ever skipped. Once each
// type has its 50 comparisons, the same advance passes.
func TestAdvanceOnInconclusiveIsRefusedAndWaits(t *testing.T) {
	e := newStatsEnv(t)
	e.cohort(t, "m", "canary", 1, "acme")
	e.clock.Advance(2 * time.Hour)
	row := func(typ string, class domain.Class, n uint64) domain.ComparisonCount {
		c := e.count(class, n)
		c.EventType = typ
		return c
	}
	report := func(id uint64, rows ...domain.ComparisonCount) {
		t.Helper()
		var calls uint64
		for _, r := range rows {
			calls += r.Count
		}
		if _, err := e.svc.IngestReport(ctx, wire.Report{Router: "r1", ReportID: &wire.ReportID{Epoch: "ep", Seq: id}, Comparisons: rows,
			Candidate: []domain.CandidateCount{{Migration: "m", Partner: "acme", Stage: domain.StageShadow, Calls: calls}}}); err != nil {
			t.Fatalf("IngestReport: %v", err)
		}
	}
	report(1, row("ticket", domain.ClassEqual, 5000), row("contact", domain.ClassEqual, 49), row("company", domain.ClassSkipped, 2))

	_, err := e.svc.Advance(ctx, ops, "m", "canary", false)
	var gre *gateRefusal
	if !asRefusal(err, &gre) {
		t.Fatalf("Advance with 49 contacts = %v, want gate_refused with its report", err)
	}
	if got := gre.Report.Verdict; got != gate.Inconclusive {
		t.Errorf("verdict = %s, want inconclusive", got)
	}
	want := "waiting for data: acme: too few comparisons of event types company (0 of 50), contact (49 of 50)"
	if err.Error() != want {
		t.Errorf("message = %q, want %q", err, want)
	}
	// The API answers the report as the error's gate: the verdict is in it.
	b, _ := json.Marshal(gre.Report)
	var body struct {
		Verdict  string `json:"verdict"`
		Partners []struct {
			Verdict string `json:"verdict"`
			Checks  []struct {
				Name, Verdict string
			} `json:"checks"`
		} `json:"partners"`
	}
	if err := json.Unmarshal(b, &body); err != nil {
		t.Fatal(err)
	}
	if body.Verdict != "inconclusive" || len(body.Partners) != 1 || body.Partners[0].Verdict != "inconclusive" {
		t.Errorf("report JSON %s, want verdict inconclusive for it and for acme", b)
	}

	report(2, row("contact", domain.ClassEqual, 1), row("company", domain.ClassEqual, 50))
	if _, err := e.svc.Advance(ctx, ops, "m", "canary", false); err != nil {
		t.Errorf("Advance with 50 of each type = %v, want it to pass", err)
	}
	if got := e.stage(t, "m", "acme").Stage; got != domain.StageNew {
		t.Errorf("acme at %s, want new", got)
	}
}
