package refpipe

import "testing"

func TestParseFault(t *testing.T) {
	tests := []struct {
		in string
		ok bool
	}{
		{"cached-handler=0.3", true},
		{"error=1", true},
		{"empty=0", true},
		{"drop-field=summary", true},
		{"latency=20ms", true},
		{"latency=5ms-50ms", true},
		{"latency=50ms-5ms", false},
		{"error=2", false},
		{"cached-handler", false},
		{"teleport=1", false},
	}
	for _, tt := range tests {
		var f Faults
		if err := ParseFault(&f, tt.in); (err == nil) != tt.ok {
			t.Errorf("ParseFault(%q) = %v, want ok %v", tt.in, err, tt.ok)
		}
	}
}
