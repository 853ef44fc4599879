package main

import (
	"fmt"
	"math"
	"time"
)

// reading is a measured value, or the reason nothing was measured. A percentile of no values, a
// rate from fewer than two samples, a metric family a program did not export or a heap smaller
// than its own reference measure nothing: reported as 0 they would read as "instant", "idle" or
// "free" and meet their targets by accident. The report shows such a figure as not measured,
// and a target it was held to as missed.
type reading struct {
	value float64
	// missing says why there is no value; empty when there is one.
	missing string
}

func measured(v float64) reading {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return notMeasured("the value is %v", v)
	}
	return reading{value: v}
}

func notMeasured(format string, args ...any) reading {
	return reading{missing: fmt.Sprintf(format, args...)}
}

// ok tells whether there is a value.
func (r reading) ok() bool { return r.missing == "" }

// then applies f to a measured value; a reading of nothing stays one.
func (r reading) then(f func(float64) float64) reading {
	if !r.ok() {
		return r
	}
	return measured(f(r.value))
}

// minus is r - o, measured only when both are.
func (r reading) minus(o reading) reading {
	if !o.ok() {
		return o
	}
	return r.then(func(v float64) float64 { return v - o.value })
}

// ratio is a / b, measured only when both are and b is not 0.
func ratio(a, b reading) reading {
	switch {
	case !a.ok():
		return a
	case !b.ok():
		return b
	case b.value == 0:
		return notMeasured("a ratio to 0")
	}
	return measured(a.value / b.value)
}

// perItem is total / n, measured only when n is positive.
func perItem(total float64, n int) reading {
	if n <= 0 {
		return notMeasured("no item to divide by")
	}
	return measured(total / float64(n))
}

// Units of the readings built from durations.
const (
	secondUnit = time.Second
	milliUnit  = time.Millisecond
)

// percentileIn is the p-th percentile of the durations in unit, or not measured when there are
// none.
func percentileIn(durations []time.Duration, p float64, unit time.Duration) reading {
	d, ok := percentile(durations, p)
	if !ok {
		return notMeasured("p%v of no values", p)
	}
	return measured(float64(d) / float64(unit))
}
