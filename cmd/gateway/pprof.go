package main

import (
	"context"
	"net/http"
	"net/http/pprof"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/manager"
)

// pprofReadHeaderTimeout bounds a slow client's headers on the profiling endpoint.
const pprofReadHeaderTimeout = 10 * time.Second

// startPprofServer serves Go's profiles (/debug/pprof/) at addr until ctx ends, as the
// controller's --pprof-bind-address does: for CPU and heap profiles, and for weighing the heap
// right after a collection (heap?gc=1). Off ("0" or empty) unless asked for: a profile shows
// the program's insides to anyone who reaches the address. The channel receives the error that
// stops it early; it is nil (never ready) when the endpoint is off.
func startPprofServer(ctx context.Context, addr string) <-chan error {
	if addr == "" || addr == "0" {
		return nil
	}
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	shutdown := time.Second
	srv := &manager.Server{
		Name:            "pprof",
		Server:          &http.Server{Addr: addr, Handler: mux, ReadHeaderTimeout: pprofReadHeaderTimeout},
		ShutdownTimeout: &shutdown,
	}
	done := make(chan error, 1)
	go func() {
		if err := srv.Start(ctx); err != nil {
			done <- err
		}
	}()
	setupLog.Info("serving pprof", "addr", addr)
	return done
}
