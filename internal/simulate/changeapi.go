package simulate

import (
	"cmp"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/psa"
	"github.com/switchbackhq/switchback/internal/psaapi"
)

// Bounds of the ChangeAPI.
const (
	// maxTombstones is how many deleted entities a generic partner's feed
	// keeps listing; the oldest deletion is forgotten past it.
	maxTombstones = 1 << 16
	// maxHaloTokens is how many live Halo tokens a partner has at once;
	// past it, issuing one forgets another.
	maxHaloTokens = 1024
	haloTokenLife = time.Hour
	// Page sizes the server chooses: Autotask's documented maximum, and
	// the generic feed's.
	atMaxPage      = 500
	genericPage    = 100
	cwMaxPage      = 1000
	haloMaxPage    = 10000
	maxQueryFilter = 16
)

// ChangeAPI serves, for each partner, its PSA's change API as
// internal/psaapi reads it, over the changes a Run made (Config.ChangeAPI):
// each entity as the PSA holds it after its latest change, and when, by
// the stamp the router reads in that change's webhook (psa.UpdatedAt), so
// a reconciliation matches the two. Changes whose webhook was dropped are
// held like the others; entities that existed before the run and that it
// did not change are not. One server serves every partner, under
// /psa/PARTNER (ChangeAPIBaseURL), which is the partner's psaApi baseUrl
// for every PSA:
//
//   - connectwise: GET /psa/P/v4_6_release/apis/3.0/service/tickets with
//     conditions on lastUpdated (>=, >, <=, <, = [RFC 3339], joined by
//     "and"), orderBy "id asc" or "id desc", page and pageSize (at most
//     1000), answering a JSON array of tickets with _info.lastUpdated;
//     Basic companyId+publicKey:privateKey and the clientId header.
//   - autotask: GET /psa/P/v1.0/Tickets/query?search={"filter":[{"op",
//     "field", "value"}]}, comparisons (eq, gt, gte, lt, lte) on
//     lastActivityDate or id, all of which must hold, and MaxRecords (at
//     most 500, the page size); answering {"items", "pageDetails":
//     {"count", "requestCount", "prevPageUrl", "nextPageUrl"}}, items by
//     id, nextPageUrl this URL with paging=the last id given; headers
//     UserName, Secret and ApiIntegrationCode.
//   - halopsa: POST /psa/P/auth/token (client_credentials, client_id,
//     client_secret, and ?tenant= when the psaApi has a tenant; 400
//     invalid_client otherwise) gives an hour's bearer token for GET
//     /psa/P/api/Tickets?pageinate=true&page_size&page_no&order=id
//     [&orderdesc=true]&datesearch=lastupdate&startdate[&enddate]
//     (startdate inclusive, enddate not), answering {"page_no",
//     "page_size", "record_count", "tickets"} with last_update in UTC
//     without a zone.
//   - generic: GET /psa/P?since=RFC3339[&cursor=C] with the bearer token,
//     answering {"changes": [{"type", "id", "updatedAt", "data"}], "next"},
//     100 changes a page in the order they were made; a deleted entity
//     is listed with "deleted": true and data {"id", "updated_at",
//     "deleted": true} (the
//     latest 65,536 deletions of a partner).
//
// The three vendors list tickets only, and not deleted ones: their APIs
// list what exists. Wrong credentials are 401 (Halo's token endpoint: 400,
// as OAuth2 answers a wrong client), an unknown partner or a path of
// another PSA 404, a query the API would refuse 400.
//
// Credentials: a partner's Partner.PSAAPI when it has one, else derived
// from its id and secret, so the same partners give the same credentials
// on every run: each field is the first 32 hex digits of HMAC-SHA256 keyed
// by the secret of "switchback simulate psaApi ID FIELD" (FIELD the JSON
// name, e.g. privateKey), but ConnectWise's companyId, which is the
// CompanyId its callbacks carry (the id's letters and digits). PSAAPI
// gives them, with the base URL, as the control service takes them.
//
// A ChangeAPI is safe for concurrent use.
type ChangeAPI struct {
	mux *http.ServeMux
	now func() time.Time
	// Page sizes the server picks (tests make them small).
	atPage, genericPage int

	mu       sync.RWMutex
	partners map[string]*apiPartner
}

var _ http.Handler = (*ChangeAPI)(nil)

// apiPartner is what one partner's PSA holds.
type apiPartner struct {
	p      Partner
	access domain.PSAAPI // credentials only, no BaseURL
	seq    int64         // changes recorded
	// entities by type "\x00" id.
	entities map[string]*apiEntity
	tombs    []tomb
	tokens   map[string]time.Time // Halo bearer tokens and their expiry
}

type apiEntity struct {
	held
	num int64 // id as a number, the order of the vendors' pages
	seq int64 // when it last changed, in the partner's order of changes
}

type tomb struct {
	key string
	seq int64
}

// NewChangeAPI returns the change API of partners, holding nothing until a
// Run records changes in it. Its errors: a partner whose id, PSA or secret
// Run would refuse, one listed twice, or whose PSAAPI does not give the
// fields its PSA takes (psaapi.FromPartner's rule).
func NewChangeAPI(partners []Partner) (*ChangeAPI, error) {
	a := &ChangeAPI{now: time.Now, atPage: atMaxPage, genericPage: genericPage, partners: map[string]*apiPartner{}}
	for _, p := range partners {
		if !domain.ValidID(p.ID) {
			return nil, fmt.Errorf("simulate: partner id %q is not valid (lower-case letters, digits, then . _ -; at most 63)", p.ID)
		}
		if a.partners[p.ID] != nil {
			return nil, fmt.Errorf("simulate: partner %q is listed twice", p.ID)
		}
		if err := checkSecret(p); err != nil {
			return nil, err
		}
		access := derivedAccess(p)
		if p.PSAAPI != nil {
			access = *p.PSAAPI
			access.BaseURL = ""
			check := access
			check.BaseURL = "http://127.0.0.1/"
			if _, err := psaapi.FromPartner(domain.Partner{ID: p.ID, PSA: domain.PSA(p.PSA), PSAAPI: &check}); err != nil {
				return nil, fmt.Errorf("simulate: partner %s: %w", p.ID, err)
			}
		}
		a.partners[p.ID] = &apiPartner{p: p, access: access, entities: map[string]*apiEntity{}, tokens: map[string]time.Time{}}
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /psa/{partner}", a.partnerOf(psa.KindGeneric, a.generic))
	mux.HandleFunc("GET /psa/{partner}/v4_6_release/apis/3.0/service/tickets", a.partnerOf(psa.KindConnectWise, a.connectWise))
	mux.HandleFunc("GET /psa/{partner}/v1.0/Tickets/query", a.partnerOf(psa.KindAutotask, a.autotask))
	mux.HandleFunc("POST /psa/{partner}/auth/token", a.partnerOf(psa.KindHaloPSA, a.haloToken))
	mux.HandleFunc("GET /psa/{partner}/api/Tickets", a.partnerOf(psa.KindHaloPSA, a.haloTickets))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		answer(w, http.StatusNotFound, map[string]string{"error": "no such PSA API"})
	})
	a.mux = mux
	return a, nil
}

// ChangeAPIBaseURL is the psaApi baseUrl of partnerID at a ChangeAPI
// served at root (e.g. "http://127.0.0.1:8090"), whatever its PSA.
func ChangeAPIBaseURL(root, partnerID string) string {
	return strings.TrimRight(root, "/") + "/psa/" + url.PathEscape(partnerID)
}

// PSAAPI returns what to set as partnerID's psaApi at the control service
// for a ChangeAPI served at root: ChangeAPIBaseURL and the credentials the
// API asks for. The error says the partner is unknown.
func (a *ChangeAPI) PSAAPI(root, partnerID string) (domain.PSAAPI, error) {
	a.mu.RLock()
	defer a.mu.RUnlock()
	ap := a.partners[partnerID]
	if ap == nil {
		return domain.PSAAPI{}, fmt.Errorf("simulate: the change API has no partner %q", partnerID)
	}
	access := ap.access
	access.BaseURL = ChangeAPIBaseURL(root, partnerID)
	return access, nil
}

// derivedAccess is p's credentials when its Partner has none (see
// ChangeAPI).
func derivedAccess(p Partner) domain.PSAAPI {
	derive := func(field string) string {
		m := hmac.New(sha256.New, []byte(p.Secret))
		m.Write([]byte("switchback simulate psaApi " + p.ID + " " + field))
		return hex.EncodeToString(m.Sum(nil))[:32]
	}
	switch p.PSA {
	case psa.KindConnectWise:
		return domain.PSAAPI{CompanyID: cwCompany(p.ID), PublicKey: derive("publicKey"), PrivateKey: derive("privateKey"), ClientID: derive("clientId")}
	case psa.KindAutotask:
		return domain.PSAAPI{Username: derive("username"), Secret: derive("secret"), IntegrationCode: derive("integrationCode")}
	case psa.KindHaloPSA:
		return domain.PSAAPI{ClientID: derive("clientId"), ClientSecret: derive("clientSecret")}
	default:
		return domain.PSAAPI{Token: derive("token")}
	}
}

// serves reports whether a holds p, with the same PSA.
func (a *ChangeAPI) serves(p Partner) bool {
	a.mu.RLock()
	defer a.mu.RUnlock()
	ap := a.partners[p.ID]
	return ap != nil && ap.p.PSA == p.PSA
}

// record makes changes, in order, at partner's PSA.
func (a *ChangeAPI) record(partner string, changes []held) {
	a.mu.Lock()
	defer a.mu.Unlock()
	ap := a.partners[partner]
	if ap == nil {
		return
	}
	for _, c := range changes {
		ap.seq++
		key := c.typ + "\x00" + c.id
		if c.data == nil {
			// Not listed by this PSA's API: a vendor's other types, or a
			// ticket deleted (which its API no longer lists).
			delete(ap.entities, key)
			continue
		}
		num, _ := strconv.ParseInt(c.id, 10, 64)
		ap.entities[key] = &apiEntity{held: c, num: num, seq: ap.seq}
		if c.action == psa.ActionDeleted {
			ap.tombs = append(ap.tombs, tomb{key, ap.seq})
			if len(ap.tombs) > maxTombstones {
				old := ap.tombs[0]
				ap.tombs = ap.tombs[1:]
				if e := ap.entities[old.key]; e != nil && e.seq == old.seq {
					delete(ap.entities, old.key)
				}
			}
		}
	}
}

// ServeHTTP serves the partners' change APIs (see ChangeAPI).
func (a *ChangeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) { a.mux.ServeHTTP(w, r) }

// partnerOf finds the partner of the path, of PSA kind, or answers 404.
func (a *ChangeAPI) partnerOf(kind string, h func(http.ResponseWriter, *http.Request, *apiPartner)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		a.mu.RLock()
		ap := a.partners[r.PathValue("partner")]
		a.mu.RUnlock()
		if ap == nil || ap.p.PSA != kind {
			answer(w, http.StatusNotFound, map[string]string{"error": "no such PSA API"})
			return
		}
		h(w, r, ap)
	}
}

func answer(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// same compares a credential in constant time.
func same(got, want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(got), []byte(want)) == 1
}

// listed returns ap's entities that keep, ordered by cmp; the caller holds
// a.mu.
func (ap *apiPartner) listed(keep func(*apiEntity) bool, order func(a, b *apiEntity) int) []*apiEntity {
	var out []*apiEntity
	for _, e := range ap.entities {
		if keep(e) {
			out = append(out, e)
		}
	}
	slices.SortFunc(out, order)
	return out
}

func byID(a, b *apiEntity) int {
	return cmp.Or(cmp.Compare(a.num, b.num), cmp.Compare(a.id, b.id))
}

// --- ConnectWise

func (a *ChangeAPI) connectWise(w http.ResponseWriter, r *http.Request, ap *apiPartner) {
	acc := ap.access
	basic := "Basic " + base64.StdEncoding.EncodeToString([]byte(acc.CompanyID+"+"+acc.PublicKey+":"+acc.PrivateKey))
	if !same(r.Header.Get("Authorization"), basic) || !same(r.Header.Get("clientId"), acc.ClientID) {
		answer(w, http.StatusUnauthorized, map[string]string{"code": "Unauthorized", "message": "Invalid credentials or clientId"})
		return
	}
	invalid := func(msg string) {
		answer(w, http.StatusBadRequest, map[string]string{"code": "InvalidObject", "message": msg})
	}
	q := r.URL.Query()
	conds, err := cwConditions(q.Get("conditions"))
	if err != nil {
		invalid(err.Error())
		return
	}
	desc := false
	switch strings.ToLower(strings.Join(strings.Fields(q.Get("orderBy")), " ")) {
	case "", "id", "id asc":
	case "id desc":
		desc = true
	default:
		invalid("orderBy: only id asc or id desc")
		return
	}
	page, size, err := pageParams(q.Get("page"), q.Get("pageSize"), 25, cwMaxPage)
	if err != nil {
		invalid(err.Error())
		return
	}
	a.mu.RLock()
	all := ap.listed(func(e *apiEntity) bool {
		for _, c := range conds {
			if !c(e.updatedAt) {
				return false
			}
		}
		return true
	}, func(x, y *apiEntity) int {
		if desc {
			return byID(y, x)
		}
		return byID(x, y)
	})
	items := make([]json.RawMessage, 0, size)
	for _, e := range pageOf(all, page, size) {
		items = append(items, e.data)
	}
	a.mu.RUnlock()
	answer(w, http.StatusOK, items)
}

// cwConditions parses "lastUpdated>=[T] and lastUpdated<[T]": comparisons
// of lastUpdated, the only field the simulator filters on.
func cwConditions(s string) ([]func(time.Time) bool, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var out []func(time.Time) bool
	for _, part := range splitAnd(s) {
		part = strings.TrimSpace(part)
		rest, ok := cutFold(part, "lastUpdated")
		if !ok {
			return nil, fmt.Errorf("conditions: %q: only lastUpdated can be compared here", part)
		}
		rest = strings.TrimSpace(rest)
		var op string
		for _, o := range []string{">=", "<=", "!=", ">", "<", "="} {
			if strings.HasPrefix(rest, o) {
				op = o
				break
			}
		}
		v := strings.TrimSpace(rest[len(op):])
		if op == "" || len(v) < 2 || v[0] != '[' || v[len(v)-1] != ']' {
			return nil, fmt.Errorf("conditions: %q is not lastUpdated OP [DATE]", part)
		}
		t, err := time.Parse(time.RFC3339Nano, v[1:len(v)-1])
		if err != nil {
			return nil, fmt.Errorf("conditions: %q: the date is not RFC 3339", part)
		}
		out = append(out, compareTo(op, t, timeCompare))
	}
	return out, nil
}

func splitAnd(s string) []string {
	var parts []string
	for {
		i := strings.Index(strings.ToLower(s), " and ")
		if i < 0 {
			return append(parts, s)
		}
		parts = append(parts, s[:i])
		s = s[i+len(" and "):]
	}
}

func cutFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// compareTo returns whether a value stands in relation op (">=" or
// "gte"…) to v.
func compareTo[T any](op string, v T, compare func(a, b T) int) func(T) bool {
	return func(x T) bool {
		c := compare(x, v)
		switch op {
		case ">=", "gte":
			return c >= 0
		case ">", "gt":
			return c > 0
		case "<=", "lte":
			return c <= 0
		case "<", "lt":
			return c < 0
		case "!=", "noteq":
			return c != 0
		default:
			return c == 0
		}
	}
}

func timeCompare(a, b time.Time) int { return a.Compare(b) }

// pageParams reads a 1-based page number and a page size (def when
// absent, at most max).
func pageParams(page, size string, def, max int) (int, int, error) {
	p, s := 1, def
	var err error
	if page != "" {
		if p, err = strconv.Atoi(page); err != nil || p < 1 {
			return 0, 0, fmt.Errorf("page %q is not a number from 1", page)
		}
	}
	if size != "" {
		if s, err = strconv.Atoi(size); err != nil || s < 1 || s > max {
			return 0, 0, fmt.Errorf("page size %q is not a number from 1 to %d", size, max)
		}
	}
	return p, s, nil
}

func pageOf[T any](all []T, page, size int) []T {
	lo := (page - 1) * size
	if lo < 0 || lo >= len(all) {
		return nil
	}
	return all[lo:min(lo+size, len(all))]
}

// --- Autotask

type atQuery struct {
	Filter     []atCondition `json:"filter"`
	MaxRecords int           `json:"MaxRecords"`
}

type atCondition struct {
	Op    string `json:"op"`
	Field string `json:"field"`
	Value any    `json:"value"`
}

func (a *ChangeAPI) autotask(w http.ResponseWriter, r *http.Request, ap *apiPartner) {
	acc := ap.access
	if !same(r.Header.Get("UserName"), acc.Username) || !same(r.Header.Get("Secret"), acc.Secret) ||
		!same(r.Header.Get("ApiIntegrationCode"), acc.IntegrationCode) {
		answer(w, http.StatusUnauthorized, map[string][]string{"errors": {"The user is not authenticated."}})
		return
	}
	refuse := func(msg string) { answer(w, http.StatusBadRequest, map[string][]string{"errors": {msg}}) }
	q := r.URL.Query()
	var search atQuery
	if err := json.Unmarshal([]byte(q.Get("search")), &search); err != nil {
		refuse("search is not a JSON query object")
		return
	}
	if len(search.Filter) == 0 || len(search.Filter) > maxQueryFilter {
		refuse(fmt.Sprintf("search needs 1 to %d filter conditions", maxQueryFilter))
		return
	}
	size := a.atPage
	if search.MaxRecords != 0 {
		if search.MaxRecords < 1 || search.MaxRecords > atMaxPage {
			refuse(fmt.Sprintf("MaxRecords must be 1 to %d", atMaxPage))
			return
		}
		size = min(size, search.MaxRecords)
	}
	var keep []func(*apiEntity) bool
	for _, c := range search.Filter {
		op := strings.ToLower(c.Op)
		if !slices.Contains([]string{"eq", "noteq", "gt", "gte", "lt", "lte"}, op) {
			refuse(fmt.Sprintf("filter op %q is not one of eq, noteq, gt, gte, lt, lte", c.Op))
			return
		}
		switch strings.ToLower(c.Field) {
		case "lastactivitydate":
			s, _ := c.Value.(string)
			t, err := time.Parse(time.RFC3339Nano, s)
			if err != nil {
				if t, err = time.ParseInLocation("2006-01-02T15:04:05.999999999", s, time.UTC); err != nil {
					refuse(fmt.Sprintf("lastActivityDate value %v is not a date", c.Value))
					return
				}
			}
			f := compareTo(op, t, timeCompare)
			keep = append(keep, func(e *apiEntity) bool { return f(e.updatedAt) })
		case "id":
			n, ok := c.Value.(float64)
			if !ok || n != float64(int64(n)) {
				refuse(fmt.Sprintf("id value %v is not an integer", c.Value))
				return
			}
			f := compareTo(op, int64(n), cmp.Compare[int64])
			keep = append(keep, func(e *apiEntity) bool { return f(e.num) })
		default:
			refuse(fmt.Sprintf("filter field %q: the simulator filters on lastActivityDate and id", c.Field))
			return
		}
	}
	// Pages go forward by id, so a ticket changed while they are read
	// neither shifts the next page nor is skipped.
	var after int64
	if p := q.Get("paging"); p != "" {
		var err error
		if after, err = strconv.ParseInt(p, 10, 64); err != nil {
			refuse("paging is not an id")
			return
		}
	}
	a.mu.RLock()
	all := ap.listed(func(e *apiEntity) bool {
		if e.num <= after {
			return false
		}
		for _, k := range keep {
			if !k(e) {
				return false
			}
		}
		return true
	}, byID)
	items := make([]json.RawMessage, 0, min(size, len(all)))
	for _, e := range all[:min(size, len(all))] {
		items = append(items, e.data)
	}
	var next any
	if len(all) > size {
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		nq := url.Values{"search": {q.Get("search")}, "paging": {all[size-1].id}}
		next = scheme + "://" + r.Host + r.URL.Path + "?" + nq.Encode()
	}
	a.mu.RUnlock()
	answer(w, http.StatusOK, map[string]any{"items": items, "pageDetails": map[string]any{
		"count": len(items), "requestCount": atMaxPage, "prevPageUrl": nil, "nextPageUrl": next}})
}

// --- HaloPSA

func (a *ChangeAPI) haloToken(w http.ResponseWriter, r *http.Request, ap *apiPartner) {
	invalid := func() { answer(w, http.StatusBadRequest, map[string]string{"error": "invalid_client"}) }
	if err := r.ParseForm(); err != nil {
		answer(w, http.StatusBadRequest, map[string]string{"error": "invalid_request"})
		return
	}
	if r.PostForm.Get("grant_type") != "client_credentials" {
		answer(w, http.StatusBadRequest, map[string]string{"error": "unsupported_grant_type"})
		return
	}
	acc := ap.access
	if !same(r.PostForm.Get("client_id"), acc.ClientID) || !same(r.PostForm.Get("client_secret"), acc.ClientSecret) {
		invalid()
		return
	}
	if acc.Tenant != "" && r.URL.Query().Get("tenant") != acc.Tenant {
		invalid()
		return
	}
	var b [24]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	tok := base64.RawURLEncoding.EncodeToString(b[:])
	now := a.now()
	a.mu.Lock()
	for t, until := range ap.tokens {
		if !now.Before(until) {
			delete(ap.tokens, t)
		}
	}
	for t := range ap.tokens {
		if len(ap.tokens) < maxHaloTokens {
			break
		}
		delete(ap.tokens, t)
	}
	ap.tokens[tok] = now.Add(haloTokenLife)
	a.mu.Unlock()
	answer(w, http.StatusOK, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": int(haloTokenLife / time.Second)})
}

func (a *ChangeAPI) haloTickets(w http.ResponseWriter, r *http.Request, ap *apiPartner) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a.mu.RLock()
	until, known := ap.tokens[tok]
	a.mu.RUnlock()
	if !ok || !known || !a.now().Before(until) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		answer(w, http.StatusUnauthorized, map[string]string{"error": "invalid_token"})
		return
	}
	refuse := func(msg string) { answer(w, http.StatusBadRequest, map[string]string{"error": msg}) }
	q := r.URL.Query()
	var keep []func(time.Time) bool
	if ds := q.Get("datesearch"); ds != "" && ds != "lastupdate" {
		refuse("datesearch: the simulator searches lastupdate only")
		return
	}
	for _, b := range []struct{ name, op string }{{"startdate", ">="}, {"enddate", "<"}} {
		v := q.Get(b.name)
		if v == "" {
			continue
		}
		t, err := time.Parse(time.RFC3339Nano, v)
		if err != nil {
			if t, err = time.ParseInLocation("2006-01-02T15:04:05.999999999", v, time.UTC); err != nil {
				refuse(b.name + " is not a date")
				return
			}
		}
		keep = append(keep, compareTo(b.op, t, timeCompare))
	}
	if o := q.Get("order"); o != "" && !strings.EqualFold(o, "id") {
		refuse("order: the simulator orders by id only")
		return
	}
	desc := strings.EqualFold(q.Get("orderdesc"), "true")
	paged := strings.EqualFold(q.Get("pageinate"), "true")
	page, size, err := pageParams(q.Get("page_no"), q.Get("page_size"), 50, haloMaxPage)
	if err != nil {
		refuse(err.Error())
		return
	}
	a.mu.RLock()
	all := ap.listed(func(e *apiEntity) bool {
		for _, k := range keep {
			if !k(e.updatedAt) {
				return false
			}
		}
		return true
	}, func(x, y *apiEntity) int {
		if desc {
			return byID(y, x)
		}
		return byID(x, y)
	})
	shown := all
	if paged {
		shown = pageOf(all, page, size)
	} else {
		page, size = 1, len(all)
	}
	tickets := make([]json.RawMessage, 0, len(shown))
	for _, e := range shown {
		tickets = append(tickets, e.data)
	}
	a.mu.RUnlock()
	answer(w, http.StatusOK, map[string]any{"page_no": page, "page_size": size, "record_count": len(all), "tickets": tickets})
}

// --- generic

// genericChange is one entry of the generic change feed.
type genericChange struct {
	Type      string          `json:"type"`
	ID        string          `json:"id"`
	UpdatedAt string          `json:"updatedAt"`
	Deleted   bool            `json:"deleted,omitempty"`
	Data      json.RawMessage `json:"data"`
}

func (a *ChangeAPI) generic(w http.ResponseWriter, r *http.Request, ap *apiPartner) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !same(tok, ap.access.Token) {
		w.Header().Set("WWW-Authenticate", "Bearer")
		answer(w, http.StatusUnauthorized, map[string]string{"error": "invalid token"})
		return
	}
	q := r.URL.Query()
	since, err := time.Parse(time.RFC3339Nano, q.Get("since"))
	if err != nil {
		answer(w, http.StatusBadRequest, map[string]string{"error": "since must be an RFC 3339 time"})
		return
	}
	// The cursor is the order of the last change given: a change made
	// while the feed is read comes after it, and is read too.
	var after int64
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.ParseInt(strings.TrimPrefix(c, "c"), 10, 64)
		if err != nil || !strings.HasPrefix(c, "c") || n < 0 {
			answer(w, http.StatusBadRequest, map[string]string{"error": "cursor is not one this feed gave"})
			return
		}
		after = n
	}
	a.mu.RLock()
	all := ap.listed(func(e *apiEntity) bool {
		return e.seq > after && !e.updatedAt.Before(since)
	}, func(x, y *apiEntity) int { return cmp.Compare(x.seq, y.seq) })
	n := min(a.genericPage, len(all))
	changes := make([]genericChange, 0, n)
	for _, e := range all[:n] {
		changes = append(changes, genericChange{Type: e.typ, ID: e.id, UpdatedAt: e.updatedAt.Format(time.RFC3339Nano),
			Deleted: e.action == psa.ActionDeleted, Data: e.data})
	}
	var next *string
	if len(all) > n {
		c := "c" + strconv.FormatInt(all[n-1].seq, 10)
		next = &c
	}
	a.mu.RUnlock()
	answer(w, http.StatusOK, struct {
		Changes []genericChange `json:"changes"`
		Next    *string         `json:"next"`
	}{changes, next})
}
