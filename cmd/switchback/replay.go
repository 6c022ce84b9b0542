package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/console"
	"github.com/switchbackhq/switchback/internal/controlclient"
)

// replayFlags are the replay verb's own flags.
type replayFlags struct {
	migration, partners, cohort, from, to, pipeline, filter string
	rate                                                    int
	wait                                                    bool
	poll                                                    time.Duration
}

func (f *replayFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.migration, "migration", "", "migration whose pipelines to use (required)")
	fs.StringVar(&f.partners, "partners", "", "comma-separated partner ids")
	fs.StringVar(&f.cohort, "cohort", "", "replay every partner of this cohort instead of --partners")
	fs.StringVar(&f.from, "from", "", "start of the window: RFC 3339 time, or a duration ago such as 2h (required)")
	fs.StringVar(&f.to, "to", "", "end of the window, excluded: RFC 3339 time or a duration ago; default now")
	fs.StringVar(&f.pipeline, "pipeline", "legacy", "pipeline to send the events through: legacy or new")
	fs.StringVar(&f.filter, "filter", "all", "which events: all, failed (dead-lettered) or mismatched")
	fs.IntVar(&f.rate, "rate", 0, "events per second at most; 0 is the router's default")
	fs.BoolVar(&f.wait, "wait", true, "follow the replay's progress until it ends")
	fs.DurationVar(&f.poll, "poll", 500*time.Millisecond, "how often to ask for progress with --wait")
}

// when reads an RFC 3339 time or a duration before now.
func when(s string, now time.Time) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && d >= 0 {
		return now.Add(-d), nil
	}
	return time.Time{}, fmt.Errorf("%q is neither an RFC 3339 time nor a duration such as 90m", s)
}

func replayVerb(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	f := r.replay
	if f.migration == "" || f.from == "" || (f.partners == "") == (f.cohort == "") {
		return usageError("replay needs --migration, --from, and either --partners or --cohort")
	}
	now := time.Now().UTC()
	from, err := when(f.from, now)
	if err != nil {
		return usageError("--from: " + err.Error())
	}
	to := now
	if f.to != "" {
		if to, err = when(f.to, now); err != nil {
			return usageError("--to: " + err.Error())
		}
	}
	partners := strings.Split(f.partners, ",")
	if f.cohort != "" {
		if partners, err = c.CohortPartners(ctx, f.migration, f.cohort); err != nil {
			return err
		}
	}
	job, err := c.StartReplay(ctx, controlclient.ReplayRequest{Migration: f.migration, Partners: partners, From: from, To: to,
		Pipeline: f.pipeline, Filter: f.filter, Rate: f.rate, Reason: r.reason})
	if err != nil {
		return err
	}
	if r.json && !f.wait {
		return console.JSON(r.out, job)
	}
	fmt.Fprintf(r.out, "replay %s: %d events of %d partners through %s (filter %s)\n", job.ID, job.Total, len(partners), f.pipeline, f.filter)
	if !f.wait {
		return nil
	}
	job, err = c.FollowReplay(ctx, job, f.poll, func(j controlclient.ReplayJob) { console.Progress(r.out, j) })
	if err != nil && ctx.Err() == nil {
		return err
	}
	fmt.Fprintln(r.out)
	if err != nil {
		return err
	}
	if r.json {
		return console.JSON(r.out, job)
	}
	if job.Status == "failed" || job.Failed > 0 {
		return fmt.Errorf("replay %s ended %s with %d of %d events failed%s", job.ID, job.Status, job.Failed, job.Total, suffix(job.Error))
	}
	fmt.Fprintf(r.out, "replay %s done: %d events sent, none failed\n", job.ID, job.Done)
	return nil
}

func suffix(s string) string {
	if s == "" {
		return ""
	}
	return ": " + s
}
