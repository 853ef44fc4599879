/*
Copyright 2026 The loan-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

// Command bench is `make bench` and `make bench-quick`: the scale benchmarks. It
// starts its own etcd, kube-apiserver, bank simulator, controller and gateway on loopback
// (internal/devenv, as `make dev` does), runs the seven scenarios in an order that reuses the
// applications one scenario leaves for the next, prints a table of every figure against its
// target and writes the figures as JSON to <out>/<timestamp>.json and <out>/latest.json.
// `bench summarize REPORT.json...` combines the reports of several runs: min, median and max of
// each figure.
//
// Every figure is measured in the same run as its reference (the machine is shared and noisy:
// ratios matter more than absolute times), and every load is bounded in count and time.
// docs/benchmarks.md describes the method and the latest figures.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/lendo/loan-operator/internal/devenv"
)

// scale is the size of one run.
type scale struct {
	name string
	// apps is the number of applications of scenarios 1 and 5, and the smaller level of 3 and 4.
	apps int
	// large is the larger level of scenarios 3 and 4.
	large int
	// compare is the number of creates on each side of scenario 2.
	compare int
	// concurrency is the number of clients creating at once, where a scenario runs a closed loop.
	concurrency int
	// arrivalRate is scenario 1's open-loop arrival rate, applications per second (--rate).
	arrivalRate float64
	// stepRates and stepLength are the rising rates of the sustainable-rate scenario and how long
	// each is offered.
	stepRates  []float64
	stepLength time.Duration
	// floorObjects is how many objects the raw write floor writes.
	floorObjects int
	// idleWindow bounds the wait that measures the API server's idle CPU after scenario 1 (the
	// idle rate is scaled to the scenario's window): a quick run cannot spare half a minute.
	idleWindow time.Duration
	// listReps and getReps are how many reads of each kind each side of scenario 3 makes.
	listReps, getReps int
	// timeout bounds the whole run.
	timeout time.Duration
}

var scales = map[string]scale{
	"quick": {name: "quick", apps: 1_000, large: 10_000, compare: 1_000, concurrency: 64,
		arrivalRate: quickArrivalRate, stepRates: quickSustainableRates, stepLength: 10 * time.Second, floorObjects: 500,
		idleWindow: 10 * time.Second, listReps: 40, getReps: 300, timeout: 15 * time.Minute},
	"full": {name: "full", apps: 10_000, large: 100_000, compare: 10_000, concurrency: 64,
		arrivalRate: fullArrivalRate, stepRates: sustainableRates, stepLength: 2 * time.Minute, floorObjects: 2_000,
		idleWindow: time.Minute, listReps: 100, getReps: 1_000, timeout: 60 * time.Minute},
}

// Scenario 1's arrival rates. The full run's is one this 2-core machine carries for the 200 s
// its 10,000 applications take to arrive (scenario 7 measures where that ends: between 50/s and
// 100/s), so that scenario 1 measures the system working, not overloaded: at 100/s the gateway
// sheds a fifth of the creates with 429, as it must. The quick run's 1,000 applications at
// 100/s are a burst of 10 s, shorter than the bank's assessment, which the system absorbs.
const (
	fullArrivalRate  = 50.0
	quickArrivalRate = 100.0
)

// sustainableRates are the rates the sustainable-rate scenario offers, in turn.
var sustainableRates = []float64{25, 50, 100, 200}

// quickSustainableRates leave out 25/s and 50/s, which a system that carries 100/s carries too:
// each rate costs a quick run its length and the bank's 20 s for its last decision.
var quickSustainableRates = []float64{100, 200}

// settings are the program's flags.
type settings struct {
	scale         scale
	outDir        string
	devDir        string
	repoDir       string
	unsafeNoFsync bool
	verbose       bool
	perfDir       string
	strict        bool
	only          string
}

func parseSettings(args []string) (settings, error) {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	var s settings
	name := fs.String("scale", "quick", "quick (1,000 applications, a few minutes) or full (10,000 and 100,000).")
	fs.StringVar(&s.outDir, "out", "bin/bench", "Folder of the JSON reports.")
	fs.StringVar(&s.devDir, "dev-dir", "", "Folder of the stack's data and logs (default: <out>/stack, emptied first).")
	fs.StringVar(&s.repoDir, "repo-dir", ".", "The repository: config/dev and bin/ with the built programs.")
	fs.BoolVar(&s.unsafeNoFsync, "unsafe-no-fsync", false,
		"Run etcd without fsync (faster, as envtest does; the default keeps fsync on, as a real etcd).")
	fs.BoolVar(&s.verbose, "v", false, "Print the stack's start and stop steps.")
	fs.BoolVar(&s.strict, "strict", false, "Exit non-zero when a target is missed or a figure with a target was not measured "+
		"(the default prints every figure and fails only when a scenario could not finish).")
	fs.StringVar(&s.perfDir, "perf-dir", "",
		"Record CPU profiles (perf record) of kube-apiserver, etcd, the gateway and the controller during each step, into this folder.")
	fs.StringVar(&s.only, "only", "", `Run only the steps of these names, comma-separated, in the run's order (for example `+
		`"6 waiters and streams", or "clean up scenario 2,1 end to end": scenario 1 needs the watch the clean-up starts).`)
	rate := fs.Float64("rate", 0, fmt.Sprintf("Scenario 1's arrival rate, applications per second (open loop; default %v quick, %v full).",
		quickArrivalRate, fullArrivalRate))
	if err := fs.Parse(args); err != nil {
		return s, err
	}
	sc, ok := scales[*name]
	if !ok {
		return s, fmt.Errorf("--scale must be quick or full, got %q", *name)
	}
	switch {
	case *rate < 0:
		return s, fmt.Errorf("--rate must be positive, got %v", *rate)
	case *rate > 0:
		sc.arrivalRate = *rate
	}
	s.scale = sc
	if s.devDir == "" {
		s.devDir = filepath.Join(s.outDir, "stack")
	}
	return s, nil
}

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	if len(args) > 0 && args[0] == "summarize" {
		return runSummarize(args[1:], os.Stdout, os.Stderr)
	}
	s, err := parseSettings(args)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		return 2
	}
	// The benchmark's own watch logs nothing worth reading among the figures.
	ctrllog.SetLogger(logr.Discard())
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	ctx, cancelTimeout := context.WithTimeout(ctx, s.scale.timeout)
	defer cancelTimeout()

	rep := &Report{Scale: s.scale.name, StartedAt: time.Now().UTC(), Machine: describeMachine()}
	code := 0
	if err := runScenarios(ctx, s, rep); err != nil {
		rep.fail("run", err)
		code = 1
	}
	rep.FinishedAt = time.Now().UTC()
	rep.Machine.LoadEnd = loadAverage()
	fmt.Println()
	rep.printTable(os.Stdout)
	path, err := rep.write(s.outDir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench: writing the report:", err)
		return 1
	}
	fmt.Printf("\nFigures written to %s and %s (run took %s).\n", path, filepath.Join(s.outDir, "latest.json"),
		rep.FinishedAt.Sub(rep.StartedAt).Round(time.Second))
	return exitCode(code, rep, s.strict, os.Stdout)
}

// exitCode is the program's exit code: 1 when a scenario could not finish, and with --strict
// also when a target was missed (a figure not measured misses its target).
func exitCode(code int, rep *Report, strict bool, w io.Writer) int {
	if len(rep.Errors) > 0 {
		code = 1
	}
	if missed := rep.missed(); strict && missed > 0 {
		_, _ = fmt.Fprintf(w, "--strict: %d targets missed or not measured\n", missed)
		code = 1
	}
	return code
}

// runScenarios starts the stack, runs the scenarios and stops the stack.
func runScenarios(ctx context.Context, s settings, rep *Report) (err error) {
	b, err := startBench(ctx, s, rep)
	if err != nil {
		return err
	}
	defer func() {
		b.sys.stopWatch()
		err = errors.Join(err, b.sys.stack.Stop())
	}()
	// A process of the stack that dies on its own ends the run: its figures would be wrong.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	go func() {
		select {
		case exit := <-b.sys.stack.Exits():
			cancel(exit)
		case <-ctx.Done():
		}
	}()
	err = b.runAll(ctx)
	if cause := context.Cause(ctx); cause != nil && !errors.Is(cause, context.Canceled) {
		err = errors.Join(err, cause)
	}
	return err
}

func startBench(ctx context.Context, s settings, rep *Report) (*bench, error) {
	log := io.Discard
	if s.verbose {
		log = os.Stderr
	}
	if err := preparePerfDir(s.perfDir); err != nil {
		return nil, err
	}
	b := &bench{rep: rep, scale: s.scale, timing: defaultTiming(), perfDir: s.perfDir, outDir: s.outDir, only: s.only}
	controllerPprof, gatewayPprof, controllerURL, gatewayURL, err := pprofEndpoints()
	if err != nil {
		return nil, err
	}
	b.controllerPprofURL, b.gatewayPprofURL = controllerURL, gatewayURL
	progress("starting etcd, kube-apiserver, the bank simulator, the controller and the gateway (logs in %s)",
		filepath.Join(s.devDir, "logs"))
	binDir, err := snapshotBinaries(filepath.Join(s.repoDir, "bin"), filepath.Join(s.devDir, "bin"))
	if err != nil {
		return nil, err
	}
	stack, err := devenv.Start(ctx, devenv.Options{
		DevDir: s.devDir, Reset: true, RepoDir: s.repoDir, BinDir: binDir,
		GatewayAddr: "127.0.0.1:0", BankAddr: "127.0.0.1:0",
		BankMinDelay: b.timing.bankMin, BankMaxDelay: b.timing.bankMax,
		UnsafeNoFsync:  s.unsafeNoFsync,
		ControllerArgs: append(b.timing.controllerArgs(), controllerPprof...),
		GatewayArgs:    gatewayPprof,
		Log:            log,
	})
	if err != nil {
		return nil, err
	}
	if b.sys, err = newSystem(stack, s.scale.concurrency); err != nil {
		return nil, errors.Join(err, stack.Stop())
	}
	return b, nil
}

// programs are the binaries of `make build` that the stack runs.
var programs = []string{"loan-controller", "loan-gateway", "bank-sim"}

// snapshotBinaries copies the built programs aside, so that a `make build` in the same checkout
// during the run cannot swap a program between its stop and its restart.
func snapshotBinaries(from, to string) (string, error) {
	if err := os.MkdirAll(to, 0o755); err != nil {
		return "", err
	}
	for _, name := range programs {
		data, err := os.ReadFile(filepath.Join(from, name))
		if err != nil {
			return "", fmt.Errorf("%w (run make build first)", err)
		}
		if err := os.WriteFile(filepath.Join(to, name), data, 0o755); err != nil {
			return "", err
		}
	}
	return to, nil
}

// progress tells the person waiting what the run is doing.
func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "%s bench: "+format+"\n", append([]any{time.Now().Format("15:04:05")}, args...)...)
}
