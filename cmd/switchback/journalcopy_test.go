package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/natstest"
)

func journalCopy(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	err := run(t.Context(), append([]string{"journal", "copy"}, args...), func(string) string { return "" }, &stdout, &stderr)
	return stderr.String(), err
}

// routerJournal writes a router's journal in dir: three partners'
// events, some applied, some dead-lettered, some with a replay, the rest
// pending.
func routerJournal(t *testing.T, dir string) {
	t.Helper()
	ctx := context.Background()
	j, err := journal.Open(filepath.Join(dir, journalFile), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)
	var events []journal.Event
	for n := range 90 {
		partner := []string{"acme", "globex", "ex.ample"}[n%3]
		events = append(events, journal.Event{Partner: partner, PSA: "generic", Type: "ticket", SourceType: "ticket",
			Action: "updated", EntityID: fmt.Sprint(n % 7), DeliveryID: fmt.Sprintf("d-%d", n),
			ReceivedAt: t0.Add(time.Duration(n) * time.Second), EntityUpdatedAt: t0.Add(time.Duration(n-1) * time.Second),
			Headers: map[string]string{"Webhook-Id": fmt.Sprint(n)}, Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, n))})
	}
	res, err := j.Append(ctx, events)
	if err != nil {
		t.Fatal(err)
	}
	for i, a := range res {
		at := t0.Add(time.Hour + time.Duration(i)*time.Second)
		var out *journal.Outcome
		switch {
		case i < 50:
			out = &journal.Outcome{State: journal.StateApplied, Pipeline: "new", Attempts: 1, At: at, Effects: json.RawMessage(`{"ok":true}`)}
		case i < 60:
			out = &journal.Outcome{State: journal.StateDeadLettered, Pipeline: "new", Attempts: 5, Error: "pipeline answered 503", Status: 503, At: at}
		}
		if out != nil {
			if err := j.Complete(ctx, a.Seq, *out); err != nil {
				t.Fatal(err)
			}
		}
		if i == 55 {
			// A replay that applied a dead letter stays behind.
			if err := j.Complete(ctx, a.Seq, journal.Outcome{Replay: &journal.Replay{Job: "rpl_1", Pipeline: "legacy", At: at, OK: true}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
}

func readJournal(t *testing.T, path string) []journal.Event {
	t.Helper()
	r, err := journal.OpenReader(path)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []journal.Event
	if err := r.Each(context.Background(), func(e journal.Event) error { out = append(out, e); return nil }); err != nil {
		t.Fatal(err)
	}
	return out
}

// A router's journal copied into the tier and back into a new journal
// keeps every event, in order, with its outcome; copying it again
// publishes nothing.
func TestJournalCopyRoundTrip(t *testing.T) {
	nc := natstest.Start(t, 1)
	src, dst := t.TempDir(), filepath.Join(t.TempDir(), "back")
	routerJournal(t, src)

	out, err := journalCopy(t, "--from", "bolt://"+src, "--to", nc.URLs(), "--journal-replicas", "1", "--progress", "40")
	if err != nil {
		t.Fatalf("journal copy to the tier: %v\n%s", err, out)
	}
	for _, want := range []string{"80 of 90 events", "90 events: 90 published (60 with their outcome, not delivered again; 30 pending, which the tier delivers), 0 already in the stream"} {
		if !strings.Contains(out, want) {
			t.Fatalf("journal copy said %q, want %q", out, want)
		}
	}
	out, err = journalCopy(t, "--from", "bolt://"+src, "--to", nc.URLs(), "--journal-replicas", "1")
	if err != nil || !strings.Contains(out, "90 events: 0 published (0 with their outcome, not delivered again; 0 pending, which the tier delivers), 90 already in the stream") {
		t.Fatalf("journal copy again: %v, %q; want nothing published", err, out)
	}

	out, err = journalCopy(t, "--from", nc.URLs(), "--to", "bolt://"+dst, "--journal-replicas", "1")
	if err != nil {
		t.Fatalf("journal copy from the tier: %v\n%s", err, out)
	}
	if !strings.Contains(out, "90 events written (60 with their outcome; 30 pending") {
		t.Fatalf("journal copy from the tier said %q", out)
	}
	if _, err := os.Stat(filepath.Join(dst, journalFile+".copying")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("the copy's working file is left: %v", err)
	}

	before, after := readJournal(t, filepath.Join(src, journalFile)), readJournal(t, filepath.Join(dst, journalFile))
	if len(after) != len(before) {
		t.Fatalf("%d events back, want %d", len(after), len(before))
	}
	for i, b := range before {
		a := after[i]
		if a.ID != b.ID || a.Partner != b.Partner || a.PSA != b.PSA || a.Type != b.Type || a.SourceType != b.SourceType ||
			a.Action != b.Action || a.EntityID != b.EntityID || a.DeliveryID != b.DeliveryID || !a.ReceivedAt.Equal(b.ReceivedAt) ||
			!a.EntityUpdatedAt.Equal(b.EntityUpdatedAt) || !maps.Equal(a.Headers, b.Headers) || string(a.Payload) != string(b.Payload) ||
			a.State != b.State || a.Pipeline != b.Pipeline || a.Attempts != b.Attempts || a.LastError != b.LastError || !a.DoneAt.Equal(b.DoneAt) {
			t.Fatalf("event %d:\n was %+v\n back %+v", i, b, a)
		}
		if len(a.Replays) != 0 || a.Effects != nil {
			t.Fatalf("event %d came back with replays or effects: %+v", i, a)
		}
	}

	// A router started on the new journal delivers only what has no
	// outcome, and knows every delivery and entity.
	j, err := journal.Open(filepath.Join(dst, journalFile), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	ctx := context.Background()
	pending, err := j.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(pending) != 30 || pending[0].ID != before[60].ID {
		t.Fatalf("%d pending, first %s: want the 30 without an outcome", len(pending), pending[0].ID)
	}
	rec, err := j.Entity(ctx, "acme", journal.Entity{Type: "ticket", ID: before[48].EntityID})
	if err != nil {
		t.Fatal(err)
	}
	if rec.Applied == nil || rec.Applied.ID != before[48].ID {
		t.Fatalf("entity %s of acme: applied %+v, want event %s, the last applied", before[48].EntityID, rec.Applied, before[48].ID)
	}
	dup, err := j.Append(ctx, []journal.Event{{Partner: "globex", DeliveryID: "d-10", Payload: json.RawMessage(`{}`)}})
	if err != nil || !dup[0].Duplicate || dup[0].ID != before[10].ID {
		t.Fatalf("a resend of a copied delivery: %+v, %v; want a duplicate of %s", dup, err, before[10].ID)
	}
}

func TestJournalCopyRefusals(t *testing.T) {
	const nowhere = "nats://127.0.0.1:1" // never reached: each refusal comes first
	damaged := t.TempDir()
	routerJournal(t, damaged)
	path := filepath.Join(damaged, journalFile)
	// Cut after its meta pages, as a disk that lost the file's tail.
	if err := os.Truncate(path, 3*4096); err != nil {
		t.Fatal(err)
	}
	held := t.TempDir()
	routerJournal(t, held)
	j, err := journal.Open(filepath.Join(held, journalFile), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	full := t.TempDir()
	routerJournal(t, full)

	for _, tt := range []struct {
		name  string
		args  []string
		usage bool
		want  []string
	}{
		{"missing", []string{"--from", "bolt://" + t.TempDir(), "--to", nowhere}, false, []string{"journal.db is missing or empty"}},
		{"damaged", []string{"--from", "bolt://" + damaged, "--to", nowhere}, false,
			[]string{"nothing was copied", "damaged", "switchback journal export --data " + damaged}},
		{"in use", []string{"--from", "bolt://" + held, "--to", nowhere}, false, []string{"in use", "stop the router"}},
		{"destination not empty", []string{"--from", nowhere, "--to", "bolt://" + full}, false, []string{"exists and is not empty"}},
		{"bolt to bolt", []string{"--from", "bolt://" + full, "--to", "bolt://" + t.TempDir()}, true, []string{"one must be bolt://DIR"}},
		{"no --to", []string{"--from", "bolt://" + full}, true, nil},
		{"replicas", []string{"--from", "bolt://" + full, "--to", nowhere, "--journal-replicas", "7"}, true, []string{"between 1 and 5"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := journalCopy(t, tt.args...)
			if err == nil {
				t.Fatalf("journal copy %v succeeded: %s", tt.args, out)
			}
			if errors.Is(err, errUsage) != tt.usage {
				t.Fatalf("journal copy %v: %v; usage error %v, want %v", tt.args, err, errors.Is(err, errUsage), tt.usage)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Fatalf("journal copy %v: %q, want it to say %q", tt.args, err, w)
				}
			}
		})
	}
	if got := readJournal(t, filepath.Join(full, journalFile)); len(got) != 90 {
		t.Fatalf("the refused destination holds %d events, want its 90 untouched", len(got))
	}
}

func TestJournalHelp(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want []string
	}{
		{[]string{"journal", "copy", "-h"}, []string{"Usage: switchback journal copy --from bolt://DIR --to nats://HOST:PORT",
			"Replays, effects and shadow comparisons stay behind", "stop the router", "-journal-replicas", "publishes nothing\ntwice"}},
		{[]string{"journal", "-h"}, []string{"switchback journal export --data DIR", "switchback journal copy --from URL --to URL"}},
		{[]string{"help"}, []string{"journal copy --from A --to B"}},
	} {
		var stdout, stderr bytes.Buffer
		err := run(t.Context(), tt.args, func(string) string { return "" }, &stdout, &stderr)
		if err != nil && !errors.Is(err, flag.ErrHelp) {
			t.Fatalf("%v: %v", tt.args, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(stdout.String()+stderr.String(), w) {
				t.Fatalf("%v says %q, want %q", tt.args, stdout.String()+stderr.String(), w)
			}
		}
	}
}
