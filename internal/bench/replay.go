package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/journal"
	"github.com/switchbackhq/switchback/internal/procstat"
)

// maxReplayEvents bounds the window a replay run journals first.
const maxReplayEvents = 1_000_000

// replayRate is the replay's rate cap: the highest a request may ask, so
// that the cap is not what is measured.
const replayRate = 100_000

// ReplayResult is what a replay run measured.
type ReplayResult struct {
	Events int `json:"events"`
	// Fill is the time to journal the window and dead-letter it, before
	// the replay.
	Fill time.Duration `json:"fill"`
	// Start is StartReplay's call alone: it counts the window's events.
	Start time.Duration `json:"start"`
	// Elapsed is from the StartReplay call to the job finished.
	Elapsed   time.Duration `json:"elapsed"`
	PerSecond float64       `json:"perSecond"`
	// Early and Late are the rates over the window's first and last
	// tenths, as sampled by polling the job: does the replay slow down as
	// it goes?
	Early  float64 `json:"early"`
	Late   float64 `json:"late"`
	Done   int     `json:"done"`
	Failed int     `json:"failed"`
	// Applied is how many distinct events the pipeline applied; Recovered
	// how many events the journal holds as applied after the replay. Both
	// must equal Events.
	Applied   int `json:"applied"`
	Recovered int `json:"recovered"`
	// CPUMicrosPerEvent is this process's CPU from the StartReplay call
	// to the job finished, per event replayed; CPUIncludes says what runs
	// in it. PipelineCPUMicrosPerEvent is the pipeline's, when it runs in
	// its own process.
	CPUMicrosPerEvent         float64 `json:"cpuMicrosPerEvent"`
	CPUIncludes               string  `json:"cpuIncludes"`
	PipelineCPUMicrosPerEvent float64 `json:"pipelineCpuMicrosPerEvent,omitempty"`
	CPUs                      int     `json:"cpus"`
	LoadAverage               string  `json:"loadAverage"`
}

// ReplayConfig is one replay run.
type ReplayConfig struct {
	// Events is the window's size, 1-1,000,000.
	Events int
	// Binary, if set, runs the reference pipeline as a process of its
	// own (switchback pipeline), so that this process's CPU is the
	// router's and the control service's alone. Linux only.
	Binary string
}

// Replay journals a window of n dead-lettered events of one partner (1-2
// KiB payloads), starts a router on them, then replays the window's failed
// events through the reference legacy pipeline on loopback at the highest
// rate cap a request may set, and measures events per second. The router,
// the control service and the pipeline run as in Ingress, the pipeline in
// a process of its own if cfg.Binary is set. It returns an error if any
// event was not replayed and applied.
func Replay(ctx context.Context, cfg ReplayConfig) (ReplayResult, error) {
	n := cfg.Events
	if n < 1 || n > maxReplayEvents {
		return ReplayResult{}, fmt.Errorf("replay: want 1-%d events", maxReplayEvents)
	}
	if runtime.GOOS != "linux" && cfg.Binary != "" {
		return ReplayResult{}, errNotLinux
	}
	dir, err := os.MkdirTemp("", "switchback-bench-replay-")
	if err != nil {
		return ReplayResult{}, err
	}
	defer os.RemoveAll(dir)
	var fx *fixture
	var pipe *child
	var pipeURL string
	if cfg.Binary == "" {
		fx, err = startFixture(ctx, dir, 1, "", nil)
	} else {
		pipe, pipeURL, err = startChild(ctx, childStart{name: "legacy pipeline", bin: cfg.Binary,
			args: []string{"pipeline", "--kind", "legacy", "--addr", "127.0.0.1:0"}, ready: pipelineReady})
		if err != nil {
			return ReplayResult{}, err
		}
		defer pipe.stop()
		// The replay goes through legacy alone: nothing calls "new".
		fx, err = startControl(ctx, dir, 1, "", nil, [2]string{pipeURL, "http://127.0.0.1:9/new"})
	}
	if err != nil {
		return ReplayResult{}, err
	}
	defer fx.close()
	partner := fx.partners[0]

	j, err := journal.Open(filepath.Join(dir, "journal.db"), journal.Options{})
	if err != nil {
		return ReplayResult{}, err
	}
	defer j.Close()
	out := ReplayResult{Events: n, CPUs: runtime.NumCPU(), LoadAverage: loadAverage(),
		CPUIncludes: "the router, the control service and the reference pipeline, all in this process"}
	if pipe != nil {
		out.CPUIncludes = "the router and the control service (the pipeline runs in its own process)"
	}
	// cpu reads this process's CPU and the pipeline's, if it has its own.
	if runtime.GOOS != "linux" {
		out.CPUIncludes = "not measured: it needs Linux's /proc"
	}
	cpu := func() (self, pipeline time.Duration, err error) {
		if runtime.GOOS != "linux" {
			return 0, 0, nil
		}
		if self, err = procstat.CPU(0); err != nil || pipe == nil {
			return self, 0, err
		}
		pipeline, err = procstat.CPU(pipe.pid())
		return self, pipeline, err
	}
	t0 := time.Now()
	from, to, err := fillDeadLettered(ctx, j, partner, n)
	if err != nil {
		return out, fmt.Errorf("journal the window: %w", err)
	}
	out.Fill = time.Since(t0)

	rtr, err := fx.startRouter(ctx, j, 32)
	if err != nil {
		return out, err
	}
	defer rtr.stop()
	t0 = time.Now()
	self0, pipe0, cpuErr := cpu()
	job, err := rtr.rt.StartReplay(ctx, domain.ReplayRequest{Migration: fx.srv.Migration, Partners: []string{partner},
		From: from, To: to, Pipeline: "legacy", Filter: domain.ReplayFailed, Rate: replayRate})
	if err != nil {
		return out, err
	}
	out.Start = time.Since(t0)
	if job.Total != n {
		return out, fmt.Errorf("the replay counts %d events in the window, want %d", job.Total, n)
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	// Where the job stood, sampled, around the first and last tenths.
	type sample struct {
		done int
		at   time.Time
	}
	var early, late [2]sample // late ends when the job finished
	for job.Status != domain.ReplayDone && job.Status != domain.ReplayFailedS {
		select {
		case <-ctx.Done():
			return out, fmt.Errorf("replay %d of %d events done: %w", job.Done, n, ctx.Err())
		case <-tick.C:
		}
		if job, err = rtr.rt.Replay(job.ID); err != nil {
			return out, err
		}
		now := sample{job.Done, time.Now()}
		switch {
		case early[0].at.IsZero() && job.Done > 0:
			early[0] = now
		case early[1].at.IsZero() && job.Done >= n/10:
			early[1] = now
		case late[0].at.IsZero() && job.Done >= n-n/10 && job.Done < n:
			late[0] = now
		}
	}
	late[1] = sample{job.Done, job.FinishedAt}
	self1, pipe1, err := cpu()
	if err := errors.Join(cpuErr, err); err != nil {
		return out, err
	}
	out.CPUMicrosPerEvent = perEach(self1-self0, job.Done)
	out.PipelineCPUMicrosPerEvent = perEach(pipe1-pipe0, job.Done)
	rate := func(s [2]sample) float64 {
		if d := s[1].at.Sub(s[0].at); d > 0 && !s[0].at.IsZero() {
			return float64(s[1].done-s[0].done) / d.Seconds()
		}
		return 0
	}
	out.Early, out.Late = rate(early), rate(late)
	out.Elapsed = job.FinishedAt.Sub(t0)
	out.Done, out.Failed = job.Done, job.Failed
	out.PerSecond = float64(job.Done) / out.Elapsed.Seconds()
	if fx.legacy != nil {
		out.Applied = fx.legacy.Applications()
	} else {
		c, err := pipelineCounts(ctx, &http.Client{Timeout: 10 * time.Second}, pipeURL)
		if err != nil {
			return out, err
		}
		out.Applied = c.Events
	}

	err = j.Scan(ctx, partner, journal.Position{At: from}, to, func(e journal.Event) bool {
		if e.State == journal.StateApplied && len(e.Replays) == 1 && e.Replays[0].OK {
			out.Recovered++
		}
		return true
	})
	switch {
	case err != nil:
		return out, err
	case job.Status != domain.ReplayDone:
		return out, fmt.Errorf("replay ended %s: %s", job.Status, job.Error)
	case job.Done != n || job.Failed != 0 || out.Applied != n || out.Recovered != n:
		return out, fmt.Errorf("of %d events: %d replayed, %d failed, %d applied by the pipeline, %d applied in the journal", n, job.Done, job.Failed, out.Applied, out.Recovered)
	}
	return out, nil
}

// fillDeadLettered journals n events of partner received a microsecond
// apart in the last hour, as a burst the router could not deliver, and
// dead-letters them all. It returns the window [from, to) holding them.
func fillDeadLettered(ctx context.Context, j *journal.Journal, partner string, n int) (from, to time.Time, err error) {
	const chunk, writers = 500, 16
	from = time.Now().UTC().Add(-time.Hour).Truncate(time.Second)
	to = from.Add(time.Duration(n)*time.Microsecond + time.Second)
	seqs := make(chan uint64, 4*chunk)
	var wg sync.WaitGroup
	var mu sync.Mutex
	var firstErr error
	fail := func(err error) {
		mu.Lock()
		firstErr = cmpErr(firstErr, err)
		mu.Unlock()
	}
	// Appenders journal chunks of a delivery's size; completers dead-letter
	// what was journaled, concurrently, so both share transactions.
	var appenders sync.WaitGroup
	for w := range writers {
		appenders.Go(func() {
			var body []byte
			for c := w * chunk; c < n; c += writers * chunk {
				events := make([]journal.Event, 0, chunk)
				for i := c; i < min(n, c+chunk); i++ {
					body = deliveryBody(body[:0], w, i)
					events = append(events, journal.Event{Partner: partner, PSA: "generic", Type: "ticket", SourceType: "ticket",
						Action: "updated", EntityID: fmt.Sprintf("E-%d", i%500), DeliveryID: fmt.Sprintf("msg_replay_%d", i),
						ReceivedAt: from.Add(time.Duration(i) * time.Microsecond), Payload: append(json.RawMessage(nil), body...)})
				}
				res, err := j.Append(ctx, events)
				if err != nil {
					fail(err)
					return
				}
				for _, a := range res {
					seqs <- a.Seq
				}
			}
		})
	}
	go func() { appenders.Wait(); close(seqs) }()
	at := time.Now().UTC()
	for range 64 {
		wg.Go(func() {
			for seq := range seqs {
				err := j.Complete(ctx, seq, journal.Outcome{State: journal.StateDeadLettered, Attempts: 8, Pipeline: "legacy",
					Error: "pipeline answered 503: down for the benchmark", At: at})
				if err != nil {
					fail(err)
				}
			}
		})
	}
	wg.Wait()
	return from, to, firstErr
}
