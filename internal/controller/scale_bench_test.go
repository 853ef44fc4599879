package controller

import (
	"context"
	"maps"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
	"github.com/lendo/loan-operator/internal/banksim"
	"github.com/lendo/loan-operator/test/testenv"
)

// benchApplications is how many applications one round of BenchmarkThousandApplications
// creates; benchDeadline bounds the wait for all of them to end final.
const (
	benchApplications = 1000
	benchDeadline     = 5 * time.Minute
)

// BenchmarkThousandApplications creates 1,000 LoanApplications (with the pending label, as the
// gateway does), then starts a manager with the program's defaults against the simulator with
// the real bank's 5–20s assessment, and waits until all are final. It reports the figures the
// design's budgets are about:
//
//	bank-calls/app       every answer of the bank API (submissions and polls), per application
//	api-writes/app       status and label patches, per application
//	status-lag-p50-ms    how long after the bank's decision the status showed it (a watch saw
//	status-lag-p99-ms    the final phase), median and 99th percentile
//	written-lag-p50/p99-ms  the same, up to the API server accepting the status write (a GET
//	                     would show it from then on)
//	poll-lag-p99-ms      the same, up to the first poll that saw the decision (bank side)
//	poll-to-written-p50/p99-ms   from that poll to the end of the status write
//	written-to-seen-p50/p99-ms   from the end of the status write to the watch seeing it
//	status-patch-p50/p99-ms      how long one status patch took the API server
//	wall-s               from the manager's start to the last application final
//
// Run it with:
//
//	go test ./internal/controller -run '^$' -bench Thousand -benchtime 1x -timeout 10m
func BenchmarkThousandApplications(b *testing.B) {
	env, err := testenv.Start()
	if err != nil {
		b.Fatal(err)
	}
	defer func() { _ = env.Stop() }()
	ctrl.SetLogger(logr.Discard())

	for range b.N {
		r := runThousand(b, env)
		b.ReportMetric(r.bankCallsPerApp, "bank-calls/app")
		b.ReportMetric(r.writesPerApp, "api-writes/app")
		b.ReportMetric(ms(r.statusLag.p50), "status-lag-p50-ms")
		b.ReportMetric(ms(r.statusLag.p99), "status-lag-p99-ms")
		b.ReportMetric(ms(r.statusLag.max), "status-lag-max-ms")
		b.ReportMetric(ms(r.writtenLag.p50), "written-lag-p50-ms")
		b.ReportMetric(ms(r.writtenLag.p99), "written-lag-p99-ms")
		b.ReportMetric(ms(r.pollLag.p99), "poll-lag-p99-ms")
		b.ReportMetric(ms(r.writeLag.p50), "poll-to-written-p50-ms")
		b.ReportMetric(ms(r.writeLag.p99), "poll-to-written-p99-ms")
		b.ReportMetric(ms(r.deliveryLag.p50), "written-to-seen-p50-ms")
		b.ReportMetric(ms(r.deliveryLag.p99), "written-to-seen-p99-ms")
		b.ReportMetric(ms(r.statusPatch.p50), "status-patch-p50-ms")
		b.ReportMetric(ms(r.statusPatch.p99), "status-patch-p99-ms")
		b.ReportMetric(r.wall.Seconds(), "wall-s")
	}
}

// thousandResult is what one round measured.
type thousandResult struct {
	bankCallsPerApp, writesPerApp  float64
	statusLag, writtenLag, pollLag percentiles
	writeLag, deliveryLag          percentiles
	statusPatch                    percentiles
	wall                           time.Duration
}

func runThousand(b *testing.B, env *testenv.Env) thousandResult {
	ctx, cancel := context.WithTimeout(context.Background(), benchDeadline)
	defer cancel()
	sim := banksim.New(banksim.Config{}) // the real bank's 5–20s, approving half
	server := httptest.NewServer(sim.Handler())
	defer server.Close()

	ns := benchNamespace(ctx, b, env)
	benchCreate(ctx, b, env, ns)
	final, watchDone := watchFinal(ctx, b, env, ns)

	writes := benchWrites{decisionWritten: make(map[string]time.Time, benchApplications)}
	b.ResetTimer()
	start := time.Now()
	stop := startBenchManager(b, env, ns, server.URL, &writes)
	<-watchDone
	wall := time.Since(start)
	b.StopTimer()
	stop()
	if ctx.Err() != nil {
		b.Fatalf("not all %d applications were final within %v", benchApplications, benchDeadline)
	}
	return summarize(b, sim.Stats(), final.snapshot(), &writes, wall)
}

// summarize turns the simulator's record and the watch's into the reported figures.
func summarize(b *testing.B, stats banksim.Stats, finalAt map[string]time.Time, writes *benchWrites, wall time.Duration) thousandResult {
	var calls int64
	for _, n := range stats.Responses {
		calls += n
	}
	statusLag := make([]time.Duration, 0, len(finalAt))
	pollLag := make([]time.Duration, 0, len(finalAt))
	writeLag := make([]time.Duration, 0, len(finalAt))
	deliveryLag := make([]time.Duration, 0, len(finalAt))
	writtenLag := make([]time.Duration, 0, len(finalAt))
	writes.mu.Lock()
	defer writes.mu.Unlock()
	for uid, seen := range finalAt {
		d, ok := stats.Decisions[uid]
		if !ok || d.SeenAt == nil {
			b.Fatalf("application %s is final but the bank has no seen decision for it", uid)
		}
		statusLag = append(statusLag, seen.Sub(d.DecidedAt))
		pollLag = append(pollLag, d.SeenAt.Sub(d.DecidedAt))
		written, ok := writes.decisionWritten[uid]
		if !ok {
			b.Fatalf("application %s is final but no status write of its decision was seen", uid)
		}
		writeLag = append(writeLag, written.Sub(*d.SeenAt))
		deliveryLag = append(deliveryLag, seen.Sub(written))
		writtenLag = append(writtenLag, written.Sub(d.DecidedAt))
	}
	return thousandResult{
		bankCallsPerApp: float64(calls) / benchApplications,
		writesPerApp:    float64(writes.n) / benchApplications,
		statusLag:       percentilesOf(statusLag),
		pollLag:         percentilesOf(pollLag),
		writeLag:        percentilesOf(writeLag),
		deliveryLag:     percentilesOf(deliveryLag),
		writtenLag:      percentilesOf(writtenLag),
		statusPatch:     percentilesOf(writes.statusTimes),
		wall:            wall,
	}
}

func benchNamespace(ctx context.Context, b *testing.B, env *testenv.Env) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "bench-"}}
	if err := env.Client.Create(ctx, ns); err != nil {
		b.Fatal(err)
	}
	return ns.Name
}

// benchCreate creates the applications with 32 concurrent clients, as a busy gateway would.
func benchCreate(ctx context.Context, b *testing.B, env *testenv.Env, ns string) {
	const workers = 32
	next := make(chan int)
	errs := make(chan error, workers)
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range next {
				app := &loansv1alpha1.LoanApplication{
					ObjectMeta: metav1.ObjectMeta{Name: "app-" + strconv.Itoa(i), Namespace: ns,
						Labels: map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelPending}},
					Spec: loansv1alpha1.LoanApplicationSpec{FirstName: "Ada", LastName: "Lovelace"},
				}
				if err := env.Client.Create(ctx, app); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	for i := range benchApplications {
		next <- i
	}
	close(next)
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// watchFinal records, by UID, when an informer first sees each application final; the channel
// closes when all are. An informer rather than a bare watch: the API server closes the watch of
// a client that falls behind during the burst, and the informer resumes where it stopped.
func watchFinal(ctx context.Context, b *testing.B, env *testenv.Env, ns string) (*finalTimes, <-chan struct{}) {
	informers, err := cache.New(env.Config, cache.Options{Scheme: scheme.Scheme,
		DefaultNamespaces: map[string]cache.Config{ns: {}}})
	if err != nil {
		b.Fatal(err)
	}
	informer, err := informers.GetInformer(ctx, &loansv1alpha1.LoanApplication{})
	if err != nil {
		b.Fatal(err)
	}
	final := &finalTimes{at: make(map[string]time.Time, benchApplications), labelled: make(map[string]bool, benchApplications),
		all: make(chan struct{})}
	if _, err := informer.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		UpdateFunc: func(_, obj any) { final.see(obj) },
	}); err != nil {
		b.Fatal(err)
	}
	go func() { _ = informers.Start(ctx) }()
	if !informers.WaitForCacheSync(ctx) {
		b.Fatal("the informer did not sync")
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-final.all:
		case <-ctx.Done():
		}
	}()
	return final, done
}

// finalTimes is when each application was first seen final; all closes once every
// application is final with its label in line.
type finalTimes struct {
	mu       sync.Mutex
	at       map[string]time.Time
	labelled map[string]bool
	all      chan struct{}
}

func (f *finalTimes) see(obj any) {
	app, ok := obj.(*loansv1alpha1.LoanApplication)
	if !ok || !app.Status.Phase.IsFinal() {
		return
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, seen := f.at[string(app.UID)]; !seen {
		f.at[string(app.UID)] = now
	}
	if app.Labels[loansv1alpha1.LabelStatus] == app.Status.Phase.LabelValue() && !f.labelled[string(app.UID)] {
		f.labelled[string(app.UID)] = true
		if len(f.labelled) == benchApplications {
			close(f.all)
		}
	}
}

func (f *finalTimes) snapshot() map[string]time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.at)
}

// benchWrites counts the manager's API writes, times its status writes, and records when the
// status write of each decision returned.
type benchWrites struct {
	mu              sync.Mutex
	n               int64
	statusTimes     []time.Duration
	decisionWritten map[string]time.Time
}

func (w *benchWrites) add() {
	w.mu.Lock()
	w.n++
	w.mu.Unlock()
}

func (w *benchWrites) timeStatus(obj client.Object, start time.Time) {
	end := time.Now()
	w.mu.Lock()
	defer w.mu.Unlock()
	w.statusTimes = append(w.statusTimes, end.Sub(start))
	if app, ok := obj.(*loansv1alpha1.LoanApplication); ok && app.Status.Phase.IsFinal() {
		w.decisionWritten[string(app.UID)] = end
	}
}

// startBenchManager starts a manager set up as cmd/controller's defaults set it up, and
// returns the function that stops it.
func startBenchManager(b *testing.B, env *testenv.Env, ns, bankURL string, writes *benchWrites) func() {
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = 2000, 4000 // --kube-api-qps, --kube-api-burst
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                 scheme.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(ns),
		NewClient: func(cfg *rest.Config, opts client.Options) (client.Client, error) {
			c, err := client.NewWithWatch(cfg, opts)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(c, interceptor.Funcs{
				Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, p client.Patch, o ...client.PatchOption) error {
					writes.add()
					return c.Patch(ctx, obj, p, o...)
				},
				SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, p client.Patch,
					o ...client.SubResourcePatchOption) error {
					writes.add()
					start := time.Now()
					err := c.SubResource(sub).Patch(ctx, obj, p, o...)
					if err == nil {
						writes.timeStatus(obj, start)
					}
					return err
				},
			}), nil
		},
	})
	if err != nil {
		b.Fatal(err)
	}
	bankClient, err := bank.New(bankURL, bank.Options{QPS: 2000, Burst: 100}) // --bank-qps, --bank-burst
	if err != nil {
		b.Fatal(err)
	}
	r := &LoanApplicationReconciler{Client: mgr.GetClient(), Scheme: mgr.GetScheme(), Bank: bankClient,
		Recorder: mgr.GetEventRecorder("loan-controller")}
	if err := r.SetupWithManager(mgr, Options{}); err != nil { // the program's defaults
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	return func() {
		cancel()
		if err := <-done; err != nil {
			b.Error(err)
		}
	}
}

// percentiles of a set of durations.
type percentiles struct{ p50, p99, max time.Duration }

func percentilesOf(d []time.Duration) percentiles {
	if len(d) == 0 {
		return percentiles{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration { return d[min(len(d)-1, int(q*float64(len(d))))] }
	return percentiles{p50: at(0.5), p99: at(0.99), max: d[len(d)-1]}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }
