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

// Command devenv is `make dev`: the whole system on this machine, without a cluster. It starts
// etcd and kube-apiserver (data kept in DEV_DIR/etcd), applies config/dev, then the bank
// simulator, the controller and the gateway as separate processes with their own identities,
// prints where everything is and what to try, restarts a program that dies (as a Deployment
// would) and stops it all on Ctrl-C, exiting 0. BANK_URL uses another bank instead of the
// simulator.
//
// Every setting is a flag whose default comes from an environment variable, so that
// `GATEWAY_ADDR=127.0.0.1:9090 make dev` works as well as `go run ./cmd/devenv -gateway-addr ...`.
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
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lendo/loan-operator/internal/bank"
	"github.com/lendo/loan-operator/internal/devenv"
)

func main() {
	os.Exit(run())
}

func run() int {
	opts, err := parseOptions(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "devenv:", err)
		return 2
	}
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()

	stack, err := devenv.Start(ctx, opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "devenv: the stack did not start:", err)
		return 1
	}
	printBanner(os.Stdout, stack, opts)

	code := 0
	select {
	case <-ctx.Done():
		fmt.Println("\nStopping (Ctrl-C again to kill at once)...")
	case exit := <-stack.Exits():
		fmt.Fprintln(os.Stderr, "\ndevenv:", exit)
		fmt.Fprintln(os.Stderr, "Stopping the rest.")
		code = 1
	}
	// From here a second Ctrl-C kills devenv at once; the kernel then kills the children
	// (they are started with a parent-death signal).
	cancel()
	if err := stack.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "devenv: stopping:", err)
		code = 1
	}
	fmt.Println("Stopped. The applications are kept in", display(filepath.Join(stack.DevDir(), "etcd")))
	return code
}

// parseOptions reads the flags, whose defaults are the environment variables the README lists.
func parseOptions(args []string) (devenv.Options, error) {
	fs := flag.NewFlagSet("devenv", flag.ContinueOnError)
	var o devenv.Options
	var errs []error
	fs.StringVar(&o.DevDir, "dev-dir", envOr("DEV_DIR", ".dev"), "Folder of the data, kubeconfigs and logs ($DEV_DIR).")
	fs.StringVar(&o.RepoDir, "repo-dir", ".", "The repository, whose config/dev is applied.")
	fs.StringVar(&o.BinDir, "bin-dir", "",
		"Folder of the built loan-controller, loan-gateway and bank-sim (default: the repository's bin/, where make build puts them).")
	fs.BoolVar(&o.Reset, "reset", envBool("DEV_RESET", &errs), "Delete the stored applications first ($DEV_RESET=1).")
	fs.StringVar(&o.GatewayAddr, "gateway-addr", envOr("GATEWAY_ADDR", "127.0.0.1:8080"), "The gateway's address ($GATEWAY_ADDR).")
	fs.StringVar(&o.BankAddr, "bank-addr", envOr("BANK_ADDR", "127.0.0.1:8000"), "The bank simulator's address ($BANK_ADDR).")
	fs.StringVar(&o.BankURL, "bank-url", os.Getenv("BANK_URL"),
		"A bank that runs elsewhere (the real bank or a stand-in), used instead of starting the simulator ($BANK_URL).")
	fs.DurationVar(&o.BankMinDelay, "bank-min-delay", envDuration("BANK_MIN_DELAY", 5*time.Second, &errs),
		"The bank's shortest assessment ($BANK_MIN_DELAY).")
	fs.DurationVar(&o.BankMaxDelay, "bank-max-delay", envDuration("BANK_MAX_DELAY", 20*time.Second, &errs),
		"The bank's longest assessment ($BANK_MAX_DELAY).")
	fs.IntVar(&o.ControllerReplicas, "controller-replicas", envInt("CONTROLLER_REPLICAS", 1, &errs),
		"Controller processes; above 1 they elect a leader ($CONTROLLER_REPLICAS).")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if len(errs) > 0 {
		return o, errors.Join(errs...)
	}
	// devenv.Options reads two zero delays as "the defaults", so an instant bank is asked as 1ms.
	if o.BankMaxDelay <= 0 {
		return o, fmt.Errorf("the bank's longest assessment must be above 0, got %s (1ms makes it almost instant)", o.BankMaxDelay)
	}
	if o.ControllerReplicas < 1 {
		return o, fmt.Errorf("controller replicas must be at least 1, got %d", o.ControllerReplicas)
	}
	// As a Deployment would: a program that dies is started again, and only one that keeps
	// dying stops the stack.
	o.Restart = true
	o.Log = prefixWriter{w: os.Stdout}
	return o, nil
}

func printBanner(w io.Writer, stack *devenv.Stack, o devenv.Options) {
	kubeconfig := display(stack.KubeconfigPath)
	lines := []string{
		"",
		"loan-operator is running. Addresses:",
		"  gateway         " + stack.GatewayURL + "   (API docs: " + stack.GatewayURL + "/docs)",
		bankLine(stack, o),
		"  kube-apiserver  " + stack.APIServerURL,
		"  controller      metrics " + strings.Join(metricsURLs(stack), ", "),
		"  kubeconfig      " + kubeconfig,
		"  logs            " + display(filepath.Join(stack.DevDir(), "logs")),
		"",
		"Try, in another terminal:",
		"  KUBECONFIG=" + kubeconfig + " kubectl apply -f config/samples/",
		"  curl -s -X POST " + stack.GatewayURL + "/api/v1/applications -H 'Content-Type: application/json' " +
			`-d '{"first_name":"Grace","last_name":"Hopper"}'`,
		"  KUBECONFIG=" + kubeconfig + " kubectl get loanapplications -l status=approved",
		"",
		"A program that dies is restarted after a back-off (1s, 2s, 4s...); five deaths of one within a minute stop everything.",
		"Ctrl-C stops everything; the applications stay in " + display(filepath.Join(stack.DevDir(), "etcd")) +
			" (DEV_RESET=1 starts from empty).",
	}
	_, _ = fmt.Fprintln(w, strings.Join(lines, "\n"))
}

// bankLine says which bank the controller uses: the simulator started here, or BANK_URL.
func bankLine(stack *devenv.Stack, o devenv.Options) string {
	if o.BankURL != "" {
		return "  bank            " + bank.RedactURL(stack.BankURL) + "   (BANK_URL: not started here, the simulator is not running)"
	}
	return "  bank simulator  " + stack.BankURL + "   (assessment " + o.BankMinDelay.String() + " to " + o.BankMaxDelay.String() + ")"
}

// metricsURLs are the controller replicas' metrics endpoints.
func metricsURLs(stack *devenv.Stack) []string {
	urls := make([]string, 0, len(stack.ControllerMetricsURLs))
	for _, u := range stack.ControllerMetricsURLs {
		urls = append(urls, u+"/metrics")
	}
	return urls
}

// display shows a path relative to the working directory when it is inside it, as a person
// would type it.
func display(path string) string {
	wd, err := os.Getwd()
	if err != nil {
		return path
	}
	if rel, err := filepath.Rel(wd, path); err == nil && !strings.HasPrefix(rel, "..") {
		return rel
	}
	return path
}

// prefixWriter marks the stack's progress lines as devenv's.
type prefixWriter struct{ w io.Writer }

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := fmt.Fprintf(p.w, "devenv: %s", b); err != nil {
		return 0, err
	}
	return len(b), nil
}

func envOr(name, fallback string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return fallback
}

func envBool(name string, errs *[]error) bool {
	v := os.Getenv(name)
	if v == "" {
		return false
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("$%s: %w", name, err))
	}
	return b
}

func envDuration(name string, fallback time.Duration, errs *[]error) time.Duration {
	v := os.Getenv(name)
	if v == "" {
		return fallback
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("$%s is not a Go duration (like 5s): %w", name, err))
	}
	return d
}

func envInt(name string, fallback int, errs *[]error) int {
	v := os.Getenv(name)
	if v == "" {
		return fallback
	}
	n, err := strconv.Atoi(v)
	if err != nil {
		*errs = append(*errs, fmt.Errorf("$%s: %w", name, err))
	}
	return n
}
