package domain

import (
	"math"
	"testing"
)

func TestNoiseSampleRate(t *testing.T) {
	rate := func(f float64) *float64 { return &f }
	tests := []struct {
		name string
		rate *float64
		want float64
		ok   bool
	}{
		{"absent: the default", nil, DefaultNoiseSampleRate, true},
		{"off", rate(0), 0, true},
		{"every event", rate(1), 1, true},
		{"negative", rate(-0.1), -0.1, false},
		{"above one", rate(1.5), 1.5, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := validMigration()
			m.Compare.NoiseSampleRate = tt.rate
			if got := m.Compare.NoiseRate(); got != tt.want {
				t.Errorf("NoiseRate() = %v, want %v", got, tt.want)
			}
			if err := m.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

func TestNoisePinValidate(t *testing.T) {
	tests := []struct {
		name string
		pin  NoisePin
		ok   bool
	}{
		{"noise", NoisePin{EventType: "ticket", Path: "ticket:fields.processedAt", As: PinNoise}, true},
		{"another kind of effect", NoisePin{EventType: "ticket", Path: "contact:fields.id", As: PinNoise}, true},
		{"a field inside elements", NoisePin{EventType: "ticket", Path: "ticket:fields.lines[].id", As: PinSignal}, true},
		{"a quoted name", NoisePin{EventType: "ticket", Path: `ticket:fields["a b"]`, As: PinNoise}, true},
		{"the whole fields", NoisePin{EventType: "ticket", Path: "ticket:fields", As: PinNoise}, true},
		{"no kind", NoisePin{EventType: "ticket", Path: "fields.processedAt", As: PinNoise}, false},
		{"an empty kind", NoisePin{EventType: "ticket", Path: ":fields.processedAt", As: PinNoise}, false},
		{"a whole list element", NoisePin{EventType: "ticket", Path: "ticket:fields.lines[]", As: PinNoise}, false},
		{"a whole element of a nested list", NoisePin{EventType: "ticket", Path: "ticket:fields.grid[].row[]", As: PinNoise}, false},
		{"unknown decision", NoisePin{EventType: "ticket", Path: "ticket:fields.x", As: "maybe"}, false},
		{"no event type", NoisePin{Path: "ticket:fields.x", As: PinNoise}, false},
		{"not under fields", NoisePin{EventType: "ticket", Path: "ticket:kind", As: PinNoise}, false},
		{"not a field", NoisePin{EventType: "ticket", Path: "ticket:fieldsx", As: PinNoise}, false},
		{"an empty name", NoisePin{EventType: "ticket", Path: "ticket:fields..x", As: PinNoise}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.pin.Validate(); (err == nil) != tt.ok {
				t.Errorf("Validate() = %v, want ok %v", err, tt.ok)
			}
		})
	}
	m := validMigration()
	p := NoisePin{EventType: "ticket", Path: "ticket:fields.x", As: PinNoise}
	m.Compare.NoisePins = []NoisePin{p, p}
	if err := m.Validate(); ErrorCode(err) != CodeInvalid {
		t.Errorf("a path pinned twice: Validate() = %v, want invalid", err)
	}
}

func TestIsNoise(t *testing.T) {
	tests := []struct {
		name          string
		count, probes uint64
		pin           Pin
		want          bool
	}{
		{"never seen", 0, 0, "", false},
		{"seen too few times", NoiseLearnedAfter - 1, NoiseLearnedAfter - 1, "", false},
		{"seen in every probe", NoiseLearnedAfter, NoiseLearnedAfter, "", true},
		{"in half the probes", 50, 100, "", true},
		{"in less than half", 49, 100, "", false},
		{"a rare tie-break, seen often", 60, 6000, "", false},
		{"probes lost: not trusted", 5, 0, "", false},
		{"saturated", math.MaxUint64, math.MaxUint64, "", true},
		{"pinned noise, never seen", 0, 0, PinNoise, true},
		{"pinned noise, rare", 1, 1000, PinNoise, true},
		{"pinned signal, learned", 1000, 1000, PinSignal, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsNoise(tt.count, tt.probes, tt.pin); got != tt.want {
				t.Errorf("IsNoise(%d, %d, %q) = %v, want %v", tt.count, tt.probes, tt.pin, got, tt.want)
			}
		})
	}
}

// Noise is no mismatch, so no gate may hold it to zero tolerance.
func TestNoiseIsNeverZeroTolerance(t *testing.T) {
	g := DefaultGates()
	g.ZeroTolerance = []Class{ClassNoise}
	if err := g.Validate(); ErrorCode(err) != CodeInvalid {
		t.Errorf("zeroTolerance [noise]: Validate() = %v, want invalid", err)
	}
}
