// Command bank-sim serves a simulator of the bank partner's API (see internal/banksim): the
// documented calls, decisions after a random delay, and faults on demand.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lendo/loan-operator/internal/banksim"
)

func main() {
	var (
		addr   string
		cfg    banksim.Config
		faults banksim.Faults
	)
	flag.StringVar(&addr, "addr", "127.0.0.1:8000", "The address to listen on.")
	flag.DurationVar(&cfg.MinDelay, "min-delay", banksim.DefaultMinDelay, "The shortest assessment delay.")
	flag.DurationVar(&cfg.MaxDelay, "max-delay", banksim.DefaultMaxDelay, "The longest assessment delay.")
	flag.Float64Var(&cfg.ApproveRatio, "approve-ratio", banksim.DefaultApproveRatio,
		"The share of applications approved, in [0, 1].")
	flag.Int64Var(&cfg.Seed, "seed", 0, "The seed of the decisions; 0 draws a random one.")
	flag.Float64Var(&faults.FailRate, "fail-rate", 0, "The share of requests answered 500 or 503.")
	flag.DurationVar((*time.Duration)(&faults.Latency), "latency", 0, "The extra delay before each answer.")
	flag.Float64Var(&faults.RateLimit, "rate-limit", 0,
		"The requests per second above which the answer is 429 with Retry-After; 0 is off.")
	flag.Float64Var(&faults.DropRate, "drop-rate", 0, "The share of requests answered by dropping the connection.")
	flag.Float64Var(&faults.Answer.Rate, "answer-rate", 0,
		"The share of requests answered with --answer-status, --answer-body and --answer-retry-after instead; 0 is off.")
	flag.StringVar(&faults.Answer.Operation, "answer-operation", "",
		`Which requests --answer-rate picks from: "submit", "poll", or both when empty.`)
	flag.IntVar(&faults.Answer.Status, "answer-status", 0, "The HTTP status of the chosen answer, for example 401, 403, 418, 429 or 400.")
	flag.StringVar(&faults.Answer.Body, "answer-body", "", `The body of the chosen answer, as it is; empty sends {"error": "<status text>"}.`)
	flag.StringVar(&faults.Answer.RetryAfter, "answer-retry-after", "",
		`The Retry-After header of the chosen answer, in seconds or as an HTTP date ("Fri, 31 Dec 9999 23:59:59 GMT").`)
	flag.BoolVar(&cfg.LogRequests, "log-requests", false, "Log one line per request.")
	flag.Parse()

	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := validateFlags(cfg, faults); err != nil {
		logger.Error("invalid flags", "error", err)
		os.Exit(1)
	}
	// A flag at 0 means zero; in Config a zero means "the default".
	if cfg.ApproveRatio == 0 {
		cfg.ApproveRatio = banksim.RejectAll
	}
	if cfg.MinDelay == 0 && cfg.MaxDelay == 0 {
		cfg.MaxDelay = time.Nanosecond // decide at once
	}
	cfg.Faults, cfg.Logger = faults, logger
	if err := run(addr, banksim.New(cfg), logger); err != nil {
		logger.Error("bank-sim stopped", "error", err)
		os.Exit(1)
	}
}

// validateFlags refuses values that Config would otherwise quietly clamp or default.
func validateFlags(cfg banksim.Config, faults banksim.Faults) error {
	switch {
	case cfg.MinDelay < 0 || cfg.MaxDelay < cfg.MinDelay:
		return fmt.Errorf("--min-delay %v and --max-delay %v: want 0 <= min <= max", cfg.MinDelay, cfg.MaxDelay)
	case cfg.ApproveRatio < 0 || cfg.ApproveRatio > 1:
		return fmt.Errorf("--approve-ratio %v is not within [0, 1]", cfg.ApproveRatio)
	}
	return faults.Validate()
}

// run serves sim on addr until SIGINT or SIGTERM, then lets requests in flight finish.
func run(addr string, sim *banksim.Simulator, logger *slog.Logger) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	listener, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	server := &http.Server{
		Handler:           sim.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		// Long enough for the latency fault on top of a normal answer.
		WriteTimeout: 2 * time.Minute,
		IdleTimeout:  2 * time.Minute,
	}
	served := make(chan error, 1)
	go func() { served <- server.Serve(listener) }()
	logger.Info("bank-sim listening", "addr", listener.Addr().String())

	select {
	case err := <-served:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
