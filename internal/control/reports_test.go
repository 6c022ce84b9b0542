package control_test

import (
	"math"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/boltstore/bolttest"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// newStatsEnv is an env whose service tallies its comparison statistics
// from its own store, as serve wires it.
func newStatsEnv(t *testing.T) *env {
	t.Helper()
	store := bolttest.Open(t)
	c := newClock()
	svc, err := control.New(ctx, store, control.Options{Now: c.Now, Logger: quietLogger()})
	if err != nil {
		t.Fatalf("control.New: %v", err)
	}
	e := &env{svc: svc, store: store, clock: c}
	e.migration(t, "m")
	e.partner(t, "acme")
	e.moveTo(t, "m", "acme", domain.StageShadow)
	return e
}

func (e *env) count(class domain.Class, n uint64) domain.ComparisonCount {
	return domain.ComparisonCount{Migration: "m", Partner: "acme", Stage: domain.StageShadow, EventType: "ticket", Class: class,
		Minute: e.clock.Now().Truncate(time.Minute), Count: n}
}

func (e *env) counts(t *testing.T) map[domain.Class]uint64 {
	t.Helper()
	c, err := e.svc.Comparisons(ctx, "m", "acme")
	if err != nil {
		t.Fatalf("Comparisons: %v", err)
	}
	return c.Counts["ticket"]
}

func (e *env) candidate(t *testing.T) (calls, errs uint64) {
	t.Helper()
	ms, _ := e.svc.State().Migration("m")
	p, _ := e.svc.State().Partner("acme")
	c, err := e.svc.StageCounts(ctx, "m", ms.StageOf(p))
	if err != nil {
		t.Fatalf("StageCounts: %v", err)
	}
	return c.CandidateCalls, c.CandidateErrors
}

// A report with one row out of range is refused whole: the wrapping count
// of the incident would have turned 3 type_mismatches into 0.
func TestReportOutOfRangeIsRefusedWhole(t *testing.T) {
	e := newStatsEnv(t)
	if _, err := e.svc.IngestReport(ctx, wire.Report{Router: "r0",
		Comparisons: []domain.ComparisonCount{e.count(domain.ClassTypeMismatch, 3)},
		Candidate:   []domain.CandidateCount{{Migration: "m", Partner: "acme", Stage: domain.StageShadow, Calls: 3}}}); err != nil {
		t.Fatalf("a valid report: %v", err)
	}
	now := e.clock.Now()
	cand := func(calls, errs uint64) domain.CandidateCount {
		return domain.CandidateCount{Migration: "m", Partner: "acme", Stage: domain.StageShadow, Calls: calls, Errors: errs}
	}
	at := func(c domain.ComparisonCount, minute time.Time) domain.ComparisonCount { c.Minute = minute; return c }
	tests := []struct {
		name        string
		comparisons []domain.ComparisonCount
		candidate   []domain.CandidateCount
		id          *wire.ReportID
	}{
		{"a count that wraps the counter", []domain.ComparisonCount{e.count(domain.ClassTypeMismatch, 18446744073709551613)}, nil, nil},
		{"a count just above the bound", []domain.ComparisonCount{e.count(domain.ClassEqual, domain.MaxReportedCount+1)}, nil, nil},
		{"calls above the bound", nil, []domain.CandidateCount{cand(math.MaxUint64, 0)}, nil},
		{"errors above calls", nil, []domain.CandidateCount{cand(1, 2)}, nil},
		{"a minute too far ahead", []domain.ComparisonCount{at(e.count(domain.ClassEqual, 1), now.Add(domain.MaxReportAhead+time.Minute))}, nil, nil},
		{"a minute older than the retention", []domain.ComparisonCount{at(e.count(domain.ClassEqual, 1), now.Add(-domain.ComparisonRetention-time.Minute))}, nil, nil},
		{"a zero minute", []domain.ComparisonCount{at(e.count(domain.ClassEqual, 1), time.Time{})}, nil, nil},
		{"an unknown class", []domain.ComparisonCount{e.count("weird", 1)}, nil, nil},
		{"an unknown candidate stage", nil, []domain.CandidateCount{{Migration: "m", Partner: "acme", Stage: "nowhere", Calls: 1}}, nil},
		{"a report id without an epoch", []domain.ComparisonCount{e.count(domain.ClassEqual, 1)}, nil, &wire.ReportID{Seq: 1}},
		{"a report id with seq 0", []domain.ComparisonCount{e.count(domain.ClassEqual, 1)}, nil, &wire.ReportID{Epoch: "j1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A valid row beside the bad one: nothing of the report may land.
			r := wire.Report{Router: "r-bad", SnapshotVersion: 1, ReportID: tt.id,
				Comparisons: append([]domain.ComparisonCount{e.count(domain.ClassEqual, 5)}, tt.comparisons...),
				Candidate:   append([]domain.CandidateCount{cand(5, 0)}, tt.candidate...)}
			_, err := e.svc.IngestReport(ctx, r)
			wantCode(t, err, domain.CodeInvalid)
			if got := e.counts(t); got[domain.ClassTypeMismatch] != 3 || got[domain.ClassEqual] != 0 {
				t.Errorf("counts = %v, want type_mismatch 3 and nothing else", got)
			}
			if calls, errs := e.candidate(t); calls != 3 || errs != 0 {
				t.Errorf("candidate = %d calls, %d errors; want 3, 0", calls, errs)
			}
			for _, rt := range e.svc.Routers() {
				if rt.ID == "r-bad" {
					t.Errorf("the refused report's router was recorded: %+v", rt)
				}
			}
		})
	}
}

// The bounds themselves are accepted.
func TestReportAtTheBoundsIsAccepted(t *testing.T) {
	e := newStatsEnv(t)
	now := e.clock.Now()
	edge := e.count(domain.ClassEqual, domain.MaxReportedCount)
	ahead := e.count(domain.ClassEqual, 1)
	ahead.Minute = now.Add(domain.MaxReportAhead)
	_, err := e.svc.IngestReport(ctx, wire.Report{Router: "r1",
		Comparisons: []domain.ComparisonCount{edge, ahead},
		Candidate:   []domain.CandidateCount{{Migration: "m", Partner: "acme", Stage: domain.StageShadow, Calls: domain.MaxReportedCount, Errors: domain.MaxReportedCount}}})
	if err != nil {
		t.Fatalf("IngestReport: %v", err)
	}
	if got, want := e.counts(t)[domain.ClassEqual], uint64(domain.MaxReportedCount+1); got != want {
		t.Errorf("equal = %d, want %d", got, want)
	}
}

// A report sent again (its answer was lost) is answered as a duplicate and
// not counted twice; another journal's epoch is a sequence of its own.
func TestReportIDIsCountedOnce(t *testing.T) {
	e := newStatsEnv(t)
	report := func(router, epoch string, seq uint64) wire.Report {
		return wire.Report{Router: router, ReportID: &wire.ReportID{Epoch: epoch, Seq: seq},
			Comparisons: []domain.ComparisonCount{e.count(domain.ClassEqual, 2)},
			Candidate:   []domain.CandidateCount{{Migration: "m", Partner: "acme", Stage: domain.StageShadow, Calls: 2}}}
	}
	tests := []struct {
		name          string
		report        wire.Report
		wantDuplicate bool
		wantEqual     uint64
	}{
		{"first report", report("r1", "j1", 1), false, 2},
		{"the same report again", report("r1", "j1", 1), true, 2},
		{"the next report", report("r1", "j1", 2), false, 4},
		{"an older report again", report("r1", "j1", 1), true, 4},
		{"a new journal starts its own sequence", report("r1", "j2", 1), false, 6},
		{"another router's seq 1", report("r2", "j1", 1), false, 8},
		{"that router's report again", report("r2", "j1", 1), true, 8},
	}
	for _, tt := range tests {
		dup, err := e.svc.IngestReport(ctx, tt.report)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if dup != tt.wantDuplicate {
			t.Errorf("%s: duplicate = %v, want %v", tt.name, dup, tt.wantDuplicate)
		}
		if got := e.counts(t)[domain.ClassEqual]; got != tt.wantEqual {
			t.Errorf("%s: equal = %d, want %d", tt.name, got, tt.wantEqual)
		}
		if calls, _ := e.candidate(t); calls != tt.wantEqual {
			t.Errorf("%s: candidate calls = %d, want %d", tt.name, calls, tt.wantEqual)
		}
	}
}
