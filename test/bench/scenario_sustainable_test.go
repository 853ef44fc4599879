package main

import (
	"strings"
	"testing"
	"time"
)

// step is a rate step whose creates all succeeded and whose applications are all final, with
// decision -> status delays of p99 (and faster).
func step(rate float64, p99 time.Duration) rateStep {
	n := 100
	delays := make([]time.Duration, n)
	for i := range delays {
		delays[i] = p99 / 2
	}
	// By nearest rank, the 99th percentile of 100 values is the 99th smallest.
	delays[n-2], delays[n-1] = p99, p99
	return rateStep{load: openLoopResult{Offered: rate, Scheduled: n, loadResult: loadResult{Done: n}}, toStatus: delays}
}

func TestSustainableRate(t *testing.T) {
	limit := 3 * time.Second
	dropped := step(100, time.Second)
	dropped.load.Done, dropped.load.Dropped = 90, 10
	notFinal := step(100, time.Second)
	notFinal.notFinal = 1
	cases := []struct {
		name  string
		steps []rateStep
		want  float64 // 0: not measured
	}{
		{"the highest rate within the limit", []rateStep{step(25, time.Second), step(50, 2*time.Second), step(100, 3*time.Second),
			step(200, 4*time.Second)}, 100},
		{"every rate sustained", []rateStep{step(25, time.Second), step(50, time.Second)}, 50},
		{"a rate carried above one that was not does not count", []rateStep{step(25, time.Second), step(50, 5*time.Second),
			step(100, time.Second)}, 25},
		{"creates dropped: not sustained", []rateStep{step(50, time.Second), dropped}, 50},
		{"an application not final: not sustained", []rateStep{step(50, time.Second), notFinal}, 50},
		{"not even the lowest", []rateStep{step(25, 4*time.Second)}, 0},
		{"no decision measured", []rateStep{{load: openLoopResult{Offered: 25, Scheduled: 10, loadResult: loadResult{Done: 10}}}}, 0},
		{"nothing offered", nil, 0},
	}
	for _, c := range cases {
		got := sustainableRate(c.steps, limit)
		switch {
		case c.want == 0 && got.ok():
			t.Errorf("%s: %v, want not measured", c.name, got.value)
		case c.want != 0 && (!got.ok() || got.value != c.want):
			t.Errorf("%s: %+v, want %v", c.name, got, c.want)
		}
	}
	if _, why := step(25, 4*time.Second).sustained(limit); !strings.Contains(why, "p99") {
		t.Errorf("a slow rate says %q, want the p99 named", why)
	}
}

func TestTheStepTableSaysWhyARateFailed(t *testing.T) {
	var out strings.Builder
	printSteps(&out, []rateStep{step(25, time.Second), step(50, 4*time.Second)}, 3*time.Second, measured(6.5))
	for _, want := range []string{"25/s", "yes", "50/s", "NO: decision -> status p99 4.000 s > 3s", "6.500 ms"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("the table lacks %q:\n%s", want, out.String())
		}
	}
}
