package ingress

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/wire"
)

// figuresEvery is how often a report carries the journal's figures, which
// cost a walk of the journal; comparisons go every interval.
const figuresEvery = 5 * time.Second

// ReportTo posts to the control service at controls, every interval until
// ctx ends, as router id with a router token: what the router compared (the
// gates and the guard judge it) and, every few seconds, its journal's
// figures (GET /v1/routers shows them). A mismatch or a failure of a
// partner on the new pipeline is reported at once, for the guard.
//
// The counts are owed in the journal until the control service answers:
// a sealed report is sent again, with the same reportId and counts, until
// it is acknowledged, across restarts, and the control service counts
// each reportId once. A report that a replica fails to answer goes at once
// to the next replica, and to each at most once, then waits for the next
// interval. Mismatch and guard samples, and noise observations, are
// best-effort.
func (rt *Router) ReportTo(ctx context.Context, client *http.Client, controls *Controls, token, id string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastFigures time.Time
	for {
		// A long outage leaves more owed than one report carries: send
		// full sealed reports one after another while they are taken.
		// Counts owed at the pace of live traffic wait for the next tick:
		// sent back to back, they would keep a report (and the journal's
		// and the control service's fsyncs for it) always under way.
		for rt.reportOnce(ctx, client, controls, token, id, &lastFigures) && ctx.Err() == nil {
		}
		select {
		case <-t.C:
		case <-rt.stats.urgent:
		case <-ctx.Done():
			return
		}
	}
}

// reportOnce sends one report: the oldest sealed counts not yet
// acknowledged, with the samples gathered. It returns true when the
// control service acknowledged a full report of sealed counts, so more
// may be owed than the next one carries.
func (rt *Router) reportOnce(ctx context.Context, client *http.Client, controls *Controls, token, id string, lastFigures *time.Time) bool {
	sealed, owed, err := rt.opts.Journal.Seal(ctx, maxReportKeys)
	if err != nil {
		if ctx.Err() == nil {
			rt.log.Error("sealing the counts owed to the control service failed", "err", err)
		}
		owed = false
	}
	body := rt.stats.take()
	body.Noise = rt.noise.take()
	if owed {
		counts, dropped := rows(sealed, rt.opts.Now())
		if dropped > 0 {
			rt.log.Error("counts the control service would refuse were left out of a report", "report", sealed.Seq, "counts", dropped)
		}
		body.ReportID = &wire.ReportID{Epoch: sealed.Epoch, Seq: sealed.Seq}
		body.Comparisons, body.Candidate = counts.Comparisons, counts.Candidate
	}
	// The real clock, like the ticker that paces the reports: figuresEvery
	// only bounds the cost of walking the journal (a frozen test clock
	// would send the figures once and never again).
	withFigures := time.Since(*lastFigures) >= figuresEvery
	if !withFigures && !owed && noCounts(body) && len(rt.recentReplays()) == 0 {
		return false
	}
	err = rt.report(ctx, client, controls, token, id, body, withFigures)
	var refused *refusedError
	switch {
	case errors.As(err, &refused):
		// The control service will not take this report as it is (a
		// router clock far ahead, say). The counts stay owed (sent again,
		// never dropped, so an operator can fix what the message says),
		// but the guard must not go blind meanwhile: the samples go again
		// on their own, and only if those are refused too are they lost.
		rt.metrics.refused.Inc()
		rt.log.Error("the control service refused a report; its counts stay owed and are sent again", "report", sealed.Seq, "err", err)
		if samples := (wire.Report{Mismatches: body.Mismatches, Guard: body.Guard, Noise: body.Noise}); owed && !noCounts(samples) {
			if err := rt.report(ctx, client, controls, token, id, samples, false); err != nil && ctx.Err() == nil {
				rt.log.Error("the samples of a refused report could not be sent either", "err", err)
			}
		}
		return false
	case err != nil:
		rt.stats.giveBack(body)
		rt.noise.giveBack(body.Noise)
		if ctx.Err() == nil {
			rt.log.Warn("reporting to the control service failed", "err", err)
		}
		return false
	}
	if withFigures {
		*lastFigures = time.Now()
	}
	if !owed {
		return false
	}
	// Recorded even once ctx has ended: the control service has the counts.
	if err := rt.opts.Journal.Acknowledge(context.WithoutCancel(ctx), sealed.Seq); err != nil {
		// Sent again later: the control service knows the reportId.
		rt.log.Error("recording a report as acknowledged failed", "report", sealed.Seq, "err", err)
		return false
	}
	return len(sealed.Counts) >= maxReportKeys
}

// refusedError is a report the control service answered with a 4xx other
// than 401, 403 or 429: sending it again as it is will not help.
type refusedError struct {
	status int
	msg    string
}

func (e *refusedError) Error() string {
	return fmt.Sprintf("the control service answered %d: %s", e.status, e.msg)
}

// report sends msg, the counts and samples of a report, as router id with
// the snapshot version held and, withFigures, the journal's figures, to the
// replica that last answered, or the next ones.
func (rt *Router) report(ctx context.Context, client *http.Client, controls *Controls, token, id string, msg wire.Report, withFigures bool) error {
	tbl := rt.routing.load()
	msg.Router, msg.SnapshotVersion, msg.StoreID, msg.Replays = id, tbl.version, tbl.storeID, rt.recentReplays()
	if withFigures {
		fig, err := rt.Figures(ctx)
		if err != nil {
			return err
		}
		if msg.Journal, err = json.Marshal(fig); err != nil {
			return err
		}
	}
	body, err := json.Marshal(msg)
	if err != nil {
		return err
	}
	return controls.do(ctx, rt.log, func(base string) error { return postReport(ctx, client, base, token, body) })
}

// postReport posts a report's body to the control service at base. It
// returns a *refusedError for an answer that refuses the report itself.
func postReport(ctx context.Context, client *http.Client, base, token string, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, base+"/v1/reports", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch s := resp.StatusCode; {
	case s == http.StatusAccepted || s == http.StatusOK: // 200: a report sent again, already counted
		return nil
	case s >= 400 && s < 500 && s != http.StatusUnauthorized && s != http.StatusForbidden && s != http.StatusTooManyRequests:
		var e struct {
			Error struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&e)
		return &refusedError{status: s, msg: e.Error.Message}
	default:
		return fmt.Errorf("the control service answered %d", resp.StatusCode)
	}
}

// FollowAsked polls the control service at controls every interval until
// ctx ends for the replays asked of routers, and runs on this router's
// journal those it does not run yet. Their progress goes out with the
// reports. A poll that a replica fails to answer goes to the next. On a
// tier, each poll also looks again at the claims of the jobs asked that
// another router runs, and takes over one whose router stopped renewing
// it (claimAsked).
func (rt *Router) FollowAsked(ctx context.Context, client *http.Client, controls *Controls, token string, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := rt.followAsked(ctx, client, controls, token); err != nil && ctx.Err() == nil {
			rt.log.Warn("asking the control service for replays failed", "err", err)
		}
		select {
		case <-t.C:
		case <-ctx.Done():
			return
		}
	}
}

func (rt *Router) followAsked(ctx context.Context, client *http.Client, controls *Controls, token string) error {
	var asked []domain.ReplayJob
	err := controls.do(ctx, rt.log, func(base string) error {
		var err error
		asked, err = fetchAsked(ctx, client, base, token)
		return err
	})
	if err != nil {
		return err
	}
	// Starting the replays keeps the bound it had when it shared the
	// request's.
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	tbl, current := rt.table()
	for _, j := range asked {
		local, known := rt.replays.get(j.ID)
		if known && !rt.watches(local) {
			continue
		}
		if tbl.version == 0 {
			// No snapshot yet: the job is asked again at the next poll.
			rt.log.Debug("a replay asked by the control service waits for the first snapshot", "replay", j.ID)
			continue
		}
		var claim domain.ReplayClaim
		if rt.opts.Tier != nil {
			// Asked of every router of the tier, run by one: it reads the
			// window's events the others delivered into its journal.
			var run bool
			if claim, run = rt.claimAsked(ctx, j, local, known); !run {
				continue
			}
		}
		// Its claim is renewed while the start reads the tier's window.
		rt.replays.setStarting(j.ID, claim.Router != "")
		_, err := rt.startReplay(ctx, j.ID, j.Request, claim)
		rt.replays.setStarting(j.ID, false)
		if domain.ErrorCode(err) == domain.CodeJournalBusy {
			rt.log.Warn("a replay asked by the control service waits for the tier", "replay", j.ID, "err", err)
			continue
		}
		if domain.ErrorCode(err) == domain.CodeNotFound && !current {
			// The migration may be newer than the snapshot held.
			rt.log.Debug("a replay asked by the control service waits for a current snapshot", "replay", j.ID, "err", err)
			continue
		}
		if err != nil {
			// Keep it as failed, with why, so it is reported, not retried.
			rt.log.Warn("a replay asked by the control service cannot run here", "replay", j.ID, "err", err)
			now := rt.opts.Now().UTC()
			failed := &domain.ReplayJob{ID: j.ID, Status: domain.ReplayFailedS, Request: j.Request, Error: domain.ErrorMessage(err),
				CreatedAt: j.CreatedAt, FinishedAt: now, RunBy: claim.Router, TakenFrom: claim.From, Takeover: claim.Takeover}
			rt.replays.save(ctx, failed)
			// As before claims were renewed: the job ends failed, and no
			// other router takes it over.
			rt.finishClaim(ctx, failed)
		}
	}
	return nil
}

// fetchAsked returns the replays that the control service at base asks of
// routers.
func fetchAsked(ctx context.Context, client *http.Client, base, token string) ([]domain.ReplayJob, error) {
	return getJSON[[]domain.ReplayJob](ctx, client, base+"/v1/replays/asked", token, 8<<20)
}

// getJSON GETs url from the control service with the router's token and
// decodes at most limit bytes of its 200 answer.
func getJSON[T any](ctx context.Context, client *http.Client, url, token string, limit int64) (T, error) {
	var out T
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return out, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return out, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return out, fmt.Errorf("the control service answered %d", resp.StatusCode)
	}
	err = json.NewDecoder(io.LimitReader(resp.Body, limit)).Decode(&out)
	return out, err
}
