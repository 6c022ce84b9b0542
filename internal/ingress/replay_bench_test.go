package ingress_test

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// BenchmarkReplay replays a window of journaled events (1-2 KiB
// bodies, one partner, each updating one of the window's tickets at
// random) through the reference legacy pipeline on loopback, at the
// highest rate a request may ask (100,000/s, so that the cap is not what
// is measured), from a router with 32 workers and its journal on disk, all
// in this process. Each round is one replay job of the whole window, from
// StartReplay to the job done; the window is journaled once, untimed. It
// reports events/s, and the process's CPU per event (router, pipeline and
// control service together). refpipe: 50,000 events of 5,000 tickets, the
// pipeline answering at once; refpipe-2ms: 10,000 events of 1,000
// tickets, the pipeline answering each call after 2 ms, as a pipeline
// that writes somewhere does. -short replays a tenth of each.
func BenchmarkReplay(b *testing.B) {
	b.Run("refpipe", func(b *testing.B) { benchReplay(b, 50_000, 5_000, 0) })
	b.Run("refpipe-2ms", func(b *testing.B) { benchReplay(b, 10_000, 1_000, 2*time.Millisecond) })
}

func benchReplay(b *testing.B, events, entities int, latency time.Duration) {
	if testing.Short() {
		events, entities = events/10, entities/10 // compiles and runs, for CI
	}
	e := newEnv(b, withWorkers(32), withFaults(refpipe.Faults{Latency: latency}, refpipe.Faults{}))
	e.stop()
	from := time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	to := fillReplayWindow(b, e.journalPath, "acme", from, events, entities)
	e.start(b)
	ctx := context.Background()
	var elapsed time.Duration
	cpu0 := processCPU()
	for b.Loop() {
		t0 := time.Now()
		job, err := e.router.StartReplay(ctx, domain.ReplayRequest{Migration: "psa-webhooks-v2", Partners: []string{"acme"},
			From: from, To: to, Pipeline: "legacy", Filter: domain.ReplayAll, Rate: 100_000})
		if err != nil {
			b.Fatal(err)
		}
		for job.Status != domain.ReplayDone && job.Status != domain.ReplayFailedS {
			time.Sleep(5 * time.Millisecond)
			if job, err = e.router.Replay(job.ID); err != nil {
				b.Fatal(err)
			}
		}
		elapsed += time.Since(t0)
		if job.Status != domain.ReplayDone || job.Done != events || job.Failed != 0 {
			b.Fatalf("replay = %s, %d of %d done, %d failed; want done, %d done, none failed", job.Status, job.Done, job.Total, job.Failed, events)
		}
	}
	b.ReportMetric(float64(b.N*events)/elapsed.Seconds(), "events/s")
	if cpu := processCPU() - cpu0; cpu > 0 {
		b.ReportMetric(float64(cpu.Microseconds())/float64(b.N*events), "cpu-µs/event")
	}
}

// processCPU is the CPU time the process has used (user and system), from
// /proc/self/stat in ticks of 10 ms; 0 where there is no /proc. The
// benchmark's process holds the router, the pipeline and the control
// service: its CPU per event is the whole replay's, the pipeline's
// included.
func processCPU() time.Duration {
	data, err := os.ReadFile("/proc/self/stat")
	if err != nil {
		return 0
	}
	// The fields after the command, which is in parentheses.
	fields := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+1:]))
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// fillReplayWindow journals n events of partner on the journal file at
// path, each updating one of entities tickets picked at random (seeded:
// the same tickets every run), received a microsecond apart from from on,
// with an outcome each (dead-lettered), and returns the end of the window
// [from, to) holding them.
func fillReplayWindow(tb testing.TB, path, partner string, from time.Time, n, entities int) (to time.Time) {
	tb.Helper()
	ctx := context.Background()
	j, err := journal.Open(path, journal.Options{})
	if err != nil {
		tb.Fatal(err)
	}
	defer j.Close()
	to = from.Add(time.Duration(n)*time.Microsecond + time.Second)
	notes := make([]byte, 2048)
	for i := range notes {
		notes[i] = 'a' + byte(i%26)
	}
	var recorded sync.WaitGroup
	var mu sync.Mutex
	var failed error
	const chunk = 500
	rng := rand.New(rand.NewPCG(uint64(n), uint64(entities)))
	for c := 0; c < n; c += chunk {
		batch := make([]journal.Event, 0, chunk)
		for i := c; i < min(n, c+chunk); i++ {
			entity := fmt.Sprintf("T-%d", rng.IntN(entities))
			pad := 1024 + (i*37)%1024
			body := fmt.Appendf(nil, `{"type":"ticket.updated","timestamp":%q,"data":{"id":%q,"status":"open","summary":"replayed %d","notes":%q}}`,
				from.Format(time.RFC3339), entity, i, notes[:pad-100])
			batch = append(batch, journal.Event{Partner: partner, PSA: "generic", Type: "ticket", SourceType: "ticket", Action: "updated",
				EntityID: entity, DeliveryID: fmt.Sprintf("replay-%d", i), ReceivedAt: from.Add(time.Duration(i) * time.Microsecond), Payload: body})
		}
		res, err := j.Append(ctx, batch)
		if err != nil {
			tb.Fatal(err)
		}
		for _, a := range res {
			recorded.Add(1)
			err := j.CompleteLater(ctx, a.Seq, journal.Outcome{State: journal.StateDeadLettered, Attempts: 8, Pipeline: "legacy",
				Error: "pipeline answered 503: down for the benchmark", At: time.Now().UTC()}, func(err error) {
				defer recorded.Done()
				if err != nil {
					mu.Lock()
					failed = err
					mu.Unlock()
				}
			})
			if err != nil {
				tb.Fatal(err)
			}
		}
	}
	recorded.Wait()
	if failed != nil {
		tb.Fatal(failed)
	}
	return to
}
