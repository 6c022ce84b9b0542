package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/client"
)

type replayJob struct {
	ID     string `json:"id"`
	Status string `json:"status"`
	Total  int    `json:"total"`
	Done   int    `json:"done"`
	Failed int    `json:"failed"`
	Error  string `json:"error"`
}

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

func replayVerb(ctx context.Context, c *client.Client, r *verbRun) error {
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
		var cohorts []struct {
			Name     string   `json:"name"`
			Partners []string `json:"partners"`
		}
		if err := c.Do(ctx, http.MethodGet, client.Path("v1", "migrations", f.migration, "cohorts"), nil, &cohorts); err != nil {
			return err
		}
		partners = nil
		for _, co := range cohorts {
			if co.Name == f.cohort {
				partners = co.Partners
			}
		}
		if len(partners) == 0 {
			return fmt.Errorf("cohort %q of %s has no partners", f.cohort, f.migration)
		}
	}
	body := map[string]any{"migration": f.migration, "partners": partners, "from": from, "to": to,
		"pipeline": f.pipeline, "filter": f.filter, "rate": f.rate, "reason": r.reason}
	var job replayJob
	if err := c.Do(ctx, http.MethodPost, "/v1/replays", body, &job); err != nil {
		return err
	}
	if r.json && !f.wait {
		return printJSON(r.out, job)
	}
	fmt.Fprintf(r.out, "replay %s: %d events of %d partners through %s (filter %s)\n", job.ID, job.Total, len(partners), f.pipeline, f.filter)
	if !f.wait {
		return nil
	}
	for {
		printProgress(r.out, job)
		if job.Status == "done" || job.Status == "failed" {
			fmt.Fprintln(r.out)
			break
		}
		select {
		case <-ctx.Done():
			fmt.Fprintln(r.out)
			return ctx.Err()
		case <-time.After(f.poll):
		}
		if err := c.Do(ctx, http.MethodGet, client.Path("v1", "replays", job.ID), nil, &job); err != nil {
			return err
		}
	}
	if r.json {
		return printJSON(r.out, job)
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

// printProgress redraws a progress bar on one line.
func printProgress(w io.Writer, j replayJob) {
	const width = 30
	filled := width
	if j.Total > 0 {
		filled = j.Done * width / j.Total
	}
	fmt.Fprintf(w, "\r[%s%s] %d/%d sent, %d failed, %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), j.Done, j.Total, j.Failed, j.Status)
}
