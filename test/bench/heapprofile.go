package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"

	"github.com/lendo/loan-operator/test/stacktest"
)

// pprofEndpoints gives the controller and the gateway each a pprof endpoint on a free loopback
// port: the memory figures ask both for a garbage collection before they weigh them, and the
// memory scenario saves the controller's heap profile beside its figure, so that a heap per
// application above the target is explained by the profile, not guessed.
func pprofEndpoints() (controllerArgs, gatewayArgs []string, controllerURL, gatewayURL string, err error) {
	addrs, err := stacktest.FreeAddrs(2)
	if err != nil {
		return nil, nil, "", "", err
	}
	flag := func(addr string) []string { return []string{"--pprof-bind-address=" + addr} }
	return flag(addrs[0]), flag(addrs[1]), "http://" + addrs[0], "http://" + addrs[1], nil
}

// saveHeapProfile saves the controller's heap profile, taken right after a collection (gc=1),
// as <out>/heap/<name>.pb.gz. Read it with `go tool pprof -sample_index=inuse_space -top FILE`.
func (b *bench) saveHeapProfile(ctx context.Context, name string) (string, error) {
	if b.controllerPprofURL == "" || b.outDir == "" {
		return "", nil
	}
	dir := filepath.Join(b.outDir, "heap")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	path := filepath.Join(dir, name+".pb.gz")
	f, err := os.Create(path)
	if err != nil {
		return "", err
	}
	if err := heapProfile(ctx, b.controllerPprofURL, f); err != nil {
		return "", errors.Join(err, f.Close())
	}
	return path, f.Close()
}

// heapProfile writes the heap profile of the program behind pprofURL to w. Go's heap profile
// handler runs a garbage collection before it answers when asked with gc=1, so the profile,
// and the heap right after it, are of live objects only.
func heapProfile(ctx context.Context, pprofURL string, w io.Writer) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pprofURL+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("heap profile: HTTP %d", resp.StatusCode)
	}
	_, err = io.Copy(w, resp.Body)
	return err
}
