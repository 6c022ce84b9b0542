package simulate

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"
)

func TestLoadPartners(t *testing.T) {
	file := filepath.Join(t.TempDir(), "partners.json")
	if err := os.WriteFile(file, []byte(`[{"id":"acme","psa":"autotask","secret":"s3cret"}]`), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, spec string
		want       []Partner
		wantErr    bool
	}{
		{"inline JSON", `[{"id":"acme","psa":"generic","secret":"whsec_x"}]`, []Partner{{ID: "acme", PSA: "generic", Secret: "whsec_x"}}, false},
		{"a JSON file", file, []Partner{{ID: "acme", PSA: "autotask", Secret: "s3cret"}}, false},
		{"ID:PSA:SECRET, colons in the secret", "acme:halopsa:basic:u:p, globex:autotask:k",
			[]Partner{{ID: "acme", PSA: "halopsa", Secret: "basic:u:p"}, {ID: "globex", PSA: "autotask", Secret: "k"}}, false},
		{"an item without a secret", "acme:autotask", nil, true},
		{"no such file", filepath.Join(t.TempDir(), "none.json"), nil, true},
		{"an empty list", "[]", nil, true},
		{"not a list", "[1]", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := LoadPartners(tt.spec)
			if (err != nil) != tt.wantErr {
				t.Fatalf("LoadPartners(%q) error = %v, want error %v", tt.spec, err, tt.wantErr)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("LoadPartners(%q) = %+v, want %+v", tt.spec, got, tt.want)
			}
		})
	}
}

func TestParseMix(t *testing.T) {
	tests := []struct {
		name, in string
		want     map[string]float64
		wantErr  bool
	}{
		{"empty is the default mix", "  ", nil, false},
		{"weights", "ticket=5, contact=0.5", map[string]float64{"ticket": 5, "contact": 0.5}, false},
		{"no weight", "ticket", nil, true},
		{"not a number", "ticket=many", nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseMix(tt.in)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ParseMix(%q) error = %v, want error %v", tt.in, err, tt.wantErr)
			}
			if !tt.wantErr && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ParseMix(%q) = %v, want %v", tt.in, got, tt.want)
			}
		})
	}
}
