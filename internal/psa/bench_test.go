package psa

import (
	"context"
	"encoding/json"
	"strconv"
	"testing"
	"time"
)

// benchBody returns a generic delivery of about 1.5 KiB.
func benchBody(b *testing.B) []byte {
	b.Helper()
	data := map[string]any{
		"id":         "12345",
		"summary":    "Outlook cannot connect to Exchange after the password change",
		"status":     "In Progress",
		"priority":   "P2",
		"board":      "Service Desk",
		"company_id": "250",
		"contact_id": "4711",
		"assignee":   "jsmith",
		"changed":    []string{"status", "assignee", "priority"},
		"created_at": "2026-03-02T09:14:05Z",
		"updated_at": "2026-03-02T09:31:43Z",
	}
	for i := 0; ; i++ {
		body, err := json.Marshal(map[string]any{"type": "ticket.updated", "timestamp": "2026-03-02T09:31:44.090Z", "data": data})
		if err != nil {
			b.Fatal(err)
		}
		if len(body) >= 1536 {
			return body
		}
		data["custom_field_"+strconv.Itoa(i)] = "a value of a custom field, of some length"
	}
}

func BenchmarkDecodeGeneric(b *testing.B) {
	body := benchBody(b)
	h := standardHeaders(b, genericSecret, "msg_2mTJ7ZkVpTqgXyQn3xU1aBcD", testNow, body)
	d := &Decoder{Now: func() time.Time { return testNow }}
	ctx := context.Background()
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		envs, err := d.Decode(ctx, "generic", genericSecret, h, body)
		if err != nil || len(envs) != 1 {
			b.Fatal(err)
		}
	}
}

// BenchmarkUpdatedAt measures reading the entity's stamp from a 1.5 KiB
// generic body, as the journal does for each event it appends.
//
//	go test -run '^$' -bench UpdatedAt -benchmem ./internal/psa/
func BenchmarkUpdatedAt(b *testing.B) {
	body := benchBody(b)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := UpdatedAt(KindGeneric, body); !ok {
			b.Fatal("no stamp")
		}
	}
}
