package console

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/wire"
)

// ReconcileProgress is one line of a reconciliation's progress: its state,
// each partner's state and counts, and its backfill's counts once one
// runs. Partner ids come from the service and go through TerminalSafe.
func ReconcileProgress(job wire.Reconciliation) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s:", job.ID, job.State)
	for i, p := range job.Partners {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " %s %s", TerminalSafe(p.Partner), p.State)
		if p.State != wire.PartnerPending {
			fmt.Fprintf(&b, " %d/%d checked, %d gaps, %d uncertain", p.Checked, p.Changes, p.Gaps, p.Uncertain)
		}
	}
	if bf := job.Backfill; bf != nil {
		fmt.Fprintf(&b, "; backfill %s: %d journaled, %d duplicates, %d applied, %d dead-lettered, %d pending",
			bf.State, bf.Journaled, bf.Duplicates, bf.Applied, bf.DeadLettered, bf.Pending)
		if bf.Skipped > 0 {
			fmt.Fprintf(&b, ", %d closed since", bf.Skipped)
		}
	}
	return b.String()
}

// Reconciliation writes a job whole: its window and state, a line per
// partner, the table of gaps, the uncertain changes, and the backfill's
// counts. Every text from the service (partner ids, entity types and ids,
// which a PSA chose, errors) goes through TerminalSafe.
func Reconciliation(w io.Writer, job wire.Reconciliation) {
	req := job.Request
	fmt.Fprintf(w, "reconciliation %s (%s, by %s): %s, window %s to %s, skew %s, settle %s\n", TerminalSafe(job.ID),
		TerminalSafe(job.Trigger), TerminalSafe(job.Actor), TerminalSafe(job.State), stamp(req.From), stamp(req.To), duration(req.Skew), duration(req.Settle))
	if job.Error != "" {
		fmt.Fprintln(w, TerminalSafe("error: "+job.Error))
	}
	tw := table(w)
	fmt.Fprintln(tw, "PARTNER\tSTATE\tCHANGES\tCHECKED\tREFLECTED\tIN FLIGHT\tUNCERTAIN\tGAPS\tERROR")
	for _, p := range job.Partners {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n", TerminalSafe(p.Partner), p.State, p.Changes, p.Checked,
			p.Reflected, p.InFlight, p.Uncertain, p.Gaps, TerminalSafe(p.Error))
	}
	tw.Flush()

	fmt.Fprintf(w, "\n%d checked, %d gaps, %d uncertain, %d in flight\n", job.Checked, job.GapCount, job.Uncertain, job.InFlight)
	findings(w, "gaps", job.Gaps)
	if job.Truncated {
		fmt.Fprintf(w, "only the first %d of %d gaps are listed; a backfill takes them all\n", len(job.Gaps), job.GapCount)
	}
	findings(w, "uncertain (not gaps, never backfilled: reconcile again later)", job.Unsure)
	if len(job.Unsure) < job.Uncertain {
		fmt.Fprintf(w, "only the first %d of %d uncertain changes are listed\n", len(job.Unsure), job.Uncertain)
	}

	if bf := job.Backfill; bf != nil {
		fmt.Fprintf(w, "\nbackfill %s: %d events, %d journaled, %d duplicates (already backfilled), %d applied, %d dead-lettered, %d pending\n",
			bf.State, bf.Events, bf.Journaled, bf.Duplicates, bf.Applied, bf.DeadLettered, bf.Pending)
		if bf.Skipped > 0 {
			fmt.Fprintf(w, "%d gaps were closed by events since the reconciliation: judged again, not sent\n", bf.Skipped)
		}
		if bf.Error != "" {
			fmt.Fprintln(w, TerminalSafe("backfill error: "+bf.Error))
		}
	}
}

// findings writes gaps or uncertain changes as a table under title.
func findings(w io.Writer, title string, fs []wire.Finding) {
	if len(fs) == 0 {
		return
	}
	fmt.Fprintf(w, "\n%s:\n", title)
	tw := table(w)
	fmt.Fprintln(tw, "PARTNER\tTYPE\tID\tUPDATED AT (PSA)\tLAST APPLIED\tREASON")
	for _, f := range fs {
		last := "never"
		if f.LastAppliedAt != nil {
			last = stamp(*f.LastAppliedAt)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", TerminalSafe(f.Partner), TerminalSafe(f.Type), TerminalSafe(f.ID),
			stamp(f.UpdatedAt), last, TerminalSafe(string(f.Reason)))
	}
	tw.Flush()
}

// ReconciliationList writes jobs as a table, one line each; it returns the
// writer's error.
func ReconciliationList(w io.Writer, jobs []wire.Reconciliation) error {
	tw := table(w)
	fmt.Fprintln(tw, "RECONCILIATION\tSTATE\tTRIGGER\tCREATED\tPARTNERS\tCHECKED\tGAPS\tUNCERTAIN\tBACKFILL")
	for _, j := range jobs {
		partners := make([]string, len(j.Partners))
		for i, p := range j.Partners {
			partners[i] = TerminalSafe(p.Partner)
		}
		bf := "-"
		if j.Backfill != nil {
			bf = fmt.Sprintf("%s, %d applied", j.Backfill.State, j.Backfill.Applied)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%s\n", j.ID, j.State, j.Trigger, stamp(j.CreatedAt),
			strings.Join(partners, ","), j.Checked, j.GapCount, j.Uncertain, bf)
	}
	return tw.Flush()
}

func stamp(t time.Time) string { return t.UTC().Format(time.RFC3339) }

// duration writes a skew or settle; the service resolves an absent one to
// its default before it shows a job.
func duration(d *wire.Duration) string {
	if d == nil {
		return "default"
	}
	return time.Duration(*d).String()
}
