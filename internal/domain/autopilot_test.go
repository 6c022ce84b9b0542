package domain

import (
	"testing"
	"time"
)

func TestAutopilotWindowsOnTheirWallClock(t *testing.T) {
	p := AutopilotPolicy{Enabled: true, Windows: []AutopilotWindow{{Days: []string{"mon", "tue", "wed", "thu"}, From: "09:00", To: "16:00", TimeZone: "Europe/Amsterdam"}}}
	if err := p.Validate(); err != nil {
		t.Fatal(err)
	}
	utc := func(s string) time.Time {
		t.Helper()
		v, err := time.Parse(time.RFC3339, s)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	for _, tt := range []struct {
		at     string
		open   bool
		closes string // when open
		next   string // when closed
	}{
		// Winter, UTC+1: 09:00 is 08:00 UTC.
		{at: "2026-03-23T07:59:59Z", next: "2026-03-23T08:00:00Z"},
		{at: "2026-03-23T08:00:00Z", open: true, closes: "2026-03-23T15:00:00Z"},
		{at: "2026-03-23T15:00:00Z", next: "2026-03-24T08:00:00Z"},
		// Thursday evening: the next is Monday.
		{at: "2026-03-26T16:00:00Z", next: "2026-03-30T07:00:00Z"},
		// Summer from Sunday 29 March, UTC+2: 09:00 is 07:00 UTC.
		{at: "2026-03-30T07:30:00Z", open: true, closes: "2026-03-30T14:00:00Z"},
		{at: "2026-03-30T14:30:00Z", next: "2026-03-31T07:00:00Z"},
		// Back to winter on Sunday 25 October.
		{at: "2026-10-26T07:30:00Z", next: "2026-10-26T08:00:00Z"},
	} {
		at := utc(tt.at)
		closes, open := p.Open(at)
		if open != tt.open || (open && !closes.Equal(utc(tt.closes))) {
			t.Errorf("Open(%s) = %s, %v; want %v until %s", tt.at, closes, open, tt.open, tt.closes)
		}
		next, ok := p.NextOpen(at)
		switch {
		case open && (!ok || !next.Equal(at)):
			t.Errorf("NextOpen(%s) in a window = %s, %v; want now", tt.at, next, ok)
		case !open && (!ok || !next.Equal(utc(tt.next))):
			t.Errorf("NextOpen(%s) = %s, %v; want %s", tt.at, next, ok, tt.next)
		}
	}
}

func TestAutopilotPolicyValidate(t *testing.T) {
	day := func(w AutopilotWindow) AutopilotPolicy {
		return AutopilotPolicy{Enabled: true, Windows: []AutopilotWindow{w}}
	}
	ok := AutopilotWindow{Days: []string{"mon"}, From: "09:00", To: "24:00"}
	if err := day(ok).Validate(); err != nil {
		t.Errorf("a window to 24:00: %v", err)
	}
	if err := (AutopilotPolicy{}).Validate(); err != nil {
		t.Errorf("a policy not enabled needs no window: %v", err)
	}
	for name, p := range map[string]AutopilotPolicy{
		"enabled, no window": {Enabled: true},
		"no days":            day(AutopilotWindow{From: "09:00", To: "10:00"}),
		"a day twice":        day(AutopilotWindow{Days: []string{"mon", "mon"}, From: "09:00", To: "10:00"}),
		"Monday":             day(AutopilotWindow{Days: []string{"Monday"}, From: "09:00", To: "10:00"}),
		"9:00":               day(AutopilotWindow{Days: []string{"mon"}, From: "9:00", To: "10:00"}),
		"24:30":              day(AutopilotWindow{Days: []string{"mon"}, From: "09:00", To: "24:30"}),
		"09:60":              day(AutopilotWindow{Days: []string{"mon"}, From: "09:60", To: "10:00"}),
		"empty":              day(AutopilotWindow{Days: []string{"mon"}, From: "10:00", To: "10:00"}),
		"across midnight":    day(AutopilotWindow{Days: []string{"mon"}, From: "22:00", To: "02:00"}),
		"zone":               day(AutopilotWindow{Days: []string{"mon"}, From: "09:00", To: "10:00", TimeZone: "Europe/Atlantis"}),
		"Local":              day(AutopilotWindow{Days: []string{"mon"}, From: "09:00", To: "10:00", TimeZone: "Local"}),
		"negative bound":     {MaxAdvancesPerDay: -1},
		"bound too high":     {MaxAdvancesPerDay: MaxAutopilotAdvancesInDay + 1},
	} {
		if err := p.Validate(); ErrorCode(err) != CodeInvalid {
			t.Errorf("%s: Validate = %v, want invalid_argument", name, err)
		}
	}
}

func TestAutopilotMovesSince(t *testing.T) {
	t0 := time.Date(2026, 3, 2, 8, 0, 0, 0, time.UTC)
	s := &AutopilotState{Moves: []time.Time{t0, t0.Add(time.Hour), t0.Add(2 * time.Hour)}}
	if got := s.MovesSince(t0.Add(time.Hour)); got != 2 {
		t.Errorf("MovesSince = %d, want 2 (at or after)", got)
	}
	if got := (*AutopilotState)(nil).MovesSince(t0); got != 0 {
		t.Errorf("nil MovesSince = %d", got)
	}
}
