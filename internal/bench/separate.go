package bench

import (
	"bufio"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/procstat"
	"github.com/switchbackhq/switchback/internal/refpipe"
)

// SeparateConfig is an ingress run with each part in its own process: the
// router (switchback ingress), the two reference pipelines (switchback
// pipeline), a bare HTTP server for the ceiling, and the load and the
// control service in the calling process. Zero fields take the defaults.
type SeparateConfig struct {
	// Binary is the switchback binary the parts are started from.
	Binary string
	// Senders are the closed-loop keep-alive clients. Default 32.
	Senders int
	// Duration is how long each stage, and the ceiling, is driven.
	// Default 10 s, at most 5 min.
	Duration time.Duration
	// Partners are the generic partners the deliveries are spread over.
	// Default 8.
	Partners int
	// Workers are the router's delivery workers. Default 32.
	Workers int
	// Stages are run one after the other, each on a router of its own
	// with a fresh journal, against the same ceiling. Default legacy.
	Stages []domain.Stage
	// NoiseSampleRate is the migration's compare.noiseSampleRate (nil:
	// the default).
	NoiseSampleRate *float64
	// ShadowMinShare is the router's --shadow-min-share: below 1, the share
	// of shadowed events still compared while its CPU is contended. 0 is
	// the router's default.
	ShadowMinShare float64
	// Drain bounds the wait, after the senders stop, for every
	// acknowledged webhook to be applied by the primary pipeline; what is
	// still not applied then is lost. Default 60 s.
	Drain time.Duration
	// Journal is the router's --journal: empty for its bbolt journal, or
	// the nats:// URLs of a JetStream cluster the caller runs (in a
	// process of its own, so that its CPU is not the router's), and
	// JournalReplicas the stream's replicas if the router creates it.
	// Every stage's router shares the one stream.
	Journal         string
	JournalReplicas int
	// Routers are the router processes of each stage, all on the one
	// stream (each with its own data and router id): the senders' webhooks
	// go to them in turn, as a round-robin load balancer would send them,
	// and each delivers the shards JetStream pins to it. Above 1 only with
	// a nats Journal. Default 1.
	Routers int
	// Progress takes a line per step; nil for none.
	Progress io.Writer
}

func (c *SeparateConfig) defaults() error {
	if c.Senders == 0 {
		c.Senders = 32
	}
	if c.Duration == 0 {
		c.Duration = 10 * time.Second
	}
	if c.Partners == 0 {
		c.Partners = 8
	}
	if c.Workers == 0 {
		c.Workers = 32
	}
	if len(c.Stages) == 0 {
		c.Stages = []domain.Stage{domain.StageLegacy}
	}
	if c.Drain == 0 {
		c.Drain = time.Minute
	}
	if c.Progress == nil {
		c.Progress = io.Discard
	}
	if c.Routers == 0 {
		c.Routers = 1
	}
	if c.Routers < 1 || c.Routers > maxSeparateRouters {
		return fmt.Errorf("ingress --separate: want 1-%d routers", maxSeparateRouters)
	}
	if c.Routers > 1 && c.Journal == "" {
		return errors.New("ingress --separate: more than one router needs a journal they share: --journal nats://…")
	}
	if c.Journal != "" && !strings.HasPrefix(c.Journal, "nats://") {
		return fmt.Errorf("ingress --separate: journal %q: want nats://HOST:PORT[,...], or none for bbolt", c.Journal)
	}
	if c.Binary == "" {
		return errors.New("ingress --separate: no switchback binary to start the router from")
	}
	for _, st := range c.Stages {
		if st != domain.StageLegacy && st != domain.StageShadow {
			return fmt.Errorf("ingress --separate: stage %q: want legacy or shadow", st)
		}
	}
	if c.Senders < 1 || c.Senders > maxSenders || c.Duration < 0 || c.Duration > maxIngressPeriod || c.Partners < 1 || c.Workers < 1 || c.Drain < 0 {
		return fmt.Errorf("ingress --separate: want 1-%d senders, a duration up to %s, at least one partner and one worker", maxSenders, maxIngressPeriod)
	}
	if !(c.ShadowMinShare >= 0 && c.ShadowMinShare <= 1) {
		return fmt.Errorf("ingress --separate: the shadow's minimum share %v is not between 0 and 1", c.ShadowMinShare)
	}
	return nil
}

// maxSeparateRouters bounds --routers: each is a process on this machine.
const maxSeparateRouters = 8

// SeparateResult is what an ingress run with separate processes measured.
// Its top-level stage figures are the first stage's, repeated from Stages
// so that a one-stage run reads flat.
type SeparateResult struct {
	Senders  int           `json:"senders"`
	Duration time.Duration `json:"duration"`
	Partners int           `json:"partners"`
	Workers  int           `json:"workers"`
	// Journal is the routers' journal: bbolt, or the NATS URLs.
	Journal string `json:"journal"`
	// Routers are the router processes of each stage when more than one.
	Routers int `json:"routers,omitempty"`
	// CPUs are the machine's, shared by every process of the run: the
	// figures per request are each process's own CPU, the rates are not.
	CPUs int `json:"cpus"`
	// LoadAverage is /proc/loadavg's first three fields before the run:
	// how busy the machine already was.
	LoadAverage string `json:"loadAverage"`
	// Ceiling is the bare server driven by the same load.
	Ceiling                    SeparateCeiling `json:"ceiling"`
	CeilingCPUMicrosPerRequest float64         `json:"ceilingCpuMicrosPerRequest"`
	SeparateRun
	Stages []SeparateRun `json:"stages"`
}

// SeparateCeiling is the bare server's run.
type SeparateCeiling struct {
	Sent     int `json:"sent"`
	Answered int `json:"answered"` // 202
	Errors   int `json:"errors"`
	// RequestsPerSecond, P50Ms and P99Ms are as the router's acks.
	RequestsPerSecond float64 `json:"requestsPerSecond"`
	P50Ms             float64 `json:"p50Ms"`
	P99Ms             float64 `json:"p99Ms"`
	// CPUMicrosPerRequest is the bare server's CPU (utime+stime) over
	// the load, per answered request.
	CPUMicrosPerRequest float64 `json:"cpuMicrosPerRequest"`
}

// SeparateRun is one stage's run against a router in its own process.
type SeparateRun struct {
	Stage    string `json:"stage"`
	Sent     int    `json:"sent"`
	Acked    int    `json:"acked"`   // 202: durably journaled
	Refused  int    `json:"refused"` // 429
	Errors   int    `json:"errors"`
	FirstErr string `json:"firstError,omitempty"`
	// AcksPerSecond is durable acknowledgements per second of the load.
	AcksPerSecond float64 `json:"acksPerSecond"`
	// AckP50Ms and AckP99Ms are from sending a webhook to having read its
	// 202 answer to the end.
	AckP50Ms float64 `json:"ackP50Ms"`
	AckP99Ms float64 `json:"ackP99Ms"`
	// RouterCPUMicrosPerAck is the router process's CPU (all the router
	// processes', summed, when more than one) from the first webhook sent
	// to the last acknowledged one applied by the primary pipeline (the
	// drain), per acknowledgement: HTTP, signature, parse, journal,
	// delivery, and for shadow the dry-run and the comparison.
	RouterCPUMicrosPerAck float64 `json:"routerCpuMicrosPerAck"`
	// RouterCPUMicrosPerAckSending is the same over the sending alone:
	// delivery that lags behind is not in it.
	RouterCPUMicrosPerAckSending float64 `json:"routerCpuMicrosPerAckSending"`
	// CPURatio is RouterCPUMicrosPerAck over the ceiling's per request.
	CPURatio float64 `json:"cpuRatio"`
	// PipelinesCPUMicrosPerAck is both pipeline processes' CPU over the
	// same window; BenchCPUMicrosPerAck the calling process's (the load
	// generator and the control service).
	PipelinesCPUMicrosPerAck float64 `json:"pipelinesCpuMicrosPerAck"`
	BenchCPUMicrosPerAck     float64 `json:"benchCpuMicrosPerAck"`
	// PrimaryDeliveries are the events the primary (legacy) pipeline
	// applied while the senders sent: what delivery kept up with.
	PrimaryDeliveries int `json:"primaryDeliveries"`
	// Delivered are the acknowledged webhooks the primary pipeline had
	// applied when the drain ended, DrainMs after the senders stopped;
	// Lost those it had not. Lost must be 0.
	Delivered int     `json:"delivered"`
	DrainMs   float64 `json:"drainMs"`
	Lost      int     `json:"lost"`
	// Comparisons are the router's shadow comparisons of the acknowledged
	// webhooks, by class, counted once each applied event has one, SettleMs
	// after the drain (none at legacy). skipped ones were shed: the shadow
	// fell behind and the event was not compared.
	Comparisons map[string]int `json:"comparisons,omitempty"`
	SettleMs    float64        `json:"settleMs,omitempty"`
	// RouterCPUMicrosPerAckSettled is RouterCPUMicrosPerAck through the
	// settling: the comparisons made after the drain included.
	RouterCPUMicrosPerAckSettled float64 `json:"routerCpuMicrosPerAckSettled,omitempty"`
	// PerRouter are each router's figures when there is more than one.
	PerRouter []SeparateRouter `json:"perRouter,omitempty"`
}

// SeparateRouter is one router process's share of a stage's run with
// several routers on one stream.
type SeparateRouter struct {
	ID string `json:"id"`
	// Acked are the webhooks it acknowledged, AckP99Ms their p99.
	Acked    int     `json:"acked"`
	AckP99Ms float64 `json:"ackP99Ms"`
	// CPUMs is its CPU over the same window as the run's
	// RouterCPUMicrosPerAck; CPUMicrosPerAck is that per webhook it
	// acknowledged, CPUShare its part of all the routers' CPU.
	CPUMs           float64 `json:"cpuMs"`
	CPUMicrosPerAck float64 `json:"cpuMicrosPerAck"`
	CPUShare        float64 `json:"cpuShare"`
	// Applied are the events its delivery applied over the load and the
	// drain (its switchback_ingress_events_total{outcome="applied"}): the
	// events of the shards JetStream pinned to it, whichever router
	// acknowledged them.
	Applied int `json:"applied"`
}

// The lines the started processes print once they listen.
var (
	pipelineReady = regexp.MustCompile(`pipeline on (http://\S+) `)
	routerReady   = regexp.MustCompile(`listening on (http://[^,\s]+)`)
	ceilingLine   = regexp.MustCompile(regexp.QuoteMeta(ceilingReady) + `(\S+)`)
)

// IngressSeparate runs the ingress load against a router in its own
// process, and the same load against a bare server in its own process for
// the ceiling, and charges each its CPU from /proc/PID/stat. It needs
// Linux. Each stage runs a fresh router on a fresh journal: a 200 ms
// warm-up that must be delivered, then cfg.Duration of load, then the
// drain. An acknowledged webhook that the primary pipeline has not applied
// when the drain ends is lost, and makes an error, returned with the
// figures.
func IngressSeparate(ctx context.Context, cfg SeparateConfig) (SeparateResult, error) {
	if runtime.GOOS != "linux" {
		return SeparateResult{}, errNotLinux
	}
	if err := cfg.defaults(); err != nil {
		return SeparateResult{}, err
	}
	out := SeparateResult{Senders: cfg.Senders, Duration: cfg.Duration, Partners: cfg.Partners, Workers: cfg.Workers,
		Journal: cmp.Or(cfg.Journal, "bbolt"), CPUs: runtime.NumCPU(), LoadAverage: loadAverage()}
	if cfg.Routers > 1 {
		out.Routers = cfg.Routers
	}
	dir, err := os.MkdirTemp("", "switchback-bench-separate-")
	if err != nil {
		return out, err
	}
	defer os.RemoveAll(dir)

	var pipes [2]*child
	var urls [2]string
	for i, kind := range []string{"legacy", "new"} {
		c, url, err := startChild(ctx, childStart{name: kind + " pipeline", bin: cfg.Binary,
			args: []string{"pipeline", "--kind", kind, "--addr", "127.0.0.1:0"}, ready: pipelineReady})
		if err != nil {
			return out, err
		}
		defer c.stop()
		pipes[i], urls[i] = c, url
	}
	fx, err := startControl(ctx, dir, cfg.Partners, cfg.Stages[0], cfg.NoiseSampleRate, urls)
	if err != nil {
		return out, err
	}
	defer fx.close()

	fmt.Fprintf(cfg.Progress, "ceiling: a bare server, %d senders for %s...\n", cfg.Senders, cfg.Duration)
	if out.Ceiling, err = runCeiling(ctx, cfg, fx); err != nil {
		return out, err
	}
	out.CeilingCPUMicrosPerRequest = out.Ceiling.CPUMicrosPerRequest
	var errs []error
	for _, st := range cfg.Stages {
		if err := fx.setStage(ctx, st); err != nil {
			return out, err
		}
		if cfg.Routers > 1 {
			fmt.Fprintf(cfg.Progress, "%d routers at %s: %d senders for %s, then the drain...\n", cfg.Routers, st, cfg.Senders, cfg.Duration)
		} else {
			fmt.Fprintf(cfg.Progress, "router at %s: %d senders for %s, then the drain...\n", st, cfg.Senders, cfg.Duration)
		}
		run, err := fx.separateRun(ctx, cfg, filepath.Join(dir, "router-"+string(st)), pipes, urls[0])
		if out.Ceiling.CPUMicrosPerRequest > 0 {
			run.CPURatio = run.RouterCPUMicrosPerAck / out.Ceiling.CPUMicrosPerRequest
		}
		out.Stages = append(out.Stages, run)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", st, err))
			if run.Acked == 0 {
				break
			}
		}
	}
	if len(out.Stages) > 0 {
		out.SeparateRun = out.Stages[0]
	}
	return out, errors.Join(errs...)
}

// runCeiling drives a bare server in its own process with cfg's load.
func runCeiling(ctx context.Context, cfg SeparateConfig, fx *fixture) (SeparateCeiling, error) {
	var out SeparateCeiling
	c, url, err := startChild(ctx, childStart{name: "ceiling server", bin: cfg.Binary,
		args: []string{"bench", "ceiling-server", "--addr", "127.0.0.1:0"}, ready: ceilingLine})
	if err != nil {
		return out, err
	}
	l := load{urls: []string{url}, partners: fx.partners, key: fx.key, senders: cfg.Senders, duration: cfg.Duration, tag: "ceiling", entityEach: true}
	cpu0, err := procstat.CPU(c.pid())
	if err != nil {
		c.kill()
		return out, err
	}
	lr := l.run(ctx)
	cpu1, err := procstat.CPU(c.pid())
	stopErr := c.stop()
	if err := errors.Join(err, stopErr); err != nil {
		return out, err
	}
	out.Sent, out.Answered, out.Errors = lr.sent, len(lr.acks), lr.errors+lr.refused
	if out.Answered == 0 {
		return out, fmt.Errorf("the ceiling server answered none of %d requests: %v", out.Sent, lr.firstErr)
	}
	lat := Summarize(lr.lat)
	out.RequestsPerSecond = float64(out.Answered) / lr.elapsed.Seconds()
	out.P50Ms, out.P99Ms = ms(lat.P50), ms(lat.P99)
	out.CPUMicrosPerRequest = perEach(cpu1-cpu0, out.Answered)
	return out, nil
}

// separateRun starts cfg.Routers routers, each in its own process with its
// data under dir, warms them up, drives them, drains them and stops them.
func (f *fixture) separateRun(ctx context.Context, cfg SeparateConfig, dir string, pipes [2]*child, primary string) (SeparateRun, error) {
	out := SeparateRun{Stage: string(f.stage)}
	var rtrs []*child
	var urls, ids []string
	defer func() {
		if rtrs != nil {
			for _, r := range rtrs {
				r.kill()
			}
		}
	}()
	pc := &http.Client{Timeout: 10 * time.Second}
	// One after the other, each warmed up before the next starts: the
	// first holds every shard (JetStream pins each to the first router
	// that pulls it) and the others only journal what they acknowledge, as
	// routers added to a running tier do.
	// A tier's stream outlives a run and deduplicates webhook-ids for
	// minutes: this run's must be new to it, or its webhooks would be
	// answered as duplicates of an earlier run's and never delivered.
	run := strconv.FormatInt(time.Now().UnixNano(), 36)
	for i := range cfg.Routers {
		rtr, url, id, err := f.startRouterProcess(ctx, cfg, dir, i)
		if err != nil {
			return out, err
		}
		rtrs, urls, ids = append(rtrs, rtr), append(urls, url), append(ids, id)
		tag := run + "-" + string(f.stage)
		if cfg.Routers > 1 {
			tag += "-" + strconv.Itoa(i+1)
		}
		if err := f.warmUp(ctx, pc, url, primary, tag); err != nil {
			return out, fmt.Errorf("%s: %w", id, err)
		}
	}
	// The warm-up's comparisons are not the load's, nor its applied
	// events the routers' shares of the load's.
	shadowed := f.stage != domain.StageLegacy
	var compared0 routerCounts
	var err error
	if shadowed {
		if compared0, err = settleComparisons(ctx, pc, urls, cfg.Drain); err != nil {
			return out, err
		}
	}
	applied0, err := readEachRouter(ctx, pc, urls)
	if err != nil {
		return out, err
	}

	before, err := pipelineCounts(ctx, pc, primary)
	if err != nil {
		return out, err
	}
	// routersCPU reads each router's CPU.
	routersCPU := func() ([]time.Duration, time.Duration, error) {
		each := make([]time.Duration, len(rtrs))
		var sum time.Duration
		for i, r := range rtrs {
			t, err := procstat.CPU(r.pid())
			if err != nil {
				return nil, 0, fmt.Errorf("%s is gone: %w (%s)", ids[i], err, r.stderr)
			}
			each[i], sum = t, sum+t
		}
		return each, sum, nil
	}
	// cpu reads the routers', both pipelines' and this process's CPU.
	cpu := func() (routers []time.Duration, router, pipelines, self time.Duration, err error) {
		if routers, router, err = routersCPU(); err != nil {
			return nil, 0, 0, 0, err
		}
		var t [3]time.Duration
		var errs [3]error
		for i, pid := range []int{pipes[0].pid(), pipes[1].pid(), 0} {
			t[i], errs[i] = procstat.CPU(pid)
		}
		return routers, router, t[0] + t[1], t[2], errors.Join(errs[:]...)
	}
	each0, r0, p0, s0, err := cpu()
	if err != nil {
		return out, err
	}
	lr := load{urls: urls, partners: f.partners, key: f.key, senders: cfg.Senders, duration: cfg.Duration, tag: run + "-" + string(f.stage), entityEach: true}.run(ctx)
	_, rSending, err := routersCPU()
	if err != nil {
		return out, err
	}
	sending, err := pipelineCounts(ctx, pc, primary)
	if err != nil {
		return out, err
	}

	// The drain: until the primary pipeline has applied as many events
	// as were acknowledged, or nothing moved for 10 s, or cfg.Drain. On a
	// tier, a shard's messages wait out the tier's PinnedTTL (15 s) when
	// its pin moves to another router: nothing moves meanwhile.
	want := before.Events + len(lr.acks)
	still := 10 * time.Second
	if cfg.Journal != "" {
		still = 40 * time.Second
	}
	drainStart := time.Now()
	last, lastMove := sending.Events, drainStart
	for last < want && time.Since(drainStart) < cfg.Drain && time.Since(lastMove) < still {
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		c, err := pipelineCounts(ctx, pc, primary)
		if err != nil {
			return out, err
		}
		if c.Events != last {
			last, lastMove = c.Events, time.Now()
		}
	}
	out.DrainMs = ms(time.Since(drainStart))
	each1, r1, p1, s1, err := cpu()
	if err != nil {
		return out, err
	}
	applied1, err := readEachRouter(ctx, pc, urls)
	if err != nil {
		return out, err
	}
	if shadowed {
		settleStart := time.Now()
		compared, err := settleComparisons(ctx, pc, urls, cfg.Drain)
		if err != nil {
			return out, err
		}
		out.SettleMs = ms(time.Since(settleStart))
		_, r2, err := routersCPU()
		if err != nil {
			return out, err
		}
		out.RouterCPUMicrosPerAckSettled = perEach(r2-r0, len(lr.acks))
		out.Comparisons = map[string]int{}
		for class, n := range compared.comparisons {
			if d := n - compared0.comparisons[class]; d > 0 {
				out.Comparisons[class] = d
			}
		}
	}
	applied, err := appliedIDs(ctx, pc, primary)
	if err != nil {
		return out, err
	}
	var stopErrs []error
	for _, r := range rtrs {
		stopErrs = append(stopErrs, r.stop())
	}
	rtrs = nil
	stopErr := errors.Join(stopErrs...)

	out.Sent, out.Acked, out.Refused, out.Errors = lr.sent, len(lr.acks), lr.refused, lr.errors
	if lr.firstErr != nil {
		out.FirstErr = lr.firstErr.Error()
	}
	lat := Summarize(lr.lat)
	out.AcksPerSecond = float64(out.Acked) / lr.elapsed.Seconds()
	out.AckP50Ms, out.AckP99Ms = ms(lat.P50), ms(lat.P99)
	out.RouterCPUMicrosPerAck = perEach(r1-r0, out.Acked)
	out.RouterCPUMicrosPerAckSending = perEach(rSending-r0, out.Acked)
	out.PipelinesCPUMicrosPerAck = perEach(p1-p0, out.Acked)
	out.BenchCPUMicrosPerAck = perEach(s1-s0, out.Acked)
	out.PrimaryDeliveries = sending.Events - before.Events
	if len(ids) > 1 {
		for i := range ids {
			spent := each1[i] - each0[i]
			r := SeparateRouter{ID: ids[i], Acked: len(lr.perURL[i]), AckP99Ms: ms(Summarize(lr.perURL[i]).P99),
				CPUMs: ms(spent), Applied: applied1[i].applied - applied0[i].applied}
			r.CPUMicrosPerAck = perEach(spent, r.Acked)
			if r1 > r0 {
				r.CPUShare = float64(spent) / float64(r1-r0)
			}
			out.PerRouter = append(out.PerRouter, r)
		}
	}
	for _, a := range lr.acks {
		if applied[a.event] {
			out.Delivered++
		} else {
			out.Lost++
		}
	}
	switch {
	case stopErr != nil:
		return out, stopErr
	case out.Acked == 0:
		return out, fmt.Errorf("no webhook was acknowledged (%d sent, %d refused, %d errors, the first: %s)", out.Sent, out.Refused, out.Errors, out.FirstErr)
	case out.Lost > 0:
		return out, fmt.Errorf("%d of %d acknowledged webhooks were not applied by the primary pipeline %.1fs after the senders stopped", out.Lost, out.Acked, out.DrainMs/1000)
	}
	return out, nil
}

// startRouterProcess starts router i of cfg.Routers at f's stage. One router is
// bench-STAGE with its data in dir, as it always was; several are
// bench-STAGE-1… with theirs in dir-1….
func (f *fixture) startRouterProcess(ctx context.Context, cfg SeparateConfig, dir string, i int) (*child, string, string, error) {
	id, data, name := "bench-"+string(f.stage), dir, "router"
	if cfg.Routers > 1 {
		id, data = id+"-"+strconv.Itoa(i+1), dir+"-"+strconv.Itoa(i+1)
		name = "router " + id
	}
	args := []string{"ingress", "--control", f.srv.URL, "--data", data, "--addr", "127.0.0.1:0", "--router-id", id,
		"--workers", strconv.Itoa(cfg.Workers), "--log-level", "error"}
	if cfg.Journal != "" {
		args = append(args, "--journal", cfg.Journal, "--journal-replicas", strconv.Itoa(cfg.JournalReplicas))
	}
	if cfg.ShadowMinShare > 0 {
		args = append(args, "--shadow-min-share", strconv.FormatFloat(cfg.ShadowMinShare, 'g', -1, 64))
	}
	rtr, url, err := startChild(ctx, childStart{name: name, bin: cfg.Binary, args: args,
		env: []string{"SWITCHBACK_TOKEN=" + f.routerToken}, ready: routerReady})
	return rtr, url, id, err
}

// warmUp sends 200 ms of load from four senders to the router at url and
// waits until the primary pipeline has applied it: the router routes by
// the migration's snapshot and its connections are open before the clock
// starts. A router still without its first snapshot may refuse or hold
// webhooks; it is given 30 s.
func (f *fixture) warmUp(ctx context.Context, pc *http.Client, url, primary, tag string) error {
	deadline := time.Now().Add(30 * time.Second)
	for round := 0; ; round++ {
		before, err := pipelineCounts(ctx, pc, primary)
		if err != nil {
			return err
		}
		lr := load{urls: []string{url}, partners: f.partners, key: f.key, senders: 4, duration: 200 * time.Millisecond,
			tag: "warm-" + tag + "-" + strconv.Itoa(round), entityEach: true}.run(ctx)
		for len(lr.acks) > 0 && time.Now().Before(deadline) {
			c, err := pipelineCounts(ctx, pc, primary)
			if err != nil {
				return err
			}
			if c.Events >= before.Events+len(lr.acks) {
				return nil
			}
			time.Sleep(20 * time.Millisecond)
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return fmt.Errorf("warming up, the router acknowledged %d of %d webhooks and delivered fewer within 30s (the first error: %v)", len(lr.acks), lr.sent, lr.firstErr)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// routerCounts are what a router's metrics say of its work so far.
type routerCounts struct {
	applied     int            // events applied by the primary
	comparisons map[string]int // by class, shed ones (skipped) included
}

// settleComparisons waits until the routers at bases have a comparison
// for every event they applied, or until nothing moved for 10 s or limit
// passed, and returns their counts, summed, then.
func settleComparisons(ctx context.Context, c *http.Client, bases []string, limit time.Duration) (routerCounts, error) {
	start := time.Now()
	last, lastMove := -1, start
	for {
		each, err := readEachRouter(ctx, c, bases)
		if err != nil {
			return routerCounts{}, err
		}
		rc := routerCounts{comparisons: map[string]int{}}
		for _, e := range each {
			rc.applied += e.applied
			for class, n := range e.comparisons {
				rc.comparisons[class] += n
			}
		}
		n := 0
		for _, k := range rc.comparisons {
			n += k
		}
		if n >= rc.applied || time.Since(start) >= limit || time.Since(lastMove) >= 10*time.Second {
			return rc, nil
		}
		if n != last {
			last, lastMove = n, time.Now()
		}
		select {
		case <-ctx.Done():
			return rc, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// readEachRouter reads the counts of each router at bases.
func readEachRouter(ctx context.Context, c *http.Client, bases []string) ([]routerCounts, error) {
	out := make([]routerCounts, len(bases))
	for i, base := range bases {
		var err error
		if out[i], err = readRouterCounts(ctx, c, base); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// readRouterCounts reads the router's GET /metrics (Prometheus' text
// format).
func readRouterCounts(ctx context.Context, c *http.Client, base string) (routerCounts, error) {
	out := routerCounts{comparisons: map[string]int{}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/metrics", nil)
	if err != nil {
		return out, err
	}
	resp, err := c.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("GET %s/metrics: status %d", base, resp.StatusCode)
	}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		series, value, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		v, err := strconv.ParseFloat(value, 64)
		if err != nil {
			continue // a comment, or a value this reader needs not
		}
		if class, ok := strings.CutPrefix(series, `switchback_ingress_comparisons_total{class="`); ok {
			out.comparisons[strings.TrimSuffix(class, `"}`)] = int(v)
		} else if series == `switchback_ingress_events_total{outcome="applied"}` {
			out.applied = int(v)
		}
	}
	return out, sc.Err()
}

// pipelineCounts reads GET /counts of the pipeline at base.
func pipelineCounts(ctx context.Context, c *http.Client, base string) (refpipe.Counts, error) {
	var out refpipe.Counts
	return out, getJSON(ctx, c, base+"/counts", &out)
}

// appliedIDs reads GET /applied/ids of the pipeline at base.
func appliedIDs(ctx context.Context, c *http.Client, base string) (map[string]bool, error) {
	var ans struct {
		IDs []string `json:"ids"`
	}
	if err := getJSON(ctx, c, base+"/applied/ids", &ans); err != nil {
		return nil, err
	}
	out := make(map[string]bool, len(ans.IDs))
	for _, id := range ans.IDs {
		out[id] = true
	}
	return out, nil
}

func getJSON(ctx context.Context, c *http.Client, url string, into any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: status %d", url, resp.StatusCode)
	}
	return json.NewDecoder(resp.Body).Decode(into)
}

// perEach is d in µs per n, 0 for no n.
func perEach(d time.Duration, n int) float64 {
	if n == 0 {
		return 0
	}
	return float64(d.Microseconds()) / float64(n)
}

// ms is d in milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// loadAverage is /proc/loadavg's three averages, "" where there is none.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	return strings.Join(f[:min(3, len(f))], " ")
}
