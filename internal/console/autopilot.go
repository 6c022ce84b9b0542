package console

import (
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/switchbackhq/switchback/internal/wire"
)

// Autopilot writes what a migration's autopilot does now: its state and
// why, its windows, its moves against the day's bound and its next move.
func Autopilot(w io.Writer, st wire.AutopilotStatus) {
	fmt.Fprintf(w, "autopilot of %s: %s\n", TerminalSafe(st.Migration), strings.ToUpper(strings.ReplaceAll(st.State, "_", " ")))
	fmt.Fprintf(w, "  %s\n", TerminalSafe(st.Explanation))
	if st.Policy == nil {
		return
	}
	for _, win := range st.Policy.Windows {
		zone := win.TimeZone
		if zone == "" {
			zone = "UTC"
		}
		fmt.Fprintf(w, "  window:     %s %s–%s %s\n", strings.Join(win.Days, ","), win.From, win.To, TerminalSafe(zone))
	}
	switch {
	case st.InWindow && st.WindowCloses != nil:
		fmt.Fprintf(w, "  now:        inside a window, until %s\n", st.WindowCloses.Format(time.RFC3339))
	case st.NextWindow != nil:
		fmt.Fprintf(w, "  now:        outside the windows; the next opens at %s\n", st.NextWindow.Format(time.RFC3339))
	}
	if st.MaxAdvancesPerDay > 0 {
		fmt.Fprintf(w, "  moves:      %d of %d in the last 24 hours", st.MovesToday, st.MaxAdvancesPerDay)
		if st.LastMove != nil {
			fmt.Fprintf(w, " (last at %s)", st.LastMove.Format(time.RFC3339))
		}
		fmt.Fprintln(w)
	}
	if st.Next != nil {
		fmt.Fprintf(w, "  next move:  cohort %s from %s to %s (%s)\n", TerminalSafe(st.Next.Cohort), st.Next.From, st.Next.To, TerminalSafe(strings.Join(st.Next.Partners, ", ")))
	}
	if st.Change != "" {
		fmt.Fprintf(w, "  approve it: switchback approve %s\n", st.Change)
	}
}
