package journal

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"
)

// BenchmarkEventCodec measures the CPU of reading and writing back one
// stored event, as recording its outcome does, with a 1.5 KiB payload and
// 1.3 KiB of effects: encoding/json alone, and the journal's codec
// (codec.go); and compacting a payload as it enters. One goroutine: its ns/op is CPU.
//
//	go test -run '^$' -bench BenchmarkEventCodec -cpu 1 ./internal/journal/
func BenchmarkEventCodec(b *testing.B) {
	fields := map[string]any{}
	for i := range 40 {
		fields["field"+strconv.Itoa(i)] = strings.Repeat("v", 20)
	}
	payload, _ := json.Marshal(map[string]any{"type": "ticket.updated", "timestamp": "2026-03-02T09:00:00Z", "data": fields})
	effects, _ := json.Marshal([]map[string]any{{"kind": "ticket", "op": "upsert", "key": "T-1", "fields": fields}})
	at := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	e := Event{Seq: 1, ID: "evt_0123456789abcdef01234567", Partner: "acme", PSA: "generic", Type: "ticket", Action: "updated",
		EntityID: "T-1", DeliveryID: "msg-1", ReceivedAt: at, Headers: map[string]string{"Content-Type": "application/json"},
		Payload: payload, State: StateApplied, Attempts: 1, Pipeline: "legacy", SnapshotVersion: 3, Effects: effects, DoneAt: at}
	stored, _ := json.Marshal(e)
	// A raw document entering the journal: compacted as json.Marshal
	// would, by encoding/json and by compactRaw.
	b.Run("compact-encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if _, err := json.Marshal(json.RawMessage(payload)); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("compact-journal", func(b *testing.B) {
		b.SetBytes(int64(len(payload)))
		for b.Loop() {
			if _, err := compactRaw(payload); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding-json", func(b *testing.B) {
		b.SetBytes(int64(len(stored)))
		for b.Loop() {
			var got Event
			if err := json.Unmarshal(stored, &got); err != nil {
				b.Fatal(err)
			}
			if _, err := json.Marshal(got); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("journal", func(b *testing.B) {
		b.SetBytes(int64(len(stored)))
		for b.Loop() {
			got, err := decodeEvent(stored)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := encodeEvent(got); err != nil {
				b.Fatal(err)
			}
		}
	})
}
