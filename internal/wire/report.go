package wire

import (
	"encoding/json"
	"fmt"
	"math/bits"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Report is the body of POST /v1/reports: what a router tells the control
// service. The ingress router sends all of it; a flags provider sends only
// Router, SnapshotVersion, StoreID and Refused. Everything but Router and
// SnapshotVersion is left out when empty, so that a control service that
// predates a field never sees it from a router that has nothing to say.
type Report struct {
	Router          string `json:"router"`
	SnapshotVersion uint64 `json:"snapshotVersion"`
	// StoreID is the store of the snapshot the router holds; empty from
	// routers that predate store ids.
	StoreID string `json:"storeId,omitempty"`
	// Refused is the version of this store the router last refused
	// because it holds a later one: the store went back.
	Refused uint64 `json:"refused,omitempty"`
	// Journal is the router's journal figures, free-form: the control
	// service stores them verbatim and only checks that they are an
	// object.
	Journal json.RawMessage `json:"journal,omitempty"`
	// Replays is the progress of the replays the router runs.
	Replays []domain.ReplayJob `json:"replays,omitempty"`
	// ReportID, when set, makes the counts idempotent: a report whose id
	// was applied before is answered without counting them again.
	ReportID    *ReportID                `json:"reportId,omitempty"`
	Comparisons []domain.ComparisonCount `json:"comparisons,omitempty"`
	Candidate   []domain.CandidateCount  `json:"candidate,omitempty"`
	Mismatches  []domain.Mismatch        `json:"mismatches,omitempty"`
	Guard       []domain.GuardSample     `json:"guard,omitempty"`
	// Noise is how many times field paths differed between two runs of
	// the legacy pipeline since the last report, and, in rows with the
	// path domain.NoiseProbesPath, how many probes there were per
	// migration, partner and event type: best-effort counts, outside the
	// reportId's exactly-once accounting, at most MaxReportNoise rows.
	Noise []domain.NoiseObservation `json:"noise,omitempty"`
}

// MaxReportNoise bounds a report's noise observations.
const MaxReportNoise = 1000

// ReportID identifies a router's report of counts, so that a report sent
// again after its answer was lost is not counted twice. Epoch names the
// router's journal, whose sequence it is: a new journal starts anew.
type ReportID struct {
	Epoch string `json:"epoch"`
	Seq   uint64 `json:"seq"`
}

// Validate checks a report before anything of it is applied: known classes
// and stages, each count at most domain.MaxReportedCount, a candidate's
// errors at most its calls, minutes neither more than
// domain.MaxReportAhead past now nor older than domain.ComparisonRetention,
// counts whose sum fits a counter, and a ReportID with an epoch of 1 to 64
// characters and a seq above 0. It returns a domain.CodeInvalid error that
// names the first bad row. The control service refuses a report that fails
// it; a router splits its counts so that its reports pass it.
func (r Report) Validate(now time.Time) error {
	var total uint64
	sum := func(n uint64) bool {
		var carry uint64
		total, carry = bits.Add64(total, n, 0)
		return carry == 0
	}
	for i, c := range r.Comparisons {
		bad := ""
		switch {
		case !c.Class.Valid() || !c.Stage.Valid():
			bad = fmt.Sprintf("class %q and stage %q: unknown class or stage", c.Class, c.Stage)
		case c.Count > domain.MaxReportedCount:
			bad = fmt.Sprintf("count %d is above %d", c.Count, domain.MaxReportedCount)
		case c.Minute.After(now.Add(domain.MaxReportAhead)):
			bad = fmt.Sprintf("minute %s is more than %s ahead of the control service's clock", c.Minute.UTC().Format(time.RFC3339), domain.MaxReportAhead)
		case c.Minute.Before(now.Add(-domain.ComparisonRetention)):
			bad = fmt.Sprintf("minute %s is older than the %s kept", c.Minute.UTC().Format(time.RFC3339), domain.ComparisonRetention)
		case !sum(c.Count):
			bad = "the report's counts overflow"
		}
		if bad != "" {
			return domain.Errorf(domain.CodeInvalid, "comparisons[%d]: %s; nothing of this report was applied", i, bad)
		}
	}
	for i, c := range r.Candidate {
		bad := ""
		switch {
		case !c.Stage.Valid():
			bad = fmt.Sprintf("unknown stage %q", c.Stage)
		case c.Calls > domain.MaxReportedCount || c.Errors > domain.MaxReportedCount:
			bad = fmt.Sprintf("calls %d or errors %d above %d", c.Calls, c.Errors, domain.MaxReportedCount)
		case c.Errors > c.Calls:
			bad = fmt.Sprintf("errors %d are more than calls %d", c.Errors, c.Calls)
		case !sum(c.Calls):
			bad = "the report's counts overflow"
		}
		if bad != "" {
			return domain.Errorf(domain.CodeInvalid, "candidate[%d]: %s; nothing of this report was applied", i, bad)
		}
	}
	if len(r.Noise) > MaxReportNoise {
		return domain.Errorf(domain.CodeInvalid, "noise: %d observations, more than %d; nothing of this report was applied", len(r.Noise), MaxReportNoise)
	}
	for i, o := range r.Noise {
		if o.Count == 0 || o.Count > domain.MaxReportedCount || o.Migration == "" || o.Partner == "" || o.EventType == "" ||
			(o.Path != domain.NoiseProbesPath && (domain.NoisePin{EventType: o.EventType, Path: o.Path, As: domain.PinNoise}).Validate() != nil) ||
			(o.Path == domain.NoiseProbesPath && (o.EventType == "" || len(o.EventType) > 200)) {
			return domain.Errorf(domain.CodeInvalid, "noise[%d]: a migration, a partner, an event type of at most 200 characters, a path such as ticket:fields.processedAt (or probes) and a count from 1 to %d are required; nothing of this report was applied", i, domain.MaxReportedCount)
		}
	}
	if id := r.ReportID; id != nil && (id.Seq == 0 || id.Epoch == "" || len(id.Epoch) > 64) {
		return domain.Errorf(domain.CodeInvalid, "reportId needs an epoch of 1 to 64 characters and a seq above 0")
	}
	return nil
}
