package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"time"
)

// ReportTo posts the router's journal figures to the control service at
// url every interval until ctx ends, as router id, with a router token.
// GET /v1/routers shows them.
func (rt *Router) ReportTo(ctx context.Context, client *http.Client, url, token, id string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := rt.report(ctx, client, url, token, id); err != nil && ctx.Err() == nil {
			rt.log.Warn("reporting to the control service failed", "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (rt *Router) report(ctx context.Context, client *http.Client, url, token, id string) error {
	fig, err := rt.Figures()
	if err != nil {
		return err
	}
	body, err := json.Marshal(map[string]any{"router": id, "snapshotVersion": rt.routing.load().version, "journal": fig})
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
