package main

import (
	"encoding/json"
	"io"
	"math"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A target held to a figure that measured nothing is missed, whatever the bound; the report
// says why, and the JSON holds null, not 0.
func TestATargetOnAFigureNotMeasuredIsMissed(t *testing.T) {
	var r Report
	r.atMost("s", "p99 of nothing", percentileIn(nil, 99, milliUnit), "ms", 100, "")
	r.atLeast("s", "ratio to nothing", ratio(measured(5), measured(0)), "", 0.9, "")
	r.atMost("s", "peak of one sample", peakPerSecond([]sample{{value: 3}}), "/s", 2500, "")
	r.atMost("s", "negative heap", heapPerApplication(memory{HeapAlloc: 1 << 20}, memory{HeapAlloc: 2 << 20}, 10), "KiB", 3, "")
	r.atMost("s", "per application of none", perItem(40, 0), "", 8, "")
	r.atMost("s", "NaN", measured(math.NaN()), "", 8, "")
	for _, f := range r.Figures {
		if f.Met == nil || *f.Met {
			t.Errorf("%s: met %v, want missed", f.Name, f.Met != nil && *f.Met)
		}
		if f.Value != nil || f.NotMeasured == "" {
			t.Errorf("%s: value %v, reason %q: want no value and a reason", f.Name, formatFigure(f), f.NotMeasured)
		}
	}
	if got := r.missed(); got != len(r.Figures) {
		t.Errorf("missed %d, want %d", got, len(r.Figures))
	}
	data, err := json.Marshal(r.Figures[0])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(data), `"value":null`) || !strings.Contains(string(data), `"not_measured":"p99 of no values"`) {
		t.Errorf("JSON %s: want a null value and the reason", data)
	}
	var table strings.Builder
	r.printTable(&table)
	if !strings.Contains(table.String(), "not measured: p99 of no values") {
		t.Errorf("the table does not say the figure was not measured:\n%s", table.String())
	}
}

func TestAMeasuredFigureMeetsOrMissesItsTarget(t *testing.T) {
	var r Report
	r.atMost("s", "within", measured(99), "ms", 100, "")
	r.atMost("s", "on the bound", measured(100), "ms", 100, "")
	r.atMost("s", "beyond", measured(101), "ms", 100, "")
	r.atLeast("s", "above", measured(0.95), "", 0.9, "")
	r.atMost("s", "zero 429s", increase([]sample{{value: 4}, {value: 4}}), "", 0, "")
	r.atMost("s", "some 429s", increase([]sample{{value: 4}, {value: 9}}), "", 0, "")
	r.add("s", "reference", 7, "", "")
	want := map[string]*bool{"within": ptr(true), "on the bound": ptr(true), "beyond": ptr(false), "above": ptr(true),
		"zero 429s": ptr(true), "some 429s": ptr(false), "reference": nil}
	for _, f := range r.Figures {
		switch w := want[f.Name]; {
		case w == nil && f.Met != nil, w != nil && (f.Met == nil || *f.Met != *w):
			t.Errorf("%s: met %v, want %v", f.Name, f.Met, w)
		}
	}
	if got := r.missed(); got != 2 {
		t.Errorf("missed %d, want 2", got)
	}
}

func ptr[T any](v T) *T { return &v }

func TestHeapPerApplication(t *testing.T) {
	empty := memory{HeapAlloc: 10 << 20}
	if got := heapPerApplication(memory{HeapAlloc: 10<<20 + 3<<20}, empty, 1024); !got.ok() || got.value != 3 {
		t.Errorf("3 MiB over 1,024 applications = %+v, want 3 KiB", got)
	}
	got := heapPerApplication(memory{HeapAlloc: 9 << 20}, empty, 1024)
	if got.ok() || !strings.Contains(got.missing, "below the heap with no application") {
		t.Errorf("a heap below its reference = %+v, want not measured", got)
	}
}

func TestRequireRefusesAnAbsentMetricFamily(t *testing.T) {
	families := metricFamilies{}
	if _, err := families.require("go_memstats_heap_alloc_bytes"); err == nil ||
		!strings.Contains(err.Error(), "go_memstats_heap_alloc_bytes is absent") {
		t.Errorf("require of an absent family: %v, want an error naming it", err)
	}
	if families.sum("go_memstats_heap_alloc_bytes", nil) != 0 {
		t.Error("sum of an absent family is not 0")
	}
}

func TestStrictFailsTheRunOnAMissedTarget(t *testing.T) {
	var met, missed Report
	met.atMost("s", "fine", measured(1), "", 2, "")
	missed.atMost("s", "fine", measured(1), "", 2, "")
	missed.atMost("s", "not measured", percentileIn(nil, 50, secondUnit), "s", 2, "")
	for _, c := range []struct {
		name   string
		rep    *Report
		strict bool
		want   int
	}{
		{"every target met", &met, true, 0},
		{"a miss without --strict prints and passes", &missed, false, 0},
		{"a miss with --strict fails", &missed, true, 1},
		{"a scenario that could not finish fails either way", &Report{Errors: []string{"3 reads: refused"}}, false, 1},
	} {
		if got := exitCode(0, c.rep, c.strict, io.Discard); got != c.want {
			t.Errorf("%s: exit code %d, want %d", c.name, got, c.want)
		}
	}
	s, err := parseSettings([]string{"--strict"})
	if err != nil || !s.strict {
		t.Errorf("--strict parsed as %+v, %v", s.strict, err)
	}
}

func TestTheReportIsWrittenWithNullForWhatWasNotMeasured(t *testing.T) {
	var r Report
	r.atMost("s", "p99", percentileIn(nil, 99, secondUnit), "s", 3, "")
	dir := t.TempDir()
	if _, err := r.write(dir); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join(dir, "latest.json"))
	if err != nil {
		t.Fatal(err)
	}
	var back Report
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if f := back.Figures[0]; f.Value != nil || *f.Met || f.NotMeasured == "" {
		t.Errorf("read back %+v", f)
	}
}
