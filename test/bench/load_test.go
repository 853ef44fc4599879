package main

import (
	"context"
	"errors"
	"math"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(values ...int) []time.Duration {
		out := make([]time.Duration, 0, len(values))
		for _, v := range values {
			out = append(out, time.Duration(v)*time.Millisecond)
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = 100 - i // 100..1, unsorted on purpose
	}
	cases := []struct {
		name string
		in   []time.Duration
		p    float64
		want time.Duration
	}{
		{"one value is every percentile", ms(7), 99, 7 * time.Millisecond},
		{"the median of 1..100 is 50 by nearest rank", ms(hundred...), 50, 50 * time.Millisecond},
		{"the 99th of 1..100 is 99", ms(hundred...), 99, 99 * time.Millisecond},
		{"the 100th is the maximum", ms(3, 1, 2), 100, 3 * time.Millisecond},
	}
	for _, c := range cases {
		if got, ok := percentile(c.in, c.p); !ok || got != c.want {
			t.Errorf("%s: percentile(%v, %v) = %v, %v, want %v", c.name, c.in, c.p, got, ok, c.want)
		}
	}
	if got, ok := percentile(nil, 50); ok {
		t.Errorf("the median of no values is %v: it must be not measured", got)
	}
	if got := percentileIn(ms(1500), 50, secondUnit); !got.ok() || got.value != 1.5 {
		t.Errorf("percentileIn(1.5 s) in seconds = %+v, want 1.5", got)
	}
	if got := percentileIn(nil, 99, milliUnit); got.ok() || !strings.Contains(got.missing, "p99 of no values") {
		t.Errorf("percentileIn of no values = %+v, want not measured with its reason", got)
	}
}

func TestPeakRate(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int, v float64) sample {
		return sample{at: t0.Add(time.Duration(ms) * time.Millisecond), value: v}
	}
	cases := []struct {
		name    string
		samples []sample
		want    float64
	}{
		{"a steady 100 per second", []sample{at(0, 0), at(500, 50), at(1000, 100), at(1500, 150)}, 100},
		{"a burst of 900 within one second shows as 900 per second",
			[]sample{at(0, 0), at(100, 0), at(1100, 900), at(2100, 950)}, 900},
		{"windows shorter than a second are not counted alone",
			[]sample{at(0, 0), at(100, 500), at(1000, 500)}, 500},
		{"a counter that did not move has a rate of 0", []sample{at(0, 7), at(1000, 7)}, 0},
	}
	for _, c := range cases {
		if got := peakRate(c.samples, time.Second); !got.ok() || math.Abs(got.value-c.want) > 1e-9 {
			t.Errorf("%s: peakRate = %+v, want %v", c.name, got, c.want)
		}
	}
	for _, c := range []struct {
		name    string
		samples []sample
		reason  string
	}{
		{"no sample", nil, "0 samples: a rate needs two"},
		{"one sample", []sample{at(0, 5)}, "1 samples: a rate needs two"},
		{"samples over less than one window", []sample{at(0, 0), at(300, 100), at(600, 400)}, "less than one 1s window"},
	} {
		if got := peakRate(c.samples, time.Second); got.ok() || !strings.Contains(got.missing, c.reason) {
			t.Errorf("%s: peakRate = %+v, want not measured: %q", c.name, got, c.reason)
		}
	}
}

func TestRunLoadIsBoundedInCountAndTime(t *testing.T) {
	var calls atomic.Int64
	res := runLoad(context.Background(), 50, 4, time.Minute, func(context.Context, int) error {
		calls.Add(1)
		return nil
	})
	if res.Done != 50 || calls.Load() != 50 || res.FirstErr != nil {
		t.Fatalf("50 calls: done %d, made %d, err %v", res.Done, calls.Load(), res.FirstErr)
	}

	slow := runLoad(context.Background(), 1000, 2, 50*time.Millisecond, func(ctx context.Context, _ int) error {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
			return nil
		}
	})
	if slow.Done >= 1000 || slow.FirstErr == nil {
		t.Fatalf("a load past its time bound must stop early and say so: done %d, err %v", slow.Done, slow.FirstErr)
	}

	failing := runLoad(context.Background(), 10, 3, time.Minute, func(context.Context, int) error { return errors.New("refused") })
	if failing.Failed != 10 || failing.Done != 0 || failing.FirstErr == nil {
		t.Fatalf("failed calls must be counted apart: %+v", failing)
	}
}
