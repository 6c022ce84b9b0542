package console

import (
	"fmt"
	"io"
	"strings"

	"github.com/switchbackhq/switchback/internal/wire"
)

// NotificationList writes the targets, a line each: format, where (host
// only), events, whether a secret is set, and the totals of this
// process's deliveries.
func NotificationList(w io.Writer, list []wire.NotificationStatus) {
	tw := table(w)
	fmt.Fprintln(tw, "TARGET\tFORMAT\tURL\tEVENTS\tSECRET\tDELIVERED\tFAILED\tDROPPED\tQUEUED")
	for _, t := range list {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\t%d\n", TerminalSafe(t.Name), TerminalSafe(t.Format), TerminalSafe(t.URL),
			TerminalSafe(strings.Join(t.Events, ",")), secretSet(t.HasSecret), t.Totals.Delivered, t.Totals.Failed, t.Totals.Dropped, t.Totals.Queued)
	}
	tw.Flush()
}

// Notification writes a target and its last deliveries, newest first.
// Every text from the service goes through TerminalSafe: an error may
// quote what a receiver's network said.
func Notification(w io.Writer, t wire.NotificationStatus) {
	fmt.Fprintf(w, "notification target %s: %s to %s, secret %s\n", TerminalSafe(t.Name), TerminalSafe(t.Format), TerminalSafe(t.URL), secretSet(t.HasSecret))
	fmt.Fprintf(w, "events: %s\n", TerminalSafe(strings.Join(t.Events, ", ")))
	fmt.Fprintf(w, "since this process started: %d delivered, %d failed, %d dropped, %d retries, %d queued\n",
		t.Totals.Delivered, t.Totals.Failed, t.Totals.Dropped, t.Totals.Retries, t.Totals.Queued)
	if len(t.Deliveries) == 0 {
		fmt.Fprintln(w, "no delivery yet")
		return
	}
	tw := table(w)
	fmt.Fprintln(tw, "\nNOTICE\tEVENT\tAT\tSTATE\tATTEMPTS\tSTATUS\tERROR")
	for _, d := range t.Deliveries {
		status := "-"
		if d.Status != 0 {
			status = fmt.Sprint(d.Status)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", TerminalSafe(d.Notice), TerminalSafe(d.Event), stamp(d.At), TerminalSafe(d.State),
			d.Attempts, status, TerminalSafe(d.Error))
	}
	tw.Flush()
}

func secretSet(set bool) string {
	if set {
		return "set"
	}
	return "none"
}
