package simulate

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/psa"
	"github.com/switchbackhq/switchback/internal/psaapi"
)

// apiServer serves a ChangeAPI and counts the data requests per partner.
type apiServer struct {
	api *ChangeAPI
	srv *httptest.Server

	mu    sync.Mutex
	pages map[string]int // partner: GETs answered 200
}

func newAPIServer(t *testing.T, partners []Partner) *apiServer {
	t.Helper()
	api, err := NewChangeAPI(partners)
	if err != nil {
		t.Fatal(err)
	}
	s := &apiServer{api: api, pages: map[string]int{}}
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, r)
		if r.Method == http.MethodGet && rec.Code == http.StatusOK {
			s.mu.Lock()
			s.pages[strings.Split(strings.TrimPrefix(r.URL.Path, "/psa/"), "/")[0]]++
			s.mu.Unlock()
		}
		for k, v := range rec.Header() {
			w.Header()[k] = v
		}
		w.WriteHeader(rec.Code)
		w.Write(rec.Body.Bytes())
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// source is the real psaapi client of p at s, configured as the control
// service configures it: from the partner's psaApi by psaapi.FromPartner.
func (s *apiServer) source(t *testing.T, p Partner, edit func(*domain.PSAAPI)) psaapi.Source {
	t.Helper()
	access, err := s.api.PSAAPI(s.srv.URL, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if edit != nil {
		edit(&access)
	}
	cfg, err := psaapi.FromPartner(domain.Partner{ID: p.ID, PSA: domain.PSA(p.PSA), PSAAPI: &access})
	if err != nil {
		t.Fatalf("%s: FromPartner: %v", p.ID, err)
	}
	src, err := psaapi.New(cfg, s.srv.Client())
	if err != nil {
		t.Fatal(err)
	}
	return src
}

// read lists what p's change API reports changed in [since, until), by
// type/id, the last report of each.
func (s *apiServer) read(t *testing.T, p Partner, since, until time.Time) map[string]psaapi.Change {
	t.Helper()
	got := map[string]psaapi.Change{}
	err := s.source(t, p, nil).Changes(context.Background(), since, until, func(c psaapi.Change) error {
		got[c.Type+"/"+c.ID] = c
		return nil
	})
	if err != nil {
		t.Fatalf("%s: Changes: %v", p.ID, err)
	}
	return got
}

// lists reports whether p's PSA API lists an entity whose latest event is
// env: the vendors list tickets not deleted, generic every change.
func lists(p Partner, env psa.Envelope) bool {
	return p.PSA == psa.KindGeneric || env.EntityType == Ticket && env.Action != psa.ActionDeleted
}

func deletedData(c psaapi.Change) bool {
	var d struct{ Deleted bool }
	return json.Unmarshal(c.Data, &d) == nil && d.Deleted
}

// TestChangeAPIReportsWhatTheWebhooksCarried: after a run, each partner's
// change API, read by the real psaapi client, reports every entity the
// run changed that its PSA's API lists, with the stamp its latest webhook
// carried as the router reads it, and nothing else.
func TestChangeAPIReportsWhatTheWebhooksCarried(t *testing.T) {
	h := newHookServer(t, testPartners)
	s := newAPIServer(t, testPartners)
	s.api.atPage, s.api.genericPage = 4, 5
	cfg := h.config(testPartners)
	cfg.Count, cfg.ChangeAPI = 600, s.api
	cfg.Burst = Burst{Every: 50, Size: 10}
	since := time.Now().Add(-time.Second)
	st, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	until := time.Now().Add(time.Second)
	if st.Acknowledged != cfg.Count {
		t.Fatalf("%d of %d acknowledged", st.Acknowledged, cfg.Count)
	}

	h.mu.Lock()
	defer h.mu.Unlock()
	for _, p := range testPartners {
		// The latest event of each entity, as the router received it
		// (no resends: a partner's deliveries arrive in the order made).
		latest := map[string]psa.Envelope{}
		for _, r := range h.envelopes[p.ID] {
			latest[r.env.EntityType+"/"+r.env.EntityID] = r.env
		}
		want := map[string]time.Time{}
		deleted := map[string]bool{}
		for k, env := range latest {
			if !lists(p, env) {
				continue
			}
			at, ok := psa.UpdatedAt(p.PSA, env.Payload)
			if !ok {
				t.Fatalf("%s: %s: no stamp in %s", p.ID, k, env.Payload)
			}
			want[k] = at
			deleted[k] = env.Action == psa.ActionDeleted
		}
		got := s.read(t, p, since, until)
		s.mu.Lock()
		pages := s.pages[p.ID]
		s.mu.Unlock()
		if (p.PSA == psa.KindAutotask || p.PSA == psa.KindGeneric) && pages < 3 {
			t.Errorf("%s: %d pages read, want several", p.ID, pages)
		}
		gotAt := map[string]time.Time{}
		for k, c := range got {
			gotAt[k] = c.UpdatedAt
			if deletedData(c) != deleted[k] {
				t.Errorf("%s: %s: data %s, deleted at the PSA: %v", p.ID, k, c.Data, deleted[k])
			}
		}
		if len(want) < 5 {
			t.Errorf("%s: only %d entities listed", p.ID, len(want))
		}
		if diff := gocmp.Diff(want, gotAt); diff != "" {
			t.Errorf("%s: the change API's updatedAt differs from the webhooks' stamps (-webhooks +api):\n%s", p.ID, diff)
		}
		// A window that ends before the run lists nothing.
		if early := s.read(t, p, since.Add(-time.Hour), since); len(early) != 0 {
			t.Errorf("%s: %d changes listed before the run", p.ID, len(early))
		}
	}
}

// fill makes n tickets at p's PSA, each by the event the simulator sends
// for it, and returns the stamp of each ticket's event by id.
func fill(t *testing.T, api *ChangeAPI, p Partner, n int) map[string]time.Time {
	t.Helper()
	cfg, err := Config{URL: "http://127.0.0.1:1", Partners: []Partner{p}, Seed: 3}.normalize()
	if err != nil {
		t.Fatal(err)
	}
	g, err := newGenerator(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ps := g.partners[0]
	stamps := map[string]time.Time{}
	now := time.Now()
	for i := range n {
		e := g.newEntity(ps, Ticket, 5_000_000+int64(i))
		var body []byte
		var ev LedgerEntry
		var data json.RawMessage
		switch p.PSA {
		case psa.KindConnectWise:
			body, ev, data = g.connectWise(ps, Ticket, psa.ActionCreated, e, now)
		case psa.KindAutotask:
			body, ev, data = g.autotask(ps, Ticket, psa.ActionCreated, e, now)
		case psa.KindHaloPSA:
			body, ev, data = g.haloEvent(ps, Ticket, psa.ActionCreated, e, now)
		default:
			body, ev, data = g.generic(ps, Ticket, psa.ActionCreated, e, now)
		}
		h := ps.held(body, ev, data)
		api.record(p.ID, []held{h})
		stamps[Ticket+"/"+ev.EntityID] = h.updatedAt
	}
	return stamps
}

// TestChangeAPIPages: the client's page sizes (ConnectWise 1000, Halo 100)
// and the server's (Autotask 500, generic 100) are crossed several times,
// and every ticket is reported once, with its stamp.
func TestChangeAPIPages(t *testing.T) {
	partners := []Partner{testPartners[0], testPartners[1], testPartners[2], testPartners[4]}
	s := newAPIServer(t, partners)
	for _, p := range partners {
		t.Run(p.PSA, func(t *testing.T) {
			n := map[string]int{psa.KindConnectWise: 2100, psa.KindAutotask: 1100, psa.KindHaloPSA: 250, psa.KindGeneric: 250}[p.PSA]
			want := fill(t, s.api, p, n)
			var got []string
			at := map[string]time.Time{}
			err := s.source(t, p, nil).Changes(context.Background(), time.Now().Add(-time.Hour), time.Now().Add(time.Hour), func(c psaapi.Change) error {
				got = append(got, c.Type+"/"+c.ID)
				at[c.Type+"/"+c.ID] = c.UpdatedAt
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != n {
				t.Errorf("%d tickets reported, want %d, each once", len(got), n)
			}
			if diff := gocmp.Diff(want, at); diff != "" {
				t.Errorf("(-stamps +api):\n%s", diff)
			}
			s.mu.Lock()
			pages := s.pages[p.ID]
			s.mu.Unlock()
			if pages < 3 {
				t.Errorf("%d pages, want at least 3", pages)
			}
		})
	}
}

// TestChangeAPIRefusesWrongCredentials: a wrong credential, another
// partner's, or none is refused as the PSA refuses it, which the client
// reads as ErrCredentialsRefused.
func TestChangeAPIRefusesWrongCredentials(t *testing.T) {
	withAPI := slices.Clone(testPartners)
	// A partner may give its own credentials; the derived ones then fail.
	withAPI[5].PSAAPI = &domain.PSAAPI{Token: "nu-feed-token-given"}
	s := newAPIServer(t, withAPI)
	other, err := s.api.PSAAPI(s.srv.URL, "gamma-halo")
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		partner int
		name    string
		edit    func(*domain.PSAAPI)
	}{
		{0, "connectwise private key", func(a *domain.PSAAPI) { a.PrivateKey += "x" }},
		{0, "connectwise clientId", func(a *domain.PSAAPI) { a.ClientID = "someone-else" }},
		{1, "autotask secret", func(a *domain.PSAAPI) { a.Secret = strings.ToUpper(a.Secret) }},
		{1, "autotask integration code", func(a *domain.PSAAPI) { a.IntegrationCode += "1" }},
		{2, "halo client secret", func(a *domain.PSAAPI) { a.ClientSecret = "wrong" }},
		{3, "another halo partner's client", func(a *domain.PSAAPI) { a.ClientID, a.ClientSecret = other.ClientID, other.ClientSecret }},
		{4, "generic token", func(a *domain.PSAAPI) { a.Token = "wrong" }},
		{5, "derived token where one was given", func(a *domain.PSAAPI) { a.Token = derivedAccess(testPartners[5]).Token }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := withAPI[tc.partner]
			err := s.source(t, p, tc.edit).Changes(context.Background(), time.Now().Add(-time.Hour), time.Now(), func(psaapi.Change) error { return nil })
			if !errors.Is(err, psaapi.ErrCredentialsRefused) {
				t.Errorf("err = %v, want ErrCredentialsRefused", err)
			}
			if err := s.source(t, p, nil).Changes(context.Background(), time.Now().Add(-time.Hour), time.Now(), func(psaapi.Change) error { return nil }); err != nil {
				t.Errorf("with the right credentials: %v", err)
			}
		})
	}

	// Another partner's PSA API, or a partner of another PSA, is not found.
	for _, path := range []string{"/psa/nobody", "/psa/acme-cw", "/psa/omega-gen/v1.0/Tickets/query"} {
		resp, err := s.srv.Client().Get(s.srv.URL + path + "?since=2026-01-01T00:00:00Z")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, resp.StatusCode)
		}
	}
}

func TestChangeAPIDerivesTheSameCredentials(t *testing.T) {
	a, err := NewChangeAPI(testPartners)
	if err != nil {
		t.Fatal(err)
	}
	b, err := NewChangeAPI(slices.Clone(testPartners))
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range testPartners {
		x, _ := a.PSAAPI("http://127.0.0.1:9", p.ID)
		y, _ := b.PSAAPI("http://127.0.0.1:9", p.ID)
		if x != y || x.BaseURL != "http://127.0.0.1:9/psa/"+p.ID {
			t.Errorf("%s: %+v and %+v", p.ID, x, y)
		}
		if _, err := psaapi.FromPartner(domain.Partner{ID: p.ID, PSA: domain.PSA(p.PSA), PSAAPI: &x}); err != nil {
			t.Errorf("%s: the control service would refuse the psaApi: %v", p.ID, err)
		}
	}
	cw, _ := a.PSAAPI("http://127.0.0.1:9", "acme-cw")
	if cw.CompanyID != "acmecw" {
		t.Errorf("companyId %q, want the callbacks' CompanyId acmecw", cw.CompanyID)
	}

	for name, ps := range map[string][]Partner{
		"a token for connectwise": {{ID: "a", PSA: "connectwise", Secret: "k", PSAAPI: &domain.PSAAPI{Token: "t"}}},
		"autotask without secret": {{ID: "a", PSA: "autotask", Secret: "k", PSAAPI: &domain.PSAAPI{Username: "u", IntegrationCode: "c"}}},
		"twice":                   {testPartners[0], testPartners[0]},
		"unknown psa":             {{ID: "a", PSA: "servicenow", Secret: "k"}},
	} {
		if _, err := NewChangeAPI(ps); err == nil {
			t.Errorf("%s: NewChangeAPI took it", name)
		}
	}
	if _, err := Run(context.Background(), Config{URL: "http://127.0.0.1:1", Partners: testPartners, ChangeAPI: a,
		Count: 1, Drop: 0}.withPartner(Partner{ID: "zeta", PSA: "generic", Secret: testPartners[4].Secret}), nil); err == nil || !strings.Contains(err.Error(), "zeta") {
		t.Errorf("a run with a partner the change API does not serve: %v", err)
	}
}

func (c Config) withPartner(p Partner) Config {
	c.Partners = append(slices.Clone(c.Partners), p)
	return c
}

// change is an entity change as a reconciliation compares it.
type change struct {
	Partner, Type, ID string
	UpdatedAt         time.Time
}

// TestDrop: a share of deliveries, picked by the seed, never reaches the
// router; the change API still lists their changes; and a reconciliation
// of the API against what the router received finds exactly the dropped
// changes marked Detectable.
func TestDrop(t *testing.T) {
	run := func(drop float64) (Stats, *hookServer, *apiServer, time.Time, time.Time) {
		h := newHookServer(t, testPartners)
		s := newAPIServer(t, testPartners)
		cfg := h.config(testPartners)
		cfg.Count, cfg.Seed, cfg.Duplicates, cfg.Drop, cfg.ChangeAPI = 500, 7, 0.1, drop, s.api
		since := time.Now().Add(-time.Second)
		st, err := Run(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		return st, h, s, since, time.Now().Add(time.Second)
	}
	st, h, s, since, until := run(0.3)
	h.mu.Lock()
	defer h.mu.Unlock()

	if st.Dropped < 100 || st.Dropped > 200 || st.Sent+st.Dropped != 500 || h.deliveries != st.Sent {
		t.Errorf("dropped %d, sent %d, the router got %d; want about 150 of 500 dropped, the rest sent and received", st.Dropped, st.Sent, h.deliveries)
	}
	if len(st.DroppedChanges) == 0 {
		t.Fatal("no dropped change listed")
	}
	partnerDropped := 0
	for _, ps := range st.Partners {
		partnerDropped += ps.Dropped
	}
	if partnerDropped != st.Dropped {
		t.Errorf("partners dropped %d in all, the run %d", partnerDropped, st.Dropped)
	}

	// No dropped event reached the router.
	received := map[string]bool{}
	for id, rs := range h.envelopes {
		for _, r := range rs {
			received[id+"\x00"+r.env.DeliveryID] = true
		}
	}
	for _, d := range st.DroppedChanges {
		if received[d.Partner+"\x00"+d.DeliveryID] {
			t.Errorf("dropped %+v reached the router", d)
		}
	}

	// The same seed sends the same changes whatever the drop rate: those
	// received and those dropped are the run without drops.
	plain, _, _, _, _ := run(0)
	if plain.Dropped != 0 || plain.DroppedChanges != nil {
		t.Errorf("Drop 0 dropped %d", plain.Dropped)
	}
	both := slices.Clone(st.Ledger)
	for _, d := range st.DroppedChanges {
		both = append(both, d.LedgerEntry)
	}
	bySeq := func(l []LedgerEntry) []LedgerEntry {
		l = sequence(l)
		slices.SortFunc(l, func(a, b LedgerEntry) int {
			return cmp.Or(cmp.Compare(a.Partner, b.Partner), cmp.Compare(a.EntityType, b.EntityType), cmp.Compare(a.EntityID, b.EntityID),
				cmp.Compare(a.Action, b.Action), cmp.Compare(a.DeliveryID, b.DeliveryID))
		})
		return l
	}
	if diff := gocmp.Diff(bySeq(plain.Ledger), bySeq(both)); diff != "" {
		t.Errorf("received and dropped differ from the run without drops (-no drops +received and dropped):\n%s", diff)
	}

	// Reconcile: an entity the API lists is missing when no event the
	// router received about it carries its stamp or a later one (for a
	// deletion: no deletion received).
	var found []change
	for _, p := range testPartners {
		stamps := map[string]time.Time{}
		deletes := map[string]bool{}
		for _, r := range h.envelopes[p.ID] {
			k := r.env.EntityType + "/" + r.env.EntityID
			if r.env.Action == psa.ActionDeleted {
				deletes[k] = true
			}
			if at, ok := psa.UpdatedAt(p.PSA, r.env.Payload); ok && at.After(stamps[k]) {
				stamps[k] = at
			}
		}
		for k, c := range s.read(t, p, since, until) {
			if deletedData(c) && !deletes[k] || !deletedData(c) && stamps[k].Before(c.UpdatedAt) {
				found = append(found, change{p.ID, c.Type, c.ID, c.UpdatedAt})
			}
		}
	}
	var detectable []change
	for _, d := range st.DroppedChanges {
		if d.Detectable {
			detectable = append(detectable, change{d.Partner, d.EntityType, d.EntityID, d.UpdatedAt})
		}
	}
	order := func(a, b change) int {
		return cmp.Or(cmp.Compare(a.Partner, b.Partner), cmp.Compare(a.Type, b.Type), cmp.Compare(a.ID, b.ID))
	}
	slices.SortFunc(found, order)
	slices.SortFunc(detectable, order)
	if len(detectable) < 10 {
		t.Errorf("only %d of %d dropped changes detectable", len(detectable), len(st.DroppedChanges))
	}
	if diff := gocmp.Diff(detectable, found); diff != "" {
		t.Errorf("the reconciliation found other changes than those dropped (-dropped, detectable +found):\n%s", diff)
	}
	t.Logf("%d deliveries dropped: %d events, %d detectable", st.Dropped, len(st.DroppedChanges), len(detectable))
}

func TestChangeAPIBaseURL(t *testing.T) {
	for root, want := range map[string]string{
		"http://127.0.0.1:8090":  "http://127.0.0.1:8090/psa/acme",
		"http://127.0.0.1:8090/": "http://127.0.0.1:8090/psa/acme",
	} {
		if got := ChangeAPIBaseURL(root, "acme"); got != want {
			t.Errorf("ChangeAPIBaseURL(%q) = %q, want %q", root, got, want)
		}
	}
}
