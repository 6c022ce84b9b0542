package journal

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestZZMix(t *testing.T) {
	j, _ := Open(filepath.Join(t.TempDir(), "j.db"), Options{})
	defer j.Close()
	payload, _ := json.Marshal(map[string]any{"data": map[string]any{"id": "T-1", "notes": strings.Repeat("x", 1400)}})
	eff, _ := json.Marshal([]map[string]any{{"kind": "ticket", "op": "upsert", "key": "T-1", "fields": map[string]any{"notes": strings.Repeat("x", 1400)}}})
	seqs := make(chan uint64, 100000)
	var n atomic.Uint64
	var appends, completes atomic.Int64
	deadline := time.Now().Add(3 * time.Second)
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				res, err := j.Append(context.Background(), []Event{{Partner: "acme", DeliveryID: strconv.FormatUint(n.Add(1), 10), ReceivedAt: time.Now(), Payload: payload}})
				if err != nil {
					t.Error(err)
					return
				}
				appends.Add(1)
				seqs <- res[0].Seq
			}
		})
	}
	var cw sync.WaitGroup
	for range 32 {
		cw.Go(func() {
			for seq := range seqs {
				j.Complete(context.Background(), seq, Outcome{State: StateApplied, Effects: eff, At: time.Now()})
				completes.Add(1)
			}
		})
	}
	wg.Wait()
	close(seqs)
	cw.Wait()
	s, _ := j.Stats()
	t.Logf("appends %d/s completes %d  writes/commit %.1f size %d MB", appends.Load()/3, completes.Load(), float64(s.Committed)/float64(s.Commits), s.SizeBytes>>20)
}
