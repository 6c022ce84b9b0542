package ingress_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/pipelineclient"
)

// hotEntity is the ticket a bursting partner updates over and over.
const hotEntity = "HOT-1"

// refusal is what a webhook's answer says when it is not 202.
type refusal struct{ code, retryAfter string }

// postHook sends a signed Standard Webhooks delivery updating ticket
// entity, with n in its data, and returns the status and, unless 202, the
// error code and Retry-After.
func postHook(client *http.Client, url, id, entity string, n int) (int, refusal, error) {
	body := fmt.Appendf(nil, `{"type":"ticket.updated","timestamp":%q,"data":{"id":%q,"n":%d}}`,
		time.Now().UTC().Format(time.RFC3339), entity, n)
	ts := time.Now().Unix()
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return 0, refusal{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("webhook-id", id)
	req.Header.Set("webhook-timestamp", strconv.FormatInt(ts, 10))
	req.Header.Set("webhook-signature", sign(id, ts, body))
	resp, err := client.Do(req)
	if err != nil {
		return 0, refusal{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusAccepted {
		io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, refusal{}, nil
	}
	var ans struct {
		Error struct{ Code string } `json:"error"`
	}
	json.NewDecoder(resp.Body).Decode(&ans)
	return resp.StatusCode, refusal{ans.Error.Code, resp.Header.Get("Retry-After")}, nil
}

// holdHot holds the pipeline calls for hotEntity until release is closed,
// and records the n of each in the order the calls came; it passes the
// others on at once.
type holdHot struct {
	next    http.Handler
	release chan struct{}
	mu      sync.Mutex
	order   []int
}

func (h *holdHot) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var ev pipelineclient.Event
	body, err := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	if err == nil {
		err = json.Unmarshal(body, &ev)
	}
	if err != nil {
		http.Error(w, "the body is not an event", http.StatusBadRequest)
		return
	}
	if ev.EntityID == hotEntity {
		var p struct {
			Data struct{ N int } `json:"data"`
		}
		json.Unmarshal(ev.Payload, &p)
		h.mu.Lock()
		h.order = append(h.order, p.Data.N)
		h.mu.Unlock()
		select {
		case <-h.release:
		case <-r.Context().Done():
			return
		}
	}
	h.next.ServeHTTP(w, r)
}

// calls returns the n of the hot entity's calls, a call retried after a
// timeout counted once: what the pipeline applied, in order.
func (h *holdHot) calls() []int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Compact(slices.Clone(h.order))
}

// A partner updating one ticket over and over, while the pipeline holds
// that ticket's deliveries, fills its share of the backlog and is answered
// 429 with Retry-After; ten other partners' webhooks are taken meanwhile,
// and delivered; once the pipeline lets the ticket's deliveries through,
// it sees them in the order they were sent, and the partner is taken
// again.
func TestAHotEntityBurstIsRefusedForItsPartnerOnly(t *testing.T) {
	const share, others, perPartner = 20, 10, 15
	e := newEnv(t, withBacklog(200), withPartnerBacklog(share), withAttempts(1000))
	hold := &holdHot{next: e.legacy, release: make(chan struct{})}
	e.legacyAt.set(hold)
	released := false
	defer func() {
		if !released {
			close(hold.release)
		}
	}()
	e.putPartner(t, "hot", domain.PSAGeneric, whsec)
	for p := range others {
		e.putPartner(t, fmt.Sprintf("steady-%02d", p), domain.PSAGeneric, whsec)
	}
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: others}}
	defer client.CloseIdleConnections()
	hot := func(n int) (int, refusal) {
		t.Helper()
		status, why, err := postHook(client, e.hooks.URL+"/hooks/hot", fmt.Sprintf("hot-%d", n), hotEntity, n)
		if err != nil {
			t.Fatal(err)
		}
		return status, why
	}
	backlogged := refusal{domain.CodeRouterBacklogged, "5"}

	// One sender, one webhook after another: their order is the ticket's.
	acked := 0
	for ; ; acked++ {
		status, why := hot(acked)
		if status == http.StatusTooManyRequests {
			if why != backlogged {
				t.Errorf("429 to the hot partner with %+v, want %+v", why, backlogged)
			}
			break
		}
		if status != http.StatusAccepted {
			t.Fatalf("hot webhook %d = %d, want 202 until its share is full", acked, status)
		}
		if acked > share+1 {
			t.Fatalf("%d hot webhooks taken, more than the partner's share of %d and the one with a worker", acked, share)
		}
	}
	if acked < share {
		t.Errorf("the hot partner was refused after %d webhooks, before its share of %d was full", acked, share)
	}

	var wg sync.WaitGroup
	for p := range others {
		wg.Go(func() {
			url := fmt.Sprintf("%s/hooks/steady-%02d", e.hooks.URL, p)
			for i := range perPartner {
				id := fmt.Sprintf("steady-%d-%d", p, i)
				status, why, err := postHook(client, url, id, id, i)
				if err != nil {
					t.Error(err)
					return
				}
				if status != http.StatusAccepted {
					t.Errorf("partner steady-%02d's webhook %d = %d %+v beside the hot partner's burst, want 202", p, i, status, why)
				}
			}
		})
	}
	wg.Wait()
	// Delivered too: the held ticket holds one worker, not the others.
	waitFor(t, "the other partners' events applied", func() bool { return e.legacy.Applications() == others*perPartner })
	if status, why := hot(acked); status != http.StatusTooManyRequests || why != backlogged {
		t.Errorf("hot webhook while its share is full = %d %+v, want 429 %+v", status, why, backlogged)
	}

	close(hold.release)
	released = true
	waitFor(t, "every event applied", func() bool { return e.pendingCount(t) == 0 })
	want := make([]int, acked)
	for i := range want {
		want[i] = i
	}
	if got := hold.calls(); !slices.Equal(got, want) {
		t.Errorf("the pipeline saw the hot ticket's updates in the order %v, want %v", got, want)
	}
	if status, _ := hot(acked + 1); status != http.StatusAccepted {
		t.Errorf("hot webhook once drained = %d, want 202", status)
	}
}
