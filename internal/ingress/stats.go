package ingress

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/wire"
)

// Bounds on what one report carries, so a router that cannot reach the
// control service holds a bounded amount.
const (
	maxReportMismatches = 200
	// maxReportSampleBytes bounds the mismatches of one report, encoded:
	// with the counts, a report stays under the control service's 1 MiB
	// body limit even when pipelines answer with large effects. A sample
	// that does not fit is dropped, like one past maxReportMismatches.
	maxReportSampleBytes = 640 << 10
	maxGuardOutcomes     = 1000
	// maxReportKeys bounds the owed counts sealed into one report, which
	// keeps it far below the control service's 1 MiB body limit.
	maxReportKeys = 1000
)

type candKey struct {
	migration, partner string
	stage              domain.Stage
}

// stats gathers the samples that go with the next report: mismatches for
// the UI and outcomes for the guard. They are best-effort, kept in memory;
// the counts the gates judge are owed in the journal (see tally).
type stats struct {
	mu         sync.Mutex
	mismatches []domain.Mismatch
	// sampleBytes is the encoded size of mismatches, noiseBytes that of
	// the noise samples among them.
	sampleBytes, noiseBytes int
	guard                   map[candKey]*domain.GuardSample
	// urgent asks the reporter to send now: a partner on the new pipeline
	// just mismatched or failed, and the guard should judge it at once.
	urgent chan struct{}
}

func newStats() *stats {
	return &stats{guard: map[candKey]*domain.GuardSample{}, urgent: make(chan struct{}, 1)}
}

// comparison samples one comparison of ev made under route r.
func (s *stats) comparison(ev journal.Event, r route, class domain.Class, diff string, primary, shadow json.RawMessage, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// Noise is sampled too, so that an operator sees what was counted as
	// noise, but only into the first half of the room, in samples and in
	// bytes (see keep): it must not crowd out the mismatches.
	room := maxReportMismatches
	if !class.Mismatched() {
		room /= 2
	}
	if class.Sampled() && len(s.mismatches) < room {
		// The event as toPipelineEvent gave it to both pipelines.
		event := domain.NewSampleEvent(ev.Type, ev.Action, ev.EntityID, ev.Payload)
		s.keep(domain.Mismatch{Migration: r.migration, Partner: ev.Partner, EventID: ev.ID,
			EventType: ev.Type, Class: class, Diff: diff, Primary: primary, Shadow: shadow, At: at, Event: &event})
	}
	if r.pipeline == "new" {
		s.outcome(r, ev, string(class))
	}
}

// keep adds m to the mismatches if it fits within maxReportSampleBytes.
// A noise sample must also fit within half of it, beside the other noise
// samples, so that large noisy effects leave the other half to mismatches.
// Call with mu held.
func (s *stats) keep(m domain.Mismatch) {
	b, err := json.Marshal(m)
	if err != nil || s.sampleBytes+len(b) > maxReportSampleBytes {
		return // effects that do not encode would fail the whole report
	}
	noise := !m.Class.Mismatched()
	if noise && s.noiseBytes+len(b) > maxReportSampleBytes/2 {
		return
	}
	s.mismatches = append(s.mismatches, m)
	s.sampleBytes += len(b)
	if noise {
		s.noiseBytes += len(b)
	}
}

// candidateCall samples a call to the new pipeline for the guard.
func (s *stats) candidateCall(ev journal.Event, r route, failed bool) {
	if !failed || r.pipeline != "new" {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.outcome(r, ev, domain.OutcomeError)
}

// outcome adds to the guard's sample of a partner on the new pipeline.
// Call with mu held.
func (s *stats) outcome(r route, ev journal.Event, o string) {
	k := candKey{r.migration, ev.Partner, r.stage}
	g := s.guard[k]
	if g == nil {
		g = &domain.GuardSample{Migration: r.migration, Partner: ev.Partner}
		s.guard[k] = g
	}
	if len(g.Outcomes) < maxGuardOutcomes {
		g.Outcomes = append(g.Outcomes, o)
	}
	// Noise is as good as equal to the guard: no hurry, no evidence; nor is
	// a comparison shed (skipped), which says nothing of the new pipeline
	// and, while the router sheds, would ask for a report per event.
	bad := o != string(domain.ClassEqual) && o != string(domain.ClassNoise) && o != string(domain.ClassSkipped)
	if bad {
		select {
		case s.urgent <- struct{}{}:
		default:
		}
	}
	if g.EventID == "" || (bad && o != domain.OutcomeError) {
		g.EventID = ev.ID // a mismatching event is the better evidence
	}
}

// noCounts reports whether b carries neither counts nor samples.
func noCounts(b wire.Report) bool {
	return len(b.Comparisons)+len(b.Candidate)+len(b.Mismatches)+len(b.Guard)+len(b.Noise) == 0
}

// take returns the samples gathered, as a report to fill, and starts
// afresh.
func (s *stats) take() wire.Report {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b wire.Report
	for _, g := range s.guard {
		b.Guard = append(b.Guard, *g)
	}
	b.Mismatches = s.mismatches
	s.guard, s.mismatches, s.sampleBytes, s.noiseBytes = map[candKey]*domain.GuardSample{}, nil, 0, 0
	return b
}

// giveBack keeps the mismatches of a report that could not be sent for the
// next one.
func (s *stats) giveBack(b wire.Report) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, m := range b.Mismatches {
		if len(s.mismatches) == maxReportMismatches {
			break
		}
		s.keep(m)
	}
	// Guard samples are only worth sending fresh: the partner has moved on
	// or the next events will tell the same.
}

// Tally kinds: a comparison of a class, and a call to the new pipeline
// that succeeded or failed.
const (
	tallyComparison = "c"
	tallyCallOK     = "ok"
	tallyCallFailed = "err"
)

// tallyKey is what a count owed in the journal is a count of, encoded as
// its journal key. Calls are counted as succeeded and failed apart, so
// that any subset of keys (a sealed report) has errors ≤ calls.
type tallyKey struct {
	Kind      string       `json:"k"`
	Migration string       `json:"m"`
	Partner   string       `json:"p"`
	Stage     domain.Stage `json:"s"`
	EventType string       `json:"t,omitempty"`
	Class     domain.Class `json:"c,omitempty"`
	Minute    int64        `json:"u,omitempty"` // Unix seconds
}

func (k tallyKey) tally() journal.Tally {
	b, _ := json.Marshal(k) // strings and numbers only: cannot fail
	return journal.Tally{Key: string(b), N: 1}
}

// comparisonTally is one comparison of ev under r, owed to the control
// service.
func comparisonTally(ev journal.Event, r route, class domain.Class) journal.Tally {
	return tallyKey{Kind: tallyComparison, Migration: r.migration, Partner: ev.Partner, Stage: r.stage, EventType: ev.Type,
		Class: class, Minute: ev.ReceivedAt.Truncate(time.Minute).Unix()}.tally()
}

// callTally is one call to the new pipeline for ev under r.
func callTally(ev journal.Event, r route, failed bool) journal.Tally {
	kind := tallyCallOK
	if failed {
		kind = tallyCallFailed
	}
	return tallyKey{Kind: kind, Migration: r.migration, Partner: ev.Partner, Stage: r.stage}.tally()
}

// rows turns a sealed report's counts into report rows, none above
// domain.MaxReportedCount (a larger count is split over several rows). It
// leaves out, with how many, counts that the control service would refuse
// for good: keys it cannot read and minutes older than the retention.
func rows(s journal.Sealed, now time.Time) (b wire.Report, dropped uint64) {
	oldest := now.Add(-domain.ComparisonRetention + time.Hour) // an hour's margin for clock skew
	type calls struct{ ok, failed uint64 }
	cand := map[candKey]*calls{}
	for key, n := range s.Counts {
		var k tallyKey
		if err := json.Unmarshal([]byte(key), &k); err != nil {
			dropped += n
			continue
		}
		switch k.Kind {
		case tallyComparison:
			minute := time.Unix(k.Minute, 0).UTC()
			if minute.Before(oldest) {
				dropped += n
				continue
			}
			for n > 0 {
				c := min(n, domain.MaxReportedCount)
				b.Comparisons = append(b.Comparisons, domain.ComparisonCount{Migration: k.Migration, Partner: k.Partner, Stage: k.Stage,
					EventType: k.EventType, Class: k.Class, Minute: minute, Count: c})
				n -= c
			}
		case tallyCallOK, tallyCallFailed:
			ck := candKey{k.Migration, k.Partner, k.Stage}
			if cand[ck] == nil {
				cand[ck] = &calls{}
			}
			if k.Kind == tallyCallOK {
				cand[ck].ok += n
			} else {
				cand[ck].failed += n
			}
		default:
			dropped += n
		}
	}
	for k, c := range cand {
		for c.ok > 0 || c.failed > 0 {
			failed := min(c.failed, domain.MaxReportedCount)
			ok := min(c.ok, domain.MaxReportedCount-failed)
			b.Candidate = append(b.Candidate, domain.CandidateCount{Migration: k.migration, Partner: k.partner, Stage: k.stage,
				Calls: ok + failed, Errors: failed})
			c.ok, c.failed = c.ok-ok, c.failed-failed
		}
	}
	return b, dropped
}
