package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/natstest"
	"github.com/switchbackhq/switchback/internal/reconcile"
	"github.com/switchbackhq/switchback/internal/refpipe"
	"github.com/switchbackhq/switchback/internal/wire"
)

// feedToken is the generic change feed's credential: it must appear in no
// answer, log line or audit entry.
const feedToken = "feed-token-SECRET-7f3a9c"

// changeFeed is a PSA's change API in switchback's generic contract,
// paging four changes at a time behind a cursor.
type changeFeed struct {
	mu      sync.Mutex
	changes []wire.Finding // type, id, updatedAt
	calls   int
}

func (f *changeFeed) set(typ, id string, at time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.changes = slices.DeleteFunc(f.changes, func(c wire.Finding) bool { return c.Type == typ && c.ID == id })
	f.changes = append(f.changes, wire.Finding{Type: typ, ID: id, UpdatedAt: at})
}

func (f *changeFeed) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Header.Get("Authorization") != "Bearer "+feedToken {
		w.WriteHeader(http.StatusUnauthorized)
		return
	}
	since, err := time.Parse(time.RFC3339Nano, r.URL.Query().Get("since"))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	var in []wire.Finding
	for _, c := range f.changes {
		if !c.UpdatedAt.Before(since) {
			in = append(in, c)
		}
	}
	start, _ := strconv.Atoi(strings.TrimPrefix(r.URL.Query().Get("cursor"), "c"))
	end := min(start+4, len(in))
	page := map[string]any{"next": nil}
	if end < len(in) {
		page["next"] = "c" + strconv.Itoa(end)
	}
	var out []map[string]any
	for _, c := range in[start:end] {
		out = append(out, map[string]any{"type": c.Type, "id": c.ID, "updatedAt": c.UpdatedAt.Format(time.RFC3339Nano),
			"data": map[string]any{"id": c.ID, "updatedAt": c.UpdatedAt.Format(time.RFC3339Nano), "summary": "as the PSA holds it"}})
	}
	page["changes"] = out
	json.NewEncoder(w).Encode(page)
}

// sendStamped delivers a signed generic webhook about ticket id whose body
// stamps the ticket's last update at updatedAt, as a PSA's would.
func sendStamped(t *testing.T, base, partner, id string, updatedAt time.Time) {
	t.Helper()
	body, _ := json.Marshal(map[string]any{"type": "ticket.updated", "timestamp": time.Now().UTC().Format(time.RFC3339),
		"data": map[string]any{"id": id, "updatedAt": updatedAt.Format(time.RFC3339Nano)}})
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	key, _ := base64.StdEncoding.DecodeString(crashSecret[len("whsec_"):])
	m := hmac.New(sha256.New, key)
	fmt.Fprintf(m, "%s.%s.%s", "msg-"+id, ts, body)
	req, _ := http.NewRequest(http.MethodPost, base+"/hooks/"+partner, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", "msg-"+id)
	req.Header.Set("webhook-timestamp", ts)
	req.Header.Set("webhook-signature", "v1,"+base64.StdEncoding.EncodeToString(m.Sum(nil)))
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("webhook %s = %d", id, resp.StatusCode)
	}
}

// The PSA changed eleven tickets; switchback got webhooks for seven, one
// of them older than the PSA's latest change. The reconciliation lists the
// four gaps, and the one change too recent to judge apart; the backfill
// closes every gap through the primary pipeline, a second reconciliation
// finds none, and a second backfill finds them closed and sends nothing. The feed's
// credential appears nowhere.
func TestReconcileFindsGapsAndBackfillClosesThemOnce(t *testing.T) {
	reconcileFindsGaps(t, nil)
}

// The same on a NATS tier: the reconciliation reads the tier's history
// (the stream and the outcomes the routers recorded), and the backfill's
// events go through the tier.
func TestReconcileOnATierFindsGapsAndBackfillClosesThemOnce(t *testing.T) {
	cluster := natstest.Start(t, 1)
	reconcileFindsGaps(t, cluster)
}

func reconcileFindsGaps(t *testing.T, cluster *natstest.Cluster) {
	legacy := refpipe.New("legacy", refpipe.Faults{}, 1)
	legacySrv := httptest.NewServer(legacy)
	defer legacySrv.Close()
	newSrv := httptest.NewServer(refpipe.New("new", refpipe.Faults{}, 2))
	defer newSrv.Close()
	feed := &changeFeed{}
	feedSrv := httptest.NewServer(feed)
	defer feedSrv.Close()

	args := []string{"--data", t.TempDir()}
	if cluster != nil {
		args = append(args, "--journal", cluster.URLs(), "--journal-replicas", "1")
	}
	s := startServe(t, map[string]string{"SWITCHBACK_ADMIN_TOKEN": crashAdmin}, args...)
	var answers bytes.Buffer // every answer of the API, searched for the credential
	api := func(method, path string, body any, out any) int {
		t.Helper()
		var raw json.RawMessage
		code := call(t, method, s.url+path, crashAdmin, body, &raw)
		answers.Write(raw)
		if out != nil {
			if err := json.Unmarshal(raw, out); err != nil {
				t.Fatal(err)
			}
		}
		return code
	}
	if got := api("PUT", "/v1/partners/acme", map[string]any{"name": "Acme", "psa": "generic", "secret": crashSecret,
		"psaApi": map[string]any{"baseUrl": feedSrv.URL + "/changes", "token": feedToken}}, nil); got != 201 {
		t.Fatalf("partner = %d", got)
	}
	if got := api("PUT", "/v1/partners/beta", map[string]any{"name": "Beta", "psa": "generic", "secret": crashSecret}, nil); got != 201 {
		t.Fatalf("partner beta = %d", got)
	}
	if got := api("PUT", "/v1/migrations/psa-webhooks-v2", map[string]any{"pipelines": map[string]any{
		"legacy": map[string]string{"url": legacySrv.URL}, "new": map[string]string{"url": newSrv.URL}}}, nil); got != 201 {
		t.Fatalf("migration = %d", got)
	}
	waitRouterCurrent(t, s.url)

	base := time.Now().UTC().Add(-10 * time.Minute).Truncate(time.Millisecond)
	at := func(i int) time.Time { return base.Add(time.Duration(i) * time.Second) }
	for i := 1; i <= 7; i++ {
		id := strconv.Itoa(i)
		sendStamped(t, s.url, "acme", id, at(i))
		feed.set("ticket", id, at(i))
	}
	feed.set("ticket", "7", at(7).Add(time.Minute)) // changed again; that webhook never came
	for i := 8; i <= 10; i++ {
		feed.set("ticket", strconv.Itoa(i), at(i)) // no webhook at all
	}
	feed.set("ticket", "11", time.Now().UTC().Add(-10*time.Second)) // its webhook may be on its way
	// The journal records an outcome after the pipeline answers: wait for
	// the records, which the reconciliation reads, not for the pipeline.
	waitUntil(t, "the seven outcomes journaled", func() bool {
		return strings.Contains(scrape(t, s.url), `switchback_ingress_events_total{outcome="applied"} 7`+"\n")
	})
	if cluster != nil {
		// The router records each outcome in the tier after its journal.
		waitTierOutcomes(t, cluster, "acme", "msg-1", "msg-2", "msg-3", "msg-4", "msg-5", "msg-6", "msg-7")
	}

	run := func(body map[string]any) wire.Reconciliation {
		t.Helper()
		var j wire.Reconciliation
		if got := api("POST", "/v1/reconciliations", body, &j); got != 202 {
			t.Fatalf("POST /v1/reconciliations = %d", got)
		}
		waitUntil(t, "the reconciliation to finish", func() bool {
			api("GET", "/v1/reconciliations/"+j.ID, nil, &j)
			return j.State != wire.ReconcileRunning
		})
		return j
	}
	first := run(map[string]any{"partners": []string{"acme"}, "from": "1h", "reason": "INC-1"})
	if first.State != wire.ReconcileDone || first.Checked != 11 || first.GapCount != 4 || first.Uncertain != 1 {
		t.Fatalf("reconciliation = %s (%s), checked %d, gaps %d, uncertain %d; want done, 11, 4, 1",
			first.State, first.Error, first.Checked, first.GapCount, first.Uncertain)
	}
	if p := first.Partners[0]; p.Reflected != 6 || p.Gaps != 4 || p.Changes != 11 {
		t.Errorf("acme = %+v, want 11 changes, 6 reflected, 4 gaps", p)
	}
	gaps := map[string]wire.Finding{}
	for _, g := range first.Gaps {
		gaps[g.ID] = g
	}
	if g := gaps["7"]; g.Reason != wire.ReasonOlderOnly || g.LastAppliedAt == nil || !g.UpdatedAt.Equal(at(7).Add(time.Minute)) {
		t.Errorf("ticket 7 = %+v, want older_only with lastAppliedAt, updatedAt %s", g, at(7).Add(time.Minute))
	}
	for _, id := range []string{"8", "9", "10"} {
		if g := gaps[id]; g.Reason != wire.ReasonNoEvent || g.LastAppliedAt != nil || g.Partner != "acme" || g.Type != "ticket" {
			t.Errorf("ticket %s = %+v, want a no_event gap of acme's, lastAppliedAt null", id, g)
		}
	}
	if len(first.Unsure) != 1 || first.Unsure[0].ID != "11" || first.Unsure[0].Reason != wire.ReasonRecent {
		t.Errorf("uncertain = %+v, want ticket 11, recent", first.Unsure)
	}
	if first.Backfill != nil {
		t.Errorf("backfill = %+v before one was asked", first.Backfill)
	}

	var j wire.Reconciliation
	if got := api("POST", "/v1/reconciliations/"+first.ID+"/backfill", map[string]any{"reason": "INC-1"}, &j); got != 202 {
		t.Fatalf("backfill = %d", got)
	}
	waitUntil(t, "the backfill to finish", func() bool {
		api("GET", "/v1/reconciliations/"+first.ID, nil, &j)
		return j.Backfill != nil && j.Backfill.State != wire.ReconcileRunning
	})
	if b := j.Backfill; b.State != wire.ReconcileDone || b.Events != 4 || b.Journaled != 4 || b.Applied != 4 || b.Pending != 0 {
		t.Fatalf("backfill = %+v, want 4 events journaled and applied", b)
	}
	if legacy.Applications() != 11 {
		t.Errorf("legacy applied %d events, want 7 webhooks and 4 backfills", legacy.Applications())
	}
	for _, id := range []string{"7", "8", "9", "10"} {
		g := gaps[id]
		if key := reconcile.BackfillID("acme", "ticket", id, g.UpdatedAt); !legacy.HasApplied(key) {
			t.Errorf("ticket %s was not applied with Idempotency-Key %s", id, key)
		}
	}

	second := run(map[string]any{"partners": []string{"acme"}, "from": "1h"})
	if second.GapCount != 0 || second.Partners[0].Reflected != 10 {
		t.Errorf("after the backfill: %d gaps (%+v), %d reflected; want 0 and 10", second.GapCount, second.Gaps, second.Partners[0].Reflected)
	}

	if got := api("POST", "/v1/reconciliations/"+first.ID+"/backfill", nil, &j); got != 202 {
		t.Fatalf("second backfill = %d", got)
	}
	waitUntil(t, "the second backfill to finish", func() bool {
		api("GET", "/v1/reconciliations/"+first.ID, nil, &j)
		return j.Backfill != nil && j.Backfill.State != wire.ReconcileRunning
	})
	if b := j.Backfill; b.Skipped != 4 || b.Events != 0 || legacy.Applications() != 11 {
		t.Errorf("second backfill = %+v, legacy applied %d; want the 4 gaps found closed, nothing sent or applied again", b, legacy.Applications())
	}
	if got := api("POST", "/v1/reconciliations/"+second.ID+"/backfill", nil, nil); got != 409 {
		t.Errorf("backfill of a reconciliation without gaps = %d, want 409", got)
	}

	var e struct {
		Error struct{ Code, Message string }
	}
	if got := api("POST", "/v1/reconciliations", map[string]any{"partners": []string{"beta"}, "from": "1h"}, &e); got != 400 || !strings.Contains(e.Error.Message, "has no psaApi") {
		t.Errorf("a partner without psaApi = %d %q, want 400 saying it has no psaApi", got, e.Error.Message)
	}
	if got := api("POST", "/v1/reconciliations", map[string]any{"partners": []string{"nobody"}, "from": "1h"}, nil); got != 404 {
		t.Errorf("an unknown partner = %d, want 404", got)
	}
	if got := api("POST", "/v1/reconciliations", map[string]any{"partners": []string{"acme"}, "from": "yesterday"}, nil); got != 400 {
		t.Errorf("from \"yesterday\" = %d, want 400", got)
	}

	// A credential the PSA refuses fails the job, and says so without it.
	if got := api("PUT", "/v1/partners/acme", map[string]any{"name": "Acme", "psa": "generic", "secret": crashSecret,
		"psaApi": map[string]any{"baseUrl": feedSrv.URL + "/changes", "token": feedToken + "-old"}}, nil); got != 200 {
		t.Fatalf("partner update = %d", got)
	}
	refused := run(map[string]any{"partners": []string{"acme"}, "from": "1h"})
	if refused.State != wire.ReconcileFailed || !strings.Contains(refused.Error, "credentials refused") {
		t.Errorf("with a refused credential: %s %q, want failed, credentials refused", refused.State, refused.Error)
	}

	api("GET", "/v1/reconciliations", nil, nil)
	api("GET", "/v1/partners/acme", nil, nil)
	api("GET", "/v1/audit?limit=1000", nil, nil)
	metrics := scrape(t, s.url)
	if !strings.Contains(metrics, `switchback_reconcile_open_gaps{partner="acme"} 0`) {
		t.Errorf("metrics lack acme's open gaps at 0")
	}
	if !strings.Contains(answers.String(), `"reconcile.backfill"`) {
		t.Errorf("the audit log has no reconcile.backfill entry")
	}
	s.stop()
	for what, text := range map[string]string{"an API answer": answers.String(), "stdout": s.stdout.String(), "the log": s.stderr.String(), "metrics": metrics} {
		if strings.Contains(text, feedToken) {
			t.Errorf("%s holds the PSA API token", what)
		}
	}
}

// scrape returns the server's /metrics page.
func scrape(t *testing.T, base string) string {
	t.Helper()
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
