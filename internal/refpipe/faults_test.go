package refpipe

import (
	"encoding/json"
	"testing"

	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

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
		{"noisy=true", true},
		{"noisy=maybe", false},
		{"teleport=1", false},
	}
	for _, tt := range tests {
		var f Faults
		if err := ParseFault(&f, tt.in); (err == nil) != tt.ok {
			t.Errorf("ParseFault(%q) = %v, want ok %v", tt.in, err, tt.ok)
		}
	}
}

// A noisy pipeline never answers the same event twice alike, and differs
// only in the two stamped fields.
func TestNoisyStampsEveryEffect(t *testing.T) {
	p := New("legacy", Faults{Noisy: true}, 1)
	ev := pipelineclient.Event{ID: "e1", Partner: "acme", Type: "ticket", Action: "updated", EntityID: "7", Payload: json.RawMessage(`{"status":"open"}`)}
	a, _ := p.handle(ev, pipelineclient.DryRun, "e1")
	b, _ := p.handle(ev, pipelineclient.DryRun, "e1")
	if len(a) != 1 || len(b) != 1 {
		t.Fatalf("effects = %v, %v, want one each", a, b)
	}
	for _, f := range []string{NoisyTime, NoisyID} {
		if a[0].Fields[f] == nil {
			t.Errorf("fields.%s is not stamped: %v", f, a[0].Fields)
		}
	}
	if a[0].Fields[NoisyID] == b[0].Fields[NoisyID] {
		t.Errorf("two runs share the id %v", a[0].Fields[NoisyID])
	}
	if a[0].Fields["status"] != b[0].Fields["status"] {
		t.Errorf("the payload's fields differ: %v vs %v", a[0].Fields, b[0].Fields)
	}
}
