package ingress_test

import (
	"bytes"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// countHot counts the pipeline calls for hotEntity before passing them on.
func countHot(next http.Handler, hot *atomic.Int64) http.Handler {
	marker := []byte(`"entityId":"` + hotEntity + `"`)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		if bytes.Contains(body, marker) {
			hot.Add(1)
		}
		r.Body = io.NopCloser(bytes.NewReader(body))
		next.ServeHTTP(w, r)
	})
}

// BenchmarkHotEntityBesideSteadyTraffic: ten partners send steady
// traffic (one closed-loop sender each, a new ticket per webhook) to a
// router with 32 workers, the reference pipeline answering in 2 ms and a
// journal on disk;
// in "burst", an eleventh partner updates one ticket over and over from
// 32 senders meanwhile, each waiting as long as a 429's Retry-After
// says (and up to as long again), as a PSA does. b.N is the ten partners' webhooks. The
// backlog is bounded at 2,000 events so that the burst meets the bounds
// within seconds. It reports the ten partners' ack p99 and their 429s,
// the hot partner's 429s, and the hot entity's deliveries per second.
func BenchmarkHotEntityBesideSteadyTraffic(b *testing.B) {
	for _, burst := range []bool{false, true} {
		name := "quiet"
		if burst {
			name = "burst"
		}
		b.Run(name, func(b *testing.B) { benchHotEntity(b, burst) })
	}
}

func benchHotEntity(b *testing.B, burst bool) {
	const others, hotSenders, maxBacklog = 10, 32, 2000
	e := newEnv(b, withWorkers(32), withBacklog(maxBacklog), withAttempts(1000),
		withFaults(refpipe.Faults{Latency: 2 * time.Millisecond}, refpipe.Faults{}))
	var hotDelivered atomic.Int64
	e.legacyAt.set(countHot(e.legacy, &hotDelivered))
	for i := range others {
		e.putPartner(b, fmt.Sprintf("steady-%02d", i), domain.PSAGeneric, whsec)
	}
	e.putPartner(b, "hot", domain.PSAGeneric, whsec)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: others + hotSenders}}
	defer client.CloseIdleConnections()

	var hotAcked, hotRefused atomic.Int64
	stop := make(chan struct{})
	var hot sync.WaitGroup
	if burst {
		for s := range hotSenders {
			hot.Go(func() {
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					status, why, err := postHook(client, e.hooks.URL+"/hooks/hot", fmt.Sprintf("hot-%d-%d", s, i), hotEntity, i)
					switch {
					case err != nil:
						b.Error(err)
						return
					case status == http.StatusAccepted:
						hotAcked.Add(1)
					case status == http.StatusTooManyRequests:
						// As a PSA does, with jitter.
						hotRefused.Add(1)
						secs, _ := strconv.Atoi(why.retryAfter)
						wait := time.Duration(secs) * time.Second
						select {
						case <-time.After(wait + rand.N(wait+1)):
						case <-stop:
							return
						}
					}
				}
			})
		}
		// Until the burst has met a bound, or could have filled the
		// backlog twice over.
		for hotRefused.Load() == 0 && hotAcked.Load() < 2*maxBacklog {
			time.Sleep(10 * time.Millisecond)
		}
	}
	defer func() {
		close(stop)
		hot.Wait()
	}()

	latencies := make([][]time.Duration, others)
	var refused atomic.Int64
	delivered0, refused0 := hotDelivered.Load(), hotRefused.Load()
	b.ResetTimer()
	start := time.Now()
	var steady sync.WaitGroup
	for p := range others {
		steady.Go(func() {
			url := fmt.Sprintf("%s/hooks/steady-%02d", e.hooks.URL, p)
			for i := p; i < b.N; i += others {
				id := fmt.Sprintf("steady-%d", i)
				t0 := time.Now()
				status, _, err := postHook(client, url, id, id, i)
				if err != nil {
					b.Error(err)
					return
				}
				latencies[p] = append(latencies[p], time.Since(t0))
				if status != http.StatusAccepted {
					refused.Add(1)
				}
			}
		})
	}
	steady.Wait()
	elapsed := time.Since(start)
	b.StopTimer()

	all := slices.Concat(latencies...)
	slices.Sort(all)
	if len(all) > 0 {
		b.ReportMetric(float64(all[(len(all)*99)/100].Microseconds())/1000, "ack-p99-ms")
	}
	b.ReportMetric(float64(refused.Load()), "others-refused")
	if burst {
		b.ReportMetric(float64(hotRefused.Load()-refused0), "hot-refused")
		b.ReportMetric(float64(hotDelivered.Load()-delivered0)/elapsed.Seconds(), "hot-delivered/s")
	}
}
