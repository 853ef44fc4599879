package main

import (
	"encoding/json"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
)

// Figure is one measured value, with the target it is held to when the project sets one
// (docs/benchmarks.md lists the targets).
type Figure struct {
	// Scenario is the number and name of the scenario it belongs to ("1 end to end").
	Scenario string `json:"scenario"`
	// Name says what was measured; Unit how Value reads.
	Name string `json:"name"`
	// Value is null when nothing was measured; NotMeasured says why.
	Value       *float64 `json:"value"`
	NotMeasured string   `json:"not_measured,omitempty"`
	Unit        string   `json:"unit"`
	// Target is the bound in words ("<= 35 s"); empty for a figure reported for reference.
	Target string `json:"target,omitempty"`
	// Met is whether Value is within Target; nil when there is no target. A target held to a
	// figure that was not measured is missed.
	Met *bool `json:"met,omitempty"`
	// Note says how it was measured when the name alone does not.
	Note string `json:"note,omitempty"`
}

// Report is everything one run measured, written as JSON so that runs can be compared.
type Report struct {
	Scale      string    `json:"scale"`
	StartedAt  time.Time `json:"started_at"`
	FinishedAt time.Time `json:"finished_at"`
	Machine    Machine   `json:"machine"`
	Figures    []Figure  `json:"figures"`
	// Errors are the scenarios that could not finish, with why; their figures are missing.
	Errors []string `json:"errors,omitempty"`
}

// Machine describes where the run happened: figures mean little without it.
type Machine struct {
	CPUs        int    `json:"cpus"`
	CPUModel    string `json:"cpu_model"`
	MemoryBytes int64  `json:"memory_bytes"`
	Kernel      string `json:"kernel"`
	GoVersion   string `json:"go_version"`
	// LoadStart and LoadEnd are /proc/loadavg at the start and the end: other work on a shared
	// machine shows there.
	LoadStart string `json:"load_start"`
	LoadEnd   string `json:"load_end,omitempty"`
}

// add records a figure for reference, without a target.
func (r *Report) add(scenario, name string, value float64, unit, note string) {
	r.addReading(scenario, name, measured(value), unit, note)
}

// addReading records a reading for reference, without a target.
func (r *Report) addReading(scenario, name string, v reading, unit, note string) {
	r.Figures = append(r.Figures, newFigure(scenario, name, v, unit, note))
}

// atMost records a figure held to value <= limit.
func (r *Report) atMost(scenario, name string, v reading, unit string, limit float64, note string) {
	f := newFigure(scenario, name, v, unit, note)
	met := v.ok() && v.value <= limit
	f.Target, f.Met = "<= "+formatValue(limit), &met
	r.Figures = append(r.Figures, f)
}

// atLeast records a figure held to value >= limit.
func (r *Report) atLeast(scenario, name string, v reading, unit string, limit float64, note string) {
	f := newFigure(scenario, name, v, unit, note)
	met := v.ok() && v.value >= limit
	f.Target, f.Met = ">= "+formatValue(limit), &met
	r.Figures = append(r.Figures, f)
}

func newFigure(scenario, name string, v reading, unit, note string) Figure {
	f := Figure{Scenario: scenario, Name: name, Unit: unit, Note: note, NotMeasured: v.missing}
	if v.ok() {
		f.Value = &v.value
	}
	return f
}

// Words of yes/no figures in the table, and their unit.
const (
	yes       = "yes"
	no        = "no"
	yesNoUnit = "yes/no"
)

// check records a yes/no figure that must hold (1 for yes, 0 for no).
func (r *Report) check(scenario, name string, ok bool, note string) {
	value := 0.0
	if ok {
		value = 1
	}
	r.Figures = append(r.Figures, Figure{Scenario: scenario, Name: name, Value: &value, Unit: yesNoUnit,
		Target: yes, Met: &ok, Note: note})
}

// missed counts the targets missed (a figure not measured included) and the scenarios that
// could not finish: what --strict turns into a failed run.
func (r *Report) missed() int {
	n := len(r.Errors)
	for _, f := range r.Figures {
		if f.Met != nil && !*f.Met {
			n++
		}
	}
	return n
}

func (r *Report) fail(scenario string, err error) {
	r.Errors = append(r.Errors, scenario+": "+err.Error())
}

// printTable writes the figures as an aligned table, then the errors.
func (r *Report) printTable(w io.Writer) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintf(tw, "SCENARIO\tFIGURE\tVALUE\tTARGET\tMET\n")
	for _, f := range r.Figures {
		value := formatFigure(f)
		met := "-"
		if f.Met != nil {
			met = map[bool]string{true: yes, false: "NO"}[*f.Met]
		}
		target := f.Target
		if target == "" {
			target = "-"
		}
		_, _ = fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f.Scenario, f.Name, value, target, met)
	}
	_ = tw.Flush()
	for _, e := range r.Errors {
		_, _ = fmt.Fprintln(w, "NOT MEASURED:", e)
	}
}

// write saves the report as outDir/<timestamp>.json and outDir/latest.json.
func (r *Report) write(outDir string) (string, error) {
	if err := os.MkdirAll(outDir, 0o755); err != nil {
		return "", err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	path := filepath.Join(outDir, r.StartedAt.UTC().Format("20060102T150405Z")+".json")
	for _, p := range []string{path, filepath.Join(outDir, "latest.json")} {
		if err := os.WriteFile(p, append(data, '\n'), 0o644); err != nil {
			return "", err
		}
	}
	return path, nil
}

// formatFigure prints a figure's value with its unit, or why it was not measured.
func formatFigure(f Figure) string {
	switch {
	case f.Value == nil:
		return "not measured: " + f.NotMeasured
	case f.Unit == yesNoUnit:
		return map[bool]string{true: yes, false: no}[*f.Value == 1]
	case f.Unit != "":
		return formatValue(*f.Value) + " " + f.Unit
	}
	return formatValue(*f.Value)
}

// formatValue prints up to three significant decimals, without trailing zeros.
func formatValue(v float64) string {
	switch {
	case math.IsNaN(v):
		return "n/a"
	case math.Abs(v) >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case math.Abs(v) >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	default:
		return strconv.FormatFloat(v, 'f', 3, 64)
	}
}

// describeMachine reads the facts of this machine from /proc.
func describeMachine() Machine {
	m := Machine{CPUs: runtime.NumCPU(), GoVersion: runtime.Version(), LoadStart: loadAverage()}
	if data, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(data))
	}
	if data, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		m.CPUModel = procField(string(data), "model name")
	}
	if data, err := os.ReadFile("/proc/meminfo"); err == nil {
		kib, _ := strconv.ParseInt(strings.TrimSuffix(procField(string(data), "MemTotal"), " kB"), 10, 64)
		m.MemoryBytes = kib << 10
	}
	return m
}

func loadAverage() string {
	data, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	fields := strings.Fields(string(data))
	if len(fields) < 3 {
		return ""
	}
	return strings.Join(fields[:3], " ")
}

// procField is the value of the first "key: value" line of a /proc file with that key.
func procField(text, key string) string {
	for line := range strings.SplitSeq(text, "\n") {
		name, value, ok := strings.Cut(line, ":")
		if ok && strings.TrimSpace(name) == key {
			return strings.TrimSpace(value)
		}
	}
	return ""
}
