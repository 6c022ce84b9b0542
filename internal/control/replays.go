package control

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"maps"
	"slices"
	"sync"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
)

// Replays asked of routers that run in other processes: the control
// service keeps the requests, routers poll for them (GET
// /v1/replays/asked), run them on their own journals and report their
// progress, which GET /v1/replays/{id} sums up. The board lives in memory,
// like the routers table: routers run and persist the jobs, and their
// reports fill the board again after a restart.
type replayBoard struct {
	mu   sync.Mutex
	jobs map[string]*boardJob
}

type boardJob struct {
	job      domain.ReplayJob
	progress map[string]domain.ReplayJob // by router
}

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
	s.board.mu.Lock()
	defer s.board.mu.Unlock()
	if s.board.jobs == nil {
		s.board.jobs = map[string]*boardJob{}
	}
	s.board.jobs[job.ID] = &boardJob{job: job, progress: map[string]domain.ReplayJob{}}
	return job, nil
}

// AskedReplays lists the replays routers should run: those asked in the
// last day.
func (s *Service) AskedReplays() []domain.ReplayJob {
	s.board.mu.Lock()
	defer s.board.mu.Unlock()
	out := []domain.ReplayJob{}
	for _, b := range s.board.jobs {
		if s.now().Sub(b.job.CreatedAt) < askedReplayAge {
			out = append(out, domain.ReplayJob{ID: b.job.ID, Request: b.job.Request, CreatedAt: b.job.CreatedAt, Status: domain.ReplayQueued})
		}
	}
	slices.SortFunc(out, func(a, b domain.ReplayJob) int { return a.CreatedAt.Compare(b.CreatedAt) })
	return out
}

// recordReplays takes a router's progress on the replays it runs.
func (s *Service) recordReplays(router string, jobs []domain.ReplayJob) {
	if len(jobs) == 0 {
		return
	}
	s.board.mu.Lock()
	defer s.board.mu.Unlock()
	if s.board.jobs == nil {
		s.board.jobs = map[string]*boardJob{}
	}
	for _, j := range jobs {
		b := s.board.jobs[j.ID]
		if b == nil {
			// Asked before a restart of the control service: learn it back.
			b = &boardJob{job: domain.ReplayJob{ID: j.ID, Request: j.Request, CreatedAt: j.CreatedAt}, progress: map[string]domain.ReplayJob{}}
			s.board.jobs[j.ID] = b
		}
		j.Cursor = nil
		b.progress[router] = j
	}
}

// AskedReplay returns a replay's progress summed over the routers that
// report it: queued until one does, running while any runs (a router
// awaiting comparisons runs), failed if any failed, done when all that
// report it are done. Counts are sums; awaitUntil is the latest.
func (s *Service) AskedReplay(id string) (domain.ReplayJob, error) {
	s.board.mu.Lock()
	defer s.board.mu.Unlock()
	b, ok := s.board.jobs[id]
	if !ok {
		return domain.ReplayJob{}, domain.Errorf(domain.CodeNotFound, "replay %q does not exist", id)
	}
	return b.sum(), nil
}

// AskedReplayList lists the replays asked of routers, newest first.
func (s *Service) AskedReplayList() []domain.ReplayJob {
	s.board.mu.Lock()
	defer s.board.mu.Unlock()
	out := make([]domain.ReplayJob, 0, len(s.board.jobs))
	for _, b := range s.board.jobs {
		out = append(out, b.sum())
	}
	slices.SortFunc(out, func(a, b domain.ReplayJob) int { return b.CreatedAt.Compare(a.CreatedAt) })
	return out
}

func (b *boardJob) sum() domain.ReplayJob {
	out := b.job
	out.Status = domain.ReplayQueued
	if len(b.progress) == 0 {
		return out
	}
	done, failed, running := 0, 0, 0
	// By router id, so the list of unknown events reads the same each time.
	for _, router := range slices.Sorted(maps.Keys(b.progress)) {
		p := b.progress[router]
		out.Total += p.Total
		out.Done += p.Done
		out.Failed += p.Failed
		out.AwaitingComparison += p.AwaitingComparison
		out.Unknown += p.Unknown
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
