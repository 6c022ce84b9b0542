package domain

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestNewSampleEvent(t *testing.T) {
	tests := []struct {
		name          string
		payload       string
		entityID      string
		wantBody      string
		wantTruncated bool
	}{
		{"small body whole", `{"id":"T-1","status":"open"}`, "T-1", `{"id":"T-1","status":"open"}`, false},
		{"no body", "", "T-1", "", false},
		{"body at the bound", strings.Repeat("a", MaxSampleEventBody), "T-1", strings.Repeat("a", MaxSampleEventBody), false},
		{"body past the bound", strings.Repeat("a", MaxSampleEventBody+1), "T-1", strings.Repeat("a", MaxSampleEventBody), true},
		// "é" is 2 bytes: a cut in the middle of one backs off to its start.
		{"cut on a character boundary", "x" + strings.Repeat("é", MaxSampleEventBody), "T-1", "x" + strings.Repeat("é", MaxSampleEventBody/2-1), true},
		{"long entity id", "{}", strings.Repeat("9", 300), "{}", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := NewSampleEvent("ticket", "updated", tt.entityID, []byte(tt.payload))
			if got.Body != tt.wantBody {
				t.Errorf("body = %q (%d bytes), want %d bytes", got.Body[:min(40, len(got.Body))], len(got.Body), len(tt.wantBody))
			}
			if got.Truncated != tt.wantTruncated || got.BodyBytes != len(tt.payload) {
				t.Errorf("truncated, bodyBytes = %v, %d, want %v, %d", got.Truncated, got.BodyBytes, tt.wantTruncated, len(tt.payload))
			}
			if len(got.Body) > MaxSampleEventBody || !utf8.ValidString(got.Body) {
				t.Errorf("body of %d bytes, valid UTF-8 %v: want at most %d, valid", len(got.Body), utf8.ValidString(got.Body), MaxSampleEventBody)
			}
			if got.Type != "ticket" || got.Action != "updated" || len(got.EntityID) > 256 || !strings.HasPrefix(tt.entityID, got.EntityID) {
				t.Errorf("type, action, entity id = %q, %q, %q", got.Type, got.Action, got.EntityID)
			}
		})
	}
}
