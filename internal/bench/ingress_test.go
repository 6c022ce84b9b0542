package bench

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/switchbackhq/switchback/internal/control"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestIngressLoadRunFindsEveryAcknowledgementInTheJournal(t *testing.T) {
	res, err := Ingress(context.Background(), IngressConfig{Senders: 4, Duration: 300 * time.Millisecond, Partners: 2})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []IngressRun{res.GroupCommit, res.FsyncPerEvent} {
		if r.Acked == 0 || r.Errors != 0 || r.Lost != 0 || r.Journaled != r.Acked {
			t.Errorf("%s: %d acknowledged, %d errors (%s), %d journaled, %d lost; want acknowledgements, no error, none lost",
				r.Mode, r.Acked, r.Errors, r.FirstErr, r.Journaled, r.Lost)
		}
	}
	if res.FsyncPerEvent.WritesPerSync != 1 {
		t.Errorf("MaxBatch 1 made %.1f writes per fsync, want 1", res.FsyncPerEvent.WritesPerSync)
	}
}

func TestReplayRunRecoversTheWindow(t *testing.T) {
	res, err := Replay(context.Background(), ReplayConfig{Events: 300})
	if err != nil {
		t.Fatal(err)
	}
	if res.Done != 300 || res.Applied != 300 || res.Recovered != 300 || res.PerSecond <= 0 {
		t.Errorf("replay = %+v, want 300 done, applied and recovered", res)
	}
}

// TestAcknowledgementDoesNotWaitForDelivery: a delivery is acknowledged
// once it is journaled, whatever delivery is doing. Here the pipeline
// hangs and the router has one worker, whose queue holds 256 events: every
// further delivery must still be answered 202, in full, so that the
// sender's connection can carry the next one.
//
// It fails today: Router.hook writes and flushes the 202, then blocks in
// submit until the worker's queue has room. The chunked answer does not
// end, the sender waits (here until its 5 s timeout, a liveness bound, not
// a performance one) and its keep-alive connection carries nothing more:
// the ingress's throughput falls to its delivery's.
func TestAcknowledgementDoesNotWaitForDelivery(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	fx, err := startFixture(ctx, dir, 1, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	defer fx.close()
	release := make(chan struct{})
	hung, stopHung, err := serveLoopback(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
		http.Error(w, "down", http.StatusServiceUnavailable)
	}))
	if err != nil {
		t.Fatal(err)
	}
	defer stopHung()
	defer close(release)
	m := domain.Migration{Key: fx.srv.Migration, Gates: domain.DefaultGates(), Guard: domain.DefaultGuard(),
		Pipelines: domain.Pipelines{Legacy: domain.Pipeline{URL: hung}, New: domain.Pipeline{URL: hung}}}
	if _, _, err := fx.srv.Svc.PutMigration(ctx, control.Change{Actor: "test", Reason: "hang the pipeline"}, m); err != nil {
		t.Fatal(err)
	}
	j, err := journal.Open(filepath.Join(dir, "journal.db"), journal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	rtr, err := fx.startRouter(ctx, j, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer rtr.stop()

	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for i := range 300 {
		id := "msg_" + strconv.Itoa(i)
		body := deliveryBody(nil, 0, i)
		ts := strconv.FormatInt(time.Now().Unix(), 10)
		req, _ := http.NewRequest(http.MethodPost, rtr.url+"/hooks/"+fx.partners[0], bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Webhook-Id", id)
		req.Header.Set("Webhook-Timestamp", ts)
		req.Header.Set("Webhook-Signature", signStandardWebhooks(fx.key, id, ts, body))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("delivery %d: %v", i, err)
		}
		_, err = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusAccepted {
			t.Fatalf("delivery %d: status %d, want 202", i, resp.StatusCode)
		}
		if err != nil {
			t.Fatalf("delivery %d: answered 202 but its answer never ended (%v): the acknowledgement waits for room in a delivery queue", i, err)
		}
	}
	if st, err := j.Stats(t.Context()); err != nil || st.Events != 300 {
		t.Errorf("journal holds %d events (%v), want 300", st.Events, err)
	}
}
