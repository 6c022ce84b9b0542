package httperr

import (
	"encoding/json"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// TestEveryCodeHasItsDocumentedStatus pins the table to docs/api.md: the
// API's error table and the webhook endpoint's checks.
func TestEveryCodeHasItsDocumentedStatus(t *testing.T) {
	documented := map[string]int{
		"invalid_argument":       400,
		"unauthenticated":        401,
		"permission_denied":      403,
		"not_found":              404,
		"method_not_allowed":     405,
		"request_timeout":        408,
		"conflict":               409,
		"invalid_transition":     409,
		"gate_refused":           409,
		"migration_reverted":     409,
		"body_too_large":         413,
		"unsupported_media_type": 415,
		"internal":               500,

		"malformed_body":      400,
		"unknown_psa":         401,
		"no_secret":           401,
		"invalid_secret":      401,
		"missing_signature":   401,
		"bad_signature":       401,
		"bad_timestamp":       401,
		"stale_timestamp":     401,
		"missing_credentials": 401,
		"bad_credentials":     401,
		"key_refused":         401,
		"missing_company":     401,
		"wrong_company":       401,

		"router_starting":      429,
		"snapshot_not_current": 429,
		"router_backlogged":    429,
		"key_unavailable":      429,
		"journal_busy":         429,

		"store_unavailable": 503,
	}
	for code, want := range documented {
		if got := Status(domain.Errorf(code, "x")); got != want {
			t.Errorf("Status(%s) = %d, want %d", code, got, want)
		}
	}
	for code := range statuses {
		if _, ok := documented[code]; !ok {
			t.Errorf("code %q is in the table but not in docs/api.md's (add it to this test with its documented status)", code)
		}
	}
}

// TestEveryDomainCodeIsInTheTable reads the Code constants of package
// domain from its source, so that a code added there without a status here
// fails rather than answering 500.
func TestEveryDomainCodeIsInTheTable(t *testing.T) {
	f, err := parser.ParseFile(token.NewFileSet(), "../domain/error.go", nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, d := range f.Decls {
		g, ok := d.(*ast.GenDecl)
		if !ok || g.Tok != token.CONST {
			continue
		}
		for _, spec := range g.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Code") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok {
					continue
				}
				code, _ := strconv.Unquote(lit.Value)
				n++
				if _, ok := statuses[code]; !ok {
					t.Errorf("domain.%s (%q) has no status in the table", name.Name, code)
				}
			}
		}
	}
	if n != len(statuses) {
		t.Errorf("domain declares %d codes, the table maps %d: every entry of the table should be a domain code", n, len(statuses))
	}
}

func TestStatusOfErrorsWithoutAKnownCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"a plain error", errors.New("disk on fire"), 500},
		{"an unmapped code", domain.Errorf("no_such_code", "x"), 500},
		{"a wrapped domain error", fmt.Errorf("put partner: %w", domain.Errorf(domain.CodeNotFound, "x")), 404},
		{"an internal error", domain.Internal("read", errors.New("disk on fire")), 500},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Status(tt.err); got != tt.want {
				t.Errorf("Status = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	tests := []struct {
		name           string
		err            error
		wantStatus     int
		wantRetryAfter string
		wantCode       string
		wantMessage    string
	}{
		{name: "a retry later names its wait in seconds",
			err:        &domain.Error{Code: domain.CodeJournalBusy, Message: "retry", RetryAfter: 5 * time.Second},
			wantStatus: 429, wantRetryAfter: "5", wantCode: "journal_busy", wantMessage: "retry"},
		{name: "a wait under a second asks for one",
			err:        &domain.Error{Code: domain.CodeRouterStarting, Message: "retry", RetryAfter: time.Millisecond},
			wantStatus: 429, wantRetryAfter: "1", wantCode: "router_starting", wantMessage: "retry"},
		{name: "a refusal has no Retry-After",
			err:        domain.Errorf(domain.CodeWrongCompany, "the callback is for another company"),
			wantStatus: 401, wantCode: "wrong_company", wantMessage: "the callback is for another company"},
		{name: "an internal cause is never sent",
			err:        domain.Internal("append", errors.New("secret path /var/lib/x")),
			wantStatus: 500, wantCode: "internal", wantMessage: "internal error"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Write(rec, tt.err)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetryAfter {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetryAfter)
			}
			if got := rec.Header().Get("Content-Type"); got != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", got)
			}
			var body map[string]map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("body %q: %v", rec.Body, err)
			}
			if want := (map[string]map[string]string{"error": {"code": tt.wantCode, "message": tt.wantMessage}}); fmt.Sprint(body) != fmt.Sprint(want) {
				t.Errorf("body = %v, want %v", body, want)
			}
		})
	}
}
