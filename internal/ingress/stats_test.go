package ingress

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
)

// However large the events and effects of the mismatches a router samples,
// the samples of one report stay within maxReportSampleBytes (so the report
// within the control service's 1 MiB), each with its event.
func TestMismatchSamplesStayWithinTheBound(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	r := route{migration: "m", pipeline: "legacy", shadow: "new", stage: domain.StageShadow}
	bigBody, _ := json.Marshal(map[string]any{"data": map[string]any{"notes": strings.Repeat("\x01\"", 300<<10)}})
	bigEffects, _ := json.Marshal([]map[string]any{{"kind": "ticket", "key": "1", "op": "upsert", "fields": map[string]any{"notes": strings.Repeat("x", 8<<10)}}})
	tests := []struct {
		name     string
		payload  []byte
		diff     int // bytes
		effects  json.RawMessage
		samples  int
		wantKept int // -1: some, not all
	}{
		{"small samples: up to the count bound", []byte(`{"data":{"id":"1"}}`), 1 << 10, json.RawMessage(`[]`), maxReportMismatches + 10, maxReportMismatches},
		{"large samples: up to the byte bound", bigBody, 4 << 10, bigEffects, 60, -1},
		{"a sample larger than the bound alone: dropped", bigBody, 4 << 10, json.RawMessage(`["` + strings.Repeat("y", maxReportSampleBytes) + `"]`), 3, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newStats()
			for range tt.samples {
				ev := journal.Event{ID: "evt_1", Partner: "acme", Type: "ticket", Action: "updated", EntityID: "1", Payload: tt.payload}
				s.comparison(ev, r, domain.ClassValueDiff, strings.Repeat("d", tt.diff), tt.effects, tt.effects, at)
			}
			b := s.take()
			if tt.wantKept >= 0 && len(b.Mismatches) != tt.wantKept {
				t.Errorf("kept %d samples, want %d", len(b.Mismatches), tt.wantKept)
			}
			if tt.wantKept < 0 && (len(b.Mismatches) == 0 || len(b.Mismatches) == tt.samples) {
				t.Errorf("kept %d samples, want some, fewer than %d", len(b.Mismatches), tt.samples)
			}
			enc, err := json.Marshal(b.Mismatches)
			if err != nil {
				t.Fatal(err)
			}
			if len(enc) > maxReportSampleBytes+len(b.Mismatches) { // a comma between samples
				t.Errorf("samples encode to %d bytes, want at most %d", len(enc), maxReportSampleBytes)
			}
			for _, m := range b.Mismatches {
				if m.Event == nil || m.Event.EntityID != "1" || m.Event.BodyBytes != len(tt.payload) {
					t.Fatalf("sample's event = %+v, want entity 1 with a body of %d bytes", m.Event, len(tt.payload))
				}
			}
			// What could not be sent goes back within the same bounds.
			s.giveBack(b)
			s.giveBack(b)
			if again := s.take(); len(again.Mismatches) != len(b.Mismatches) {
				t.Errorf("after giving back twice, %d samples, want %d", len(again.Mismatches), len(b.Mismatches))
			}
		})
	}
}

// Noise samples get at most half of a report's bytes, as of its count:
// large noisy effects sampled first leave the other half to mismatches.
func TestNoiseSamplesLeaveHalfTheBytesToMismatches(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	r := route{migration: "m", pipeline: "legacy", shadow: "new", stage: domain.StageShadow}
	effects, _ := json.Marshal([]map[string]any{{"kind": "ticket", "key": "1", "op": "upsert", "fields": map[string]any{"notes": strings.Repeat("x", 10<<10)}}})
	ev := journal.Event{ID: "evt_1", Partner: "acme", Type: "ticket", Action: "updated", EntityID: "1", Payload: []byte(`{"data":{"id":"1"}}`)}
	s := newStats()
	for range 60 { // 60 samples of over 20 KiB: far more than the bound
		s.comparison(ev, r, domain.ClassNoise, "d", effects, effects, at)
	}
	for range 60 {
		s.comparison(ev, r, domain.ClassValueDiff, "d", effects, effects, at)
	}
	bytesOf := func(ms []domain.Mismatch, noise bool) (n, size int) {
		for _, m := range ms {
			if (m.Class == domain.ClassNoise) == noise {
				b, _ := json.Marshal(m)
				n, size = n+1, len(b)+size
			}
		}
		return n, size
	}
	b := s.take()
	noise, noiseBytes := bytesOf(b.Mismatches, true)
	mismatches, mismatchBytes := bytesOf(b.Mismatches, false)
	one := mismatchBytes / max(mismatches, 1)
	if noiseBytes > maxReportSampleBytes/2 {
		t.Errorf("%d noise samples of %d bytes, want at most half of %d", noise, noiseBytes, maxReportSampleBytes)
	}
	if mismatchBytes < maxReportSampleBytes/2-one {
		t.Errorf("%d mismatch samples of %d bytes after %d noise samples of %d: want half of %d to them", mismatches, mismatchBytes, noise, noiseBytes, maxReportSampleBytes)
	}
}

// For the guard, a partner on the new pipeline whose comparison was shed
// (skipped) is no news: no report is asked for at once, and the event is
// not the evidence; a mismatch is both.
func TestAShedComparisonIsNoNewsForTheGuard(t *testing.T) {
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	r := route{migration: "m", pipeline: "new", shadow: "legacy", stage: domain.StageNew}
	urgent := func(s *stats) bool {
		select {
		case <-s.urgent:
			return true
		default:
			return false
		}
	}
	s := newStats()
	s.comparison(journal.Event{ID: "evt_equal", Partner: "acme"}, r, domain.ClassEqual, "", nil, nil, at)
	s.comparison(journal.Event{ID: "evt_shed", Partner: "acme"}, r, domain.ClassSkipped, "shed", nil, nil, at)
	if urgent(s) {
		t.Error("a shed comparison asked for a report at once")
	}
	s.comparison(journal.Event{ID: "evt_diff", Partner: "acme"}, r, domain.ClassValueDiff, "d", nil, nil, at)
	if !urgent(s) {
		t.Error("a mismatch did not ask for a report at once")
	}
	g := s.take().Guard
	if len(g) != 1 || g[0].EventID != "evt_diff" || len(g[0].Outcomes) != 3 {
		t.Errorf("guard samples = %+v, want one with the mismatch as evidence and 3 outcomes", g)
	}
}
