package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"slices"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Replays asked of routers that run in other processes: the control
// service keeps the requests on its registry's board, routers poll for
// them (GET /v1/replays/asked), run them on their own journals and report
// their progress, which GET /v1/replays/{id} sums up. Routers run and
// persist the jobs, and their reports fill the board again when a
// registry forgot it.

// askedReplayAge bounds how long routers are offered a job.
const askedReplayAge = 24 * time.Hour

// AskReplay records a replay for the routers to run, audited.
func (s *Service) AskReplay(ctx context.Context, c Change, req domain.ReplayRequest) (domain.ReplayJob, error) {
	if err := req.Validate(); err != nil {
		return domain.ReplayJob{}, err
	}
	if _, err := s.State().Migration(req.Migration); err != nil {
		return domain.ReplayJob{}, err
	}
	var b [8]byte
	rand.Read(b[:])
	job := domain.ReplayJob{ID: "rpl_" + hex.EncodeToString(b[:]), Status: domain.ReplayQueued, Request: req, CreatedAt: s.now().UTC()}
	if err := s.RecordAction(ctx, c, "replay.start", "replay/"+job.ID, req); err != nil {
		return domain.ReplayJob{}, err
	}
	if err := s.registry.PutReplay(ctx, job); err != nil {
		// Audited but not on the board: the caller asks again.
		return domain.ReplayJob{}, domain.Internal("put the replay on the board", err)
	}
	return job, nil
}

// AskedReplays lists the replays routers should run: those asked in the
// last day. A registry that fails is logged and answers none: routers ask
// again at their next poll.
func (s *Service) AskedReplays() []domain.ReplayJob {
	out := []domain.ReplayJob{}
	for _, b := range s.boardJobs() {
		if s.now().Sub(b.Job.CreatedAt) < askedReplayAge {
			out = append(out, domain.ReplayJob{ID: b.Job.ID, Request: b.Job.Request, CreatedAt: b.Job.CreatedAt, Status: domain.ReplayQueued})
		}
	}
	slices.SortFunc(out, func(a, b domain.ReplayJob) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out
}

// boardJobs lists the registry's replays, logging its error as none.
func (s *Service) boardJobs() []AskedJob {
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	jobs, err := s.registry.Replays(ctx)
	if err != nil {
		s.log.Error("registry: list replays", "err", err)
		return nil
	}
	return jobs
}

// recordReplays takes a router's progress on the replays it runs. A
// registry that fails is logged, not returned: the report must still be
// answered, and what is lost is this progress until the router's next
// report.
func (s *Service) recordReplays(ctx context.Context, router string, jobs []domain.ReplayJob) {
	for _, j := range jobs {
		j.Cursor = nil
		if err := s.registry.PutReplayProgress(ctx, router, j); err != nil {
			s.log.Error("registry: replay progress not shared", "router", router, "replay", j.ID, "err", err)
		}
	}
}

// AskedReplay returns a replay's progress summed over the routers that
// run it (sum): queued until one reports, running while any runs (a
// router awaiting comparisons runs), failed if any failed, done when all
// are done. Counts are sums; awaitUntil is the latest. It returns
// CodeNotFound for a replay the board does not hold and CodeInternal
// when the registry fails.
func (s *Service) AskedReplay(id string) (domain.ReplayJob, error) {
	ctx, cancel := context.WithTimeout(context.Background(), registryTimeout)
	defer cancel()
	jobs, err := s.registry.Replays(ctx)
	if err != nil {
		return domain.ReplayJob{}, domain.Internal("list replays", err)
	}
	for _, b := range jobs {
		if b.Job.ID == id {
			return b.sum(), nil
		}
	}
	return domain.ReplayJob{}, domain.Errorf(domain.CodeNotFound, "replay %q does not exist", id)
}

// AskedReplayList lists the replays asked of routers, newest first. A
// registry that fails is logged and answers none.
func (s *Service) AskedReplayList() []domain.ReplayJob {
	jobs := s.boardJobs()
	out := make([]domain.ReplayJob, 0, len(jobs))
	for _, b := range jobs {
		out = append(out, b.sum())
	}
	slices.SortFunc(out, func(a, b domain.ReplayJob) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out
}

// sum adds up the progress of the routers that run the replay. On a tier
// of routers one runs it: the others report it done with nothing to send
// and runBy naming the router that does, and are left out. A router the
// job was taken over from (it stopped renewing its claim: dead, or cut
// off) may have left progress that it never finishes; the routers that
// ran it report the claim's takeover count, and only those with the
// highest are counted: the one that runs it now, whatever the chain of
// takeovers before it (a router taken over from may take it back).
func (b AskedJob) sum() domain.ReplayJob {
	out := b.Job
	out.Status = domain.ReplayQueued
	if len(b.Progress) == 0 {
		return out
	}
	// By router id, so the list of unknown events reads the same each time.
	routers := slices.Sorted(maps.Keys(b.Progress))
	latest, elsewhere := -1, domain.ReplayJob{Takeover: -1}
	for _, router := range routers {
		p := b.Progress[router]
		switch {
		case p.RunBy != "" && p.RunBy != router:
			if p.Takeover > elsewhere.Takeover {
				elsewhere = p
			}
		case p.Takeover > latest:
			latest = p.Takeover
		}
	}
	if latest < 0 {
		// Claimed by a router that has not reported yet.
		out.Status, out.RunBy = domain.ReplayRunning, elsewhere.RunBy
		return out
	}
	done, failed, running := 0, 0, 0
	for _, router := range routers {
		p := b.Progress[router]
		if (p.RunBy != "" && p.RunBy != router) || p.Takeover != latest {
			continue
		}
		if p.RunBy != "" {
			out.RunBy, out.TakenFrom, out.Takeover = p.RunBy, p.TakenFrom, p.Takeover
		}
		out.Total += p.Total
		out.Done += p.Done
		out.Failed += p.Failed
		out.AwaitingComparison += p.AwaitingComparison
		out.Unknown += p.Unknown
		out.InFlight += p.InFlight
		for _, id := range p.UnknownEvents {
			if len(out.UnknownEvents) < domain.MaxUnknownEvents {
				out.UnknownEvents = append(out.UnknownEvents, id)
			}
		}
		if p.AwaitUntil.After(out.AwaitUntil) {
			out.AwaitUntil = p.AwaitUntil
		}
		switch p.Status {
		case domain.ReplayDone:
			done++
		case domain.ReplayFailedS:
			failed++
			out.Error = p.Error
		default:
			running++
		}
		if p.FinishedAt.After(out.FinishedAt) {
			out.FinishedAt = p.FinishedAt
		}
	}
	switch {
	case running > 0:
		out.Status, out.FinishedAt = domain.ReplayRunning, time.Time{}
	case failed > 0:
		out.Status = domain.ReplayFailedS
	default:
		out.Status = domain.ReplayDone
	}
	return out
}
