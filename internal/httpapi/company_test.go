package httpapi_test

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// TestPartnerCompanyIDThroughTheAPI: PUT /v1/partners/{id} takes companyId
// for a connectwise partner, shows it in the partner view and in the
// snapshot routers receive, and refuses it for any other PSA with 400.
func TestPartnerCompanyIDThroughTheAPI(t *testing.T) {
	f := newFixture(t)
	var view map[string]any
	f.must(t, http.StatusCreated, "admin", http.MethodPut, "/v1/partners/acme",
		obj{"name": "Acme", "psa": "connectwise", "secret": "cw-key", "companyId": "acmemsp"}, &view)
	if view["companyId"] != "acmemsp" {
		t.Errorf("PUT view companyId = %v, want acmemsp", view["companyId"])
	}
	f.must(t, http.StatusOK, "viewer", http.MethodGet, "/v1/partners/acme", nil, &view)
	if view["companyId"] != "acmemsp" {
		t.Errorf("GET view companyId = %v, want acmemsp", view["companyId"])
	}
	var snap struct {
		Partners map[string]struct {
			CompanyID string `json:"companyId"`
		} `json:"partners"`
	}
	f.must(t, http.StatusOK, "router", http.MethodGet, "/v1/snapshot", nil, &snap)
	if got := snap.Partners["acme"].CompanyID; got != "acmemsp" {
		t.Errorf("router snapshot companyId = %q, want acmemsp", got)
	}

	tests := []struct {
		name string
		body obj
	}{
		{"autotask", obj{"name": "Globex", "psa": "autotask", "companyId": "globexmsp"}},
		{"halopsa", obj{"name": "Globex", "psa": "halopsa", "companyId": "globexmsp"}},
		{"generic", obj{"name": "Globex", "psa": "generic", "companyId": "globexmsp"}},
		{"too long", obj{"name": "Globex", "psa": "connectwise", "companyId": strings.Repeat("g", 129)}},
		{"not a string", obj{"name": "Globex", "psa": "connectwise", "companyId": 42}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.call(t, "admin", http.MethodPut, "/v1/partners/globex", tt.body)
			if res.status != http.StatusBadRequest {
				t.Fatalf("got %s, want 400", res)
			}
			var e struct {
				Error struct{ Code, Message string } `json:"error"`
			}
			if err := json.Unmarshal(res.body, &e); err != nil || !strings.Contains(e.Error.Message, "companyId") {
				t.Errorf("error %s does not name companyId", res.body)
			}
		})
	}

	// Leaving companyId out of a PUT unbinds the partner, as every field
	// left out of a PUT takes its default.
	var unbound map[string]any
	f.must(t, http.StatusOK, "admin", http.MethodPut, "/v1/partners/acme", obj{"name": "Acme", "psa": "connectwise"}, &unbound)
	if _, ok := unbound["companyId"]; ok || unbound["secretSet"] != true {
		t.Errorf("view after a PUT without companyId = %v, want no companyId and the secret kept", unbound)
	}
}
