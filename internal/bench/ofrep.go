package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"
)

// OFREPConfig is one OFREP load run.
type OFREPConfig struct {
	URL, Token string
	Flag       string
	Partners   []string // targeting keys, used in turn
	Clients    int      // concurrent keep-alive clients
	Duration   time.Duration
	// Bulk asks the bulk endpoint with If-None-Match, as polling web
	// clients do: after the first answer, every answer should be a 304.
	Bulk bool
}

// OFREPResult is what a run measured.
type OFREPResult struct {
	Requests    int           `json:"requests"`
	Errors      int           `json:"errors"`
	NotModified int           `json:"notModified"`
	Elapsed     time.Duration `json:"elapsed"`
	PerSecond   float64       `json:"perSecond"`
	Latency     Latencies     `json:"latency"`
}

// OFREP runs cfg.Clients clients, each sending requests one after another
// on its own keep-alive connection, for cfg.Duration.
func OFREP(ctx context.Context, cfg OFREPConfig) (OFREPResult, error) {
	if cfg.Clients < 1 || cfg.Duration <= 0 || len(cfg.Partners) == 0 {
		return OFREPResult{}, fmt.Errorf("ofrep: want clients ≥ 1, a positive duration and at least one partner")
	}
	tr := &http.Transport{MaxIdleConns: cfg.Clients, MaxIdleConnsPerHost: cfg.Clients, MaxConnsPerHost: cfg.Clients}
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	url := cfg.URL + "/ofrep/v1/evaluate/flags/" + cfg.Flag
	if cfg.Bulk {
		url = cfg.URL + "/ofrep/v1/evaluate/flags"
	}
	bodies := make([][]byte, len(cfg.Partners))
	for i, p := range cfg.Partners {
		bodies[i] = fmt.Appendf(nil, `{"context":{"targetingKey":%q,"eventType":"ticket"}}`, p)
	}

	type clientResult struct {
		lat               []time.Duration
		errs, notModified int
		firstErr          error
	}
	results := make([]clientResult, cfg.Clients)
	start := time.Now()
	deadline := start.Add(cfg.Duration)
	var wg sync.WaitGroup
	for c := range cfg.Clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := &results[c]
			etag := ""
			for i := c; time.Now().Before(deadline) && ctx.Err() == nil; i++ {
				body := bodies[i%len(bodies)]
				if cfg.Bulk {
					body = bodies[c%len(bodies)] // one context per client, so its ETag holds
				}
				req, _ := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+cfg.Token)
				req.Header.Set("Content-Type", "application/json")
				if etag != "" {
					req.Header.Set("If-None-Match", etag)
				}
				t0 := time.Now()
				resp, err := client.Do(req)
				if err == nil {
					io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
				}
				r.lat = append(r.lat, time.Since(t0))
				switch {
				case err != nil:
					r.errs++
					if r.firstErr == nil {
						r.firstErr = err
					}
				case resp.StatusCode == http.StatusNotModified:
					r.notModified++
				case resp.StatusCode != http.StatusOK:
					r.errs++
					if r.firstErr == nil {
						r.firstErr = fmt.Errorf("status %d", resp.StatusCode)
					}
				case cfg.Bulk:
					etag = resp.Header.Get("ETag")
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	var out OFREPResult
	var all []time.Duration
	var firstErr error
	for _, r := range results {
		all = append(all, r.lat...)
		out.Errors += r.errs
		out.NotModified += r.notModified
		if firstErr == nil {
			firstErr = r.firstErr
		}
	}
	out.Requests, out.Elapsed = len(all), elapsed
	out.PerSecond = float64(len(all)) / elapsed.Seconds()
	out.Latency = Summarize(all)
	if out.Errors > 0 && out.Errors == out.Requests {
		return out, fmt.Errorf("every request failed, the first with: %w", firstErr)
	}
	return out, nil
}
