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

// Command capacity measures what docs/capacity.md needs and test/bench does not: what one decided
// LoanApplication costs in etcd (its stored value, and the database once compacted and
// defragmented) and in kube-apiserver's heap (its watch cache), and how long a relist of all of
// them takes, from the watch cache (an informer's first list) and paged from etcd. It runs the
// local stack (internal/devenv) with an almost instant bank and the controller, so that every
// application is final, as most are in a cluster that has run a while.
//
//	KUBEBUILDER_ASSETS=bin/k8s/1.37.2 go run ./hack/capacity -n 10000
package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/devenv"
)

const keyPrefix = "/registry/loans.lendo.se/loanapplications/"

func main() {
	n := flag.Int("n", 10000, "Applications to create (at most 200,000).")
	idle := flag.Duration("idle", 3*time.Minute,
		"Wait after the last decision before measuring, so that the watch cache's history of the burst ages out.")
	binDir := flag.String("bin-dir", "bin", "Folder of loan-controller and bank-sim (make build).")
	flag.Parse()
	if *n < 1 || *n > 200000 {
		fmt.Fprintln(os.Stderr, "capacity: -n must be within 1 and 200,000")
		os.Exit(2)
	}
	if err := run(*n, *binDir, *idle); err != nil {
		fmt.Fprintln(os.Stderr, "capacity:", err)
		os.Exit(1)
	}
}

func run(n int, binDir string, idle time.Duration) error {
	dir, err := os.MkdirTemp("", "capacity-")
	if err != nil {
		return err
	}
	defer func() { _ = os.RemoveAll(dir) }()
	ctx := context.Background()
	stack, err := devenv.Start(ctx, devenv.Options{
		DevDir: dir, BinDir: binDir, GatewayAddr: "127.0.0.1:0", BankAddr: "127.0.0.1:0",
		BankMinDelay: 0, BankMaxDelay: time.Millisecond, SkipGateway: true, StartTimeout: 2 * time.Minute,
	})
	if err != nil {
		return err
	}
	defer func() { _ = stack.Stop() }()
	etcdURL := flagValue(stack.Etcd.Args(), "--listen-client-urls")

	before, err := measure(ctx, stack, etcdURL)
	if err != nil {
		return err
	}
	began := time.Now()
	if err := create(ctx, stack.Client, n); err != nil {
		return err
	}
	if err := waitFinal(ctx, stack.Client, n); err != nil {
		return err
	}
	fmt.Printf("created %d applications and all were final after %s\n", n, time.Since(began).Round(time.Second))
	burst, err := measure(ctx, stack, etcdURL)
	if err != nil {
		return err
	}
	fmt.Printf("kube-apiserver: live heap just after the burst        %.1f MiB (%.0f B per application)\n",
		burst.apiHeap/(1<<20), (burst.apiHeap-before.apiHeap)/float64(n))
	time.Sleep(idle)
	after, err := measure(ctx, stack, etcdURL)
	if err != nil {
		return err
	}
	valueBytes, err := meanValueSize(ctx, etcdURL)
	if err != nil {
		return err
	}
	watchCacheList, pagedList, err := relists(ctx, stack.Client)
	if err != nil {
		return err
	}
	perApp := func(a, b float64) float64 { return (b - a) / float64(n) }
	fmt.Printf("etcd: stored value per application (JSON)            %.0f B\n", valueBytes)
	fmt.Printf("etcd: database in use, compacted and defragmented     %.1f MiB (%.0f B per application)\n",
		after.etcdInUse/(1<<20), perApp(before.etcdInUse, after.etcdInUse))
	fmt.Printf("kube-apiserver: live heap after %s idle           %.1f MiB (%.0f B per application)\n", idle,
		after.apiHeap/(1<<20), perApp(before.apiHeap, after.apiHeap))
	fmt.Printf("kube-apiserver: resident memory                       %.1f MiB (%.0f B per application)\n",
		after.apiRSS/(1<<20), perApp(before.apiRSS, after.apiRSS))
	fmt.Printf("kube-apiserver: heap before any application           %.1f MiB\n", before.apiHeap/(1<<20))
	fmt.Printf("list of all from the watch cache (resourceVersion=0)  %s\n", watchCacheList.Round(time.Millisecond))
	fmt.Printf("list of all from etcd, 500 a page                     %s\n", pagedList.Round(time.Millisecond))
	return nil
}

type figures struct{ etcdInUse, apiHeap, apiRSS float64 }

// measure compacts and defragments etcd (as the API server's five-minute compaction and an
// operator's defrag would), then reads etcd's database size in use and the API server's heap and
// resident memory.
func measure(ctx context.Context, stack *devenv.Stack, etcdURL string) (figures, error) {
	var f figures
	if err := compactAndDefrag(ctx, etcdURL); err != nil {
		return f, err
	}
	etcdMetrics, err := get(ctx, http.DefaultClient, etcdURL+"/metrics")
	if err != nil {
		return f, err
	}
	f.etcdInUse = metric(etcdMetrics, "etcd_mvcc_db_total_size_in_use_in_bytes")
	httpClient, err := rest.HTTPClientFor(stack.Config)
	if err != nil {
		return f, err
	}
	// A Go heap holds garbage between collections: the API server's heap profile with gc=1
	// (profiling is on by default, for administrators) collects first, so that the heap read
	// right after is the live one.
	if _, err := get(ctx, httpClient, stack.APIServerURL+"/debug/pprof/heap?gc=1"); err != nil {
		return f, err
	}
	text, err := get(ctx, httpClient, stack.APIServerURL+"/metrics")
	if err != nil {
		return f, err
	}
	f.apiHeap = metric(text, "go_memstats_heap_alloc_bytes")
	f.apiRSS = metric(text, "process_resident_memory_bytes")
	return f, nil
}

func compactAndDefrag(ctx context.Context, etcdURL string) error {
	var status struct {
		Header struct {
			Revision string `json:"revision"`
		} `json:"header"`
	}
	if err := postJSON(ctx, etcdURL+"/v3/kv/range", map[string]any{"key": b64("\x00"), "count_only": true}, &status); err != nil {
		return err
	}
	compaction := map[string]any{"revision": status.Header.Revision, "physical": true}
	if err := postJSON(ctx, etcdURL+"/v3/kv/compaction", compaction, nil); err != nil && !strings.Contains(err.Error(), "compacted") {
		return err
	}
	return postJSON(ctx, etcdURL+"/v3/maintenance/defragment", map[string]any{}, nil)
}

// meanValueSize reads the stored applications through etcd's JSON gateway, 1,000 at a time, and
// returns the mean size of a stored value.
func meanValueSize(ctx context.Context, etcdURL string) (float64, error) {
	var total, count int
	key := keyPrefix
	for {
		var page struct {
			Kvs []struct {
				Key, Value string
			} `json:"kvs"`
			More bool `json:"more"`
		}
		if err := postJSON(ctx, etcdURL+"/v3/kv/range", map[string]any{
			"key": b64(key), "range_end": b64(keyPrefix[:len(keyPrefix)-1] + "0"), "limit": 1000,
		}, &page); err != nil {
			return 0, err
		}
		for _, kv := range page.Kvs {
			value, err := base64.StdEncoding.DecodeString(kv.Value)
			if err != nil {
				return 0, err
			}
			total += len(value)
			count++
		}
		if !page.More || len(page.Kvs) == 0 {
			break
		}
		last, err := base64.StdEncoding.DecodeString(page.Kvs[len(page.Kvs)-1].Key)
		if err != nil {
			return 0, err
		}
		key = string(last) + "\x00"
	}
	if count == 0 {
		return 0, errors.New("no application in etcd")
	}
	return float64(total) / float64(count), nil
}

// relists times a list of every application as an informer's first list does (resourceVersion=0,
// from the watch cache, one response) and paged from etcd (what a list with a limit does).
func relists(ctx context.Context, c client.Client) (watchCache, paged time.Duration, err error) {
	start := time.Now()
	var all loansv1alpha1.LoanApplicationList
	if err := c.List(ctx, &all, &client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: "0"}}); err != nil {
		return 0, 0, err
	}
	watchCache = time.Since(start)
	start = time.Now()
	cont := ""
	for {
		var page loansv1alpha1.LoanApplicationList
		if err := c.List(ctx, &page, client.Limit(500), client.Continue(cont)); err != nil {
			return 0, 0, err
		}
		if cont = page.Continue; cont == "" {
			break
		}
	}
	return watchCache, time.Since(start), nil
}

// create makes n applications with 32 concurrent clients.
func create(ctx context.Context, c client.Client, n int) error {
	next := make(chan int)
	errs := make(chan error, 32)
	var wg sync.WaitGroup
	for range 32 {
		wg.Go(func() {
			for i := range next {
				app := &loansv1alpha1.LoanApplication{
					ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: "capacity-" + strconv.Itoa(i)},
					Spec:       loansv1alpha1.LoanApplicationSpec{FirstName: "Grace", LastName: "Hopper"},
				}
				if err := c.Create(ctx, app); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	var err error
	for i := range n {
		select {
		case next <- i:
		case err = <-errs:
		}
		if err != nil {
			break
		}
	}
	close(next)
	wg.Wait()
	return err
}

// waitFinal waits, at most an hour, until n applications carry a final status label. Each
// count lists tens of thousands of objects from an API server busy with the controller's writes:
// a failed count is reported and tried again at the next round, not the end of the run, and the
// rounds are spaced so that the counting does not add much to the load it waits on.
func waitFinal(ctx context.Context, c client.Client, n int) error {
	deadline := time.Now().Add(time.Hour)
	for time.Now().Before(deadline) {
		final, err := countFinal(ctx, c)
		switch {
		case err != nil:
			fmt.Fprintf(os.Stderr, "capacity: counting the final applications (will retry): %v\n", err)
		case final >= n:
			return nil
		}
		time.Sleep(finalCountInterval)
	}
	return fmt.Errorf("not all %d applications final within an hour", n)
}

// finalCountInterval spaces waitFinal's counts.
const finalCountInterval = 10 * time.Second

// countFinal counts the applications that carry a final status label, reading metadata only,
// in pages: one list of tens of thousands can outlast the API server's request timeout.
func countFinal(ctx context.Context, c client.Client) (int, error) {
	final := 0
	for _, label := range []string{loansv1alpha1.LabelApproved, loansv1alpha1.LabelRejected, loansv1alpha1.LabelFailed} {
		for token := ""; ; {
			var list metav1.PartialObjectMetadataList
			list.SetGroupVersionKind(loansv1alpha1.GroupVersion.WithKind("LoanApplicationList"))
			err := c.List(ctx, &list, client.MatchingLabels{loansv1alpha1.LabelStatus: label},
				client.Limit(countPageSize), client.Continue(token))
			if err != nil {
				return 0, err
			}
			final += len(list.Items)
			if token = list.Continue; token == "" {
				break
			}
		}
	}
	return final, nil
}

// countPageSize is the page of countFinal's lists.
const countPageSize = 5000

func flagValue(args []string, name string) string {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, name+"="); ok {
			return v
		}
	}
	return ""
}

func b64(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) }

func postJSON(ctx context.Context, url string, body, into any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(data))
	if err != nil {
		return err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %s %s", url, resp.Status, out)
	}
	if into == nil {
		return nil
	}
	return json.Unmarshal(out, into)
}

func get(ctx context.Context, c *http.Client, url string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return "", err
	}
	resp, err := c.Do(req)
	if err != nil {
		return "", err
	}
	defer func() { _ = resp.Body.Close() }()
	out, err := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		return "", fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return string(out), err
}

// metric is the value of an unlabelled metric in Prometheus's text format.
func metric(text, name string) float64 {
	for line := range strings.Lines(text) {
		if v, ok := strings.CutPrefix(line, name+" "); ok {
			f, _ := strconv.ParseFloat(strings.TrimSpace(v), 64)
			return f
		}
	}
	return 0
}
