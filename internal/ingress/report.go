package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// figuresEvery is how often a report carries the journal's figures, which
// cost a walk of the journal; comparisons go every interval.
const figuresEvery = 5 * time.Second

// ReportTo posts to the control service at url, every interval until ctx
// ends, as router id with a router token: what the router compared (the
// gates and the guard judge it) and, every few seconds, its journal's
// figures (GET /v1/routers shows them). What cannot be sent is kept for
// the next report.
func (rt *Router) ReportTo(ctx context.Context, client *http.Client, url, token, id string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastFigures time.Time
	for {
		body := rt.stats.take()
		withFigures := time.Since(lastFigures) >= figuresEvery
		if withFigures || !body.empty() {
			err := rt.report(ctx, client, url, token, id, body, withFigures)
			switch {
			case err != nil:
				rt.stats.giveBack(body)
				if ctx.Err() == nil {
					rt.log.Warn("reporting to the control service failed", "err", err)
				}
			case withFigures:
				lastFigures = time.Now()
			}
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (rt *Router) report(ctx context.Context, client *http.Client, url, token, id string, b reportBody, withFigures bool) error {
	msg := struct {
		Router          string   `json:"router"`
		SnapshotVersion uint64   `json:"snapshotVersion"`
		Journal         *Figures `json:"journal,omitempty"`
		reportBody
	}{Router: id, SnapshotVersion: rt.routing.load().version, reportBody: b}
	if withFigures {
		fig, err := rt.Figures()
		if err != nil {
			return err
		}
		msg.Journal = &fig
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url+"/v1/reports", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		return fmt.Errorf("the control service answered %d", resp.StatusCode)
	}
	return nil
}
