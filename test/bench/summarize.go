package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"text/tabwriter"
)

// minRuns is how many runs a headline figure is taken from: one run on a shared machine says
// little, the spread of three says how much to trust it.
const minRuns = 3

// summaryRow is one figure across runs.
type summaryRow struct {
	scenario, name, unit, target string
	// values are the measured values, one per run that measured it; notMeasured counts the runs
	// that reported it without a value, absent those that did not report it at all.
	values              []float64
	notMeasured, absent int
	// met counts the runs whose value met the target.
	met int
}

func (r summaryRow) min() float64 { return slices.Min(r.values) }
func (r summaryRow) max() float64 { return slices.Max(r.values) }

// median is the middle value, or the mean of the two middle ones.
func (r summaryRow) median() float64 {
	sorted := slices.Clone(r.values)
	slices.Sort(sorted)
	mid := len(sorted) / 2
	if len(sorted)%2 == 1 {
		return sorted[mid]
	}
	return (sorted[mid-1] + sorted[mid]) / 2
}

// summarize combines reports of the same scale: for each figure, in the order the runs report
// them, the values of the runs that measured it.
func summarize(reports []Report) ([]summaryRow, error) {
	if len(reports) == 0 {
		return nil, errors.New("no report to summarize")
	}
	for _, r := range reports[1:] {
		if r.Scale != reports[0].Scale {
			return nil, fmt.Errorf("the reports are of different scales (%s and %s): their figures are not comparable", reports[0].Scale, r.Scale)
		}
	}
	// A report may hold two figures of one name in one scenario (the CPU breakdowns of both sides
	// of scenario 2): the n-th of them is matched with the n-th of every other report.
	type figureKey struct {
		scenario, name string
		nth            int
	}
	index := map[figureKey]int{}
	rows := make([]summaryRow, 0, len(reports[0].Figures))
	for _, rep := range reports {
		seen := map[[2]string]int{}
		for _, f := range rep.Figures {
			key := figureKey{f.Scenario, f.Name, seen[[2]string{f.Scenario, f.Name}]}
			seen[[2]string{f.Scenario, f.Name}]++
			i, ok := index[key]
			if !ok {
				i = len(rows)
				index[key] = i
				rows = append(rows, summaryRow{scenario: f.Scenario, name: f.Name, unit: f.Unit, target: f.Target})
			}
			row := &rows[i]
			if f.Value == nil {
				row.notMeasured++
			} else {
				row.values = append(row.values, *f.Value)
			}
			if f.Met != nil && *f.Met {
				row.met++
			}
		}
	}
	for i := range rows {
		rows[i].absent = len(reports) - len(rows[i].values) - rows[i].notMeasured
	}
	return rows, nil
}

// printSummary writes the runs and, for each figure, min / median / max over the runs that
// measured it, and how many met its target.
func printSummary(w io.Writer, reports []Report, rows []summaryRow) {
	_, _ = fmt.Fprintf(w, "%d runs of scale %s:\n", len(reports), reports[0].Scale)
	for _, r := range reports {
		_, _ = fmt.Fprintf(w, "  %s to %s, load average %s at the start, %s at the end\n", r.StartedAt.Format("2006-01-02T15:04:05Z"),
			r.FinishedAt.Format("15:04:05Z"), r.Machine.LoadStart, r.Machine.LoadEnd)
	}
	if len(reports) < minRuns {
		_, _ = fmt.Fprintf(w, "NOTE: fewer than %d runs: a headline figure needs at least %d\n", minRuns, minRuns)
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintf(tw, "SCENARIO\tFIGURE\tMIN\tMEDIAN\tMAX\tRUNS\tTARGET\tMET\n")
	for _, row := range rows {
		lo, mid, hi := "-", "-", "-"
		if len(row.values) > 0 {
			lo, mid, hi = withUnit(row.min(), row.unit), withUnit(row.median(), row.unit), withUnit(row.max(), row.unit)
		}
		runs := strconv.Itoa(len(row.values))
		if row.notMeasured > 0 {
			runs += fmt.Sprintf(" (+%d not measured)", row.notMeasured)
		}
		if row.absent > 0 {
			runs += fmt.Sprintf(" (+%d absent)", row.absent)
		}
		target, met := "-", "-"
		if row.target != "" {
			target, met = row.target, fmt.Sprintf("%d of %d", row.met, len(reports))
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", row.scenario, row.name, lo, mid, hi, runs, target, met)
	}
	_ = tw.Flush()
}

func withUnit(v float64, unit string) string {
	switch {
	case unit == yesNoUnit && (v == 0 || v == 1):
		return map[bool]string{true: yes, false: no}[v == 1]
	case unit == yesNoUnit:
		return "mixed"
	case unit == "":
		return formatValue(v)
	}
	return formatValue(v) + " " + unit
}

// readReports reads the JSON reports the runs wrote.
func readReports(paths []string) ([]Report, error) {
	reports := make([]Report, 0, len(paths))
	for _, p := range paths {
		data, err := os.ReadFile(p)
		if err != nil {
			return nil, err
		}
		var r Report
		if err := json.Unmarshal(data, &r); err != nil {
			return nil, fmt.Errorf("%s: %w", p, err)
		}
		reports = append(reports, r)
	}
	return reports, nil
}

// runSummarize is `bench summarize REPORT.json...`.
func runSummarize(paths []string, stdout, stderr io.Writer) int {
	if len(paths) == 0 {
		_, _ = fmt.Fprintln(stderr, "usage: bench summarize REPORT.json... (the runs' <out>/<timestamp>.json files)")
		return 2
	}
	reports, err := readReports(paths)
	if err == nil {
		var rows []summaryRow
		if rows, err = summarize(reports); err == nil {
			printSummary(stdout, reports, rows)
			return 0
		}
	}
	_, _ = fmt.Fprintln(stderr, "bench summarize:", err)
	return 1
}
