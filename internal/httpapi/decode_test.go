package httpapi_test

import (
	"strings"
	"testing"
)

// Field names are matched exactly: encoding/json alone would take "Name"
// for "name".
func TestFieldNamesAreCaseSensitive(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, path, body, field string
	}{
		{"top level", "/v1/partners/acme", `{"Name":"Acme","psa":"generic"}`, "Name"},
		{"nested", "/v1/migrations/m", `{"pipelines":{"Legacy":{"url":"http://x/"},"new":{"url":"http://y/"}}}`, "Legacy"},
		{"in a pointer struct", "/v1/migrations/m", `{"pipelines":{"legacy":{"url":"http://x/"},"new":{"url":"http://y/"}},"gates":{"MinComparisons":5}}`, "MinComparisons"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.do(t, request{method: "PUT", path: tt.path, as: "admin", body: tt.body})
			env := checkError(t, res, 400, "invalid_argument")
			if !strings.Contains(env.Error.Message, tt.field) {
				t.Errorf("message %q does not name the field %q", env.Error.Message, tt.field)
			}
		})
	}
}

// A limit above 1000 is capped, as API.md says "at most 1000", not refused.
func TestAuditLimitIsCapped(t *testing.T) {
	f := newFixture(t)
	res := f.do(t, request{method: "GET", path: "/v1/audit?limit=5000", as: "viewer"})
	if res.status != 200 {
		t.Fatalf("limit=5000 = %d, want 200", res.status)
	}
}
