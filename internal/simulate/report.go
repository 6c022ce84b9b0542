package simulate

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// LoadPartners reads the partners of "simulate --partners": inline JSON, a
// JSON file, or ID:PSA:SECRET,... (secrets may hold colons, not commas).
// Its errors, prefixed with the flag, say which form did not parse.
func LoadPartners(spec string) ([]Partner, error) {
	s := strings.TrimSpace(spec)
	var data []byte
	if strings.HasPrefix(s, "[") {
		data = []byte(s)
	} else if b, err := os.ReadFile(spec); err == nil {
		data = b
	} else if !strings.Contains(s, ":") {
		return nil, fmt.Errorf("--partners: %v", err)
	} else {
		var ps []Partner
		for _, item := range strings.Split(s, ",") {
			parts := strings.SplitN(strings.TrimSpace(item), ":", 3)
			if len(parts) != 3 {
				return nil, fmt.Errorf("--partners: %q is not ID:PSA:SECRET", item)
			}
			ps = append(ps, Partner{ID: parts[0], PSA: parts[1], Secret: parts[2]})
		}
		return ps, nil
	}
	var ps []Partner
	if err := json.Unmarshal(data, &ps); err != nil {
		return nil, fmt.Errorf(`--partners: not a JSON list of {"id", "psa", "secret", optional "psaApi"}: %v`, err)
	}
	if len(ps) == 0 {
		return nil, errors.New("--partners lists no partner")
	}
	return ps, nil
}

// ParseMix reads entity type weights, "ticket=5,contact=1" (for
// Config.Mix); "" is nil, the default mix. An item that is not TYPE=WEIGHT
// is an error.
func ParseMix(s string) (map[string]float64, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	mix := map[string]float64{}
	for _, item := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(item), "=")
		w, err := strconv.ParseFloat(v, 64)
		if !ok || err != nil {
			return nil, fmt.Errorf("--mix: %q is not TYPE=WEIGHT", item)
		}
		mix[k] = w
	}
	return mix, nil
}

// WriteLedger writes the ledger to path as indented JSON, [] when it is
// empty; the error is the file's.
func WriteLedger(path string, ledger []LedgerEntry) error {
	if ledger == nil {
		ledger = []LedgerEntry{}
	}
	b, err := json.MarshalIndent(ledger, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteReport writes a run's final counts against router with seed (the
// dropped deliveries when there are some), then one line per partner.
func WriteReport(w io.Writer, router string, seed uint64, st Stats) {
	refused := "0"
	if n := st.RefusedTotal(); n > 0 {
		codes := make([]int, 0, len(st.Refused))
		for c := range st.Refused {
			codes = append(codes, c)
		}
		slices.Sort(codes)
		parts := make([]string, len(codes))
		for i, c := range codes {
			parts[i] = fmt.Sprintf("%d×%d", st.Refused[c], c)
		}
		refused = fmt.Sprintf("%d (%s)", n, strings.Join(parts, ", "))
	}
	ledger := fmt.Sprint(len(st.Ledger))
	if st.LedgerDropped > 0 {
		ledger += fmt.Sprintf(" (+%d past the cap)", st.LedgerDropped)
	}
	rows := [][2]string{
		{"router", router},
		{"seed", fmt.Sprint(seed)},
		{"elapsed", st.Elapsed.Round(time.Millisecond).String()},
		{"deliveries sent", fmt.Sprintf("%d (%.1f/s)", st.Sent, float64(st.Sent)/max(st.Elapsed.Seconds(), 0.001))},
		{"events in them", fmt.Sprint(st.Events)},
		{"resent (same delivery id)", fmt.Sprint(st.Duplicates)},
		{"bursts", fmt.Sprint(st.Bursts)},
		{"acknowledged (202)", fmt.Sprint(st.Acknowledged)},
		{"of which duplicates per the router", fmt.Sprint(st.Deduplicated)},
		{"refused", refused},
		{"retried (429 or no answer)", fmt.Sprint(st.Retried)},
		{"no answer", fmt.Sprint(st.Errors)},
		{"ledger (acknowledged events)", ledger},
	}
	if st.Dropped > 0 {
		detectable := 0
		for _, d := range st.DroppedChanges {
			if d.Detectable {
				detectable++
			}
		}
		rows = append(rows, [2]string{"dropped (never sent)", fmt.Sprintf("%d deliveries, %d events, %d of them detectable",
			st.Dropped, len(st.DroppedChanges)+st.DroppedChangesPast, detectable)})
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\n", r[0], r[1])
	}
	tw.Flush()

	ids := make([]string, 0, len(st.Partners))
	for id := range st.Partners {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PARTNER\tPSA\tSENT\tACKNOWLEDGED\tREFUSED\tNO ANSWER\tDROPPED")
	for _, id := range ids {
		p := st.Partners[id]
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%d\t%d\n", id, p.PSA, p.Sent, p.Acknowledged, p.Refused, p.Errors, p.Dropped)
	}
	tw.Flush()
}
