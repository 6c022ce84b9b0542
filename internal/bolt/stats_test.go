package bolt_test

import (
	"context"
	"math"
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

// A counter near its maximum saturates instead of wrapping: a wrapped
// type_mismatch count would pass its zero-tolerance gate.
func TestCountsSaturate(t *testing.T) {
	ctx := context.Background()
	s := bolttest.Open(t)
	since := t0.Add(-time.Hour)
	c := domain.ComparisonCount{Migration: "m", Partner: "acme", Stage: domain.StageShadow, EventType: "ticket", Class: domain.ClassTypeMismatch, Minute: t0}
	tests := []struct {
		name string
		add  uint64
		want uint64
	}{
		{"three", 3, 3},
		{"to one below the maximum", math.MaxUint64 - 4, math.MaxUint64 - 1},
		{"past the maximum", 5, math.MaxUint64},
		{"once more", 1, math.MaxUint64},
	}
	for _, tt := range tests {
		err := s.Update(ctx, func(tx control.Tx) error {
			c.Count = tt.add
			if err := tx.(control.StatsTx).AddComparisons(since, c); err != nil {
				return err
			}
			// A second minute of the same class: their sum saturates too.
			c2 := c
			c2.Minute, c2.Count = t0.Add(time.Minute), min(tt.add, 1)
			return tx.(control.StatsTx).AddComparisons(since, c2)
		})
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		got, err := s.Timeline(ctx, "m", "acme", domain.StageShadow, since)
		if err != nil || len(got) != 2 {
			t.Fatalf("%s: Timeline = %v, %v", tt.name, got, err)
		}
		if got[0].Count != tt.want {
			t.Errorf("%s: count = %d, want %d", tt.name, got[0].Count, tt.want)
		}
		counts, err := s.StageCounts(ctx, "m", "acme", domain.StageShadow, since)
		if err != nil {
			t.Fatal(err)
		}
		if sum := counts.ByClass[domain.ClassTypeMismatch]; sum < tt.want {
			t.Errorf("%s: StageCounts type_mismatch = %d, want at least %d (no wrap)", tt.name, sum, tt.want)
		}
	}
}
