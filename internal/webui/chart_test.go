package webui

import (
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

var chartT0 = time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)

func minute(m int, typ string, class domain.Class, n uint64) domain.MinuteCount {
	return domain.MinuteCount{Minute: chartT0.Add(time.Duration(m) * time.Minute), EventType: typ, Class: class, Count: n}
}

func TestBuildTimelineEmpty(t *testing.T) {
	if ch := buildTimeline(nil, chartT0); ch != nil {
		t.Errorf("buildTimeline(nil) = %+v, want nil", ch)
	}
	if ch := buildTimeline([]domain.MinuteCount{}, chartT0); ch != nil {
		t.Errorf("buildTimeline(empty) = %+v, want nil", ch)
	}
}

func TestBuildTimelineBuckets(t *testing.T) {
	// A long stage: the last 60 minutes up to the latest data, and minute
	// 100's data, 65 minutes before, left out.
	ch := buildTimeline([]domain.MinuteCount{minute(100, "ticket", domain.ClassEqual, 5), minute(165, "ticket", domain.ClassEqual, 1)}, chartT0)
	if len(ch.Bars) != chartMinutes || !ch.From.Equal(chartT0.Add(106*time.Minute)) || !ch.To.Equal(chartT0.Add(165*time.Minute)) {
		t.Fatalf("bars %d from %v to %v, want 60 from +106m to +165m", len(ch.Bars), ch.From, ch.To)
	}
	if ch.Equal != 1 {
		t.Errorf("the chart counts %d equal, want 1 (the minute out of the window left out)", ch.Equal)
	}
	// A stage shorter than that: from its first minute, empty minutes
	// included as empty bars.
	ch = buildTimeline([]domain.MinuteCount{minute(4, "ticket", domain.ClassEqual, 3)}, chartT0.Add(90*time.Second))
	if len(ch.Bars) != 4 || !ch.From.Equal(chartT0.Add(time.Minute)) {
		t.Fatalf("bars %d from %v, want 4 from +1m", len(ch.Bars), ch.From)
	}
	for i, b := range ch.Bars[:3] {
		if b.Equal+b.Mismatched+b.Gaps != 0 || len(b.Segs) != 0 {
			t.Errorf("bar %d = %+v, want empty", i, b)
		}
	}
	// Seconds within a minute land in that minute's bar.
	ch = buildTimeline([]domain.MinuteCount{{Minute: chartT0.Add(30 * time.Second), Class: domain.ClassEqual, Count: 2}, minute(1, "ticket", domain.ClassEqual, 1)}, chartT0)
	if len(ch.Bars) != 2 || ch.Bars[0].Equal != 2 || ch.Bars[1].Equal != 1 {
		t.Errorf("bars %+v, want 2 then 1 equal", ch.Bars)
	}
}

func TestBuildTimelineStacks(t *testing.T) {
	ch := buildTimeline([]domain.MinuteCount{
		minute(0, "company", domain.ClassEqual, 30),
		minute(0, "ticket", domain.ClassEqual, 50),
		minute(0, "ticket", domain.ClassValueDiff, 10),
		minute(0, "ticket", domain.ClassTypeMismatch, 5),
		minute(0, "ticket", domain.ClassSkipped, 3),
		minute(0, "ticket", domain.ClassShadowError, 2),
		minute(1, "ticket", domain.ClassEqual, 100),
	}, chartT0)
	if len(ch.Bars) != 2 {
		t.Fatalf("%d bars, want 2", len(ch.Bars))
	}
	b := ch.Bars[0]
	if b.Equal != 80 || b.Mismatched != 15 || b.Gaps != 5 {
		t.Errorf("bar = %d equal, %d mismatched, %d gaps; want 80, 15, 5", b.Equal, b.Mismatched, b.Gaps)
	}
	if ch.Equal != 180 || ch.Mismatched != 15 || ch.Gaps != 5 || ch.Max != 100 {
		t.Errorf("totals %d, %d, %d, max %d; want 180, 15, 5, max 100", ch.Equal, ch.Mismatched, ch.Gaps, ch.Max)
	}
	// Bottom up, each segment on top of the one before, filling the plot
	// when the bar is the tallest.
	if len(b.Segs) != 3 || b.Segs[0].Kind != "equal" || b.Segs[1].Kind != "mismatched" || b.Segs[2].Kind != "gap" {
		t.Fatalf("segments %+v, want equal, mismatched, gap", b.Segs)
	}
	y := ch.Base
	for _, s := range b.Segs {
		if diff := s.Y + s.H - y; diff > 0.11 || diff < -0.11 {
			t.Errorf("segment %s ends at %.1f, want %.1f", s.Kind, s.Y+s.H, y)
		}
		y = s.Y
	}
	if y-ch.Top > 0.11 || y-ch.Top < -0.11 {
		t.Errorf("the tallest bar reaches %.1f, want the top %.1f", y, ch.Top)
	}
	if got := ch.Bars[1].Segs; len(got) != 1 || got[0].Kind != "equal" {
		t.Errorf("second bar segments %+v, want one equal", got)
	}
	// One mismatch among many still shows.
	ch = buildTimeline([]domain.MinuteCount{minute(0, "ticket", domain.ClassEqual, 100000), minute(0, "ticket", domain.ClassMissing, 1)}, chartT0)
	if s := ch.Bars[0].Segs; len(s) != 2 || s[1].H < minSegment {
		t.Errorf("segments %+v: the one mismatch should be at least %.0f high", s, minSegment)
	}
}

func TestNiceCeil(t *testing.T) {
	for n, want := range map[uint64]uint64{0: 1, 1: 1, 2: 2, 3: 5, 7: 10, 10: 10, 11: 20, 480: 500, 501: 1000} {
		if got := niceCeil(n); got != want {
			t.Errorf("niceCeil(%d) = %d, want %d", n, got, want)
		}
	}
}
