package journal

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	bbolt "go.etcd.io/bbolt"
)

// BenchmarkOutcomeInTx measures the committer's CPU per applied outcome,
// fsync aside: completeEvent in one long write transaction, and the share
// of it that is the entity index (index alone: a read and a put of the
// entity's entry, for 10,000 tickets). The fsync that BenchmarkComplete
// includes is shared by a batch; this is the part every outcome pays.
//
//	go test -run '^$' -bench OutcomeInTx -benchmem -count 5 ./internal/journal/
func BenchmarkOutcomeInTx(b *testing.B) {
	payload, _ := json.Marshal(map[string]any{"type": "ticket.updated", "timestamp": t0.Format(time.RFC3339Nano),
		"data": map[string]any{"id": "T-1", "summary": "printer on fire", "notes": strings.Repeat("x", 1400), "updatedAt": t0.Format(time.RFC3339)}})
	setup := func(b *testing.B) (*Journal, []Event) {
		j, err := Open(b.TempDir()+"/journal.db", Options{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { j.Close() })
		var events []Event
		for start := 0; start < b.N; start += 4096 {
			var batch []Event
			for i := start; i < min(start+4096, b.N); i++ {
				batch = append(batch, Event{Partner: "acme", PSA: "generic", Type: "ticket", Action: "updated",
					EntityID: "T-" + strconv.Itoa(i%10_000), DeliveryID: "d" + strconv.Itoa(i), ReceivedAt: t0,
					Payload: payload, EntityUpdatedAt: t0})
			}
			res, err := j.Append(context.Background(), batch)
			if err != nil {
				b.Fatal(err)
			}
			for k := range batch {
				batch[k].Seq, batch[k].ID = res[k].Seq, res[k].ID
			}
			events = append(events, batch...)
		}
		return j, events
	}
	out := Outcome{State: StateApplied, Attempts: 1, Pipeline: "legacy", SnapshotVersion: 7, At: t0,
		Effects: json.RawMessage(`[{"type":"ticket.upsert","id":"T-1"}]`)}
	b.Run("complete", func(b *testing.B) {
		j, events := setup(b)
		b.ResetTimer()
		if err := j.db.Update(func(tx *bbolt.Tx) error {
			for _, e := range events {
				if err := j.completeEvent(tx, e.Seq, out, nil); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	})
	b.Run("index-alone", func(b *testing.B) {
		j, events := setup(b)
		b.ResetTimer()
		if err := j.db.Update(func(tx *bbolt.Tx) error {
			for _, e := range events {
				if err := j.index(tx, e, StateApplied, "legacy", t0); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			b.Fatal(err)
		}
	})
}
