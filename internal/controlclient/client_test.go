package controlclient

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/audit"
	"github.com/switchbackhq/switchback/internal/domain"
)

// auditServer serves /v1/audit and /v1/audit/head from log, as the control
// service of store storeID does.
func auditServer(t *testing.T, storeID string, log []domain.AuditEntry) *Client {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/v1/audit/head":
			last := log[len(log)-1]
			json.NewEncoder(w).Encode(AuditHead{StoreID: storeID, Seq: last.Seq, Hash: last.Hash})
		case "/v1/audit":
			after, _ := strconv.ParseUint(r.URL.Query().Get("after"), 10, 64)
			limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
			page := []domain.AuditEntry{}
			for _, e := range log {
				if e.Seq > after && len(page) < limit {
					page = append(page, e)
				}
			}
			json.NewEncoder(w).Encode(page)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(srv.Close)
	return New(srv.URL, "sbk_test")
}

// chain returns a valid audit log of n entries.
func chain(n int) []domain.AuditEntry {
	log := make([]domain.AuditEntry, 0, n)
	var prev domain.AuditEntry
	for i := range n {
		prev = audit.Next(prev, domain.AuditEntry{At: time.Date(2026, 3, 1, 0, 0, i, 0, time.UTC), Actor: "ops",
			Action: "stage.set", Target: "partner/acme", Before: json.RawMessage("null"), After: json.RawMessage("null")})
		log = append(log, prev)
	}
	return log
}

// writeHead saves a head as "audit head" prints it, for a witness file.
func writeHead(t *testing.T, h AuditHead) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "head.json")
	b, _ := json.Marshal(h)
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerifyAudit(t *testing.T) {
	log := chain(2500) // three pages
	tampered := append([]domain.AuditEntry(nil), log...)
	tampered[1500].Reason = "rewritten later"

	tests := []struct {
		name      string
		store     string
		log       []domain.AuditEntry
		witnesses func(t *testing.T) []string
		wantErr   string // "" for none
	}{
		{"an intact log", "store-1", log, nil, ""},
		{"an intact log holding its witness", "store-1", log,
			func(t *testing.T) []string {
				return []string{writeHead(t, AuditHead{StoreID: "store-1", Seq: 2000, Hash: log[1999].Hash})}
			}, ""},
		{"an entry rewritten", "store-1", tampered, nil, "seq 1501"},
		{"a witness of another store", "store-2", log,
			func(t *testing.T) []string {
				return []string{writeHead(t, AuditHead{StoreID: "store-1", Seq: 2000, Hash: log[1999].Hash})}
			},
			"replaced or reset"},
		{"a file that is no witness", "store-1", log,
			func(t *testing.T) []string { return []string{writeHead(t, AuditHead{})} }, "neither a router's snapshot file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var ws []string
			if tt.witnesses != nil {
				ws = tt.witnesses(t)
			}
			got, err := auditServer(t, tt.store, tt.log).VerifyAudit(context.Background(), ws)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("VerifyAudit = %+v, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			want := Verified{Entries: len(tt.log), Seq: tt.log[len(tt.log)-1].Seq, Hash: tt.log[len(tt.log)-1].Hash, Witnessed: len(ws)}
			if got != want {
				t.Errorf("VerifyAudit = %+v, want %+v", got, want)
			}
		})
	}
}

// A refused advance returns the gate's report along with the API error.
func TestAdvanceRefusedCarriesTheReport(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusConflict)
		w.Write([]byte(`{"error":{"code":"gate_refused","message":"the gates refuse"},"gate":{"pass":false,"partners":[{"partner":"acme","pass":false}]}}`))
	}))
	defer srv.Close()
	_, rep, err := New(srv.URL, "sbk_test").Advance(context.Background(), "m", "canary", "", false)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != domain.CodeGateRefused || apiErr.Status != http.StatusConflict {
		t.Fatalf("err = %v, want the API's gate_refused with 409", err)
	}
	if rep == nil || rep.Pass || len(rep.Partners) != 1 || rep.Partners[0].Partner != "acme" {
		t.Errorf("report = %+v, want acme refused", rep)
	}
}
