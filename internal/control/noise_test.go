package control_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
	"github.com/switchbackhq/switchback/internal/wire"
)

func noiseObs(partner, path string, n uint64) domain.NoiseObservation {
	return domain.NoiseObservation{Migration: "m", Partner: partner, EventType: "ticket", Path: path, Count: n}
}

// Routers' observations add up across reports and routers; a path is
// learned at domain.NoiseLearnedAfter and in NoiseMinShare of the probes; observations of unknown partners
// or migrations are dropped; routers get the learned paths only.
func TestNoiseAggregatedFromReports(t *testing.T) {
	e := newStatsEnv(t)
	for _, r := range []wire.Report{
		{Router: "r1", Noise: []domain.NoiseObservation{noiseObs("acme", domain.NoiseProbesPath, 3), noiseObs("acme", "ticket:fields.processedAt", 2),
			noiseObs("acme", "ticket:fields.once", 1)}},
		{Router: "r2", Noise: []domain.NoiseObservation{noiseObs("acme", domain.NoiseProbesPath, 2), noiseObs("acme", "ticket:fields.processedAt", 1),
			noiseObs("nobody", "ticket:fields.x", 5),
			{Migration: "gone", Partner: "acme", EventType: "ticket", Path: "ticket:fields.x", Count: 5}}},
	} {
		if _, err := e.svc.IngestReport(ctx, r); err != nil {
			t.Fatalf("IngestReport: %v", err)
		}
	}
	paths, err := e.svc.Noise(ctx, "m", "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.NoisePath{
		{EventType: "ticket", Path: "ticket:fields.once", Count: 1, Probes: 5},
		{EventType: "ticket", Path: "ticket:fields.processedAt", Count: 3, Probes: 5, Learned: true, Noise: true},
	}
	if len(paths) != len(want) || paths[0] != want[0] || paths[1] != want[1] {
		t.Errorf("Noise = %+v, want %+v", paths, want)
	}
	learned, err := e.svc.LearnedNoise(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(learned) != 2 || learned[0] != noiseObs("acme", domain.NoiseProbesPath, 5) || learned[1] != noiseObs("acme", "ticket:fields.processedAt", 3) {
		t.Errorf("LearnedNoise = %+v, want acme's probes and processedAt only", learned)
	}

	// More probes where processedAt did not differ: 3 in 7 is under
	// NoiseMinShare, so no longer learned.
	if _, err := e.svc.IngestReport(ctx, wire.Report{Router: "r1", Noise: []domain.NoiseObservation{noiseObs("acme", domain.NoiseProbesPath, 2)}}); err != nil {
		t.Fatal(err)
	}
	if paths, err = e.svc.Noise(ctx, "m", "acme"); err != nil || len(paths) != 2 || paths[1].Learned || paths[1].Noise || paths[1].Probes != 7 {
		t.Errorf("after 7 probes, Noise = %+v, %v; want processedAt seen 3 times in 7 probes, not learned", paths, err)
	}
	if learned, err = e.svc.LearnedNoise(ctx); err != nil || len(learned) != 0 {
		t.Errorf("after 7 probes, LearnedNoise = %+v, %v; want none", learned, err)
	}
	if _, err := e.svc.Noise(ctx, "m", "nobody"); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("Noise of an unknown partner = %v, want not_found", err)
	}
	bad := wire.Report{Router: "r1", Noise: []domain.NoiseObservation{noiseObs("acme", "kind", 1)}}
	if _, err := e.svc.IngestReport(ctx, bad); domain.ErrorCode(err) != domain.CodeInvalid {
		t.Errorf("a report with a path outside fields = %v, want invalid", err)
	}
}

// Pins are compare rules: each is a new snapshot version and an audited
// change, a PUT of the migration keeps them, and the list shows pinned
// paths whether seen or not.
func TestPinNoise(t *testing.T) {
	e := newStatsEnv(t)
	if _, err := e.svc.IngestReport(ctx, wire.Report{Router: "r1", Noise: []domain.NoiseObservation{noiseObs("acme", domain.NoiseProbesPath, 5), noiseObs("acme", "ticket:fields.requestId", 5)}}); err != nil {
		t.Fatal(err)
	}
	v := e.svc.State().Version
	if _, err := e.svc.PinNoise(ctx, ops, "m", "ticket", "ticket:fields.requestId", domain.PinSignal); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.PinNoise(ctx, ops, "m", "ticket", "ticket:fields.status", domain.PinNoise); err != nil {
		t.Fatal(err)
	}
	if got := e.svc.State().Version; got != v+2 {
		t.Errorf("version = %d, want %d: a pin changes the snapshot", got, v+2)
	}
	// Pinning again as it is changes nothing.
	if _, err := e.svc.PinNoise(ctx, ops, "m", "ticket", "ticket:fields.status", domain.PinNoise); err != nil || e.svc.State().Version != v+2 {
		t.Errorf("pinning again: %v, version %d; want no change", err, e.svc.State().Version)
	}
	paths, err := e.svc.Noise(ctx, "m", "acme")
	if err != nil {
		t.Fatal(err)
	}
	want := []domain.NoisePath{
		{EventType: "ticket", Path: "ticket:fields.requestId", Count: 5, Probes: 5, Learned: true, Pin: domain.PinSignal},
		{EventType: "ticket", Path: "ticket:fields.status", Probes: 5, Pin: domain.PinNoise, Noise: true},
	}
	if len(paths) != 2 || paths[0] != want[0] || paths[1] != want[1] {
		t.Errorf("Noise = %+v, want %+v", paths, want)
	}
	// A PUT of the migration keeps the pins; the snapshot carries them.
	if _, _, err := e.svc.PutMigration(ctx, admin, migration("m")); err != nil {
		t.Fatal(err)
	}
	if got := e.svc.State().Migrations["m"].Compare.NoisePins; len(got) != 2 {
		t.Errorf("pins after a PUT = %+v, want both kept", got)
	}
	entries, err := e.svc.AuditLog(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	pins := 0
	for _, en := range entries {
		if en.Action == "noise.pin" && en.Actor == "ops" && en.Reason == ops.Reason {
			pins++
		}
	}
	if pins != 2 {
		t.Errorf("%d noise.pin audit entries by ops, want 2", pins)
	}
	if _, err := e.svc.PinNoise(ctx, ops, "m", "ticket", "ticket:fields.status", ""); err != nil {
		t.Fatal(err)
	}
	if got := e.svc.State().Migrations["m"].Compare.NoisePins; len(got) != 1 || got[0].Path != "ticket:fields.requestId" {
		t.Errorf("pins after unpinning fields.status = %+v", got)
	}
	for _, bad := range []struct{ typ, path string }{{"ticket", "kind"}, {"", "ticket:fields.x"}} {
		if _, err := e.svc.PinNoise(ctx, ops, "m", bad.typ, bad.path, domain.PinNoise); domain.ErrorCode(err) != domain.CodeInvalid {
			t.Errorf("PinNoise(%q, %q) = %v, want invalid", bad.typ, bad.path, err)
		}
	}
	if _, err := e.svc.PinNoise(ctx, ops, "nope", "ticket", "ticket:fields.x", domain.PinNoise); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("PinNoise on an unknown migration = %v, want not_found", err)
	}
}

// Noise counts as compared, never as mismatched: the gates judge a partner
// whose only differences are noise as clean.
func TestNoiseIsComparedNotMismatched(t *testing.T) {
	c := gate.Tally(domain.StageRows{Comparisons: []domain.MinuteCount{
		{EventType: "ticket", Class: domain.ClassNoise, Count: 300},
		{EventType: "ticket", Class: domain.ClassEqual, Count: 10},
	}, CandidateCalls: 310})
	if c.Compared() != 310 || c.Mismatched() != 0 {
		t.Errorf("compared %d, mismatched %d; want 310 and 0", c.Compared(), c.Mismatched())
	}
}

// Noise samples are shown, but never in place of a mismatch: not even
// when noise of many event types, each within the store's bound per type
// and class, outnumbers what a first read would take.
func TestNoiseSamplesNeverHideMismatches(t *testing.T) {
	e := newStatsEnv(t)
	at := e.clock.Now()
	const types, perType = 12, 20 // 240 noise samples, all newer than the mismatch
	for typ := range types {
		var samples []domain.Mismatch
		for i := range perType {
			samples = append(samples, domain.Mismatch{Migration: "m", Partner: "acme", EventID: fmt.Sprintf("noise-%d-%d", typ, i),
				EventType: fmt.Sprintf("type-%02d", typ), Class: domain.ClassNoise, At: at.Add(time.Duration(2+typ*perType+i) * time.Second)})
		}
		if _, err := e.svc.IngestReport(ctx, wire.Report{Router: "r1", Mismatches: samples}); err != nil {
			t.Fatal(err)
		}
	}
	old := domain.Mismatch{Migration: "m", Partner: "acme", EventID: "old-mismatch", EventType: "ticket", Class: domain.ClassTypeMismatch, At: at.Add(time.Second)}
	if _, err := e.svc.IngestReport(ctx, wire.Report{Router: "r1", Mismatches: []domain.Mismatch{old}}); err != nil {
		t.Fatal(err)
	}
	c, err := e.svc.Comparisons(ctx, "m", "acme")
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Mismatches) != 50 || c.Mismatches[0].EventID != "old-mismatch" || c.Mismatches[1].Class != domain.ClassNoise {
		t.Errorf("%d samples, first %+v; want 50, the type_mismatch first, then noise", len(c.Mismatches), c.Mismatches[0])
	}
}
