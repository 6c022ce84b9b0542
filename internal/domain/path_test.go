package domain_test

import (
	"testing"

	"github.com/switchbackhq/switchback/internal/domain"
)

func TestCompareRulePaths(t *testing.T) {
	tests := []struct {
		path string
		ok   bool
	}{
		{"fields.updatedAt", true},
		{"updatedAt", true},
		{"ticket:fields.updatedAt", true},
		{":fields.updatedAt", false},
		{"ticket:", false},
		{"a..b", false},
		{"fields.ns:name", true},
	}
	for _, tt := range tests {
		m := domain.Migration{Key: "m", Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(),
			Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: "http://a/"}, New: domain.Pipeline{URL: "http://b/"}},
			Compare:   domain.CompareRules{Ignore: []string{tt.path}}}
		if err := m.Validate(); (err == nil) != tt.ok {
			t.Errorf("ignore %q: Validate() = %v, want ok %v", tt.path, err, tt.ok)
		}
	}
}
