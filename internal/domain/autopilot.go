package domain

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // windows name IANA zones; a container image may have no zoneinfo
)

// AutopilotPolicy lets the control service advance a migration's cohorts
// on its own: inside one of the windows, the next cohort in order moves one
// stage whenever its gates pass, at most MaxAdvancesPerDay times in any 24
// hours (docs/api.md, "Autopilot"). A policy in a published State is shared
// between states and never changed in place.
type AutopilotPolicy struct {
	Enabled bool              `json:"enabled"`
	Windows []AutopilotWindow `json:"windows"`
	// MaxAdvancesPerDay bounds the autopilot's moves in any 24 hours; 0
	// when written takes DefaultMaxAdvancesPerDay.
	MaxAdvancesPerDay int `json:"maxAdvancesPerDay"`
}

// DefaultMaxAdvancesPerDay is the bound of a policy that does not set one:
// one move a day leaves a day's traffic to judge each.
const DefaultMaxAdvancesPerDay = 1

// Bounds of an AutopilotPolicy.
const (
	MaxAutopilotWindows       = 32
	MaxAutopilotAdvancesInDay = 100
)

// AutopilotWindow is a span of time on some days of the week, in a time
// zone, when the autopilot may move partners: from From until To on each of
// Days, as the clocks of TimeZone show them (a day that skips an hour for
// daylight saving time has a shorter window).
type AutopilotWindow struct {
	Days     []string `json:"days"`     // mon … sun
	From     string   `json:"from"`     // HH:MM
	To       string   `json:"to"`       // HH:MM, after From; 24:00 is the end of the day
	TimeZone string   `json:"timeZone"` // IANA, such as Europe/Amsterdam; empty is UTC
}

var weekdays = map[string]time.Weekday{"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday,
	"wed": time.Wednesday, "thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday}

// Validate checks the policy. Its errors have CodeInvalid and name the
// field.
func (p AutopilotPolicy) Validate() error {
	if p.MaxAdvancesPerDay < 0 || p.MaxAdvancesPerDay > MaxAutopilotAdvancesInDay {
		return Errorf(CodeInvalid, "autopilot: maxAdvancesPerDay must be between 1 and %d (0 or absent is %d)", MaxAutopilotAdvancesInDay, DefaultMaxAdvancesPerDay)
	}
	if p.Enabled && len(p.Windows) == 0 {
		return Errorf(CodeInvalid, "autopilot: an enabled autopilot needs at least one window, such as {\"days\": [\"mon\",\"tue\",\"wed\",\"thu\"], \"from\": \"09:00\", \"to\": \"16:00\", \"timeZone\": \"Europe/Amsterdam\"}")
	}
	if len(p.Windows) > MaxAutopilotWindows {
		return Errorf(CodeInvalid, "autopilot: %d windows: at most %d", len(p.Windows), MaxAutopilotWindows)
	}
	for i, w := range p.Windows {
		if err := w.validate(); err != nil {
			return Errorf(CodeInvalid, "autopilot: windows[%d]: %s", i, err.Error())
		}
	}
	return nil
}

// MaxPerDay returns the bound in force.
func (p AutopilotPolicy) MaxPerDay() int {
	if p.MaxAdvancesPerDay == 0 {
		return DefaultMaxAdvancesPerDay
	}
	return p.MaxAdvancesPerDay
}

func (w AutopilotWindow) validate() error {
	if len(w.Days) == 0 || len(w.Days) > 7 {
		return fmt.Errorf("days must list 1 to 7 days of mon, tue, wed, thu, fri, sat, sun")
	}
	seen := map[string]bool{}
	for _, d := range w.Days {
		if _, ok := weekdays[d]; !ok {
			return fmt.Errorf("day %q is unknown: use mon, tue, wed, thu, fri, sat or sun", d)
		}
		if seen[d] {
			return fmt.Errorf("day %q is listed twice", d)
		}
		seen[d] = true
	}
	from, err := clock(w.From)
	if err != nil {
		return fmt.Errorf("from: %w", err)
	}
	to, err := clock(w.To)
	if err != nil {
		return fmt.Errorf("to: %w", err)
	}
	if to <= from {
		return fmt.Errorf("to (%s) must be after from (%s) on the same day: split a window across midnight in two", w.To, w.From)
	}
	if strings.EqualFold(w.TimeZone, "Local") {
		return fmt.Errorf("timeZone \"Local\" is each replica's own zone: name the zone, such as Europe/Amsterdam")
	}
	if _, err := w.location(); err != nil {
		return fmt.Errorf("timeZone %q is not an IANA time zone such as Europe/Amsterdam", w.TimeZone)
	}
	return nil
}

// clock parses HH:MM into minutes since midnight; 24:00 is 1440.
func clock(s string) (int, error) {
	var h, m int
	if len(s) != 5 || s[2] != ':' {
		return 0, fmt.Errorf("%q is not a time of day as HH:MM, such as 09:00", s)
	}
	if _, err := fmt.Sscanf(s, "%02d:%02d", &h, &m); err != nil || h > 24 || m > 59 || (h == 24 && m != 0) || h < 0 || m < 0 {
		return 0, fmt.Errorf("%q is not a time of day as HH:MM, such as 09:00", s)
	}
	return h*60 + m, nil
}

func (w AutopilotWindow) location() (*time.Location, error) {
	if w.TimeZone == "" || strings.EqualFold(w.TimeZone, "UTC") {
		return time.UTC, nil
	}
	return time.LoadLocation(w.TimeZone)
}

// span returns the window's start and end on the day of t in the window's
// zone, and whether the window is open on that day at all.
func (w AutopilotWindow) span(t time.Time) (start, end time.Time, ok bool) {
	loc, err := w.location()
	if err != nil {
		return time.Time{}, time.Time{}, false
	}
	t = t.In(loc)
	on := false
	for _, d := range w.Days {
		on = on || weekdays[d] == t.Weekday()
	}
	if !on {
		return time.Time{}, time.Time{}, false
	}
	from, _ := clock(w.From)
	to, _ := clock(w.To)
	y, mo, d := t.Date()
	// Wall clock times, not minutes after midnight: on a day that skips
	// or repeats an hour, 09:00 is still 09:00.
	return time.Date(y, mo, d, from/60, from%60, 0, 0, loc), time.Date(y, mo, d, to/60, to%60, 0, 0, loc), true
}

// Open reports whether t falls inside one of the windows, and if so, when
// that window closes.
func (p AutopilotPolicy) Open(t time.Time) (closes time.Time, open bool) {
	for _, w := range p.Windows {
		if start, end, ok := w.span(t); ok && !t.Before(start) && t.Before(end) && end.After(closes) {
			closes, open = end, true
		}
	}
	return closes, open
}

// NextOpen returns when the next window opens after t (t itself when one
// is open), and false when no window opens in the coming eight days.
func (p AutopilotPolicy) NextOpen(t time.Time) (time.Time, bool) {
	if _, open := p.Open(t); open {
		return t, true
	}
	var next time.Time
	for _, w := range p.Windows {
		loc, err := w.location()
		if err != nil {
			continue
		}
		for day := 0; day <= 8; day++ {
			y, mo, d := t.In(loc).Date()
			start, _, ok := w.span(time.Date(y, mo, d+day, 12, 0, 0, 0, loc))
			if ok && start.After(t) {
				if next.IsZero() || start.Before(next) {
					next = start
				}
				break
			}
		}
	}
	return next, !next.IsZero()
}

// AutopilotState is what the autopilot of a migration has done and whether
// it may go on: the control service keeps it beside the policy, and a PUT
// of the migration keeps it.
type AutopilotState struct {
	// Paused stops the autopilot until an operator resumes it; the guard
	// and the kill switch set it.
	Paused       bool      `json:"paused"`
	PausedAt     time.Time `json:"pausedAt,omitzero"`
	PausedBy     string    `json:"pausedBy,omitempty"`
	PausedReason string    `json:"pausedReason,omitempty"`
	// Moves are the times of the autopilot's moves (advances made and
	// change requests filed) in the last 24 hours, oldest first.
	Moves []time.Time `json:"moves,omitempty"`
}

// MovesSince returns how many of the moves were at or after t.
func (s *AutopilotState) MovesSince(t time.Time) int {
	if s == nil {
		return 0
	}
	n := 0
	for _, m := range s.Moves {
		if !m.Before(t) {
			n++
		}
	}
	return n
}
