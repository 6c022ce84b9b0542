package domain

import (
	"strings"
	"testing"
)

func TestPartnerCompanyID(t *testing.T) {
	tests := []struct {
		name      string
		psa       PSA
		companyID string
		ok        bool
	}{
		{"connectwise bound", PSAConnectWise, "acmemsp", true},
		{"connectwise unbound", PSAConnectWise, "", true},
		{"connectwise product instance id", PSAConnectWise, "2b4f6a9e-1c3d-4e5f-8a7b-9c0d1e2f3a4b", true},
		{"128 bytes", PSAConnectWise, strings.Repeat("c", 128), true},
		{"129 bytes", PSAConnectWise, strings.Repeat("c", 129), false},
		{"surrounding space", PSAConnectWise, " acmemsp", false},
		{"control character", PSAConnectWise, "acme\x1bmsp", false},
		{"not UTF-8", PSAConnectWise, "acme\xffmsp", false},
		{"autotask", PSAAutotask, "acmemsp", false},
		{"halopsa", PSAHaloPSA, "acmemsp", false},
		{"generic", PSAGeneric, "acmemsp", false},
		{"autotask unbound", PSAAutotask, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := Partner{ID: "acme", Name: "Acme", PSA: tt.psa, CompanyID: tt.companyID}
			err := p.Validate()
			if got := err == nil; got != tt.ok {
				t.Fatalf("Validate() = %v, want ok=%v", err, tt.ok)
			}
			if err != nil && ErrorCode(err) != CodeInvalid {
				t.Errorf("Validate() code = %q, want %q", ErrorCode(err), CodeInvalid)
			}
		})
	}
}
