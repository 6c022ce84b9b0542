package ingress

import (
	"encoding/json"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
)

// Bounds on what one report carries, so a router that cannot reach the
// control service holds a bounded amount.
const (
	maxReportMismatches = 200
	maxGuardOutcomes    = 1000
)

type countKey struct {
	migration, partner string
	stage              domain.Stage
	eventType          string
	class              domain.Class
	minute             time.Time
}

type candKey struct {
	migration, partner string
	stage              domain.Stage
}

// stats gathers what the router compared until the next report takes it.
type stats struct {
	mu         sync.Mutex
	counts     map[countKey]uint64
	candidate  map[candKey]*domain.CandidateCount
	mismatches []domain.Mismatch
	guard      map[candKey]*domain.GuardSample
	// urgent asks the reporter to send now: a partner on the new pipeline
	// just mismatched or failed, and the guard should judge it at once.
	urgent chan struct{}
}

func newStats() *stats {
	return &stats{counts: map[countKey]uint64{}, candidate: map[candKey]*domain.CandidateCount{}, guard: map[candKey]*domain.GuardSample{},
		urgent: make(chan struct{}, 1)}
}

// comparison records one comparison of ev made under route r.
func (s *stats) comparison(ev journal.Event, r route, class domain.Class, diff string, primary, shadow json.RawMessage, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.counts[countKey{r.migration, ev.Partner, r.stage, ev.Type, class, ev.ReceivedAt.Truncate(time.Minute)}]++
	if class.Mismatched() && len(s.mismatches) < maxReportMismatches {
		s.mismatches = append(s.mismatches, domain.Mismatch{Migration: r.migration, Partner: ev.Partner, EventID: ev.ID,
			EventType: ev.Type, Class: class, Diff: diff, Primary: primary, Shadow: shadow, At: at})
	}
	if r.pipeline == "new" {
		s.outcome(r, ev, string(class))
	}
}

// candidateCall counts a call to the new pipeline.
func (s *stats) candidateCall(ev journal.Event, r route, failed bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	k := candKey{r.migration, ev.Partner, r.stage}
	c := s.candidate[k]
	if c == nil {
		c = &domain.CandidateCount{Migration: r.migration, Partner: ev.Partner, Stage: r.stage}
		s.candidate[k] = c
	}
	c.Calls++
	if failed {
		c.Errors++
		if r.pipeline == "new" {
			s.outcome(r, ev, domain.OutcomeError)
		}
	}
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
	if o != string(domain.ClassEqual) {
		select {
		case s.urgent <- struct{}{}:
		default:
		}
	}
	if g.EventID == "" || (o != string(domain.ClassEqual) && o != domain.OutcomeError) {
		g.EventID = ev.ID // a mismatching event is the better evidence
	}
}

// reportBody is what a report carries besides the router's id and version.
type reportBody struct {
	Comparisons []domain.ComparisonCount `json:"comparisons,omitempty"`
	Candidate   []domain.CandidateCount  `json:"candidate,omitempty"`
	Mismatches  []domain.Mismatch        `json:"mismatches,omitempty"`
	Guard       []domain.GuardSample     `json:"guard,omitempty"`
}

func (b reportBody) empty() bool {
	return len(b.Comparisons)+len(b.Candidate)+len(b.Mismatches)+len(b.Guard) == 0
}

// take returns what was gathered and starts afresh.
func (s *stats) take() reportBody {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b reportBody
	for k, n := range s.counts {
		b.Comparisons = append(b.Comparisons, domain.ComparisonCount{Migration: k.migration, Partner: k.partner, Stage: k.stage,
			EventType: k.eventType, Class: k.class, Minute: k.minute, Count: n})
	}
	for _, c := range s.candidate {
		b.Candidate = append(b.Candidate, *c)
	}
	for _, g := range s.guard {
		b.Guard = append(b.Guard, *g)
	}
	b.Mismatches = s.mismatches
	s.counts, s.candidate, s.guard, s.mismatches = map[countKey]uint64{}, map[candKey]*domain.CandidateCount{}, map[candKey]*domain.GuardSample{}, nil
	return b
}

// giveBack merges a report that could not be sent into what is gathered,
// so the next report carries it.
func (s *stats) giveBack(b reportBody) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range b.Comparisons {
		s.counts[countKey{c.Migration, c.Partner, c.Stage, c.EventType, c.Class, c.Minute}] += c.Count
	}
	for _, c := range b.Candidate {
		k := candKey{c.Migration, c.Partner, c.Stage}
		if old := s.candidate[k]; old != nil {
			old.Calls += c.Calls
			old.Errors += c.Errors
		} else {
			cc := c
			s.candidate[k] = &cc
		}
	}
	if room := maxReportMismatches - len(s.mismatches); room > 0 {
		s.mismatches = append(s.mismatches, b.Mismatches[:min(room, len(b.Mismatches))]...)
	}
	// Guard samples are only worth sending fresh: the partner has moved on
	// or the next events will tell the same.
}
