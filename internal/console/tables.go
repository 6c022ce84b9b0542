package console

import (
	"fmt"
	"io"
	"math"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/switchbackhq/switchback/internal/controlclient"
	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

func table(w io.Writer) *tabwriter.Writer { return tabwriter.NewWriter(w, 0, 4, 2, ' ', 0) }

// Routers shows which routers hold the current snapshot: after a revert,
// every line should say "yes".
func Routers(w io.Writer, routers []controlclient.RouterStatus) {
	if len(routers) == 0 {
		fmt.Fprintln(w, "\nno router has reported yet")
		return
	}
	confirmed := 0
	for _, rt := range routers {
		if rt.Confirmed {
			confirmed++
		}
	}
	fmt.Fprintf(w, "\nrouters: %d of %d hold the current snapshot\n", confirmed, len(routers))
	tw := table(w)
	fmt.Fprintln(tw, "ROUTER\tSNAPSHOT\tCURRENT\tLAST SEEN")
	for _, rt := range routers {
		cur := "no"
		if rt.Confirmed {
			cur = "yes"
		}
		fmt.Fprintf(tw, "%s\tv%d\t%s\t%s\n", rt.ID, rt.SnapshotVersion, cur, rt.LastSeen.Format(time.RFC3339))
	}
	tw.Flush()
}

// Migrations shows each migration's kill switch and partners by stage,
// then the cohorts of each.
func Migrations(w io.Writer, ms []controlclient.MigrationStatus) {
	tw := table(w)
	fmt.Fprintln(tw, "MIGRATION\tKILL SWITCH\tLEGACY\tSHADOW\tNEW\tDONE\tSNAPSHOT")
	for _, m := range ms {
		ks := "off"
		if m.Reverted {
			ks = "ON (all legacy)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\tv%d\n", m.Key, ks, m.Stages[domain.StageLegacy], m.Stages[domain.StageShadow],
			m.Stages[domain.StageNew], m.Stages[domain.StageDone], m.SnapshotVersion)
	}
	tw.Flush()
	for _, m := range ms {
		if len(m.Cohorts) == 0 {
			continue
		}
		fmt.Fprintf(w, "\ncohorts of %s:\n", m.Key)
		tw := table(w)
		fmt.Fprintln(tw, "ORDER\tCOHORT\tSTAGE\tPARTNERS")
		for _, co := range m.Cohorts {
			fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", co.Order, co.Name, co.Stage, strings.Join(co.Partners, ", "))
		}
		tw.Flush()
	}
}

// GateReport writes a gate report partner by partner, check by check. A
// report that is inconclusive says it is waiting for data, and what for,
// never that it failed.
func GateReport(w io.Writer, rep gate.Report) {
	switch verdictOf(rep.Verdict, rep.Pass) {
	case gate.Pass:
		fmt.Fprintln(w, "PASS: the cohort may advance")
	case gate.Inconclusive:
		fmt.Fprintln(w, TerminalSafe("WAITING FOR DATA: the cohort may not advance yet: "+rep.Missing()))
	default:
		fmt.Fprintln(w, "REFUSED: the cohort may not advance")
	}
	marks := map[gate.Verdict]string{gate.Pass: "ok", gate.Inconclusive: "WAIT", gate.Fail: "FAIL"}
	for _, p := range rep.Partners {
		fmt.Fprintf(w, "\n%-4s %s (at %s)\n", marks[verdictOf(p.Verdict, p.Pass)], p.Partner, p.Stage)
		tw := table(w)
		for _, ch := range p.Checks {
			fmt.Fprintf(tw, "  %s\t%s\tvalue %s\tlimit %s\t%s\n", marks[verdictOf(ch.Verdict, ch.Pass)], ch.Name, num(ch.Value), num(ch.Limit), TerminalSafe(ch.Detail))
		}
		tw.Flush()
	}
}

// verdictOf is v, or for a report from a control service too old to send
// verdicts, what its pass meant then: pass or fail.
func verdictOf(v gate.Verdict, pass bool) gate.Verdict {
	switch {
	case v != "":
		return v
	case pass:
		return gate.Pass
	default:
		return gate.Fail
	}
}

// num prints whole numbers without a fraction, the rest with four digits.
func num(f float64) string {
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return fmt.Sprintf("%d", int64(f))
	}
	return fmt.Sprintf("%.4g", f)
}

// AuditEntries writes audit entries as a table, every text field through
// TerminalSafe; it returns the writer's error.
func AuditEntries(w io.Writer, entries []domain.AuditEntry) error {
	tw := table(w)
	fmt.Fprintln(tw, "SEQ\tAT\tACTOR\tACTION\tTARGET\tREASON")
	for _, e := range entries {
		fmt.Fprintf(tw, "%d\t%s\t%s\t%s\t%s\t%s\n", e.Seq, e.At.Format("2006-01-02 15:04:05Z"),
			TerminalSafe(e.Actor), TerminalSafe(e.Action), TerminalSafe(e.Target), TerminalSafe(e.Reason))
	}
	return tw.Flush()
}

// Progress redraws a replay's progress bar on one line.
func Progress(w io.Writer, j controlclient.ReplayJob) {
	const width = 30
	filled := width
	if j.Total > 0 {
		filled = j.Done * width / j.Total
	}
	fmt.Fprintf(w, "\r[%s%s] %d/%d sent, %d failed, %s", strings.Repeat("#", filled), strings.Repeat(".", width-filled), j.Done, j.Total, j.Failed, j.Status)
}
