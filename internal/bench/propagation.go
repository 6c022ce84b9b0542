package bench

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/open-feature/go-sdk/openfeature"

	"github.com/switchbackhq/switchback/flags"
	"github.com/switchbackhq/switchback/internal/domain"
)

// PropagationConfig is one propagation run against a Server.
type PropagationConfig struct {
	Providers int // flags providers connected to the snapshot stream
	Rounds    int // kill switch flips (revert, resume, revert…)
}

// PropagationResult is what a run measured: for every provider and round,
// the time from sending the revert (or resume) call to the provider's
// CONFIGURATION_CHANGED event for the new version.
type PropagationResult struct {
	Providers int       `json:"providers"`
	Rounds    int       `json:"rounds"`
	Latency   Latencies `json:"latency"`
	// Call is the API call alone: durably stored and answered.
	Call Latencies `json:"call"`
}

// Propagation connects cfg.Providers providers to srv and flips srv's
// migration's kill switch cfg.Rounds times through the HTTP API.
func Propagation(ctx context.Context, srv *Server, cfg PropagationConfig) (PropagationResult, error) {
	if cfg.Providers < 1 || cfg.Rounds < 1 {
		return PropagationResult{}, fmt.Errorf("propagation: want at least one provider and one round")
	}
	token, err := srv.Token(ctx, "bench-providers", domain.RoleViewer)
	if err != nil {
		return PropagationResult{}, err
	}
	// Each provider gets its own connection, as providers in separate
	// processes would.
	tr := &http.Transport{MaxIdleConnsPerHost: cfg.Providers + 4}
	defer tr.CloseIdleConnections()
	log := slog.New(slog.DiscardHandler)

	type seen struct {
		version uint64
		at      time.Time
	}
	arrivals := make(chan seen, cfg.Providers*cfg.Rounds*2)
	var wg sync.WaitGroup
	readers, cancel := context.WithCancel(ctx)
	defer func() { cancel(); wg.Wait() }()
	for i := range cfg.Providers {
		p, err := flags.NewProvider(flags.Options{URL: srv.URL, Token: token, Logger: log, HTTPClient: &http.Client{Transport: tr}})
		if err != nil {
			return PropagationResult{}, err
		}
		if err := p.InitWithContext(ctx, openfeature.EvaluationContext{}); err != nil {
			return PropagationResult{}, fmt.Errorf("provider %d: %w", i, err)
		}
		defer p.Shutdown()
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case ev := <-p.EventChannel():
					if ev.EventType != openfeature.ProviderConfigChange {
						continue
					}
					v, _ := ev.EventMetadata["snapshotVersion"].(int64)
					arrivals <- seen{uint64(v), time.Now()}
				case <-readers.Done():
					return
				}
			}
		}()
	}

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
	return PropagationResult{Providers: cfg.Providers, Rounds: cfg.Rounds, Latency: Summarize(lat), Call: Summarize(calls)}, nil
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
