package gate

import (
	"math"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/domain"
)

func TestTally(t *testing.T) {
	t0 := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	row := func(typ string, class domain.Class, minute time.Duration, n uint64) domain.MinuteCount {
		return domain.MinuteCount{Minute: t0.Add(minute * time.Minute), EventType: typ, Class: class, Count: n}
	}
	tests := []struct {
		name string
		rows domain.StageRows
		want Counts
	}{
		{
			name: "no rows: nothing eligible, nothing compared",
			want: Counts{ByClass: map[domain.Class]uint64{}, ByType: map[string]uint64{}},
		},
		{
			name: "minutes of one type and class add up",
			rows: domain.StageRows{Comparisons: []domain.MinuteCount{
				row("ticket", domain.ClassEqual, 0, 5), row("ticket", domain.ClassEqual, 1, 7),
			}},
			want: Counts{Eligible: 12, ByClass: map[domain.Class]uint64{domain.ClassEqual: 12}, ByType: map[string]uint64{"ticket": 12},
				Types: []string{"ticket"}},
		},
		{
			name: "coverage gaps are eligible, not counted by type, but their type was sent",
			rows: domain.StageRows{Comparisons: []domain.MinuteCount{
				row("ticket", domain.ClassEqual, 0, 40), row("ticket", domain.ClassTypeMismatch, 0, 1),
				row("company", domain.ClassSkipped, 0, 3), row("company", domain.ClassShadowError, 1, 2),
			}},
			want: Counts{
				Eligible: 46,
				ByClass: map[domain.Class]uint64{domain.ClassEqual: 40, domain.ClassTypeMismatch: 1,
					domain.ClassSkipped: 3, domain.ClassShadowError: 2},
				ByType: map[string]uint64{"ticket": 41},
				Types:  []string{"company", "ticket"},
			},
		},
		{
			name: "the candidate's calls and errors pass through",
			rows: domain.StageRows{CandidateCalls: 11, CandidateErrors: 1},
			want: Counts{ByClass: map[domain.Class]uint64{}, ByType: map[string]uint64{}, CandidateCalls: 11, CandidateErrors: 1},
		},
		{
			name: "sums saturate instead of wrapping",
			rows: domain.StageRows{Comparisons: []domain.MinuteCount{
				row("ticket", domain.ClassTypeMismatch, 0, math.MaxUint64-1), row("ticket", domain.ClassTypeMismatch, 1, 5),
			}},
			want: Counts{Eligible: math.MaxUint64, ByClass: map[domain.Class]uint64{domain.ClassTypeMismatch: math.MaxUint64},
				ByType: map[string]uint64{"ticket": math.MaxUint64}, Types: []string{"ticket"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if diff := cmp.Diff(tt.want, Tally(tt.rows)); diff != "" {
				t.Errorf("Tally (-want +got):\n%s", diff)
			}
		})
	}
}
