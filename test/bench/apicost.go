package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// apiServerProcess is the API server's name in CPU accounts (devenv's process name).
const apiServerProcess = "kube-apiserver"

// apiServerCPUTarget is the most kube-apiserver CPU one application may cost, from its create to
// its final status, in ms.
const apiServerCPUTarget = 8.0

// busyCPU is the CPU one process used over a window of wall time.
type busyCPU struct {
	seconds float64
	window  time.Duration
}

// idleCPU is what a process uses with no work to do, measured over a window of its own: the
// API server's lease, flow-control and compaction loops, the programs' leader elections.
type idleCPU = busyCPU

// lessIdle is the CPU of a busy window less what the process uses idle over as long a window,
// in seconds: the part the work itself cost. An idle rate never measured, or a busy window
// below it (the idle window had work in it, or the clock ticks are too coarse for so short a
// window), measures nothing.
func lessIdle(busy busyCPU, idle idleCPU) reading {
	switch {
	case idle.window <= 0:
		return notMeasured("no idle window was measured")
	case busy.window <= 0:
		return notMeasured("no busy window was measured")
	}
	net := busy.seconds - idle.seconds*float64(busy.window)/float64(idle.window)
	if net < 0 {
		return notMeasured("the busy window used %.2f s of CPU, less than idle over as long (%.2f s in %s)",
			busy.seconds, idle.seconds, idle.window.Round(time.Second))
	}
	return measured(net)
}

// apiServerCPUPer is the API server's CPU per item in ms, less its idle CPU.
func apiServerCPUPer(busy busyCPU, idle idleCPU, items int) reading {
	net := lessIdle(busy, idle)
	if !net.ok() {
		return net
	}
	return perItem(1000*net.value, items)
}

// measureIdle waits `window` with nothing asked of the system and answers the API server's CPU
// over it. Nothing scrapes the API server meanwhile (its /metrics is expensive to render).
func (b *bench) measureIdle(ctx context.Context, window time.Duration) (idleCPU, error) {
	before := b.sys.takeCPU()
	started := time.Now()
	select {
	case <-ctx.Done():
		return idleCPU{}, ctx.Err()
	case <-time.After(window):
	}
	return idleCPU{seconds: b.sys.takeCPU().since(before)[apiServerProcess], window: time.Since(started)}, nil
}

// apiServerProfileFile is where scenario 1's CPU profile of the API server goes in the out dir.
const apiServerProfileFile = "kube-apiserver-scenario-1.pprof"

// profileAPIServerInto fetches a Go CPU profile of the API server over the next `length` into
// path (it serves /debug/pprof to the administrator the benchmark runs as); the channel answers
// once the profile is written, with the error if it could not be.
func (b *bench) profileAPIServerInto(ctx context.Context, path string, length time.Duration) <-chan error {
	done := make(chan error, 1)
	secs := max(int(length.Seconds()), 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, time.Duration(secs+30)*time.Second)
		defer cancel()
		data, err := b.sys.apiRead(ctx, "/debug/pprof/profile?seconds="+strconv.Itoa(secs))
		if err == nil {
			err = os.MkdirAll(filepath.Dir(path), 0o755)
		}
		if err == nil {
			err = os.WriteFile(path, data, 0o644)
		}
		done <- err
	}()
	return done
}

// reportAPIServerCPU adds scenario 1's headline figure: the API server's CPU per application
// from its create to its final status, less its idle CPU, beside the raw write floor.
func (b *bench) reportAPIServerCPU(busy busyCPU, idle idleCPU, n int, more string) {
	sc := scenarioEndToEnd
	note := fmt.Sprintf("kube-apiserver user + system CPU from /proc over the scenario (%s, no scrape of its /metrics in it, "+
		"its own CPU profile running), less its idle CPU measured over %s in the same run (%.1f ms/s); %s",
		busy.window.Round(100*time.Millisecond), idle.window.Round(100*time.Millisecond), idleRate(idle), more)
	b.rep.atMost(sc, "kube-apiserver CPU per application", apiServerCPUPer(busy, idle, n), "ms", apiServerCPUTarget, note)
	b.rep.addReading(sc, "  before subtracting idle", perItem(1000*busy.seconds, n), "ms", "")
	b.reportFloor(sc, idle)
}

// idleRate is the idle CPU in ms per second of wall time.
func idleRate(idle idleCPU) float64 {
	if idle.window <= 0 {
		return 0
	}
	return 1000 * idle.seconds / idle.window.Seconds()
}
