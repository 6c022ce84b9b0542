package webui

import (
	"fmt"
	"math"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// The partner page's chart: a partner's comparisons in its current stage,
// one bar a minute, stacked by what the comparisons say. It is drawn on
// the server as SVG; the table of counts by event type and class beside
// it is its text alternative.

// chartMinutes is how many minutes the chart shows at most: those up to
// the latest minute with data.
const chartMinutes = 60

// The chart's drawing area, in SVG units, and the room left around the
// plot for the axes' labels.
const (
	chartW, chartH                         = 640.0, 200.0
	padLeft, padRight, padTop, padBottom   = 56.0, 8.0, 24.0, 38.0
	minSegment                             = 2.0 // a non-zero segment is never drawn thinner
	barFill                                = 0.8 // the share of a minute's slot its bar fills
	chartTickGap, chartAxisGap, chartTitle = 6.0, 16.0, 12.0
)

// timelineChart is the bars and axes of the chart.
type timelineChart struct {
	Bars     []chartBar
	From, To time.Time // the first and last minute shown
	Max      uint64    // the top of the count axis
	Ticks    []chartTick
	// Equal, Mismatched and Gaps total the bars, for the legend.
	Equal, Mismatched, Gaps uint64
	Summary                 string // the chart in one sentence

	// Geometry for the template.
	W, H, Left, Right, Top, Base float64
	TickX, FromX, ToX, LabelY    float64 // where the axes' labels go
	XTitleX, XTitleY, YTitleY    float64
}

// chartBar is one minute: its comparisons compared equal, mismatched, and
// not compared at all (coverage gaps: skipped, shadow_error, primary_error).
type chartBar struct {
	Minute                  time.Time
	Equal, Mismatched, Gaps uint64
	X, W                    float64
	Segs                    []chartSeg // bottom up: equal, mismatched, gaps
	Label                   string
}

// chartSeg is one stacked part of a bar.
type chartSeg struct {
	Kind string // equal, mismatched or gap: its CSS class is seg-<kind>
	Y, H float64
}

// chartTick is a labelled count on the count axis.
type chartTick struct {
	Y     float64
	Label string
}

// buildTimeline buckets a partner's per-minute counts into one bar a
// minute, from chartMinutes before the latest minute with data (or the
// stage's beginning, if later) to that minute; minutes without data are
// empty bars. It returns nil when there is no data.
func buildTimeline(counts []domain.MinuteCount, since time.Time) *timelineChart {
	if len(counts) == 0 {
		return nil
	}
	last := counts[0].Minute
	for _, c := range counts {
		if c.Minute.After(last) {
			last = c.Minute
		}
	}
	last = last.UTC().Truncate(time.Minute)
	from := last.Add(-(chartMinutes - 1) * time.Minute)
	if s := since.UTC().Truncate(time.Minute); s.After(from) && !s.After(last) {
		from = s
	}
	ch := &timelineChart{From: from, To: last, Bars: make([]chartBar, int(last.Sub(from)/time.Minute)+1)}
	for i := range ch.Bars {
		ch.Bars[i].Minute = from.Add(time.Duration(i) * time.Minute)
	}
	for _, c := range counts {
		if c.Minute.Before(from) {
			continue
		}
		b := &ch.Bars[int(c.Minute.Sub(from)/time.Minute)]
		switch {
		case !c.Class.Compared():
			b.Gaps += c.Count
		case c.Class.Mismatched():
			b.Mismatched += c.Count
		default: // equal, and noise: compared, not mismatched
			b.Equal += c.Count
		}
	}
	for _, b := range ch.Bars {
		ch.Equal, ch.Mismatched, ch.Gaps = ch.Equal+b.Equal, ch.Mismatched+b.Mismatched, ch.Gaps+b.Gaps
	}
	ch.layout()
	return ch
}

// layout places the bars, their segments and the axes.
func (ch *timelineChart) layout() {
	var top uint64
	for _, b := range ch.Bars {
		top = max(top, b.Equal+b.Mismatched+b.Gaps)
	}
	ch.Max = niceCeil(top)
	ch.W, ch.H, ch.Left, ch.Right, ch.Top, ch.Base = chartW, chartH, padLeft, chartW-padRight, padTop, chartH-padBottom
	ch.TickX, ch.FromX, ch.ToX, ch.LabelY = padLeft-chartTickGap, padLeft, chartW-padRight, ch.Base+chartAxisGap
	ch.XTitleX, ch.XTitleY, ch.YTitleY = (padLeft+chartW-padRight)/2, chartH-4, chartTitle
	slot := (ch.Right - ch.Left) / float64(len(ch.Bars))
	scale := (ch.Base - ch.Top) / float64(ch.Max)
	for i := range ch.Bars {
		b := &ch.Bars[i]
		b.X, b.W = round1(ch.Left+float64(i)*slot+slot*(1-barFill)/2), round1(slot*barFill)
		y := ch.Base
		for _, s := range []struct {
			kind string
			n    uint64
		}{{"equal", b.Equal}, {"mismatched", b.Mismatched}, {"gap", b.Gaps}} {
			if s.n == 0 {
				continue
			}
			h := max(float64(s.n)*scale, minSegment)
			y -= h
			b.Segs = append(b.Segs, chartSeg{Kind: s.kind, Y: round1(y), H: round1(h)})
		}
		b.Label = fmt.Sprintf("%s UTC: %s compared equal, %s mismatched, %s %s", b.Minute.Format("15:04"),
			formatCount(b.Equal), formatCount(b.Mismatched), formatCount(b.Gaps), pluralize(int(min(b.Gaps, 2)), "coverage gap", "coverage gaps"))
	}
	ticks := []uint64{0, ch.Max}
	if ch.Max%2 == 0 {
		ticks = []uint64{0, ch.Max / 2, ch.Max}
	}
	for _, v := range ticks {
		ch.Ticks = append(ch.Ticks, chartTick{Y: round1(ch.Base - float64(v)*scale), Label: formatCount(v)})
	}
	ch.Summary = fmt.Sprintf("%d %s from %s to %s: %s compared equal, %s mismatched, %s %s.",
		len(ch.Bars), pluralize(len(ch.Bars), "minute", "minutes"), formatTime(ch.From), ch.To.Format("15:04")+" UTC",
		formatCount(ch.Equal), formatCount(ch.Mismatched), formatCount(ch.Gaps), pluralize(int(min(ch.Gaps, 2)), "coverage gap", "coverage gaps"))
}

// niceCeil rounds n up to 1, 2 or 5 times a power of ten; at least 1.
func niceCeil(n uint64) uint64 {
	for p := uint64(1); ; p *= 10 {
		for _, m := range []uint64{1, 2, 5} {
			if n <= m*p {
				return m * p
			}
		}
	}
}

func round1(v float64) float64 { return math.Round(v*10) / 10 }
