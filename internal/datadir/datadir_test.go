package datadir

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckStoresNotLost(t *testing.T) {
	type file struct {
		name string
		size int
	}
	tests := []struct {
		name     string
		files    []file
		init     bool
		stores   []string
		evidence []string
		wantErr  string // "" for none
	}{
		{"first start: nothing yet", nil, false, []string{"switchback.db", "journal.db"}, []string{"admin.token"}, ""},
		{"a normal restart", []file{{"switchback.db", 100}, {"journal.db", 100}, {"admin.token", 10}}, false,
			[]string{"switchback.db", "journal.db"}, []string{"admin.token"}, ""},
		{"control db cut to 0 bytes next to admin.token", []file{{"switchback.db", 0}, {"admin.token", 10}}, false,
			[]string{"switchback.db"}, []string{"admin.token"}, "switchback.db is empty or missing, but admin.token is not"},
		{"control db deleted, the other database left", []file{{"journal.db", 100}}, false,
			[]string{"switchback.db", "journal.db"}, nil, "switchback.db is empty or missing, but journal.db is not"},
		{"journal cut to 0 bytes next to snapshot.json", []file{{"journal.db", 0}, {"snapshot.json", 10}}, false,
			[]string{"journal.db"}, []string{"snapshot.json"}, "journal.db is empty or missing, but snapshot.json is not"},
		{"an empty admin.token is no evidence", []file{{"admin.token", 0}}, false, []string{"switchback.db"}, []string{"admin.token"}, ""},
		{"--init says empty is intended", []file{{"switchback.db", 0}, {"admin.token", 10}}, true,
			[]string{"switchback.db"}, []string{"admin.token"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for _, f := range tt.files {
				if err := os.WriteFile(filepath.Join(dir, f.name), bytes.Repeat([]byte("x"), f.size), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			in := func(names []string) []string {
				var out []string
				for _, n := range names {
					out = append(out, filepath.Join(dir, n))
				}
				return out
			}
			err := CheckNotLost(tt.init, in(tt.stores), in(tt.evidence))
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckNotLost = %v, want nil", err)
				}
				return
			}
			want := strings.ReplaceAll(tt.wantErr, "but ", "but "+dir+"/")
			if err == nil || !strings.Contains(err.Error(), dir+"/"+want) {
				t.Fatalf("CheckNotLost = %v, want an error with %q", err, dir+"/"+want)
			}
		})
	}
}

func TestJournal(t *testing.T) {
	tests := []struct {
		name  string
		files map[string]int // path in the dir → size
		want  string         // "" for an error
	}{
		{"a router's data dir", map[string]int{"journal.db": 10}, "journal.db"},
		{"serve's data dir", map[string]int{"switchback.db": 10, "ingress/journal.db": 10}, "ingress/journal.db"},
		{"a router's own journal wins", map[string]int{"journal.db": 10, "ingress/journal.db": 10}, "journal.db"},
		{"an empty journal", map[string]int{"journal.db": 0, "ingress/journal.db": 10}, ""},
		{"no journal", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			for name, size := range tt.files {
				path := filepath.Join(dir, name)
				if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, bytes.Repeat([]byte("x"), size), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Journal(dir, "journal.db")
			if tt.want == "" {
				if err == nil || !strings.Contains(err.Error(), "missing or empty") {
					t.Fatalf("Journal = %q, %v; want an error that says it is missing or empty", got, err)
				}
				return
			}
			if err != nil || got != filepath.Join(dir, tt.want) {
				t.Errorf("Journal = %q, %v; want %q", got, err, filepath.Join(dir, tt.want))
			}
		})
	}
}
