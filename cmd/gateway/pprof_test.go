package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"runtime"
	"strings"
	"testing"
	"time"
)

// The benchmark weighs the gateway's heap right after a collection it asks for: the endpoint
// must be off by default, and a heap profile with gc=1 must collect.
func TestPprofIsOffByDefaultAndCollectsOnRequest(t *testing.T) {
	f, err := parse(t)
	if err != nil {
		t.Fatal(err)
	}
	if done := startPprofServer(t.Context(), f.pprofAddr); done != nil {
		t.Fatalf("--pprof-bind-address %q serves by default", f.pprofAddr)
	}

	l, err := net.Listen("tcp", "127.0.0.1:0") // a free loopback port, given back for the server
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := startPprofServer(ctx, addr)
	var before runtime.MemStats
	runtime.ReadMemStats(&before)
	resp := getEventually(t, fmt.Sprintf("http://%s/debug/pprof/heap?gc=1", addr))
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("heap profile: %s", resp.Status)
	}
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	if after.NumGC <= before.NumGC {
		t.Errorf("heap?gc=1 did not collect: %d collections before, %d after", before.NumGC, after.NumGC)
	}
	cancel()
	select {
	case err := <-done:
		t.Errorf("the server failed: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
}

func TestPprofAddressMustDifferFromTheOthers(t *testing.T) {
	for _, args := range [][]string{
		{"--addr=127.0.0.1:9000", "--pprof-bind-address=127.0.0.1:9000"},
		{"--metrics-bind-address=127.0.0.1:9001", "--pprof-bind-address=127.0.0.1:9001"},
	} {
		if _, err := parse(t, args...); err == nil || !strings.Contains(err.Error(), "--pprof-bind-address") {
			t.Errorf("%v: %v", args, err)
		}
	}
}

// getEventually GETs url until the server that is starting answers, for at most 5 s.
func getEventually(t *testing.T, url string) *http.Response {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		resp, err := http.Get(url) //nolint:noctx // a test's loopback request
		if err == nil {
			return resp
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v", url, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
