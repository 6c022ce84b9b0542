package compare

import (
	"encoding/json"
	"testing"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

// benchEffects decodes effects as pipelineclient.Client does: a typical answer,
// three ticket effects of eight fields.
func benchEffects(b *testing.B, body string) []pipelineclient.Effect {
	b.Helper()
	var r pipelineclient.Response
	if err := json.Unmarshal([]byte(body), &r); err != nil {
		b.Fatal(err)
	}
	return r.Effects
}

const benchPrimary = `{"effects": [
 {"kind": "ticket", "op": "upsert", "key": "12345", "fields": {"summary": "Printer on 3rd floor jams", "status": "open",
  "priority": "P2 - High", "board.name": "Service Desk", "company.id": 250, "contact": "Jane Roe",
  "updatedAt": "2026-03-02T09:14:00Z", "tags": ["printer", "hardware", "floor-3"]}},
 {"kind": "ticket", "op": "upsert", "key": "12346", "fields": {"summary": "VPN drops every hour", "status": "in progress",
  "priority": "P3 - Normal", "board.name": "Network", "company.id": 250, "contact": "John Doe",
  "updatedAt": "2026-03-02T09:14:02Z", "tags": ["vpn"]}},
 {"kind": "ticket", "op": "delete", "key": "12001", "fields": {"summary": "Duplicate of 12000", "status": "closed",
  "priority": "P4 - Low", "board.name": "Service Desk", "company.id": 250, "contact": "Jane Roe",
  "updatedAt": "2026-03-02T09:14:03Z", "tags": []}}]}`

func BenchmarkCompare(b *testing.B) {
	rules := NewRules(domain.CompareRules{Ignore: []string{"fields.updatedAt", "schedule_entry:fields.member"}, Sets: []string{"fields.tags"}})
	primary := benchEffects(b, benchPrimary)
	equal := benchEffects(b, benchPrimary)
	equal[0], equal[2] = equal[2], equal[0]
	equal[0].Fields["updatedAt"] = "2026-03-02T09:14:09Z"
	valueDiff := benchEffects(b, benchPrimary)
	valueDiff[1].Fields["status"] = "closed"
	typeMismatch := benchEffects(b, benchPrimary)
	typeMismatch[0].Kind = "schedule_entry"
	tests := []struct {
		name   string
		shadow []pipelineclient.Effect
		want   domain.Class
	}{
		{"equal", equal, domain.ClassEqual},
		{"value_diff", valueDiff, domain.ClassValueDiff},
		{"type_mismatch", typeMismatch, domain.ClassTypeMismatch},
	}
	for _, tt := range tests {
		b.Run(tt.name, func(b *testing.B) {
			p, s := Side{Effects: primary}, Side{Effects: tt.shadow}
			if got := Compare("ticket", p, s, rules).Class; got != tt.want {
				b.Fatalf("class = %s, want %s", got, tt.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				Compare("ticket", p, s, rules)
			}
		})
	}
}
