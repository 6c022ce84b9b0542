package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/procstat"
)

// PropagationConfig is one propagation run against a Server.
type PropagationConfig struct {
	Providers int // flags providers connected to the snapshot stream
	Rounds    int // kill switch flips (revert, resume, revert…)
	// Processes, if above 0, spreads the providers over that many
	// processes of Binary (switchback bench providers), so that their
	// decoding is not charged to the control service's process. Linux
	// only: each process's CPU is read from /proc.
	Processes int
	Binary    string
	// WholeSnapshots makes the providers take a whole snapshot for every
	// version instead of deltas (flags.Options.WholeSnapshots).
	WholeSnapshots bool
}

// PropagationResult is what a run measured: for every provider and round,
// the time from sending the revert (or resume) call to the provider's
// CONFIGURATION_CHANGED event for the new version.
type PropagationResult struct {
	Providers int `json:"providers"`
	Rounds    int `json:"rounds"`
	Processes int `json:"processes,omitempty"`
	// Deltas says the providers took deltas rather than whole snapshots.
	Deltas  bool      `json:"deltas"`
	Latency Latencies `json:"latency"`
	// Call is the API call alone: durably stored and answered.
	Call Latencies `json:"call"`
	// With Processes: the CPU per round of this process (the control
	// service, and the benchmark reading the providers' lines) and of
	// every provider process together.
	ControlCPUMsPerRound   float64 `json:"controlCpuMsPerRound,omitempty"`
	ProvidersCPUMsPerRound float64 `json:"providersCpuMsPerRound,omitempty"`
	CPUs                   int     `json:"cpus"`
	LoadAverage            string  `json:"loadAverage"`
}

// seen is a provider holding a version, at a time.
type seen struct {
	version uint64
	at      time.Time
}

// Propagation connects cfg.Providers providers to srv, in this process or
// in cfg.Processes others, and flips srv's migration's kill switch
// cfg.Rounds times through the HTTP API. In other processes, the arrival
// times are their wall clock, which on one machine is this one's.
func Propagation(ctx context.Context, srv *Server, cfg PropagationConfig) (PropagationResult, error) {
	if cfg.Providers < 1 || cfg.Rounds < 1 || cfg.Processes < 0 || cfg.Processes > cfg.Providers {
		return PropagationResult{}, fmt.Errorf("propagation: want at least one provider and one round, and at most one process per provider")
	}
	if cfg.Processes > 0 && runtime.GOOS != "linux" {
		return PropagationResult{}, errNotLinux
	}
	token, err := srv.Token(ctx, "bench-providers", domain.RoleViewer)
	if err != nil {
		return PropagationResult{}, err
	}
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	arrivals := make(chan seen, cfg.Providers*cfg.Rounds*2)
	var children []*child
	if cfg.Processes == 0 {
		stop, err := startProviders(ctx, srv.URL, token, cfg.Providers, cfg.WholeSnapshots, func(s seen) { arrivals <- s })
		if err != nil {
			return PropagationResult{}, err
		}
		defer stop()
	} else {
		if children, err = startProviderProcesses(ctx, srv.URL, token, cfg, arrivals); err != nil {
			return PropagationResult{}, err
		}
		defer func() {
			for _, c := range children {
				c.stop()
			}
		}()
	}
	cpu := func() (self, providers time.Duration, err error) {
		if self, err = procstat.CPU(0); err != nil || len(children) == 0 {
			return self, 0, err
		}
		for _, c := range children {
			d, err := procstat.CPU(c.pid())
			if err != nil {
				return 0, 0, err
			}
			providers += d
		}
		return self, providers, nil
	}
	self0, prov0, cpuErr := cpu()

	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	var lat, calls []time.Duration
	for round := range cfg.Rounds {
		action := "revert"
		if round%2 == 1 {
			action = "resume"
		}
		start := time.Now()
		version, err := flip(ctx, client, srv, action)
		if err != nil {
			return PropagationResult{}, err
		}
		calls = append(calls, time.Since(start))
		for got := 0; got < cfg.Providers; {
			select {
			case s := <-arrivals:
				if s.version == version {
					lat = append(lat, s.at.Sub(start))
					got++
				}
			case <-time.After(10 * time.Second):
				return PropagationResult{}, fmt.Errorf("round %d: only %d of %d providers reached version %d within 10s", round, got, cfg.Providers, version)
			}
		}
	}
	out := PropagationResult{Providers: cfg.Providers, Rounds: cfg.Rounds, Processes: cfg.Processes, Deltas: !cfg.WholeSnapshots, Latency: Summarize(lat), Call: Summarize(calls),
		CPUs: runtime.NumCPU(), LoadAverage: loadAverage()}
	if len(children) > 0 {
		self1, prov1, err := cpu()
		if err := errors.Join(cpuErr, err); err != nil {
			return out, err
		}
		out.ControlCPUMsPerRound = ms(self1-self0) / float64(cfg.Rounds)
		out.ProvidersCPUMsPerRound = ms(prov1-prov0) / float64(cfg.Rounds)
	}
	return out, nil
}

// startProviders connects n flags providers to the control service at
// url, each on a connection of its own as providers in separate processes
// would have, and hands arrive every CONFIGURATION_CHANGED they see, from
// their readers' goroutines. stop disconnects them.
func startProviders(ctx context.Context, url, token string, n int, whole bool, arrive func(seen)) (stop func(), err error) {
	tr := &http.Transport{MaxIdleConnsPerHost: n + 4}
	log := slog.New(slog.DiscardHandler)
	var wg sync.WaitGroup
	readers, cancel := context.WithCancel(context.Background())
	var providers []*flags.Provider
	stop = func() {
		cancel()
		wg.Wait()
		for _, p := range providers {
			p.Shutdown()
		}
		tr.CloseIdleConnections()
	}
	for i := range n {
		p, err := flags.NewProvider(flags.Options{URL: url, Token: token, Logger: log, HTTPClient: &http.Client{Transport: tr}, WholeSnapshots: whole})
		if err != nil {
			stop()
			return nil, err
		}
		if err := p.InitWithContext(ctx, openfeature.EvaluationContext{}); err != nil {
			stop()
			return nil, fmt.Errorf("provider %d: %w", i, err)
		}
		providers = append(providers, p)
		wg.Go(func() {
			for {
				select {
				case ev := <-p.EventChannel():
					if ev.EventType != openfeature.ProviderConfigChange {
						continue
					}
					v, _ := ev.EventMetadata["snapshotVersion"].(int64)
					arrive(seen{uint64(v), time.Now()})
				case <-readers.Done():
					return
				}
			}
		})
	}
	return stop, nil
}

// providersReady starts the line RunProviders prints once its providers
// hold a snapshot; seenLine is the format of each arrival it prints.
const (
	providersReady = "switchback bench providers: ready "
	seenLine       = "seen %d %d"
)

var providersLine = regexp.MustCompile(regexp.QuoteMeta(providersReady) + `(\d+)`)

// RunProviders is the process of "bench propagation --processes": it
// connects n flags providers to the control service at url with token,
// prints a ready line, then, for every CONFIGURATION_CHANGED a provider
// sees, a line "seen VERSION UNIXNANO" (its wall clock then), until ctx
// ends.
func RunProviders(ctx context.Context, url, token string, n int, whole bool, stdout io.Writer) error {
	if n < 1 {
		return fmt.Errorf("providers: want at least one")
	}
	lines := make(chan seen, 4*n)
	stop, err := startProviders(ctx, url, token, n, whole, func(s seen) {
		select {
		case lines <- s:
		case <-ctx.Done():
		}
	})
	if err != nil {
		return err
	}
	defer stop()
	// One writer, with one write per batch of lines that are waiting, so
	// that the arrivals of a version do not queue behind each other's
	// system calls.
	w := bufio.NewWriter(stdout)
	fmt.Fprintf(w, "%s%d\n", providersReady, n)
	for {
		if err := w.Flush(); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case s := <-lines:
			fmt.Fprintf(w, seenLine+"\n", s.version, s.at.UnixNano())
		}
		for more := true; more; {
			select {
			case s := <-lines:
				fmt.Fprintf(w, seenLine+"\n", s.version, s.at.UnixNano())
			default:
				more = false
			}
		}
	}
}

// startProviderProcesses spreads cfg.Providers over cfg.Processes
// processes of RunProviders and hands arrivals what they print.
func startProviderProcesses(ctx context.Context, url, token string, cfg PropagationConfig, arrivals chan<- seen) ([]*child, error) {
	var children []*child
	for i := range cfg.Processes {
		n := cfg.Providers / cfg.Processes
		if i < cfg.Providers%cfg.Processes {
			n++
		}
		args := []string{"bench", "providers", "--control", url, "--count", strconv.Itoa(n)}
		if cfg.WholeSnapshots {
			args = append(args, "--whole-snapshots")
		}
		c, _, err := startChild(ctx, childStart{name: fmt.Sprintf("providers process %d", i), bin: cfg.Binary,
			args: args,
			env:  []string{"SWITCHBACK_TOKEN=" + token}, ready: providersLine,
			onLine: func(line string) {
				var v uint64
				var at int64
				if _, err := fmt.Sscanf(line, seenLine, &v, &at); err == nil {
					arrivals <- seen{v, time.Unix(0, at)}
				}
			}})
		if err != nil {
			for _, c := range children {
				c.stop()
			}
			return nil, err
		}
		children = append(children, c)
	}
	return children, nil
}

// flip calls revert or resume on srv's migration and returns the version.
func flip(ctx context.Context, client *http.Client, srv *Server, action string) (uint64, error) {
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, srv.URL+"/v1/migrations/"+srv.Migration+"/"+action,
		bytes.NewReader([]byte(`{"reason":"propagation benchmark"}`)))
	req.Header.Set("Authorization", "Bearer "+srv.AdminToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var out struct {
		SnapshotVersion uint64 `json:"snapshotVersion"`
	}
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s answered %d", action, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return 0, err
	}
	return out.SnapshotVersion, nil
}
