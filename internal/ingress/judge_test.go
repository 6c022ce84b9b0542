package ingress

import (
	"testing"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
)

func TestJudgeAwaitedEvents(t *testing.T) {
	j := &domain.ReplayJob{ID: "rpl_1"}
	byNew := func(comparison string) journal.Event {
		return journal.Event{State: journal.StateApplied, Pipeline: "new", Shadow: "legacy", Comparison: comparison}
	}
	replayed := byNew("type_mismatch")
	replayed.Replays = []journal.Replay{{Job: "rpl_1", OK: true}}
	otherJob := byNew("")
	otherJob.Replays = []journal.Replay{{Job: "rpl_0", OK: true}}
	deadNew := byNew("")
	deadNew.State = journal.StateDeadLettered
	tests := []struct {
		name          string
		ev            journal.Event
		before, after verdict // before the deadline, and once expired
	}{
		{"applied by new, comparison due", byNew(""), waiting, unknown},
		{"applied by new, equal", byNew("equal"), settled, settled},
		{"applied by new, mismatched", byNew("value_diff"), mismatch, mismatch},
		{"applied by new, skipped", byNew("skipped"), unknown, unknown},
		{"applied by new, shadow failed", byNew("shadow_error"), unknown, unknown},
		{"applied by new, no shadow asked", journal.Event{State: journal.StateApplied, Pipeline: "new"}, settled, settled},
		{"dead-lettered by new, comparison due", deadNew, waiting, unknown},
		{"applied by legacy, not compared", journal.Event{State: journal.StateApplied, Pipeline: "legacy", Shadow: "new"}, settled, settled},
		{"applied by legacy, new mismatched in dry-run", journal.Event{State: journal.StateApplied, Pipeline: "legacy", Shadow: "new", Comparison: "missing"}, mismatch, mismatch},
		{"not delivered yet", journal.Event{State: journal.StateJournaled}, waiting, settled},
		{"replayed by this job", replayed, settled, settled},
		{"replayed by another job only", otherJob, waiting, unknown},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := judge(j, tt.ev, false); got != tt.before {
				t.Errorf("before the deadline: got %d, want %d", got, tt.before)
			}
			if got := judge(j, tt.ev, true); got != tt.after {
				t.Errorf("expired: got %d, want %d", got, tt.after)
			}
		})
	}
}
