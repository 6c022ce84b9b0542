package wire_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/wire"
)

// flagsIgnores lists, per object of the snapshot, the fields the public
// flags package does not decode: a router reads them from the raw JSON
// (flags.Options.OnSnapshot) as a wire.Snapshot. A field added to
// wire.Snapshot must be added here or to flags.Snapshot.
var flagsIgnores = struct{ snapshot, migration, partner []string }{
	snapshot:  []string{"builtAt"},
	migration: []string{"seq", "pipelines", "compare", "guard"},
	partner:   []string{"secret", "companyId"},
}

// The flags package, which may import nothing internal, keeps its own
// copies of the snapshot it decodes and the report it sends. A real
// provider, synced from a control service that sends a wire.Snapshot,
// holds the same snapshot (the fields it decodes, with the same names
// and values) and posts reports that are, byte for byte, the JSON of
// wire.Report.
func TestFlagsAgreesWithWire(t *testing.T) {
	snap := snapshot()
	raw, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	reports := make(chan []byte, 16)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/snapshot/stream", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: %d\nevent: snapshot\ndata: %s\n\n", snap.Version, raw)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	mux.HandleFunc("POST /v1/reports", func(w http.ResponseWriter, r *http.Request) {
		b, err := io.ReadAll(r.Body)
		if err != nil {
			t.Errorf("reading a report: %v", err)
		}
		reports <- b
		w.WriteHeader(http.StatusAccepted)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	p, err := flags.NewProvider(flags.Options{URL: srv.URL, Token: "router-token", RouterID: "ingress-1",
		ReportInterval: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.InitWithContext(context.Background(), openfeature.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown) // before the server closes: it holds the stream

	t.Run("snapshot", func(t *testing.T) {
		held, err := json.Marshal(p.Snapshot())
		if err != nil {
			t.Fatal(err)
		}
		want, got := flagsPart(t, raw), decodeObject(t, held)
		if diff := cmp.Diff(want, got); diff != "" {
			t.Fatalf("flags.Snapshot and wire.Snapshot disagree (-wire +flags):\n%s", diff)
		}
		// Re-marshalled, both maps sort their keys: equal bytes.
		w, _ := json.Marshal(want)
		g, _ := json.Marshal(got)
		if !bytes.Equal(w, g) {
			t.Errorf("flags: %s\nwire: %s", g, w)
		}
	})

	// The first report tells the version taken; the provider sends it again
	// every ReportInterval, so the report after the refusal is the next
	// one that differs.
	var first []byte
	t.Run("report after a snapshot", func(t *testing.T) {
		first = nextReport(t, reports, func([]byte) bool { return true })
		sameReport(t, first, wire.Report{Router: "ingress-1", SnapshotVersion: snap.Version, StoreID: snap.StoreID})
	})

	t.Run("report after a refused snapshot", func(t *testing.T) {
		older := snapshot()
		older.Version--
		b, err := json.Marshal(older)
		if err != nil {
			t.Fatal(err)
		}
		if err := p.Offer(b); err == nil {
			t.Fatalf("Offer of version %d over %d: no error, want a refusal", older.Version, snap.Version)
		}
		want := wire.Report{Router: "ingress-1", SnapshotVersion: snap.Version, StoreID: snap.StoreID, Refused: older.Version}
		sameReport(t, nextReport(t, reports, func(b []byte) bool { return !bytes.Equal(b, first) }), want)
	})
}

// nextReport returns the next report posted that satisfies ok.
func nextReport(t *testing.T, reports <-chan []byte, ok func([]byte) bool) []byte {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case b := <-reports:
			if ok(b) {
				return b
			}
		case <-timeout:
			t.Fatal("no report from the provider within 10s")
		}
	}
}

func sameReport(t *testing.T, got []byte, want wire.Report) {
	t.Helper()
	w, err := json.Marshal(want)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(string(w), string(got)); diff != "" {
		t.Errorf("the provider's report is not the JSON of wire.Report (-wire +flags):\n%s", diff)
	}
}

func decodeObject(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// flagsPart is a snapshot's JSON without the fields flagsIgnores lists.
func flagsPart(t *testing.T, raw []byte) map[string]any {
	t.Helper()
	m := decodeObject(t, raw)
	drop := func(obj any, keys []string) {
		for _, k := range keys {
			if _, ok := obj.(map[string]any)[k]; !ok {
				t.Errorf("flagsIgnores names %q, which the wire snapshot does not have", k)
			}
			delete(obj.(map[string]any), k)
		}
	}
	drop(m, flagsIgnores.snapshot)
	for _, mg := range m["migrations"].(map[string]any) {
		drop(mg, flagsIgnores.migration)
	}
	for _, p := range m["partners"].(map[string]any) {
		// secret and companyId are left out when empty.
		obj := p.(map[string]any)
		for _, k := range flagsIgnores.partner {
			delete(obj, k)
		}
	}
	return m
}

// A provider that takes a wire.SnapshotDelta on top of a wire.Snapshot
// holds what it would hold with the whole next snapshot: the flags
// package's copy of the delta's fields agrees with wire's. It asks for
// deltas, as docs/api.md says, with ?deltas=1.
func TestFlagsDeltaAgreesWithWire(t *testing.T) {
	snap, d := snapshot(), delta()
	raw, err := json.Marshal(snap)
	if err != nil {
		t.Fatal(err)
	}
	rawDelta, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/snapshot/stream", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("deltas") != "1" {
			t.Errorf("stream asked as %q, want deltas=1", r.URL.RawQuery)
		}
		w.Header().Set("Content-Type", "text/event-stream")
		fmt.Fprintf(w, "id: %d\nevent: snapshot\ndata: %s\n\n", snap.Version, raw)
		fmt.Fprintf(w, "id: %d\nevent: delta\ndata: %s\n\n", d.Version, rawDelta)
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	p, err := flags.NewProvider(flags.Options{URL: srv.URL, Token: "viewer-token", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.InitWithContext(context.Background(), openfeature.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown)
	deadline := time.Now().Add(10 * time.Second)
	for p.Snapshot().Version != d.Version {
		if time.Now().After(deadline) {
			t.Fatalf("provider holds version %d, want the delta's %d", p.Snapshot().Version, d.Version)
		}
		time.Sleep(time.Millisecond)
	}
	whole, err := json.Marshal(deltaApplied())
	if err != nil {
		t.Fatal(err)
	}
	held, err := json.Marshal(p.Snapshot())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(flagsPart(t, whole), decodeObject(t, held)); diff != "" {
		t.Errorf("the snapshot after the delta and the whole snapshot disagree (-whole +after delta):\n%s", diff)
	}
}
