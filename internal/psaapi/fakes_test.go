package psaapi

// Fakes of the four change APIs, written from the vendors' documentation
// (see doc.go): each checks the authentication headers exactly, applies
// the filter it was sent as the vendor documents it, serves pages, and
// can misbehave on demand.

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Credentials of the fakes: distinctive, so that a test can look for any
// of them in an error or a log.
const (
	cwCompany    = "acme-co-SECRET1"
	cwPublic     = "pub-SECRET2"
	cwPrivate    = "priv-SECRET3"
	cwClientID   = "client-SECRET4"
	atUser       = "api-user-SECRET5@acme.example"
	atSecret     = "at-secret-SECRET6"
	atCode       = "at-code-SECRET7"
	haloClientID = "halo-id-SECRET8"
	haloSecret   = "halo-secret-SECRET9"
	genToken     = "gen-token-SECRET10"
)

// pathToken and queryToken stand for the secrets a URL may carry: a
// generic feed's path, a tenant or an opaque cursor in a query.
const (
	pathToken  = "CRED-pathtoken"
	queryToken = "CRED-querytoken"
)

var secrets = []string{cwCompany, cwPublic, cwPrivate, cwClientID, atUser, atSecret, atCode, haloClientID, haloSecret, genToken, pathToken, queryToken}

// t0 starts the window of the tests; the window is [t0, t0+1h).
var t0 = time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)

type fakeTicket struct {
	id int
	at time.Time
}

// dataset: ticket 2 changed exactly at since (in), 10 exactly at until
// (out), 1 before and 11 after the window; the others inside.
func dataset() []fakeTicket {
	ts := []fakeTicket{{1, t0.Add(-time.Hour)}, {2, t0}}
	for i := 3; i <= 9; i++ {
		ts = append(ts, fakeTicket{i, t0.Add(time.Duration(i) * time.Minute)})
	}
	return append(ts, fakeTicket{10, t0.Add(time.Hour)}, fakeTicket{11, t0.Add(2 * time.Hour)})
}

var wantIDs = []string{"2", "3", "4", "5", "6", "7", "8", "9"}

// faults makes a fake misbehave.
type faults struct {
	// retryAfter, when set, answers the second data request once with
	// status 429 (or retryStatus) and this Retry-After.
	retryAfter  string
	retryStatus int
	// status answers every data request with it.
	status int
	// malformedPage answers that page with a body that is not the API's.
	malformedPage int
	// loop makes paging never advance.
	loop bool
	// hangUpPage closes the connection, unanswered, on every request for
	// that page.
	hangUpPage int
	// unreachable: the test sends every request to a closed port.
	unreachable bool
}

// fake is one PSA API server and what it saw.
type fake struct {
	srv *httptest.Server
	t   *testing.T
	f   faults

	mu       sync.Mutex
	requests int // data requests
	retried  bool
	filters  []string // the filter of each data request, as sent
}

// data counts a data request and says whether a fault answered it.
func (fk *fake) data(w http.ResponseWriter, page int) bool {
	fk.mu.Lock()
	fk.requests++
	n := fk.requests
	retry := fk.f.retryAfter != "" && n == 2 && !fk.retried
	if retry {
		fk.retried = true
	}
	fk.mu.Unlock()
	switch {
	case fk.f.hangUpPage != 0 && fk.f.hangUpPage == page:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err != nil {
			fk.t.Errorf("hijack: %v", err)
			return true
		}
		conn.Close()
		return true
	case fk.f.status != 0:
		w.WriteHeader(fk.f.status)
		fmt.Fprint(w, `{"message":"refused"}`)
		return true
	case retry:
		w.Header().Set("Retry-After", fk.f.retryAfter)
		code := fk.f.retryStatus
		if code == 0 {
			code = http.StatusTooManyRequests
		}
		w.WriteHeader(code)
		return true
	case fk.f.malformedPage == page:
		fmt.Fprint(w, `<html>Service Unavailable`)
		return true
	}
	return false
}

func (fk *fake) saw(filter string) {
	fk.mu.Lock()
	fk.filters = append(fk.filters, filter)
	fk.mu.Unlock()
}

// refuse answers 401 to a request whose header is not exactly want.
func (fk *fake) refuse(w http.ResponseWriter, r *http.Request, header, want string) bool {
	if got := r.Header.Get(header); got != want {
		fk.t.Errorf("%s %s: header %s is %q, want %q", r.Method, r.URL.Path, header, got, want)
		w.WriteHeader(http.StatusUnauthorized)
		return true
	}
	return false
}

func pageOf[T any](all []T, page, size int) []T {
	lo := (page - 1) * size
	if lo >= len(all) || lo < 0 {
		return []T{}
	}
	return all[lo:min(lo+size, len(all))]
}

// --- ConnectWise: GET …/apis/3.0/service/tickets, a JSON array.

func newConnectWiseFake(t *testing.T, tickets []fakeTicket, f faults) *fake {
	fk := &fake{t: t, f: f}
	fk.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/v4_6_release/apis/3.0/service/tickets" {
			t.Errorf("connectwise: unexpected %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(cwCompany+"+"+cwPublic+":"+cwPrivate))
		if fk.refuse(w, r, "Authorization", basic) || fk.refuse(w, r, "clientId", cwClientID) {
			return
		}
		q := r.URL.Query()
		page, _ := strconv.Atoi(q.Get("page"))
		size, _ := strconv.Atoi(q.Get("pageSize"))
		if page < 1 || size < 1 || size > 1000 || q.Get("orderBy") != "id asc" {
			t.Errorf("connectwise: page %q pageSize %q orderBy %q", q.Get("page"), q.Get("pageSize"), q.Get("orderBy"))
		}
		cond := q.Get("conditions")
		fk.saw(cond)
		ts, ok := strings.CutPrefix(cond, "lastUpdated>=[")
		ts, ok2 := strings.CutSuffix(ts, "]")
		from, err := time.Parse("2006-01-02T15:04:05Z", ts)
		if !ok || !ok2 || err != nil {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"code":"InvalidObject","message":"conditions %q"}`, cond)
			return
		}
		if fk.data(w, page) {
			return
		}
		if fk.f.loop {
			page = 1
		}
		var match []map[string]any
		for _, tk := range tickets {
			if !tk.at.Before(from) {
				match = append(match, map[string]any{"id": tk.id, "summary": fmt.Sprintf("ticket %d", tk.id),
					"_info": map[string]string{"lastUpdated": tk.at.Format("2006-01-02T15:04:05Z"), "updatedBy": "api"}})
			}
		}
		_ = json.NewEncoder(w).Encode(pageOf(match, page, size))
	}))
	t.Cleanup(fk.srv.Close)
	return fk
}

// --- Autotask: GET {zone}/v1.0/Tickets/query?search=…, items and pageDetails.

const atPageSize = 3

type atSearch struct {
	Filter []atFilter `json:"filter"`
}

func newAutotaskFake(t *testing.T, tickets []fakeTicket, f faults, nextHost string) *fake {
	fk := &fake{t: t, f: f}
	fk.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/atservicesrest/v1.0/Tickets/query" {
			t.Errorf("autotask: unexpected %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		if fk.refuse(w, r, "UserName", atUser) || fk.refuse(w, r, "Secret", atSecret) || fk.refuse(w, r, "ApiIntegrationCode", atCode) {
			return
		}
		q := r.URL.Query()
		var s atSearch
		if err := json.Unmarshal([]byte(q.Get("search")), &s); err != nil {
			w.WriteHeader(http.StatusInternalServerError)
			fmt.Fprint(w, `{"errors":["search is not JSON"]}`)
			return
		}
		fk.saw(q.Get("search"))
		page := 1
		if p := q.Get("paging"); p != "" {
			page, _ = strconv.Atoi(p)
		}
		if fk.data(w, page) {
			return
		}
		var match []map[string]any
		for _, tk := range tickets {
			if atMatches(t, s.Filter, tk.at) {
				match = append(match, map[string]any{"id": tk.id, "title": fmt.Sprintf("ticket %d", tk.id),
					"lastActivityDate": tk.at.Format("2006-01-02T15:04:05.000Z")})
			}
		}
		items := pageOf(match, page, atPageSize)
		var next any
		if page*atPageSize < len(match) {
			np := page + 1
			if fk.f.loop {
				np = 2
			}
			host := fk.srv.URL
			if nextHost != "" {
				host = nextHost
			}
			next = host + "/atservicesrest/v1.0/Tickets/query?" + url.Values{"search": {q.Get("search")}, "paging": {strconv.Itoa(np)}}.Encode()
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"items": items,
			"pageDetails": map[string]any{"count": len(items), "requestCount": 500, "prevPageUrl": nil, "nextPageUrl": next}})
	}))
	t.Cleanup(fk.srv.Close)
	return fk
}

func atMatches(t *testing.T, filter []atFilter, at time.Time) bool {
	for _, f := range filter {
		if f.Field != "lastActivityDate" {
			t.Errorf("autotask: filter on %q", f.Field)
			return false
		}
		v, err := time.Parse(time.RFC3339Nano, f.Value)
		if err != nil {
			t.Errorf("autotask: filter value %q: %v", f.Value, err)
			return false
		}
		ok := map[string]bool{"gt": at.After(v), "gte": !at.Before(v), "lt": at.Before(v), "lte": !at.After(v)}
		m, known := ok[f.Op]
		if !known {
			t.Errorf("autotask: op %q", f.Op)
		}
		if !m {
			return false
		}
	}
	return true
}

// --- HaloPSA: POST /auth/token, then GET /api/Tickets.

func newHaloFake(t *testing.T, tickets []fakeTicket, f faults, revokeFirst bool) *fake {
	fk := &fake{t: t, f: f}
	var mu sync.Mutex
	issued := 0
	fk.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/auth/token":
			if ct := r.Header.Get("Content-Type"); ct != "application/x-www-form-urlencoded" {
				t.Errorf("halo token: Content-Type %q", ct)
			}
			if err := r.ParseForm(); err != nil {
				t.Errorf("halo token: %v", err)
			}
			want := url.Values{"grant_type": {"client_credentials"}, "client_id": {haloClientID}, "client_secret": {haloSecret}, "scope": {"all"}}
			if r.PostForm.Encode() != want.Encode() {
				w.WriteHeader(http.StatusBadRequest)
				fmt.Fprint(w, `{"error":"invalid_client"}`)
				return
			}
			mu.Lock()
			issued++
			tok := fmt.Sprintf("halo-token-%d", issued)
			mu.Unlock()
			_ = json.NewEncoder(w).Encode(map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 3600})
		case r.Method == http.MethodGet && r.URL.Path == "/api/Tickets":
			mu.Lock()
			valid := "Bearer halo-token-" + strconv.Itoa(issued)
			if revokeFirst && issued == 1 {
				valid = "revoked"
			}
			mu.Unlock()
			if r.Header.Get("Authorization") != valid {
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			q := r.URL.Query()
			page, _ := strconv.Atoi(q.Get("page_no"))
			size, _ := strconv.Atoi(q.Get("page_size"))
			if q.Get("pageinate") != "true" || page < 1 || size < 1 || q.Get("datesearch") != "lastupdate" || q.Get("order") != "id" {
				t.Errorf("halo: query %s", r.URL.RawQuery)
			}
			fk.saw(q.Get("startdate"))
			from, err := time.Parse("2006-01-02T15:04:05", q.Get("startdate"))
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			if fk.data(w, page) {
				return
			}
			if fk.f.loop {
				page = 1
			}
			var match []map[string]any
			for _, tk := range tickets {
				if tk.at.After(from) {
					match = append(match, map[string]any{"id": tk.id, "summary": fmt.Sprintf("ticket %d", tk.id),
						"last_update": tk.at.Format("2006-01-02T15:04:05.000")})
				}
			}
			_ = json.NewEncoder(w).Encode(map[string]any{"page_no": page, "page_size": size, "record_count": len(match),
				"tickets": pageOf(match, page, size)})
		default:
			t.Errorf("halo: unexpected %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(fk.srv.Close)
	return fk
}

// --- generic: GET {baseUrl}?since=…&cursor=…

const genPageSize = 3

func newGenericFake(t *testing.T, tickets []fakeTicket, f faults) *fake {
	fk := &fake{t: t, f: f}
	fk.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet || r.URL.Path != "/changes" {
			t.Errorf("generic: unexpected %s %s", r.Method, r.URL.Path)
			http.NotFound(w, r)
			return
		}
		if fk.refuse(w, r, "Authorization", "Bearer "+genToken) {
			return
		}
		q := r.URL.Query()
		since, err := time.Parse(time.RFC3339Nano, q.Get("since"))
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		fk.saw(q.Get("since"))
		page := 1
		if c := q.Get("cursor"); c != "" {
			n, _, _ := strings.Cut(strings.TrimPrefix(c, "C"), ".")
			page, _ = strconv.Atoi(n)
		}
		if fk.data(w, page) {
			return
		}
		var match []map[string]any
		for _, tk := range tickets {
			if !tk.at.Before(since) {
				match = append(match, map[string]any{"type": "ticket", "id": strconv.Itoa(tk.id),
					"updatedAt": tk.at.Format(time.RFC3339Nano), "data": map[string]any{"id": tk.id}})
			}
		}
		var next any
		if page*genPageSize < len(match) {
			// An opaque cursor may be a token: a transport error must not
			// quote it.
			next = "C" + strconv.Itoa(page+1) + "." + queryToken
			if fk.f.loop {
				next = "C2." + queryToken
			}
		}
		_ = json.NewEncoder(w).Encode(map[string]any{"changes": pageOf(match, page, genPageSize), "next": next})
	}))
	t.Cleanup(fk.srv.Close)
	return fk
}

// --- the four, for tests that run against each.

type psaCase struct {
	psa domain.PSA
	// start serves tickets with the faults and returns the fake and the
	// Config to reach it.
	start func(t *testing.T, tickets []fakeTicket, f faults) (*fake, Config)
}

var psaCases = []psaCase{
	{domain.PSAConnectWise, func(t *testing.T, ts []fakeTicket, f faults) (*fake, Config) {
		fk := newConnectWiseFake(t, ts, f)
		return fk, Config{PSA: domain.PSAConnectWise, BaseURL: fk.srv.URL, CompanyID: cwCompany, PublicKey: cwPublic, PrivateKey: cwPrivate, ClientID: cwClientID}
	}},
	{domain.PSAAutotask, func(t *testing.T, ts []fakeTicket, f faults) (*fake, Config) {
		fk := newAutotaskFake(t, ts, f, "")
		return fk, Config{PSA: domain.PSAAutotask, BaseURL: fk.srv.URL + "/atservicesrest", Username: atUser, Secret: atSecret, IntegrationCode: atCode}
	}},
	{domain.PSAHaloPSA, func(t *testing.T, ts []fakeTicket, f faults) (*fake, Config) {
		fk := newHaloFake(t, ts, f, false)
		return fk, Config{PSA: domain.PSAHaloPSA, BaseURL: fk.srv.URL, ClientID: haloClientID, ClientSecret: haloSecret}
	}},
	{domain.PSAGeneric, func(t *testing.T, ts []fakeTicket, f faults) (*fake, Config) {
		fk := newGenericFake(t, ts, f)
		return fk, Config{PSA: domain.PSAGeneric, BaseURL: fk.srv.URL + "/changes", Token: genToken}
	}},
}

// testPolicy retries like the default but records its waits instead of
// sleeping, and has no jitter.
func testPolicy(slept *[]time.Duration) retryPolicy {
	r := defaultRetry()
	r.now = func() time.Time { return t0.Add(3 * time.Hour) }
	r.jitter = func(time.Duration) time.Duration { return 0 }
	var mu sync.Mutex
	r.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		*slept = append(*slept, d)
		mu.Unlock()
		return ctx.Err()
	}
	return r
}

// open makes the Source of cfg with small pages, so that the datasets
// span several.
func open(t *testing.T, cfg Config, hc *http.Client, r retryPolicy) Source {
	t.Helper()
	src, err := newSource(cfg, hc, r)
	if err != nil {
		t.Fatalf("newSource: %v", err)
	}
	switch s := src.(type) {
	case *connectWise:
		s.pageSize = 2
	case *halo:
		s.pageSize = 2
	}
	return src
}

// collect runs Changes over the test window and returns the ids reported.
func collect(t *testing.T, ctx context.Context, src Source) ([]Change, error) {
	t.Helper()
	var got []Change
	err := src.Changes(ctx, t0, t0.Add(time.Hour), func(c Change) error {
		got = append(got, c)
		return nil
	})
	return got, err
}

func ids(cs []Change) []string {
	out := make([]string, 0, len(cs))
	for _, c := range cs {
		out = append(out, c.ID)
	}
	slices.Sort(out)
	return slices.Compact(out)
}
