package refpipe

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// ParseFault adds to f the fault s, NAME=VALUE as "switchback pipeline
// --fault" takes it: cached-handler=RATE, error=RATE, empty=RATE (rates
// from 0 to 1), drop-field=PATH, latency=DUR or MIN-MAX, or noisy=BOOL
// (a fresh time and a random id in every effect). It returns an
// error that says which form was expected.
func ParseFault(f *Faults, s string) error {
	name, value, ok := strings.Cut(s, "=")
	if !ok {
		return fmt.Errorf("%q: write NAME=VALUE", s)
	}
	rate := func(dst *float64) error {
		v, err := strconv.ParseFloat(value, 64)
		if err != nil || v < 0 || v > 1 {
			return fmt.Errorf("%s=%q: want a rate from 0 to 1", name, value)
		}
		*dst = v
		return nil
	}
	switch name {
	case "cached-handler":
		return rate(&f.CachedHandler)
	case "error":
		return rate(&f.Error)
	case "empty":
		return rate(&f.Empty)
	case "drop-field":
		if value == "" {
			return fmt.Errorf("drop-field needs a field name")
		}
		f.DropField = value
		return nil
	case "noisy":
		v, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("noisy=%q: want true or false", value)
		}
		f.Noisy = v
		return nil
	case "latency":
		lo, hi, ranged := strings.Cut(value, "-")
		d, err := time.ParseDuration(lo)
		if err != nil || d < 0 {
			return fmt.Errorf("latency=%q: want a duration such as 20ms, or a range such as 5ms-50ms", value)
		}
		f.Latency, f.LatencyMax = d, d
		if ranged {
			if f.LatencyMax, err = time.ParseDuration(hi); err != nil || f.LatencyMax < d {
				return fmt.Errorf("latency=%q: the range's upper end must be a duration above its lower end", value)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown fault %q: use cached-handler, drop-field, error, latency, empty or noisy", name)
}
