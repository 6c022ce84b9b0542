package bolt_test

import (
	"context"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/bolt/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
)

func TestTimeline(t *testing.T) {
	ctx := context.Background()
	s := bolttest.Open(t)
	since := t0.Add(-time.Hour)
	count := func(partner string, stage domain.Stage, typ string, class domain.Class, minute time.Time, n uint64) domain.ComparisonCount {
		return domain.ComparisonCount{Migration: "m", Partner: partner, Stage: stage, EventType: typ, Class: class, Minute: minute, Count: n}
	}
	err := s.Update(ctx, func(tx control.Tx) error {
		stx := tx.(control.StatsTx)
		for _, c := range []domain.ComparisonCount{
			count("acme", domain.StageShadow, "ticket", domain.ClassEqual, t0.Add(90*time.Second), 5), // in minute t0+1m
			count("acme", domain.StageShadow, "ticket", domain.ClassEqual, t0.Add(70*time.Second), 2), // same minute: added
			count("acme", domain.StageShadow, "company", domain.ClassSkipped, t0.Add(time.Minute), 1),
			count("acme", domain.StageShadow, "ticket", domain.ClassValueDiff, t0, 3),
			count("globex", domain.StageShadow, "ticket", domain.ClassEqual, t0, 9), // another partner
			count("acme", domain.StageNew, "ticket", domain.ClassEqual, t0, 9),      // another stage
		} {
			if err := stx.AddComparisons(since, c); err != nil {
				return err
			}
		}
		if err := stx.AddComparisons(since.Add(-time.Hour), count("acme", domain.StageShadow, "ticket", domain.ClassEqual, t0, 9)); err != nil {
			return err // an earlier stint in shadow
		}
		return stx.AddCandidate(since, domain.CandidateCount{Migration: "m", Partner: "acme", Stage: domain.StageShadow, Calls: 11, Errors: 1})
	})
	if err != nil {
		t.Fatalf("Update: %v", err)
	}
	got, err := s.Timeline(ctx, "m", "acme", domain.StageShadow, since)
	if err != nil {
		t.Fatalf("Timeline: %v", err)
	}
	want := []domain.MinuteCount{
		{Minute: t0, EventType: "ticket", Class: domain.ClassValueDiff, Count: 3},
		{Minute: t0.Add(time.Minute), EventType: "company", Class: domain.ClassSkipped, Count: 1},
		{Minute: t0.Add(time.Minute), EventType: "ticket", Class: domain.ClassEqual, Count: 7},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Timeline (-want +got):\n%s", diff)
	}

	empty, err := s.Timeline(ctx, "m", "nobody", domain.StageShadow, since)
	if err != nil || empty == nil || len(empty) != 0 {
		t.Errorf("Timeline of a partner with no counts = %v, %v; want an empty slice", empty, err)
	}
}
