package httpapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// subscribeDeltas subscribes to the stream asking for deltas.
func subscribeDeltas(t *testing.T, e *streamEnv, token, lastEventID string) *sseReader {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, e.srv.URL+"/v1/snapshot/stream?deltas=1", nil)
	req.Header.Set("Authorization", "Bearer "+token)
	if lastEventID != "" {
		req.Header.Set("Last-Event-ID", lastEventID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("stream answered %d", resp.StatusCode)
	}
	return &sseReader{resp: resp, rd: bufio.NewReaderSize(resp.Body, 1<<16)}
}

// nextEvent skips heartbeats.
func (r *sseReader) nextEvent(t *testing.T) sseEvent {
	t.Helper()
	for {
		if ev := r.next(t); !ev.comment {
			return ev
		}
	}
}

func decodeDelta(t *testing.T, ev sseEvent) wire.SnapshotDelta {
	t.Helper()
	if ev.event != "delta" {
		t.Fatalf("event %q (%s), want delta", ev.event, ev.data)
	}
	var d wire.SnapshotDelta
	if err := json.Unmarshal([]byte(ev.data), &d); err != nil {
		t.Fatalf("decode delta: %v", err)
	}
	if ev.id != strconv.FormatUint(d.Version, 10) {
		t.Errorf("event id %q, want the version %d", ev.id, d.Version)
	}
	return d
}

// A subscriber that asks for deltas gets the whole snapshot first, then
// one delta per version carrying only what changed; one that does not ask
// keeps getting whole snapshots.
func TestStreamDeltasOnlyWhenAsked(t *testing.T) {
	e := newStreamEnv(t)
	ctx := context.Background()
	c := control.Change{Actor: "test"}
	e.addPartner(t, "acme", "whsec-acme")
	e.addPartner(t, "globex", "whsec-globex")
	m := domain.Migration{Key: "tickets", Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(), Pipelines: domain.Pipelines{
		Legacy: domain.Pipeline{URL: "http://127.0.0.1:9/l"}, New: domain.Pipeline{URL: "http://127.0.0.1:9/n"}}}
	if _, _, err := e.svc.PutMigration(ctx, c, m); err != nil {
		t.Fatal(err)
	}
	old := subscribe(t, e, e.viewer, "")
	sub := subscribeDeltas(t, e, e.viewer, "")
	old.nextSnapshot(t)
	first := sub.nextSnapshot(t)

	if _, err := e.svc.SetStage(ctx, c, "tickets", "acme", domain.StageShadow, false); err != nil {
		t.Fatal(err)
	}
	d := decodeDelta(t, sub.nextEvent(t))
	shadow := "shadow"
	want := wire.SnapshotDelta{Version: first.Version + 1, Base: first.Version, BuiltAt: d.BuiltAt, StoreID: first.StoreID, Audit: d.Audit,
		Migrations: map[string]*wire.MigrationDelta{"tickets": {Seq: first.Migrations["tickets"].Seq, Pipelines: m.Pipelines,
			Compare: first.Migrations["tickets"].Compare, Guard: m.Guard, Stages: map[string]*string{"acme": &shadow}}}}
	if diff := cmp.Diff(want, d); diff != "" {
		t.Errorf("delta of a stage change (-want +got):\n%s", diff)
	}
	if got := old.nextSnapshot(t); got.Version != d.Version {
		t.Errorf("the subscriber without deltas got version %d whole, want %d", got.Version, d.Version)
	}

	if _, err := e.svc.Revert(ctx, c, "tickets"); err != nil {
		t.Fatal(err)
	}
	d = decodeDelta(t, sub.nextEvent(t))
	if mig := d.Migrations["tickets"]; len(d.Migrations) != 1 || mig == nil || !mig.Reverted || mig.Stages != nil || d.Partners != nil {
		t.Errorf("delta of a revert = %s, want the migration reverted and no stage or partner", jsonOf(t, d))
	}
}

// Deltas follow the snapshot's rule for secrets: a partner's webhook
// secret only in the router's copy.
func TestStreamDeltaSecretsOnlyForRouters(t *testing.T) {
	e := newStreamEnv(t)
	e.addPartner(t, "acme", "whsec-old")
	viewer := subscribeDeltas(t, e, e.viewer, "")
	router := subscribeDeltas(t, e, e.router, "")
	viewer.nextSnapshot(t)
	router.nextSnapshot(t)
	// Each change is read by both before the next is made: a subscriber
	// that falls behind is sent the newest snapshot whole, not a delta.
	e.addPartner(t, "acme", "whsec-rotated")

	// The rotation changes nothing a viewer sees: its delta is empty.
	if d := decodeDelta(t, viewer.nextEvent(t)); d.Partners != nil || d.Migrations != nil {
		t.Errorf("viewer's delta of a secret rotation carries %+v %+v, want nothing", d.Partners, d.Migrations)
	}
	if d := decodeDelta(t, router.nextEvent(t)); d.Partners["acme"] == nil || d.Partners["acme"].Secret != "whsec-rotated" {
		t.Errorf("router's delta of a rotation = %+v, want acme with its new secret", d.Partners)
	}

	e.addPartner(t, "globex", "whsec-globex")
	ev := viewer.nextEvent(t)
	if strings.Contains(ev.data, "whsec-") {
		t.Errorf("a viewer's delta carries a webhook secret: %s", ev.data)
	}
	if d := decodeDelta(t, ev); d.Partners["globex"] == nil {
		t.Errorf("viewer's delta lacks the partner added: %s", ev.data)
	}
	if d := decodeDelta(t, router.nextEvent(t)); d.Partners["globex"] == nil || d.Partners["globex"].Secret != "whsec-globex" {
		t.Errorf("router's delta of a partner added = %+v, want globex with its secret", d.Partners)
	}
}

// A delta goes only to a subscriber that holds its base: one that comes
// back holding the version before gets deltas from then on, one that
// holds an older version gets the whole snapshot.
func TestStreamDeltaOnlyFromTheVersionHeld(t *testing.T) {
	e := newStreamEnv(t)
	e.addPartner(t, "acme", "x")
	cur := e.svc.State().Version
	id := e.svc.State().StoreID + ":" + strconv.FormatUint(cur, 10)
	held := subscribeDeltas(t, e, e.viewer, id)
	if ev := held.nextEvent(t); ev.event != "current" {
		t.Fatalf("first event %+v, want current", ev)
	}
	behind := subscribeDeltas(t, e, e.viewer, strconv.FormatUint(cur-1, 10))
	if got := behind.nextSnapshot(t); got.Version != cur {
		t.Fatalf("subscriber behind got %d, want the whole snapshot %d", got.Version, cur)
	}
	otherStore := subscribeDeltas(t, e, e.viewer, "another-store:"+strconv.FormatUint(cur, 10))
	if got := otherStore.nextSnapshot(t); got.Version != cur {
		t.Fatalf("subscriber of another store got %d, want the whole snapshot %d", got.Version, cur)
	}
	e.addPartner(t, "globex", "y")
	for name, sub := range map[string]*sseReader{"current": held, "behind": behind, "other store": otherStore} {
		if d := decodeDelta(t, sub.nextEvent(t)); d.Base != cur || d.Version != cur+1 {
			t.Errorf("%s: delta %d→%d, want %d→%d", name, d.Base, d.Version, cur, cur+1)
		}
	}
}

// deltaCounter counts the delta events a provider's stream brings.
type deltaCounter struct {
	deltas, snapshots atomic.Int64
}

func (c *deltaCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := http.DefaultTransport.RoundTrip(r)
	if err == nil && strings.HasPrefix(r.URL.Path, "/v1/snapshot/stream") {
		resp.Body = &countingBody{ReadCloser: resp.Body, c: c}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	c    *deltaCounter
	line []byte // the line read so far
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	for _, c := range p[:n] {
		if c != '\n' {
			b.line = append(b.line, c)
			continue
		}
		switch string(b.line) {
		case "event: delta":
			b.c.deltas.Add(1)
		case "event: snapshot":
			b.c.snapshots.Add(1)
		}
		b.line = b.line[:0]
	}
	return n, err
}

// After any sequence of changes (reverts, resumes, stage moves, cohort
// advances, partners added and renamed, migrations added and edited), a
// provider taking deltas holds exactly the snapshot of the control service
// and answers as it does.
func TestProviderDeltasMatchTheService(t *testing.T) {
	seed := time.Now().UnixNano()
	t.Logf("seed %d (rerun a failure by fixing it here)", seed)
	rng := rand.New(rand.NewPCG(uint64(seed), 0))
	ctx := context.Background()
	c := control.Change{Actor: "property", Reason: "random changes"}
	e := newStreamEnv(t)

	var keys, partners []string
	addMigration := func() {
		key := fmt.Sprintf("mig-%d", len(keys))
		m := domain.Migration{Key: key, Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(), Pipelines: domain.Pipelines{
			Legacy: domain.Pipeline{URL: "http://127.0.0.1:9/l"}, New: domain.Pipeline{URL: "http://127.0.0.1:9/n"}}}
		if _, _, err := e.svc.PutMigration(ctx, c, m); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	addMigration()
	e.addPartner(t, "p0", "s")
	partners = append(partners, "p0")

	counter := &deltaCounter{}
	p, err := flags.NewProvider(flags.Options{URL: e.srv.URL, Token: e.viewer, Logger: discardLogger(),
		HTTPClient: &http.Client{Transport: counter}})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.InitWithContext(ctx, openfeature.EvaluationContext{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Shutdown)

	stages := []domain.Stage{domain.StageLegacy, domain.StageShadow, domain.StageNew, domain.StageDone}
	for step := range 60 {
		key := keys[rng.IntN(len(keys))]
		partner := partners[rng.IntN(len(partners))]
		var what string
		var err error
		switch rng.IntN(8) {
		case 0:
			what = "revert " + key
			_, err = e.svc.Revert(ctx, c, key)
		case 1:
			what = "resume " + key
			_, err = e.svc.Resume(ctx, c, key)
		case 2, 3:
			to := stages[rng.IntN(len(stages))]
			what = fmt.Sprintf("stage %s %s → %s", key, partner, to)
			_, err = e.svc.SetStage(ctx, c, key, partner, to, true)
		case 4:
			id := fmt.Sprintf("p%d", len(partners))
			what = "partner added " + id
			e.addPartner(t, id, "s")
			partners = append(partners, id)
		case 5:
			what = "partner renamed " + partner
			s := "s"
			_, _, err = e.svc.PutPartner(ctx, c, control.PartnerInput{ID: partner, Name: fmt.Sprintf("Renamed %d", step), PSA: domain.PSAGeneric, Secret: &s})
		case 6:
			what = "migration added"
			addMigration()
		case 7:
			what = "migration edited " + key
			m := domain.Migration{Key: key, Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(), Pipelines: domain.Pipelines{
				Legacy: domain.Pipeline{URL: fmt.Sprintf("http://127.0.0.1:9/l%d", step)}, New: domain.Pipeline{URL: "http://127.0.0.1:9/n"}}}
			_, _, err = e.svc.PutMigration(ctx, c, m)
		}
		if err != nil {
			t.Logf("step %d: %s: %v (refused; the state stays)", step, what, err)
		}
		waitSynced(t, e, p)
		want := e.svc.State().Flags()
		if diff := cmp.Diff(want, p.Snapshot(), cmpopts.EquateEmpty()); diff != "" {
			t.Fatalf("step %d, after %s: provider's snapshot (-service +provider):\n%s", step, what, diff)
		}
		for _, k := range append(keys, "unknown") {
			for _, id := range append(partners, "stranger", "") {
				if got, want := p.Resolve(k, id), want.Evaluate(k, id); got != want {
					t.Fatalf("step %d, after %s: %s for %q = %+v, want %+v", step, what, k, id, got, want)
				}
			}
		}
	}
	if counter.deltas.Load() == 0 || counter.snapshots.Load() != 1 {
		t.Errorf("the provider took %d deltas and %d whole snapshots, want deltas after the one whole snapshot", counter.deltas.Load(), counter.snapshots.Load())
	}
}
