package controlclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
	"github.com/switchbackhq/switchback/internal/wire"
)

// MigrationStatus is one migration of GET /v1/migrations, with its cohorts.
type MigrationStatus struct {
	Key             string               `json:"key"`
	Description     string               `json:"description"`
	Reverted        bool                 `json:"reverted"`
	Stages          map[domain.Stage]int `json:"stages"`
	SnapshotVersion uint64               `json:"snapshotVersion"`
	Cohorts         []CohortStatus       `json:"cohorts"`
}

// CohortStatus is one cohort of GET /v1/migrations/{key}/cohorts.
type CohortStatus struct {
	Name     string       `json:"name"`
	Order    int          `json:"order"`
	Partners []string     `json:"partners"`
	Stage    domain.Stage `json:"stage"`
}

// RouterStatus is one router of GET /v1/routers.
type RouterStatus struct {
	ID              string    `json:"id"`
	LastSeen        time.Time `json:"lastSeen"`
	SnapshotVersion uint64    `json:"snapshotVersion"`
	Confirmed       bool      `json:"confirmed"`
}

// ReplayJob is a replay's progress, as POST and GET /v1/replays answer it.
type ReplayJob struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Total  int    `json:"total"`
	Done   int    `json:"done"`
	Failed int    `json:"failed"`
	Error  string `json:"error"`
}

// Ended reports whether the replay is done or failed.
func (j ReplayJob) Ended() bool {
	return j.Status == domain.ReplayDone || j.Status == domain.ReplayFailedS
}

// Migrations returns every migration with its cohorts.
func (c *Client) Migrations(ctx context.Context) ([]MigrationStatus, error) {
	var ms []MigrationStatus
	if err := c.Do(ctx, http.MethodGet, "/v1/migrations", nil, &ms); err != nil {
		return nil, err
	}
	for i := range ms {
		cohorts, err := c.Cohorts(ctx, ms[i].Key)
		if err != nil {
			return nil, err
		}
		ms[i].Cohorts = cohorts
	}
	return ms, nil
}

// Cohorts returns the cohorts of a migration.
func (c *Client) Cohorts(ctx context.Context, migration string) ([]CohortStatus, error) {
	var cs []CohortStatus
	err := c.Do(ctx, http.MethodGet, Path("v1", "migrations", migration, "cohorts"), nil, &cs)
	return cs, err
}

// CohortPartners returns the partners of one cohort of a migration; a
// cohort unknown or without partners is an error.
func (c *Client) CohortPartners(ctx context.Context, migration, cohort string) ([]string, error) {
	cohorts, err := c.Cohorts(ctx, migration)
	if err != nil {
		return nil, err
	}
	var partners []string
	for _, co := range cohorts {
		if co.Name == cohort {
			partners = co.Partners
		}
	}
	if len(partners) == 0 {
		return nil, fmt.Errorf("cohort %q of %s has no partners", cohort, migration)
	}
	return partners, nil
}

// Routers returns the routers that reported, and the snapshot each holds.
func (c *Client) Routers(ctx context.Context) ([]RouterStatus, error) {
	var rs []RouterStatus
	err := c.Do(ctx, http.MethodGet, "/v1/routers", nil, &rs)
	return rs, err
}

// Gate returns the gate report for advancing a cohort now.
func (c *Client) Gate(ctx context.Context, migration, cohort string) (gate.Report, error) {
	var rep gate.Report
	err := c.Do(ctx, http.MethodGet, Path("v1", "migrations", migration, "cohorts", cohort, "gate"), nil, &rep)
	return rep, err
}

// Advanced is the answer of a cohort's advance: the move, or, when it
// waits for approvals, Change (the API answered 202 with it).
type Advanced struct {
	Cohort   string                `json:"cohort"`
	From     string                `json:"from"`
	To       string                `json:"to"`
	Partners []string              `json:"partners"`
	Change   *domain.ChangeRequest `json:"change,omitempty"`
}

// Advance moves a cohort one stage forward, or files the change request
// of the move when it needs approvals (Advanced.Change). When the gates
// refuse, the error is an *APIError of code domain.CodeGateRefused and the
// report is returned too (nil when the answer carried none).
func (c *Client) Advance(ctx context.Context, migration, cohort, reason string, force bool) (Advanced, *gate.Report, error) {
	var raw json.RawMessage
	body := map[string]any{"reason": reason, "force": force}
	status, err := c.DoStatus(ctx, http.MethodPost, Path("v1", "migrations", migration, "cohorts", cohort, "advance"), body, &raw)
	res, err := advanced(status, raw, err)
	var apiErr *APIError
	if errors.As(err, &apiErr) && apiErr.Code == domain.CodeGateRefused && len(apiErr.Gate) > 0 {
		var rep gate.Report
		if json.Unmarshal(apiErr.Gate, &rep) == nil {
			return res, &rep, err
		}
	}
	return res, nil, err
}

// advanced decodes an advance's answer by its status: 202 is a change
// request.
func advanced(status int, raw json.RawMessage, err error) (Advanced, error) {
	var res Advanced
	if err != nil || len(raw) == 0 {
		return res, err
	}
	if status == http.StatusAccepted {
		var ch domain.ChangeRequest
		if err := json.Unmarshal(raw, &ch); err != nil {
			return res, fmt.Errorf("decode the change request: %w", err)
		}
		return Advanced{Cohort: ch.Cohort, From: string(ch.From), To: string(ch.To), Change: &ch}, nil
	}
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, fmt.Errorf("decode the advance: %w", err)
	}
	return res, nil
}

// StageSet is the answer of setting a partner's stage: the partner's new
// stage, or, when the move waits for approvals, Change (the API answered
// 202 with it) and the rest empty.
type StageSet struct {
	Partner string                `json:"partner"`
	Stage   string                `json:"stage"`
	Since   string                `json:"since"`
	Change  *domain.ChangeRequest `json:"change,omitempty"`
}

// SetStage sets one partner's stage, or files the change request of the
// move when it needs approvals (StageSet.Change).
func (c *Client) SetStage(ctx context.Context, migration, partner, stage, reason string, force bool) (StageSet, error) {
	var raw json.RawMessage
	body := map[string]any{"stage": stage, "reason": reason, "force": force}
	status, err := c.DoStatus(ctx, http.MethodPut, Path("v1", "migrations", migration, "partners", partner), body, &raw)
	if err != nil {
		return StageSet{}, err
	}
	if status == http.StatusAccepted {
		var ch domain.ChangeRequest
		if err := json.Unmarshal(raw, &ch); err != nil {
			return StageSet{}, fmt.Errorf("decode the change request: %w", err)
		}
		return StageSet{Partner: ch.Partner, Change: &ch}, nil
	}
	var res StageSet
	if err := json.Unmarshal(raw, &res); err != nil {
		return res, fmt.Errorf("decode the stage: %w", err)
	}
	return res, nil
}

// Changes returns the change requests in state ("" or "all" for every
// state) of migration ("" for every one), newest first.
func (c *Client) Changes(ctx context.Context, state, migration string) ([]domain.ChangeRequest, error) {
	q := url.Values{}
	if state != "" {
		q.Set("state", state)
	}
	if migration != "" {
		q.Set("migration", migration)
	}
	path := "/v1/changes"
	if len(q) > 0 {
		path += "?" + q.Encode()
	}
	var out []domain.ChangeRequest
	err := c.Do(ctx, http.MethodGet, path, nil, &out)
	return out, err
}

// ChangeRequest returns one change request.
func (c *Client) ChangeRequest(ctx context.Context, id string) (domain.ChangeRequest, error) {
	var out domain.ChangeRequest
	err := c.Do(ctx, http.MethodGet, Path("v1", "changes", id), nil, &out)
	return out, err
}

// Approve approves a change request with reason (optional) and returns it
// as it stands after: pending, applied or failed.
func (c *Client) Approve(ctx context.Context, id, reason string) (domain.ChangeRequest, error) {
	return c.endChange(ctx, id, "approve", reason)
}

// Reject rejects a change request with reason (required).
func (c *Client) Reject(ctx context.Context, id, reason string) (domain.ChangeRequest, error) {
	return c.endChange(ctx, id, "reject", reason)
}

func (c *Client) endChange(ctx context.Context, id, verb, reason string) (domain.ChangeRequest, error) {
	var out domain.ChangeRequest
	err := c.Do(ctx, http.MethodPost, Path("v1", "changes", id, verb), map[string]any{"reason": reason}, &out)
	return out, err
}

// KillSwitchAnswer is the answer of a revert or a resume.
type KillSwitchAnswer struct {
	SnapshotVersion uint64   `json:"snapshotVersion"`
	Replay          []string `json:"replay,omitempty"`
}

// Revert turns the kill switch of migration on, or of every migration
// when migration is ""; replay asks for the replay of what the new
// pipeline got wrong.
func (c *Client) Revert(ctx context.Context, migration, reason string, replay bool) (KillSwitchAnswer, error) {
	path := "/v1/revert"
	if migration != "" {
		path = Path("v1", "migrations", migration, "revert")
	}
	return c.killSwitch(ctx, path, reason, replay)
}

// Resume turns the kill switch of migration off.
func (c *Client) Resume(ctx context.Context, migration, reason string) (KillSwitchAnswer, error) {
	return c.killSwitch(ctx, Path("v1", "migrations", migration, "resume"), reason, false)
}

func (c *Client) killSwitch(ctx context.Context, path, reason string, replay bool) (KillSwitchAnswer, error) {
	var res KillSwitchAnswer
	body := map[string]any{"reason": reason}
	if replay {
		body["replay"] = true
	}
	err := c.Do(ctx, http.MethodPost, path, body, &res)
	return res, err
}

// Audit returns at most limit audit entries after the sequence number after.
func (c *Client) Audit(ctx context.Context, after uint64, limit int) ([]domain.AuditEntry, error) {
	var entries []domain.AuditEntry
	err := c.Do(ctx, http.MethodGet, fmt.Sprintf("/v1/audit?after=%d&limit=%d", after, limit), nil, &entries)
	return entries, err
}

// AuditHead is GET /v1/audit/head, and what "audit head" prints.
type AuditHead struct {
	StoreID         string    `json:"storeId"`
	Seq             uint64    `json:"seq"`
	Hash            string    `json:"hash"`
	SnapshotVersion uint64    `json:"snapshotVersion"`
	ExportedAt      time.Time `json:"exportedAt,omitzero"`
}

// AuditHead returns the head of the audit log.
func (c *Client) AuditHead(ctx context.Context) (AuditHead, error) {
	var head AuditHead
	err := c.Do(ctx, http.MethodGet, "/v1/audit/head", nil, &head)
	return head, err
}

// ReplayRequest is the body of POST /v1/replays.
type ReplayRequest struct {
	Migration string    `json:"migration"`
	Partners  []string  `json:"partners"`
	From      time.Time `json:"from"`
	To        time.Time `json:"to"`
	Pipeline  string    `json:"pipeline"`
	Filter    string    `json:"filter"`
	Rate      int       `json:"rate"`
	Reason    string    `json:"reason"`
}

// StartReplay starts a replay.
func (c *Client) StartReplay(ctx context.Context, req ReplayRequest) (ReplayJob, error) {
	var job ReplayJob
	err := c.Do(ctx, http.MethodPost, "/v1/replays", req, &job)
	return job, err
}

// Replay returns the progress of one replay.
func (c *Client) Replay(ctx context.Context, id string) (ReplayJob, error) {
	var job ReplayJob
	err := c.Do(ctx, http.MethodGet, Path("v1", "replays", id), nil, &job)
	return job, err
}

// Replays returns every replay.
func (c *Client) Replays(ctx context.Context) ([]ReplayJob, error) {
	var jobs []ReplayJob
	err := c.Do(ctx, http.MethodGet, "/v1/replays", nil, &jobs)
	return jobs, err
}

// FollowReplay asks for job's progress every poll until it ends, calling
// progress with each answer, the first included. It returns the last
// answer, and ctx's error when ctx ends first.
func (c *Client) FollowReplay(ctx context.Context, job ReplayJob, poll time.Duration, progress func(ReplayJob)) (ReplayJob, error) {
	for {
		progress(job)
		if job.Ended() {
			return job, nil
		}
		select {
		case <-ctx.Done():
			return job, ctx.Err()
		case <-time.After(poll):
		}
		next, err := c.Replay(ctx, job.ID)
		if err != nil {
			return job, err
		}
		job = next
	}
}

// Autopilot returns what the autopilot of migration key does now.
func (c *Client) Autopilot(ctx context.Context, key string) (wire.AutopilotStatus, error) {
	var out wire.AutopilotStatus
	err := c.Do(ctx, http.MethodGet, Path("v1", "migrations", key, "autopilot"), nil, &out)
	return out, err
}

// PauseAutopilot pauses the autopilot of migration key (reason required);
// ResumeAutopilot lets it move again. Both return its status after.
func (c *Client) PauseAutopilot(ctx context.Context, key, reason string) (wire.AutopilotStatus, error) {
	return c.flipAutopilot(ctx, key, "pause", reason)
}

// ResumeAutopilot: see PauseAutopilot.
func (c *Client) ResumeAutopilot(ctx context.Context, key, reason string) (wire.AutopilotStatus, error) {
	return c.flipAutopilot(ctx, key, "resume", reason)
}

func (c *Client) flipAutopilot(ctx context.Context, key, verb, reason string) (wire.AutopilotStatus, error) {
	var out wire.AutopilotStatus
	err := c.Do(ctx, http.MethodPost, Path("v1", "migrations", key, "autopilot", verb), map[string]any{"reason": reason}, &out)
	return out, err
}
