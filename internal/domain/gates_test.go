package domain

import (
	"encoding/json"
	"testing"
)

// Gates stored by any release read back: minPerEventType missing takes its
// default, and the setting it replaced keeps a value that was not its
// default.
func TestGatesFromStoredJSON(t *testing.T) {
	tests := []struct {
		name string
		json string
		want int
	}{
		{"written before minPerEventType", `{"minComparisons":200}`, DefaultMinPerEventType},
		{"minComparisonsPerType at its default, off", `{"minComparisonsPerType":0}`, DefaultMinPerEventType},
		{"minComparisonsPerType set", `{"minComparisonsPerType":120}`, 120},
		{"minPerEventType set", `{"minPerEventType":80}`, 80},
		{"minPerEventType 0 turns the rule off", `{"minPerEventType":0}`, 0},
		{"minPerEventType wins over the old name", `{"minPerEventType":0,"minComparisonsPerType":120}`, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var g Gates
			if err := json.Unmarshal([]byte(tt.json), &g); err != nil {
				t.Fatal(err)
			}
			if g.MinPerEventType != tt.want {
				t.Errorf("MinPerEventType = %d, want %d", g.MinPerEventType, tt.want)
			}
		})
	}
	var g Gates
	if err := json.Unmarshal([]byte(`{"minComparisons":7,"maxMismatchRate":0.5,"zeroTolerance":["missing"]}`), &g); err != nil {
		t.Fatal(err)
	}
	if g.MinComparisons != 7 || g.MaxMismatchRate != 0.5 || len(g.ZeroTolerance) != 1 {
		t.Errorf("the other settings were not read: %+v", g)
	}
	b, err := json.Marshal(DefaultGates())
	if err != nil {
		t.Fatal(err)
	}
	var back Gates
	if err := json.Unmarshal(b, &back); err != nil || back.MinPerEventType != DefaultMinPerEventType {
		t.Errorf("DefaultGates round trip: %s read as %+v, %v", b, back, err)
	}
	if err := json.Unmarshal([]byte(`{"minPerEventType":"x"}`), &g); err == nil {
		t.Errorf("a string minPerEventType was accepted")
	}
}
