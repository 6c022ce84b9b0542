package simulate

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	gocmp "github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"go.uber.org/goleak"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/httperr"
	"github.com/switchbackhq/switchback/internal/psa"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testPartners cover every PSA kind and every secret format the router
// takes (Halo basic and bearer, generic with and without "whsec_").
var testPartners = []Partner{
	{ID: "acme-cw", PSA: psa.KindConnectWise, Secret: "cw-signing-key-7d2f9a41c0e8"},
	{ID: "beta-at", PSA: psa.KindAutotask, Secret: "at-webhook-secret-0f3b8e51"},
	{ID: "gamma-halo", PSA: psa.KindHaloPSA, Secret: "basic:switchback:p4ss:with:colons"},
	{ID: "delta-halo", PSA: psa.KindHaloPSA, Secret: "Bearer:halo-bearer-token-9c1e77d2"},
	{ID: "omega-gen", PSA: psa.KindGeneric, Secret: "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"},
	{ID: "nu-gen", PSA: psa.KindGeneric, Secret: "c2VjcmV0LWtleS1ieXRlcy1mb3ItbnU="},
}

// received is one envelope the server decoded.
type received struct {
	kind string
	env  psa.Envelope
}

// hookServer is a router stand-in: it verifies and parses every delivery
// with the real psa.Decoder, dedups per partner by delivery id as the
// router does, and answers 202 as the router does.
type hookServer struct {
	t        *testing.T
	srv      *httptest.Server
	partners map[string]Partner
	// intercept, if set, may answer a request itself (n counts requests
	// from 1); it reports whether it did.
	intercept func(w http.ResponseWriter, r *http.Request, n int) bool

	mu         sync.Mutex
	requests   int
	refused    []string
	seen       map[string]bool
	accepted   []LedgerEntry // each (partner, delivery id) once, in order
	envelopes  map[string][]received
	deliveries int // verified deliveries
	dupDeliv   int // verified deliveries whose every event was seen before
	batches    int
}

func newHookServer(t *testing.T, partners []Partner) *hookServer {
	t.Helper()
	h := &hookServer{t: t, partners: map[string]Partner{}, seen: map[string]bool{}, envelopes: map[string][]received{}}
	for _, p := range partners {
		h.partners[p.ID] = p
	}
	h.srv = httptest.NewServer(http.HandlerFunc(h.serve))
	t.Cleanup(h.srv.Close)
	return h
}

func (h *hookServer) serve(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	h.requests++
	n := h.requests
	h.mu.Unlock()
	if h.intercept != nil && h.intercept(w, r, n) {
		return
	}
	id, ok := strings.CutPrefix(r.URL.Path, "/hooks/")
	p, known := h.partners[id]
	if r.Method != http.MethodPost || !ok || !known {
		h.refuse(w, http.StatusNotFound, fmt.Sprintf("%s %s: no such hook", r.Method, r.URL.Path))
		return
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/json" {
		h.refuse(w, http.StatusBadRequest, fmt.Sprintf("%s: Content-Type %q", id, ct))
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		h.refuse(w, http.StatusBadRequest, err.Error())
		return
	}
	envs, err := (&psa.Decoder{}).Decode(r.Context(), p.PSA, p.Secret, r.Header, body)
	if err != nil {
		h.refuse(w, httperr.Status(err), fmt.Sprintf("%s (%s): %s: %s\n%s", id, p.PSA, domain.ErrorCode(err), err, body))
		return
	}
	type ev struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		Duplicate bool   `json:"duplicate,omitempty"`
	}
	var answer struct {
		Events []ev `json:"events"`
	}
	h.mu.Lock()
	h.deliveries++
	if bytes.HasPrefix(bytes.TrimSpace(body), []byte("[")) {
		h.batches++
	}
	allDup := true
	for _, e := range envs {
		key := id + "\x00" + e.DeliveryID
		dup := h.seen[key]
		if !dup {
			h.seen[key] = true
			h.accepted = append(h.accepted, LedgerEntry{Partner: id, EntityType: e.EntityType, EntityID: e.EntityID, Action: e.Action, DeliveryID: e.DeliveryID})
			allDup = false
		}
		h.envelopes[id] = append(h.envelopes[id], received{kind: p.PSA, env: e})
		answer.Events = append(answer.Events, ev{ID: fmt.Sprint(len(h.accepted)), Type: e.EntityType, Duplicate: dup})
	}
	if allDup {
		h.dupDeliv++
	}
	h.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(answer)
}

func (h *hookServer) refuse(w http.ResponseWriter, status int, msg string) {
	h.mu.Lock()
	h.refused = append(h.refused, msg)
	h.mu.Unlock()
	w.WriteHeader(status)
}

func (h *hookServer) config(partners []Partner) Config {
	return Config{URL: h.srv.URL, Partners: partners, Rate: 5000, Seed: 1}
}

func sortLedger(l []LedgerEntry) []LedgerEntry {
	l = slices.Clone(l)
	slices.SortFunc(l, func(a, b LedgerEntry) int {
		return cmp.Or(cmp.Compare(a.Partner, b.Partner), cmp.Compare(a.DeliveryID, b.DeliveryID))
	})
	return l
}

func TestEveryKindVerifies(t *testing.T) {
	h := newHookServer(t, testPartners)
	cfg := h.config(testPartners)
	cfg.Count = 600
	cfg.Duplicates = 0.1
	cfg.Burst = Burst{Every: 50, Size: 10}
	st, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for i, r := range h.refused {
		if i == 5 {
			t.Errorf("... and %d more", len(h.refused)-5)
			break
		}
		t.Errorf("refused: %s", r)
	}
	if st.Sent != cfg.Count || st.Acknowledged != cfg.Count || st.RefusedTotal() != 0 || st.Errors != 0 || st.Retried != 0 {
		t.Errorf("sent %d, acknowledged %d, refused %v, errors %d, retried %d; want %d sent and acknowledged, nothing else",
			st.Sent, st.Acknowledged, st.Refused, st.Errors, st.Retried, cfg.Count)
	}
	if h.deliveries != st.Sent {
		t.Errorf("the server verified %d deliveries, the simulator sent %d", h.deliveries, st.Sent)
	}

	// Resends carry the delivery id of their original: the server took
	// every one of them for a duplicate, and nothing else.
	if st.Duplicates == 0 || h.dupDeliv != st.Duplicates || st.Deduplicated != st.Duplicates {
		t.Errorf("%d resends sent, the server saw %d deliveries it had already, the router's answers said %d", st.Duplicates, h.dupDeliv, st.Deduplicated)
	}
	if st.Bursts == 0 {
		t.Error("no burst")
	}
	if h.batches == 0 {
		t.Error("no batched HaloPSA delivery")
	}

	// The ledger is what the server accepted, delivery ids included.
	if diff := gocmp.Diff(sortLedger(h.accepted), sortLedger(st.Ledger)); diff != "" {
		t.Errorf("ledger differs from what the server accepted (-server +ledger):\n%s", diff)
	}
	// Each partner's deliveries arrive in the order they were generated,
	// so the router sees each entity's changes in order.
	for _, p := range testPartners {
		of := func(l []LedgerEntry) []LedgerEntry {
			return slices.DeleteFunc(slices.Clone(l), func(e LedgerEntry) bool { return e.Partner != p.ID })
		}
		if diff := gocmp.Diff(of(st.Ledger), of(h.accepted)); diff != "" {
			t.Errorf("%s: the server received events out of generation order (-ledger +server):\n%s", p.ID, diff)
		}
	}
	events := 0
	for _, rs := range h.envelopes {
		events += len(rs)
	}
	if st.Events != events {
		t.Errorf("Events = %d, the server decoded %d", st.Events, events)
	}

	// Every kind sends every entity type and every action, and updates
	// keep hitting the same entities.
	type kindSeen struct{ types, actions map[string]bool }
	byKind := map[string]*kindSeen{}
	for id, rs := range h.envelopes {
		perEntity := map[string]int{}
		for _, r := range rs {
			k := byKind[r.kind]
			if k == nil {
				k = &kindSeen{map[string]bool{}, map[string]bool{}}
				byKind[r.kind] = k
			}
			k.types[r.env.EntityType] = true
			k.actions[r.env.Action] = true
			perEntity[r.env.EntityType+"/"+r.env.EntityID]++
		}
		busiest := 0
		for _, n := range perEntity {
			busiest = max(busiest, n)
		}
		if busiest < 3 {
			t.Errorf("partner %s: no entity got 3 events or more (%d entities for %d events)", id, len(perEntity), len(rs))
		}
	}
	for _, kind := range []string{psa.KindConnectWise, psa.KindAutotask, psa.KindHaloPSA, psa.KindGeneric} {
		k := byKind[kind]
		if k == nil {
			t.Errorf("%s: nothing received", kind)
			continue
		}
		for _, typ := range EntityTypes {
			if !k.types[typ] {
				t.Errorf("%s: no %s", kind, typ)
			}
		}
		for _, a := range actions {
			if !k.actions[a] {
				t.Errorf("%s: no %s", kind, a)
			}
		}
		if k.types[psa.EntityUnknown] || len(k.actions) != 3 {
			t.Errorf("%s: types %v, actions %v: something the router cannot canonicalize", kind, k.types, k.actions)
		}
	}
	checkShapes(t, h.envelopes)
}

// checkShapes checks each kind's payload beyond what the router reads.
func checkShapes(t *testing.T, envelopes map[string][]received) {
	t.Helper()
	for id, rs := range envelopes {
		for _, r := range rs {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(r.env.Payload, &m); err != nil {
				t.Fatalf("%s: payload %s: %v", id, r.env.Payload, err)
			}
			deleted := r.env.Action == psa.ActionDeleted
			switch r.kind {
			case psa.KindConnectWise:
				// Entity is the record as an escaped JSON string, null on delete.
				var entity *string
				if err := json.Unmarshal(m["Entity"], &entity); err != nil {
					t.Fatalf("%s: Entity %s is not a string: %v", id, m["Entity"], err)
				}
				if deleted != (entity == nil) {
					t.Fatalf("%s: %s with Entity %s", id, r.env.Action, m["Entity"])
				}
				if entity != nil {
					var rec struct{ ID json.Number }
					if err := json.Unmarshal([]byte(*entity), &rec); err != nil || rec.ID.String() != r.env.EntityID {
						t.Fatalf("%s: Entity %s: id %q, want %s (%v)", id, *entity, rec.ID, r.env.EntityID, err)
					}
				}
				if string(m["MessageId"]) != `"`+r.env.DeliveryID+`"` || m["Metadata"] == nil {
					t.Fatalf("%s: MessageId %s, Metadata %s, delivery id %s", id, m["MessageId"], m["Metadata"], r.env.DeliveryID)
				}
			case psa.KindAutotask:
				if deleted && string(m["Fields"]) != "{}" || !deleted && len(m["Fields"]) <= 2 {
					t.Fatalf("%s: %s with Fields %s", id, r.env.Action, m["Fields"])
				}
				for _, f := range []string{"Guid", "EventTime", "SequenceNumber", "PersonID"} {
					if m[f] == nil {
						t.Fatalf("%s: no %s in %s", id, f, r.env.Payload)
					}
				}
			case psa.KindHaloPSA:
				for _, f := range []string{"id", "webhook_id", "timestamp", "object_id", "message"} {
					if m[f] == nil {
						t.Fatalf("%s: no %s in %s", id, f, r.env.Payload)
					}
				}
			case psa.KindGeneric:
				var typ string
				json.Unmarshal(m["type"], &typ)
				if typ != r.env.EntityType+"."+r.env.Action || m["timestamp"] == nil {
					t.Fatalf("%s: type %q timestamp %s for %s %s", id, typ, m["timestamp"], r.env.EntityType, r.env.Action)
				}
				if !strings.HasPrefix(r.env.DeliveryID, "msg_") {
					t.Fatalf("%s: webhook-id %q", id, r.env.DeliveryID)
				}
			}
		}
	}
}

// sequence is what the seed decides of a ledger: everything but the
// hashed delivery ids, which hold real timestamps.
func sequence(l []LedgerEntry) []LedgerEntry {
	out := make([]LedgerEntry, len(l))
	for i, e := range l {
		if strings.HasPrefix(e.DeliveryID, "h:") {
			e.DeliveryID = "h:"
		}
		out[i] = e
	}
	return out
}

func TestSameSeedSameSequence(t *testing.T) {
	runSeed := func(seed uint64) Stats {
		h := newHookServer(t, testPartners)
		cfg := h.config(testPartners)
		cfg.Count, cfg.Seed, cfg.Duplicates = 300, seed, 0.05
		cfg.Burst = Burst{Every: 40, Size: 8}
		st, err := Run(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Acknowledged != cfg.Count {
			t.Fatalf("seed %d: %d of %d acknowledged, refused %v", seed, st.Acknowledged, cfg.Count, st.Refused)
		}
		return st
	}
	a, b, c := runSeed(42), runSeed(42), runSeed(43)
	if diff := gocmp.Diff(sequence(a.Ledger), sequence(b.Ledger)); diff != "" {
		t.Errorf("same seed, different sequences (-first +second):\n%s", diff)
	}
	if a.Duplicates != b.Duplicates || a.Events != b.Events || a.Bursts != b.Bursts {
		t.Errorf("same seed: duplicates %d/%d, events %d/%d, bursts %d/%d", a.Duplicates, b.Duplicates, a.Events, b.Events, a.Bursts, b.Bursts)
	}
	if gocmp.Equal(sequence(a.Ledger), sequence(c.Ledger)) {
		t.Error("seeds 42 and 43 gave the same sequence")
	}
}

func TestRetryAfter(t *testing.T) {
	gen := []Partner{testPartners[4]}

	t.Run("honoured", func(t *testing.T) {
		h := newHookServer(t, gen)
		var mu sync.Mutex
		var refusedAt time.Time
		var refusedID string
		var retriedAfter time.Duration
		h.intercept = func(w http.ResponseWriter, r *http.Request, n int) bool {
			mu.Lock()
			defer mu.Unlock()
			switch n {
			case 1:
				refusedAt, refusedID = time.Now(), r.Header.Get("Webhook-Id")
				w.Header().Set("Retry-After", "1")
				w.WriteHeader(http.StatusTooManyRequests)
				return true
			case 2:
				if r.Header.Get("Webhook-Id") != refusedID {
					t.Errorf("the retry has webhook-id %q, the refused try %q", r.Header.Get("Webhook-Id"), refusedID)
				}
				retriedAfter = time.Since(refusedAt)
			}
			return false
		}
		cfg := h.config(gen)
		cfg.Count = 3
		st, err := Run(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if st.Retried != 1 || st.Acknowledged != 3 || st.Sent != 3 || st.RefusedTotal() != 0 || len(st.Ledger) != 3 {
			t.Errorf("retried %d, acknowledged %d of %d, refused %v, ledger %d; want 1 retry and 3 acknowledged", st.Retried, st.Acknowledged, st.Sent, st.Refused, len(st.Ledger))
		}
		mu.Lock()
		defer mu.Unlock()
		if retriedAfter < time.Second || retriedAfter > 3*time.Second {
			t.Errorf("retried %s after the 429, want Retry-After's 1 s", retriedAfter)
		}
	})

	t.Run("bounded", func(t *testing.T) {
		h := newHookServer(t, gen)
		h.intercept = func(w http.ResponseWriter, r *http.Request, n int) bool {
			w.Header().Set("Retry-After", "3600")
			w.WriteHeader(http.StatusTooManyRequests)
			return true
		}
		cfg := h.config(gen)
		cfg.Count, cfg.Retries, cfg.MaxRetryWait = 4, 2, 20*time.Millisecond
		start := time.Now()
		st, err := Run(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("took %s: Retry-After was not capped", took)
		}
		if st.Refused[http.StatusTooManyRequests] != 4 || st.Retried != 8 || st.Acknowledged != 0 || len(st.Ledger) != 0 {
			t.Errorf("refused %v, retried %d, acknowledged %d, ledger %d; want 4 refused with 429 after 2 retries each", st.Refused, st.Retried, st.Acknowledged, len(st.Ledger))
		}
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.requests != 12 {
			t.Errorf("%d requests, want 3 tries of 4 deliveries", h.requests)
		}
	})
}

func TestOtherStatusIsFinal(t *testing.T) {
	h := newHookServer(t, testPartners[:2])
	h.intercept = func(w http.ResponseWriter, r *http.Request, n int) bool {
		if n%2 == 0 {
			w.WriteHeader(http.StatusServiceUnavailable)
			return true
		}
		return false
	}
	cfg := h.config(testPartners[:2])
	cfg.Count, cfg.Concurrency = 20, 1
	st, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Refused[http.StatusServiceUnavailable] != 10 || st.Acknowledged != 10 || st.Retried != 0 {
		t.Errorf("refused %v, acknowledged %d, retried %d; want 10 and 10, no retry", st.Refused, st.Acknowledged, st.Retried)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if diff := gocmp.Diff(sortLedger(h.accepted), sortLedger(st.Ledger)); diff != "" {
		t.Errorf("ledger (-server +ledger):\n%s", diff)
	}
}

func TestBounded(t *testing.T) {
	t.Run("duration", func(t *testing.T) {
		h := newHookServer(t, testPartners)
		cfg := h.config(testPartners)
		cfg.Rate, cfg.Duration = 40, 300*time.Millisecond
		start := time.Now()
		st, err := Run(context.Background(), cfg, nil)
		if err != nil {
			t.Fatal(err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("a 300ms run took %s", took)
		}
		if st.Sent < 5 || st.Sent > 16 {
			t.Errorf("sent %d in 300ms at 40/s", st.Sent)
		}
	})

	t.Run("context", func(t *testing.T) {
		// A router that never answers: cancelling ends Run promptly.
		release := make(chan struct{})
		h := newHookServer(t, testPartners)
		h.intercept = func(w http.ResponseWriter, r *http.Request, n int) bool {
			select {
			case <-r.Context().Done():
			case <-release:
			}
			return true
		}
		defer close(release)
		cfg := h.config(testPartners)
		cfg.Rate, cfg.Duration = 50, time.Minute
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		start := time.Now()
		st, err := Run(ctx, cfg, nil)
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("err = %v, want the context's", err)
		}
		if took := time.Since(start); took > 2*time.Second {
			t.Errorf("Run returned %s after its context ended", took-300*time.Millisecond)
		}
		if st.Sent == 0 || st.Errors != st.Sent || st.Acknowledged != 0 || len(st.Ledger) != 0 {
			t.Errorf("sent %d, errors %d, acknowledged %d, ledger %d: every delivery should have had no answer", st.Sent, st.Errors, st.Acknowledged, len(st.Ledger))
		}
	})
}

func TestTimeout(t *testing.T) {
	// A router that never answers, a client without a timeout of its own:
	// Timeout still ends every try, and the run ends soon after Duration.
	release := make(chan struct{})
	h := newHookServer(t, testPartners[:1])
	h.intercept = func(w http.ResponseWriter, r *http.Request, n int) bool {
		select {
		case <-r.Context().Done():
		case <-release:
		}
		return true
	}
	defer close(release)
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr}
	cfg := h.config(testPartners[:1])
	cfg.Rate, cfg.Duration, cfg.Timeout, cfg.Retries, cfg.HTTPClient = 50, 200*time.Millisecond, 150*time.Millisecond, -1, client
	start := time.Now()
	st, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 2*time.Second {
		t.Errorf("took %s", took)
	}
	if st.Sent == 0 || st.Errors != st.Sent || st.Retried != 0 {
		t.Errorf("sent %d, errors %d, retried %d; want every try timed out, none retried", st.Sent, st.Errors, st.Retried)
	}
	if client.CheckRedirect != nil {
		t.Error("Run changed the caller's client")
	}
}

func TestNoRedirects(t *testing.T) {
	elsewhere := newHookServer(t, testPartners)
	h := newHookServer(t, testPartners)
	h.intercept = func(w http.ResponseWriter, r *http.Request, n int) bool {
		http.Redirect(w, r, elsewhere.srv.URL+r.URL.Path, http.StatusTemporaryRedirect)
		return true
	}
	cfg := h.config(testPartners)
	cfg.Count = 10
	st, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	if st.Refused[http.StatusTemporaryRedirect] != 10 {
		t.Errorf("refused %v, want 10 redirects not followed", st.Refused)
	}
	elsewhere.mu.Lock()
	defer elsewhere.mu.Unlock()
	if elsewhere.requests != 0 {
		t.Errorf("%d requests went to the redirect's target", elsewhere.requests)
	}
}

func TestMix(t *testing.T) {
	h := newHookServer(t, testPartners)
	cfg := h.config(testPartners)
	cfg.Count = 100
	cfg.Mix = map[string]float64{Ticket: 3, Contact: 1, Company: 0}
	st, err := Run(context.Background(), cfg, nil)
	if err != nil {
		t.Fatal(err)
	}
	n := map[string]int{}
	for _, e := range st.Ledger {
		n[e.EntityType]++
	}
	if len(n) != 2 || n[Ticket] < 2*n[Contact] {
		t.Errorf("entity types %v, want tickets and about a third as many contacts", n)
	}
}

func TestProgress(t *testing.T) {
	h := newHookServer(t, testPartners)
	cfg := h.config(testPartners)
	cfg.Rate, cfg.Count, cfg.ProgressEvery = 100, 30, 20*time.Millisecond
	var mu sync.Mutex
	var reports []Stats
	st, err := Run(context.Background(), cfg, func(s Stats) {
		mu.Lock()
		reports = append(reports, s)
		mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reports) < 3 {
		t.Fatalf("%d progress reports in a 300ms run every 20ms", len(reports))
	}
	prev := 0
	for _, r := range reports {
		if r.Sent < prev || r.Sent > st.Sent || r.Ledger != nil {
			t.Errorf("report sent %d (previous %d, final %d), ledger %d entries", r.Sent, prev, st.Sent, len(r.Ledger))
		}
		prev = r.Sent
	}
}

func TestConfigErrors(t *testing.T) {
	ok := Config{URL: "http://127.0.0.1:1", Partners: testPartners}
	for _, tc := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"no url", func(c *Config) { c.URL = "" }, "router URL"},
		{"ftp url", func(c *Config) { c.URL = "ftp://127.0.0.1/" }, "router URL"},
		{"url with query", func(c *Config) { c.URL = "http://127.0.0.1/?x=1" }, "router URL"},
		{"no partners", func(c *Config) { c.Partners = nil }, "no partners"},
		{"twice", func(c *Config) { c.Partners = []Partner{testPartners[0], testPartners[0]} }, "twice"},
		{"bad id", func(c *Config) { c.Partners = []Partner{{ID: "Acme", PSA: "autotask", Secret: "x"}} }, "not valid"},
		{"unknown psa", func(c *Config) { c.Partners = []Partner{{ID: "a", PSA: "servicenow", Secret: "x"}} }, "servicenow"},
		{"connectwise without key", func(c *Config) { c.Partners = []Partner{{ID: "a", PSA: "connectwise"}} }, "signing key"},
		{"autotask without secret", func(c *Config) { c.Partners = []Partner{{ID: "a", PSA: "autotask"}} }, "secret"},
		{"halo token only", func(c *Config) { c.Partners = []Partner{{ID: "a", PSA: "halopsa", Secret: "token"}} }, "basic:USER:PASSWORD"},
		{"halo basic without password", func(c *Config) { c.Partners = []Partner{{ID: "a", PSA: "halopsa", Secret: "basic:user"}} }, "basic:USER:PASSWORD"},
		{"generic not base64", func(c *Config) { c.Partners = []Partner{{ID: "a", PSA: "generic", Secret: "whsec_!!"}} }, "whsec_"},
		{"negative rate", func(c *Config) { c.Rate = -1 }, "rate"},
		{"huge rate", func(c *Config) { c.Rate = 1e9 }, "rate"},
		{"long duration", func(c *Config) { c.Duration = 48 * time.Hour }, "duration"},
		{"negative count", func(c *Config) { c.Count = -1 }, "count"},
		{"duplicates over 1", func(c *Config) { c.Duplicates = 1.5 }, "duplicates"},
		{"drop over 1", func(c *Config) { c.Drop = 1.5 }, "drop"},
		{"drop negative", func(c *Config) { c.Drop = -0.1 }, "drop"},
		{"mix name", func(c *Config) { c.Mix = map[string]float64{"invoice": 1} }, "invoice"},
		{"mix zero", func(c *Config) { c.Mix = map[string]float64{Ticket: 0} }, "no entity type"},
		{"burst", func(c *Config) { c.Burst = Burst{Every: 1, Size: -1} }, "burst"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := ok
			tc.edit(&cfg)
			_, err := Run(context.Background(), cfg, nil)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("err = %v, want one about %q", err, tc.want)
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2026, 3, 2, 12, 0, 0, 0, time.UTC)
	for v, want := range map[string]time.Duration{
		"":                              time.Second,
		"0":                             0,
		"7":                             7 * time.Second,
		"-3":                            time.Second,
		"soon":                          time.Second,
		"Mon, 02 Mar 2026 12:00:30 GMT": 30 * time.Second,
		"Mon, 02 Mar 2026 11:00:00 GMT": 0,
	} {
		if got := parseRetryAfter(v, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %s, want %s", v, got, want)
		}
	}
}

// TestStatsJSON: the CLI prints Stats as JSON.
func TestStatsJSON(t *testing.T) {
	st := Stats{Sent: 2, Refused: map[int]int{429: 1}, Ledger: []LedgerEntry{{Partner: "a", EntityType: Ticket, EntityID: "1", Action: "created", DeliveryID: "msg_1"}}}
	b, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	var back Stats
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if diff := gocmp.Diff(st, back, cmpopts.EquateEmpty()); diff != "" {
		t.Errorf("round trip (-want +got):\n%s", diff)
	}
}
