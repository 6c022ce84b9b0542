package wire_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata from the types")

// The wire types marshal to exactly the JSON that docs/api.md documents,
// which the golden files under testdata hold (indented here for reading;
// the bytes sent are the same without the indentation), and the golden
// files decode back to the same values. A change to a golden file is a
// change of the HTTP contract: docs/api.md must say it, and old routers
// must still be understood.
// checkGolden compares v's JSON, indented, with testdata/NAME.json (which
// -update rewrites) and returns the golden bytes and their path.
func checkGolden(t *testing.T, name string, v any) ([]byte, string) {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	if err := json.Indent(&got, b, "", "  "); err != nil {
		t.Fatal(err)
	}
	got.WriteByte('\n')
	path := filepath.Join("testdata", name+".json")
	if *update {
		if err := os.WriteFile(path, got.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to write it)", err)
	}
	if diff := cmp.Diff(string(want), got.String()); diff != "" {
		t.Errorf("JSON of %s (-golden +got):\n%s", name, diff)
	}
	return want, path
}

func TestGolden(t *testing.T) {
	public := snapshot()
	for id, p := range public.Partners {
		p.Secret = ""
		public.Partners[id] = p
	}
	tests := []struct {
		name string
		v    any
	}{
		// A router's copy: webhook secrets included.
		{"snapshot-router", snapshot()},
		{"snapshot-public", public},
		// An empty store before its first audit entry: no audit, and empty
		// maps, never null.
		{"snapshot-empty", wire.Snapshot{Version: 1, BuiltAt: at, Migrations: map[string]wire.SnapshotMigration{}, Partners: map[string]wire.SnapshotPartner{}}},
		// A router's delta (secrets included) with every kind of change:
		// null for what is removed, changed stages only.
		{"snapshot-delta-router", delta()},
		{"report-ingress", report()},
		// What a flags provider sends: no counts, no journal, no store id
		// before store ids; router and snapshotVersion are always sent.
		{"report-provider", wire.Report{Router: "ingress-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			want, path := checkGolden(t, tt.name, tt.v)
			// Decode the bytes as sent, unindented, so that raw fields
			// (journal figures, mismatch sides) compare as sent too.
			var sent bytes.Buffer
			if err := json.Compact(&sent, want); err != nil {
				t.Fatal(err)
			}
			back := reflect.New(reflect.TypeOf(tt.v))
			if err := json.Unmarshal(sent.Bytes(), back.Interface()); err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tt.v, back.Elem().Interface()); diff != "" {
				t.Errorf("%s decoded (-value +decoded):\n%s", path, diff)
			}
		})
	}
}

// The bounds a report must keep are the control service's and the
// router's both: each case names the row that breaks them.
func TestReportValidate(t *testing.T) {
	now := at
	count := func(f func(*domain.ComparisonCount)) []domain.ComparisonCount {
		c := domain.ComparisonCount{Migration: "m", Partner: "acme", Stage: domain.StageShadow, EventType: "ticket",
			Class: domain.ClassEqual, Minute: now.Truncate(60e9), Count: 1}
		f(&c)
		return []domain.ComparisonCount{c}
	}
	tests := []struct {
		name    string
		r       wire.Report
		wantErr string
	}{
		{"the full report", report(), ""},
		{"a provider's report", wire.Report{Router: "r"}, ""},
		{"an unknown class", wire.Report{Comparisons: count(func(c *domain.ComparisonCount) { c.Class = "odd" })},
			`comparisons[0]: class "odd" and stage "shadow": unknown class or stage; nothing of this report was applied`},
		{"a count above the bound", wire.Report{Comparisons: count(func(c *domain.ComparisonCount) { c.Count = domain.MaxReportedCount + 1 })},
			"comparisons[0]: count 1000001 is above 1000000; nothing of this report was applied"},
		{"a minute ahead", wire.Report{Comparisons: count(func(c *domain.ComparisonCount) { c.Minute = now.Add(domain.MaxReportAhead + 60e9) })},
			"comparisons[0]: minute 2026-11-30T14:09:51Z is more than 5m0s ahead of the control service's clock; nothing of this report was applied"},
		{"more errors than calls", wire.Report{Candidate: []domain.CandidateCount{{Stage: domain.StageNew, Calls: 1, Errors: 2}}},
			"candidate[0]: errors 2 are more than calls 1; nothing of this report was applied"},
		{"a report id without an epoch", wire.Report{ReportID: &wire.ReportID{Seq: 1}},
			"reportId needs an epoch of 1 to 64 characters and a seq above 0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.r.Validate(now)
			got := ""
			if err != nil {
				got = err.Error()
				if domain.ErrorCode(err) != domain.CodeInvalid {
					t.Errorf("code %q, want %q", domain.ErrorCode(err), domain.CodeInvalid)
				}
			}
			if got != tt.wantErr {
				t.Errorf("Validate: got %q, want %q", got, tt.wantErr)
			}
		})
	}
}
