package main

import (
	"context"
	"flag"
	"fmt"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/console"
	"github.com/switchbackhq/switchback/internal/controlclient"
	"github.com/switchbackhq/switchback/internal/reconcile"
	"github.com/switchbackhq/switchback/internal/wire"
)

// reconcileHelp is the reconcile verb's summary in its usage.
const reconcileHelp = `Asks each partner's PSA, through its psaApi, which entities it changed in a window,
and holds each change against what the partner's primary pipeline applied, as serve's router
journaled it. A change with no applied event reflecting it is a gap; one the clocks' skew or a
webhook still on its way leaves open is uncertain (listed apart, never backfilled). With
--backfill, or "reconcile backfill ID" later, each gap's current state is sent through the
partner's current primary pipeline, once however often it is asked.

  switchback reconcile --partners acme,beta --from 2h [--backfill]   start one and follow it
  switchback reconcile show ID                                       one job, followed while it runs
  switchback reconcile backfill ID                                   backfill a job's gaps
  switchback reconcile list                                          the jobs the service keeps

Progress goes to stderr; the gaps, the uncertain changes and the backfill's counts to stdout.
Exits 0 when no gap was found or every gap was backfilled and applied, 1 when gaps remain or
the reconciliation failed.`

// reconcileFlags are the reconcile verb's own flags.
type reconcileFlags struct {
	partners, from, to, skew, settle string
	backfill, wait                   bool
	poll                             time.Duration
}

func (f *reconcileFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.partners, "partners", "", "comma-separated partner ids, each with a psaApi (required to start)")
	fs.StringVar(&f.from, "from", "", "start of the window: RFC 3339 time, or a duration ago such as 2h, at most 31 days (required to start)")
	fs.StringVar(&f.to, "to", "", "end of the window: RFC 3339 time or a duration ago; default when the reconciliation starts")
	fs.BoolVar(&f.backfill, "backfill", false, "backfill the gaps as soon as they are known")
	fs.StringVar(&f.skew, "skew", "", fmt.Sprintf("bound on the difference between the PSA's clock and switchback's, 0s to 1h (default %s)", time.Duration(reconcile.DefaultSkew)))
	fs.StringVar(&f.settle, "settle", "", fmt.Sprintf("how long a webhook may take to arrive, 0s to 1h (default %s)", time.Duration(reconcile.DefaultSettle)))
	fs.BoolVar(&f.wait, "wait", true, "follow the job until it and its backfill end, then show it")
	fs.DurationVar(&f.poll, "poll", 500*time.Millisecond, "how often to ask for progress with --wait")
}

// startFlags are the flags that only starting a reconciliation takes.
var startFlags = []string{"partners", "from", "to", "backfill", "skew", "settle"}

func reconcileVerb(ctx context.Context, c *controlclient.Client, r *verbRun) error {
	f := r.reconcile
	if f.poll <= 0 {
		return usageError("--poll must be positive")
	}
	sub := ""
	if len(r.args) > 0 {
		sub = r.args[0]
	}
	if sub != "" {
		for _, name := range startFlags {
			if r.set[name] {
				return usageError(fmt.Sprintf("--%s goes with starting a reconciliation, not with %q", name, sub))
			}
		}
	}
	var job wire.Reconciliation
	var err error
	switch {
	case sub == "":
		req, uerr := f.request(r.reason, time.Now().UTC())
		if uerr != nil {
			return uerr
		}
		job, err = c.StartReconciliation(ctx, req)
	case sub == "list" && len(r.args) == 1:
		jobs, err := c.Reconciliations(ctx)
		if err != nil {
			return err
		}
		if r.json {
			return console.TerminalSafeJSON(r.out, jobs)
		}
		if len(jobs) == 0 {
			fmt.Fprintln(r.out, "no reconciliation kept: start one with \"switchback reconcile --partners P --from 2h\"")
			return nil
		}
		return console.ReconciliationList(r.out, jobs)
	case sub == "show" && len(r.args) == 2:
		job, err = c.Reconciliation(ctx, r.args[1])
	case sub == "backfill" && len(r.args) == 2:
		job, err = c.Backfill(ctx, r.args[1], r.reason)
	default:
		return usageError("use \"reconcile --partners P --from F\", \"reconcile show ID\", \"reconcile backfill ID\" or \"reconcile list\"")
	}
	if err != nil {
		return err
	}
	if !f.wait {
		switch {
		case r.json:
			return console.TerminalSafeJSON(r.out, job)
		case sub == "show":
			console.Reconciliation(r.out, job)
			return nil
		}
		fmt.Fprintln(r.stderr, console.ReconcileProgress(job))
		fmt.Fprintf(r.out, "reconciliation %s %s: follow it with \"switchback reconcile show %s\"\n", job.ID, job.State, job.ID)
		return nil
	}
	last := ""
	job, err = c.FollowReconciliation(ctx, job, f.poll, func(j wire.Reconciliation) {
		// A line when something moved, not one per poll: stderr may be a
		// log rather than a terminal.
		if line := console.ReconcileProgress(j); line != last {
			fmt.Fprintln(r.stderr, line)
			last = line
		}
	})
	if err != nil {
		return err
	}
	if r.json {
		if err := console.TerminalSafeJSON(r.out, job); err != nil {
			return err
		}
	} else {
		console.Reconciliation(r.out, job)
	}
	return reconcileOutcome(job)
}

// request is the body that starts a reconciliation; now resolves a --to
// written as a duration ago. Durations and times are checked here for a
// usage error; the rest (partners known, with a psaApi, the window's
// bounds) is the service's to judge.
func (f reconcileFlags) request(reason string, now time.Time) (controlclient.ReconcileRequest, error) {
	req := controlclient.ReconcileRequest{From: f.from, Backfill: f.backfill, Reason: reason}
	if f.partners == "" || f.from == "" {
		return req, usageError("reconcile needs --partners and --from")
	}
	for _, p := range strings.Split(f.partners, ",") {
		if p = strings.TrimSpace(p); p != "" {
			req.Partners = append(req.Partners, p)
		}
	}
	if _, err := when(f.from, now); err != nil {
		return req, usageError("--from: " + err.Error())
	}
	if f.to != "" {
		to, err := when(f.to, now)
		if err != nil {
			return req, usageError("--to: " + err.Error())
		}
		req.To = to.Format(time.RFC3339Nano)
	}
	for _, d := range []struct {
		name, in string
		out      *string
	}{{"skew", f.skew, &req.Skew}, {"settle", f.settle, &req.Settle}} {
		if d.in == "" {
			continue
		}
		if _, err := time.ParseDuration(d.in); err != nil {
			return req, usageError(fmt.Sprintf("--%s: %q is not a duration such as 2m", d.name, d.in))
		}
		*d.out = d.in
	}
	return req, nil
}

// reconcileOutcome is the exit status of a followed reconciliation: nil
// when it found no gap, or when its backfill applied every gap (or found
// it closed since); an error
// saying what is left otherwise.
func reconcileOutcome(job wire.Reconciliation) error {
	if job.State == wire.ReconcileFailed {
		return fmt.Errorf("reconciliation %s failed%s", job.ID, suffix(console.TerminalSafe(job.Error)))
	}
	if job.GapCount == 0 {
		return nil
	}
	bf := job.Backfill
	switch {
	case bf == nil:
		return fmt.Errorf("%d gaps found and not backfilled: send them with \"switchback reconcile backfill %s\"", job.GapCount, job.ID)
	case bf.State == wire.ReconcileFailed:
		return fmt.Errorf("the backfill of %s failed%s", job.ID, suffix(console.TerminalSafe(bf.Error)))
	case bf.Applied+bf.Skipped < job.GapCount:
		return fmt.Errorf("the backfill of %s left %d of %d gaps unapplied: %d dead-lettered, %d still pending",
			job.ID, job.GapCount-bf.Applied-bf.Skipped, job.GapCount, bf.DeadLettered, bf.Pending)
	}
	return nil
}
