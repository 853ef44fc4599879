package main

import (
	"math"
	"testing"
	"time"
)

func TestLessIdle(t *testing.T) {
	cases := []struct {
		name       string
		busy, idle busyCPU
		want       float64 // NaN: not measured
	}{
		{"idle over as long is subtracted", busyCPU{10, 30 * time.Second}, busyCPU{1.5, 30 * time.Second}, 8.5},
		{"idle over half as long counts twice", busyCPU{10, 60 * time.Second}, busyCPU{1.5, 30 * time.Second}, 7},
		{"idle over twice as long counts half", busyCPU{10, 30 * time.Second}, busyCPU{3, 60 * time.Second}, 8.5},
		{"no idle window measures nothing", busyCPU{10, 30 * time.Second}, busyCPU{}, math.NaN()},
		{"busy below idle measures nothing", busyCPU{1, 30 * time.Second}, busyCPU{2, 30 * time.Second}, math.NaN()},
	}
	for _, c := range cases {
		got := lessIdle(c.busy, c.idle)
		switch {
		case math.IsNaN(c.want) && got.ok():
			t.Errorf("%s: %v, want not measured", c.name, got.value)
		case !math.IsNaN(c.want) && (!got.ok() || math.Abs(got.value-c.want) > 1e-9):
			t.Errorf("%s: %+v, want %v", c.name, got, c.want)
		}
	}
	got := apiServerCPUPer(busyCPU{10, 30 * time.Second}, busyCPU{1.5, 30 * time.Second}, 1000)
	if !got.ok() || math.Abs(got.value-8.5) > 1e-9 {
		t.Errorf("8.5 s over 1,000 applications: %+v, want 8.5 ms each", got)
	}
}
