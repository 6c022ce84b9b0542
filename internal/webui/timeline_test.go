package webui_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/webui"
	"github.com/switchbackhq/switchback/internal/wire"
)

// Timeline makes fakeComparisons a webui.Comparisons: it has no timeline.
func (f fakeComparisons) Timeline(context.Context, string, string) ([]domain.MinuteCount, error) {
	return []domain.MinuteCount{}, nil
}

// timelineComparisons is fakeComparisons with a timeline.
type timelineComparisons struct {
	fakeComparisons
	timeline []domain.MinuteCount
}

func (f timelineComparisons) Timeline(context.Context, string, string) ([]domain.MinuteCount, error) {
	return f.timeline, nil
}

func TestPartnerPageChartsTheTimeline(t *testing.T) {
	since := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC) // the fixture's clock: when acme entered legacy
	at := func(m int, class domain.Class, n uint64) domain.MinuteCount {
		return domain.MinuteCount{Minute: since.Add(time.Duration(m) * time.Minute), EventType: "ticket", Class: class, Count: n}
	}
	fake := timelineComparisons{timeline: []domain.MinuteCount{
		at(3, domain.ClassEqual, 40), at(5, domain.ClassEqual, 38), at(5, domain.ClassValueDiff, 2), at(5, domain.ClassSkipped, 1),
	}}
	f := newFixture(t, fixtureOptions{ui: webui.Options{Comparisons: fake}})
	c := f.client(t)
	c.login("viewer")
	page := c.get("/migrations/" + mig + "/partners/acme")
	if page.status != 200 {
		t.Fatalf("partner page: %d", page.status)
	}
	// The stage began six minutes before the latest data: one bar a minute.
	if got := strings.Count(page.body, `<g class="bar"`); got != 6 {
		t.Errorf("the chart has %d bars, want 6", got)
	}
	for _, want := range []string{`<svg class="chart"`, `role="img"`, `class="seg-mismatched"`, `fill="url(#hatch-gap)"`,
		"6 minutes from 2026-03-01 12:00:00 UTC to 12:05 UTC: 78 compared equal, 2 mismatched, 1 coverage gap.",
		"12:05 UTC: 38 compared equal, 2 mismatched, 1 coverage gap", "minute (UTC)", "comparisons per minute",
		"compared equal or noise: 78", "mismatched: 2", "coverage gaps (skipped, shadow_error, primary_error): 1", "Comparisons by event type and class"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("partner page lacks %q", want)
		}
	}

	f = newFixture(t, fixtureOptions{ui: webui.Options{Comparisons: fakeComparisons{}}})
	c = f.client(t)
	c.login("viewer")
	page = c.get("/migrations/" + mig + "/partners/acme")
	if strings.Contains(page.body, `<svg class="chart"`) || !strings.Contains(page.body, "No comparisons in this stage yet") {
		t.Errorf("with no timeline, the partner page should say so and draw no chart")
	}
}

// TestServiceTimeline reads a timeline through the control service from a
// real store, as switchback serve does.
func TestServiceTimeline(t *testing.T) {
	store := bolttest.Open(t)
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	svc, err := control.New(ctx, store, control.Options{Now: func() time.Time { return now }, Logger: discard()})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := svc.PutPartner(ctx, setup, control.PartnerInput{ID: "acme", Name: "Acme MSP", PSA: domain.PSAConnectWise}); err != nil {
		t.Fatal(err)
	}
	m := domain.Migration{Key: mig, Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://legacy.internal/apply"}, New: domain.Pipeline{URL: "http://new.internal/apply"}},
		Gates: domain.DefaultGates(), Guard: domain.DefaultGuard()}
	if _, _, err := svc.PutMigration(ctx, setup, m); err != nil {
		t.Fatal(err)
	}
	if _, err := svc.SetStage(ctx, setup, mig, "acme", domain.StageShadow, false); err != nil {
		t.Fatal(err)
	}
	count := func(class domain.Class, n uint64) domain.ComparisonCount {
		return domain.ComparisonCount{Migration: mig, Partner: "acme", Stage: domain.StageShadow, EventType: "ticket", Class: class, Minute: now, Count: n}
	}
	_, err = svc.IngestReport(ctx, wire.Report{Router: "r1",
		Comparisons: []domain.ComparisonCount{count(domain.ClassEqual, 7), count(domain.ClassMissing, 1)},
		Candidate:   []domain.CandidateCount{{Migration: mig, Partner: "acme", Stage: domain.StageShadow, Calls: 8}}})
	if err != nil {
		t.Fatal(err)
	}
	got, err := webui.ServiceComparisons{Svc: svc}.Timeline(ctx, mig, "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.MinuteCount{{Minute: now, EventType: "ticket", Class: domain.ClassEqual, Count: 7}, {Minute: now, EventType: "ticket", Class: domain.ClassMissing, Count: 1}}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Timeline (-want +got):\n%s", diff)
	}
	if _, err := (webui.ServiceComparisons{Svc: svc}).Timeline(ctx, mig, "nobody"); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("Timeline of an unknown partner: %v, want not_found", err)
	}
}
