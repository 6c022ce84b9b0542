package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"regexp"
	"strings"
	"testing"
	"time"
)

func TestPipelineVerb(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	out := &syncBuffer{}
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"pipeline", "--kind", "new", "--addr", "127.0.0.1:0", "--fault", "cached-handler=1"}, func(string) string { return "" }, out, &syncBuffer{})
	}()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("pipeline stopped with %v", err)
		}
	}()
	re := regexp.MustCompile(`on (http://\S+) `)
	var base string
	for deadline := time.Now().Add(10 * time.Second); base == ""; {
		if m := re.FindStringSubmatch(out.String()); m != nil {
			base = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("pipeline did not start: %s", out.String())
		}
		time.Sleep(5 * time.Millisecond)
	}
	post := func(id, typ string) []map[string]any {
		body, _ := json.Marshal(map[string]any{"id": id, "partner": "acme", "type": typ, "action": "updated", "entityId": id, "payload": map[string]any{"summary": "x"}})
		req, _ := http.NewRequest(http.MethodPost, base+"/", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", id)
		req.Header.Set("Switchback-Mode", "apply")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans struct{ Effects []map[string]any }
		json.NewDecoder(resp.Body).Decode(&ans)
		return ans.Effects
	}
	post("e1", "schedule_entry")
	// With cached-handler=1 the ticket is handled by the cached schedule handler.
	if got := post("e2", "ticket"); len(got) != 1 || got[0]["kind"] != "schedule_entry" {
		t.Errorf("effects = %v, want the incident's schedule_entry effect for a ticket event", got)
	}
	resp, err := http.Get(base + "/applied")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var applied struct{ Events int }
	json.NewDecoder(resp.Body).Decode(&applied)
	if applied.Events != 2 || !strings.Contains(out.String(), "CachedHandler:1") {
		t.Errorf("applied = %+v, output %q", applied, out.String())
	}
	// The reads a benchmark in another process polls.
	var counts struct{ Events, Apply, DryRun int }
	var ids struct{ IDs []string }
	for path, into := range map[string]any{"/counts": &counts, "/applied/ids": &ids} {
		resp, err := http.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		err = json.NewDecoder(resp.Body).Decode(into)
		resp.Body.Close()
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	if counts.Events != 2 || counts.Apply != 2 || counts.DryRun != 0 {
		t.Errorf("GET /counts = %+v, want 2 events applied in 2 apply calls", counts)
	}
	if got := strings.Join(ids.IDs, ","); got != "e1,e2" {
		t.Errorf("GET /applied/ids = %s, want e1,e2", got)
	}
}
