package webui

import (
	"strconv"

	"github.com/switchbackhq/switchback/internal/gate"
)

// gateTable is a gate report laid out as a table: one row per partner, one
// column per check.
type gateTable struct {
	Verdict gate.Verdict
	Checks  []string // column names, in the report's order
	Rows    []gateRow
}

type gateRow struct {
	Partner string
	Verdict gate.Verdict
	Cells   []checkCell
}

// checkCell is one check of one partner: the value measured against the
// limit, with the comparison spelled out so that the cell reads without
// colour.
type checkCell struct {
	Name    string
	Verdict gate.Verdict
	Value   string
	Op      string
	Limit   string
	Detail  string
}

func newGateTable(r gate.Report) gateTable {
	t := gateTable{Verdict: r.Verdict}
	for i, p := range r.Partners {
		row := gateRow{Partner: p.Partner, Verdict: p.Verdict}
		for _, c := range p.Checks {
			if i == 0 {
				t.Checks = append(t.Checks, c.Name)
			}
			row.Cells = append(row.Cells, newCheckCell(c))
		}
		t.Rows = append(t.Rows, row)
	}
	return t
}

// newCheckCell formats a check after its setting's unit: counts, rates or
// seconds.
func newCheckCell(c gate.Check) checkCell {
	cell := checkCell{Name: c.Name, Verdict: c.Verdict}
	if c.Verdict != gate.Pass {
		// A failing check says why, and a waiting one what it waits for;
		// a passing one needs no more than its value and limit (the
		// column heading explains the measure).
		cell.Detail = c.Detail
	}
	count := func(v float64) string { return formatCount(int64(v)) }
	switch c.Name {
	case "minComparisons", "minPerEventType":
		cell.Value, cell.Op, cell.Limit = count(c.Value), "≥", count(c.Limit)
	case "maxMismatchRate", "maxErrorRate":
		cell.Value, cell.Op, cell.Limit = formatRate(c.Value), "≤", formatRate(c.Limit)
	case "minCoverage":
		cell.Value, cell.Op, cell.Limit = formatRate(c.Value), "≥", formatRate(c.Limit)
	case "zeroTolerance":
		cell.Value, cell.Op, cell.Limit = count(c.Value)+" found", "·", count(c.Limit)+" allowed"
	case "minBakeSeconds":
		cell.Value, cell.Op, cell.Limit = formatSeconds(c.Value), "≥", formatSeconds(c.Limit)
	default:
		cell.Value, cell.Op, cell.Limit = strconv.FormatFloat(c.Value, 'g', 4, 64), "vs", strconv.FormatFloat(c.Limit, 'g', 4, 64)
	}
	return cell
}

// checkLabels are the column headings of the gate checks.
var checkLabels = map[string]string{
	"minComparisons":  "Comparisons",
	"maxMismatchRate": "Mismatch rate (95% upper bound)",
	"zeroTolerance":   "Zero-tolerance mismatches",
	"minBakeSeconds":  "Bake time",
	"maxErrorRate":    "New pipeline error rate",
	"minCoverage":     "Coverage",
	"minPerEventType": "Comparisons per event type",
}

func checkLabel(name string) string {
	if l, ok := checkLabels[name]; ok {
		return l
	}
	return name
}
