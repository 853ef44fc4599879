package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func figure(scenario, name string, value *float64, target string, met *bool) Figure {
	f := Figure{Scenario: scenario, Name: name, Value: value, Unit: "ms", Target: target, Met: met}
	if value == nil {
		f.NotMeasured = "why"
	}
	return f
}

func reportOf(load string, figures ...Figure) Report {
	return Report{Scale: "quick", StartedAt: time.Date(2026, 11, 30, 17, 0, 0, 0, time.UTC), Machine: Machine{LoadStart: load},
		Figures: figures}
}

func TestSummarizeTakesMinMedianMaxOfTheRunsThatMeasured(t *testing.T) {
	reports := []Report{
		reportOf("1.0", figure("1", "cpu", ptr(9.0), "<= 8", ptr(false)), figure("1", "p99", ptr(2.0), "", nil)),
		reportOf("2.0", figure("1", "cpu", ptr(7.0), "<= 8", ptr(true)), figure("1", "p99", nil, "", nil)),
		reportOf("3.0", figure("1", "cpu", ptr(7.5), "<= 8", ptr(true)), figure("1", "p99", ptr(4.0), "", nil),
			figure("7", "sustainable rate", ptr(100.0), ">= 120", ptr(false))),
	}
	rows, err := summarize(reports)
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 3 {
		t.Fatalf("%d rows, want 3: %+v", len(rows), rows)
	}
	cpu, p99, rate := rows[0], rows[1], rows[2]
	if cpu.min() != 7 || cpu.median() != 7.5 || cpu.max() != 9 || cpu.met != 2 {
		t.Errorf("cpu: min %v median %v max %v met %d; want 7, 7.5, 9, 2", cpu.min(), cpu.median(), cpu.max(), cpu.met)
	}
	// Two values: the median is their mean; the run without a value is counted apart.
	if p99.median() != 3 || len(p99.values) != 2 || p99.notMeasured != 1 {
		t.Errorf("p99: median %v of %v, %d not measured; want 3 of two, 1", p99.median(), p99.values, p99.notMeasured)
	}
	if rate.absent != 2 || len(rate.values) != 1 {
		t.Errorf("a figure of one run: %d values, %d absent; want 1, 2", len(rate.values), rate.absent)
	}
	var out strings.Builder
	printSummary(&out, reports, rows)
	for _, want := range []string{"3 runs of scale quick", "load average 2.0", "7.000 ms", "7.500 ms", "9.000 ms", "2 of 3",
		"2 (+1 not measured)", "1 (+2 absent)"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the summary lacks %q:\n%s", want, out.String())
		}
	}
	if strings.Contains(out.String(), "fewer than") {
		t.Errorf("three runs are enough:\n%s", out.String())
	}
}

// Scenario 2 reports "  of which kube-apiserver" for each side: the sides stay apart.
func TestSummarizeKeepsFiguresOfOneNameApart(t *testing.T) {
	side := func(gateway, direct float64) Report {
		return reportOf("1", figure("2", "  of which kube-apiserver", ptr(gateway), "", nil),
			figure("2", "  of which kube-apiserver", ptr(direct), "", nil))
	}
	rows, err := summarize([]Report{side(1.5, 1.7), side(2.1, 2.3)})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 2 || rows[0].max() != 2.1 || rows[1].min() != 1.7 {
		t.Errorf("want two rows, gateway 1.5-2.1 and direct 1.7-2.3: %+v", rows)
	}
}

func TestSummarizeShowsYesAndNo(t *testing.T) {
	for v, want := range map[float64]string{1: "yes", 0: "no", 0.5: "mixed"} {
		if got := withUnit(v, yesNoUnit); got != want {
			t.Errorf("%v: %q, want %q", v, got, want)
		}
	}
}

func TestSummarizeRefusesMixedScalesAndNothing(t *testing.T) {
	full := reportOf("1")
	full.Scale = "full"
	if _, err := summarize([]Report{reportOf("1"), full}); err == nil {
		t.Error("quick and full runs were combined")
	}
	if _, err := summarize(nil); err == nil {
		t.Error("no report summarized to something")
	}
}

func TestSummarizeCommandReadsTheRunsFiles(t *testing.T) {
	dir := t.TempDir()
	paths := make([]string, 0, 3)
	for i, v := range []float64{3, 1, 2} {
		data, err := json.Marshal(reportOf("0.5", figure("1", "kube-apiserver CPU per application", ptr(v), "<= 8", ptr(true))))
		if err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(dir, string(rune('a'+i))+".json")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	var stdout, stderr strings.Builder
	if code := runSummarize(paths, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	if !strings.Contains(stdout.String(), "1.000 ms  2.000 ms  3.000 ms") {
		t.Errorf("want min 1, median 2, max 3:\n%s", stdout.String())
	}
	if code := runSummarize([]string{filepath.Join(dir, "missing.json")}, &stdout, &stderr); code == 0 {
		t.Error("a missing report was summarized")
	}
	if code := runSummarize(nil, &stdout, &stderr); code != 2 {
		t.Errorf("no argument: exit %d, want 2 (usage)", code)
	}
}
