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

// controllerPprof gives the controller a pprof endpoint on a free loopback port, so that the
// memory scenario can save a heap profile beside its figure: a heap per application above the
// target is explained by the profile, not guessed.
func controllerPprof() (args []string, url string, err error) {
	addrs, err := stacktest.FreeAddrs(1)
	if err != nil {
		return nil, "", err
	}
	return []string{"--pprof-bind-address=" + addrs[0]}, "http://" + addrs[0], nil
}

// saveHeapProfile saves the controller's heap profile, taken right after a collection (gc=1),
// as <out>/heap/<name>.pb.gz. Read it with `go tool pprof -sample_index=inuse_space -top FILE`.
func (b *bench) saveHeapProfile(ctx context.Context, name string) (string, error) {
	if b.controllerPprofURL == "" || b.outDir == "" {
		return "", nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.controllerPprofURL+"/debug/pprof/heap?gc=1", nil)
	if err != nil {
		return "", err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("heap profile: HTTP %d", resp.StatusCode)
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
	if _, err := io.Copy(f, resp.Body); err != nil {
		return "", errors.Join(err, f.Close())
	}
	return path, f.Close()
}
