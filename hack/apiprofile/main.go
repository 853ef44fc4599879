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

// Command apiprofile attributes a kube-apiserver CPU profile (the pprof file `make bench` saves
// with --perf-dir) twice: by the kind of request the CPU served (a create, a status patch, a
// label patch, an Event, watch delivery, the watch cache's own intake, a metrics scrape...) and
// by cause (the garbage collector, managed fields, the admission policy, the CRD's CEL rules and
// schema, JSON). docs/benchmarks.md publishes its tables.
//
//	go run ./hack/apiprofile bin/bench/perf/1-end-to-end-kube-apiserver.pprof
//
// Each sample goes to the first rule that any frame of its stack matches, so the order of the
// rules below is their precedence: the garbage collector's assist inside a JSON decode of a
// status patch is "status patch" by kind and "garbage collector" by cause.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/pprof/profile"
)

// rule names a share of the CPU: a sample whose stack has a frame containing any of match.
type rule struct {
	name  string
	match []string
}

// kinds attributes the CPU to the request (or background work) it served.
var kinds = []rule{
	// Built-in resources (Events, Leases) are served by the generic installer, custom resources
	// by the CRD handler: that tells an Event's create from an application's.
	{"Event create", []string{"restfulCreateResource", "registry/core/event."}},
	{"other built-in requests (leases, Event patches, discovery)", []string{"endpoints.(*APIInstaller)"}},
	{"status patch (controller)", []string{"customresource.(*StatusREST).Update"}},
	{"label patch (controller)", []string{"handlers.PatchResource", "handlers.(*patcher)"}},
	{"create (application)", []string{"handlers.CreateResource", "createHandler"}},
	{"watch delivery to clients", []string{"(*cacheWatcher)", "(*WatchServer)", "serveWatch"}},
	{"watch cache intake (etcd events decoded)", []string{"etcd3.(*watchChan)", "(*watchCache)", "(*Cacher).dispatchEvents",
		"(*Cacher).processEvent", "client/v3.(*watchGRPCStream)"}},
	{"metrics scrape", []string{"promhttp.", "prometheus.(*Registry).Gather", "legacyregistry"}},
	{"lists and gets", []string{"handlers.ListResource", "handlers.GetResource", "ListResource.func", "GetResource.func"}},
	// The filters (authentication, authorization, flow control, audit) run before the request
	// reaches its resource's handler, so a sample there cannot tell which kind it served.
	{"request filters, before the resource's handler (every kind)", []string{"(*timeoutHandler).ServeHTTP", "DefaultBuildHandlerChain",
		"net/http.(*conn).serve", "(*serverConn)"}},
	{"garbage collector (background)", []string{"runtime.gcBgMarkWorker", "runtime.bgsweep", "runtime.bgscavenge"}},
}

// causes attributes the CPU to what the API server was doing, whatever the request.
var causes = []rule{
	{"garbage collector (background and assists)", []string{"runtime.gcBgMarkWorker", "runtime.gcAssistAlloc", "runtime.bgsweep",
		"runtime.bgscavenge", "runtime.gcDrain"}},
	{"managed fields", []string{"util/managedfields", "structured-merge-diff"}},
	{"admission policy (ValidatingAdmissionPolicy, CEL)", []string{"admission/plugin/policy", "validatingadmissionpolicy"}},
	{"CRD CEL rules", []string{"apiextensions-apiserver/pkg/apiserver/schema/cel", "apiserver/pkg/cel"}},
	{"CRD schema validation and defaulting", []string{"kube-openapi/pkg/validation", "apiextensions-apiserver/pkg/apiserver/validation",
		"apiextensions-apiserver/pkg/apiserver/schema", "unstructuredSchemaCoercer"}},
	{"JSON merge patch", []string{"evanphx/json-patch"}},
	{"JSON encoding and decoding", []string{"encoding/json.", "sigs.k8s.io/json", "json-iterator", "UnstructuredJSONScheme",
		"serializer/json"}},
	{"memory allocation", []string{"runtime.mallocgc", "runtime.newobject", "runtime.makeslice", "runtime.makemap", "runtime.growslice"}},
	{"etcd client (gRPC)", []string{"go.etcd.io/etcd/client", "google.golang.org/grpc"}},
	{"TLS and network", []string{"crypto/", "net.(*conn)", "internal/poll", "syscall.", "net/http.(*http2"}},
	{"authentication, authorization, flow control, audit, tracing", []string{"endpoints/filters", "server/filters", "util/flowcontrol",
		"otelhttp", "authorization", "authentication"}},
}

func main() {
	apps := flag.Int("apps", 0, "Applications the profiled window served, to print milliseconds per application (0: shares only).")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: apiprofile [--apps N] PROFILE...")
		os.Exit(2)
	}
	for _, path := range flag.Args() {
		if err := attribute(os.Stdout, path, *apps); err != nil {
			fmt.Fprintln(os.Stderr, "apiprofile:", err)
			os.Exit(1)
		}
	}
}

// attribute prints the two tables of one profile.
func attribute(w io.Writer, path string, apps int) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer func() { _ = f.Close() }()
	p, err := profile.Parse(f)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	byKind, byCause, total := tally(p)
	window := time.Duration(p.DurationNanos)
	_, _ = fmt.Fprintf(w, "%s: %.2f s of CPU in %s (%.0f%% of one core)\n\n", path, total.Seconds(), window.Round(time.Second),
		100*total.Seconds()/window.Seconds())
	printShares(w, "by request kind", byKind, total, apps)
	printShares(w, "by cause", byCause, total, apps)
	return nil
}

// tally sums the CPU time of the samples by kind and by cause.
func tally(p *profile.Profile) (byKind, byCause map[string]time.Duration, total time.Duration) {
	cpu := cpuIndex(p)
	byKind, byCause = map[string]time.Duration{}, map[string]time.Duration{}
	for _, s := range p.Sample {
		d := time.Duration(s.Value[cpu])
		frames := frameNames(s)
		byKind[classify(kinds, frames)] += d
		byCause[classify(causes, frames)] += d
		total += d
	}
	return byKind, byCause, total
}

// cpuIndex is the index of the CPU time among a sample's values.
func cpuIndex(p *profile.Profile) int {
	for i, st := range p.SampleType {
		if st.Type == "cpu" {
			return i
		}
	}
	return len(p.SampleType) - 1
}

// frameNames are the function names of a sample's stack, inlined frames included.
func frameNames(s *profile.Sample) []string {
	var names []string
	for _, loc := range s.Location {
		for _, line := range loc.Line {
			if line.Function != nil {
				names = append(names, line.Function.Name)
			}
		}
	}
	return names
}

// classify is the name of the first rule a frame matches, or "other".
func classify(rules []rule, frames []string) string {
	for _, r := range rules {
		for _, frame := range frames {
			for _, m := range r.match {
				if strings.Contains(frame, m) {
					return r.name
				}
			}
		}
	}
	return "other"
}

// printShares prints one table, largest share first.
func printShares(w io.Writer, title string, shares map[string]time.Duration, total time.Duration, apps int) {
	names := make([]string, 0, len(shares))
	for name := range shares {
		names = append(names, name)
	}
	sort.Slice(names, func(i, j int) bool { return shares[names[i]] > shares[names[j]] })
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintf(tw, "%s\tCPU s\tshare", title)
	if apps > 0 {
		_, _ = fmt.Fprint(tw, "\tms per application")
	}
	_, _ = fmt.Fprintln(tw)
	for _, name := range names {
		d := shares[name]
		_, _ = fmt.Fprintf(tw, "%s\t%.2f\t%.1f%%", name, d.Seconds(), 100*d.Seconds()/total.Seconds())
		if apps > 0 {
			_, _ = fmt.Fprintf(tw, "\t%.2f", float64(d.Milliseconds())/float64(apps))
		}
		_, _ = fmt.Fprintln(tw)
	}
	_ = tw.Flush()
	_, _ = fmt.Fprintln(w)
}
