package console

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/domain"
	"github.com/switchbackhq/switchback/internal/gate"
)

// Changes writes change requests as a table, newest first as given: what
// moves, its state, its approvals against those required, who asked and
// when it expires or ended. Free text goes through TerminalSafe.
func Changes(w io.Writer, cs []domain.ChangeRequest) error {
	if len(cs) == 0 {
		_, err := fmt.Fprintln(w, "no change requests")
		return err
	}
	tw := table(w)
	fmt.Fprintln(tw, "ID\tMIGRATION\tMOVE\tSTATE\tAPPROVALS\tREQUESTED BY\tREQUESTED\tEXPIRES OR ENDED")
	for _, c := range cs {
		when := "expires " + c.ExpiresAt.Format(time.RFC3339)
		if c.EndedAt != nil {
			when = "ended " + c.EndedAt.Format(time.RFC3339)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d of %d\t%s\t%s\t%s\n", c.ID, TerminalSafe(c.Migration), TerminalSafe(move(c)), c.State,
			len(c.Approvals), c.Required, TerminalSafe(c.RequestedBy), c.RequestedAt.Format(time.RFC3339), when)
	}
	return tw.Flush()
}

// move says what a change request moves, forced or not.
func move(c domain.ChangeRequest) string {
	if c.Force {
		return c.What() + " (forced)"
	}
	return c.What()
}

// ChangeFiled says that a move waits for approvals instead of happening,
// and how to approve it.
func ChangeFiled(w io.Writer, c domain.ChangeRequest) {
	left := c.Required - len(c.Approvals)
	fmt.Fprintf(w, "change request %s: %s in %s waits for %d %s (another operator: switchback approve %s), until %s\n",
		c.ID, TerminalSafe(move(c)), TerminalSafe(c.Migration), left, plural(left, "approval", "approvals"), c.ID, c.ExpiresAt.Format(time.RFC3339))
}

// ChangeRequest writes one change request in full: what, who, its
// approvals, how it ended, and the gate report of a failed one.
func ChangeRequest(w io.Writer, c domain.ChangeRequest) {
	fmt.Fprintf(w, "change request %s: %s\n", c.ID, strings.ToUpper(string(c.State)))
	fmt.Fprintf(w, "  move:       %s in %s\n", TerminalSafe(move(c)), TerminalSafe(c.Migration))
	fmt.Fprintf(w, "  asked by:   %s at %s", TerminalSafe(c.RequestedBy), c.RequestedAt.Format(time.RFC3339))
	if c.Reason != "" {
		fmt.Fprintf(w, ": %s", TerminalSafe(c.Reason))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  approvals:  %d of %d\n", len(c.Approvals), c.Required)
	for _, a := range c.Approvals {
		fmt.Fprintf(w, "    %s at %s", TerminalSafe(a.By), a.At.Format(time.RFC3339))
		if a.Reason != "" {
			fmt.Fprintf(w, ": %s", TerminalSafe(a.Reason))
		}
		fmt.Fprintln(w)
	}
	if c.Ended == nil {
		left := c.Required - len(c.Approvals)
		fmt.Fprintf(w, "  waits for %d more %s until %s\n", left, plural(left, "approval", "approvals"), c.ExpiresAt.Format(time.RFC3339))
		return
	}
	fmt.Fprintf(w, "  ended:      %s by %s at %s", c.State, TerminalSafe(c.Ended.By), c.Ended.At.Format(time.RFC3339))
	if c.Ended.Reason != "" {
		fmt.Fprintf(w, ": %s", TerminalSafe(c.Ended.Reason))
	}
	fmt.Fprintln(w)
	if c.Failure != "" {
		fmt.Fprintf(w, "  failure:    %s\n", TerminalSafe(c.Failure))
	}
	var rep gate.Report
	if len(c.Report) > 0 && json.Unmarshal(c.Report, &rep) == nil {
		fmt.Fprintln(w)
		GateReport(w, rep)
	}
}

func plural(n int, one, many string) string {
	if n == 1 {
		return one
	}
	return many
}
