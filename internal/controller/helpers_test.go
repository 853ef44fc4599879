package controller

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/interceptor"
	"sigs.k8s.io/controller-runtime/pkg/config"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
	"github.com/lendo/loan-operator/internal/banksim"
)

// refusedLastName marks applications the test bank refuses for good. The simulator, like the
// real bank, refuses only a payload whose id is not a UUID, and the controller always sends
// the object's UID; so the test bank's front door replaces the id of these applications with
// "not-a-uuid", and the simulator's own 400 "the request payload is not valid." answers.
const refusedLastName = "Refused"

// testBank is the bank simulator served over real HTTP on a fixed loopback address, so that a
// restart can be a fresh simulator on the same address, as a restarted bank pod would be.
// Its front door counts the calls per application id (the simulator counts per lifetime).
type testBank struct {
	addr string
	cfg  banksim.Config

	mu           sync.Mutex
	sim          *banksim.Simulator
	server       *http.Server
	submits      map[string]int
	polls        map[string]int
	order        []string // "submit <id>" and "poll <id>", as the calls came
	serverClosed chan struct{}
}

// startBank serves a simulator on 127.0.0.1 until the spec ends.
func startBank(cfg banksim.Config) *testBank {
	listener, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	b := &testBank{addr: listener.Addr().String(), cfg: cfg, submits: map[string]int{}, polls: map[string]int{}}
	b.serve(listener)
	DeferCleanup(b.close)
	return b
}

func (b *testBank) serve(listener net.Listener) {
	sim := banksim.New(b.cfg)
	server := &http.Server{Handler: b.frontDoor(sim.Handler()), ReadHeaderTimeout: 5 * time.Second}
	closed := make(chan struct{})
	go func() {
		defer GinkgoRecover()
		defer close(closed)
		Expect(server.Serve(listener)).To(MatchError(http.ErrServerClosed))
	}()
	b.mu.Lock()
	b.sim, b.server, b.serverClosed = sim, server, closed
	b.mu.Unlock()
}

// restart stops the bank, dropping its connections and everything it knew, and starts a fresh
// simulator on the same address.
func (b *testBank) restart() {
	b.close()
	listener, err := net.Listen("tcp", b.addr)
	Expect(err).NotTo(HaveOccurred())
	b.serve(listener)
}

func (b *testBank) close() {
	b.mu.Lock()
	server, closed := b.server, b.serverClosed
	b.mu.Unlock()
	Expect(server.Close()).To(Succeed())
	Eventually(closed).Should(BeClosed())
}

func (b *testBank) url() string { return "http://" + b.addr }

func (b *testBank) simulator() *banksim.Simulator {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.sim
}

// calls returns how many submissions and polls of the application id reached the bank.
func (b *testBank) calls(id string) (submits, polls int) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.submits[id], b.polls[id]
}

// totalCalls is every call of the bank API since the test bank started, across restarts.
func (b *testBank) totalCalls() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for _, c := range b.submits {
		n += c
	}
	for _, c := range b.polls {
		n += c
	}
	return n
}

// frontDoor counts each call by application id and mangles the id of refused applications.
func (b *testBank) frontDoor(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case r.Method == http.MethodPost && r.URL.Path == "/api/applications":
			body, err := io.ReadAll(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			var app bank.Application
			if json.Unmarshal(body, &app) == nil {
				b.count(b.submits, "submit", app.ID)
				if app.LastName == refusedLastName {
					app.ID = "not-a-uuid"
					body, _ = json.Marshal(app)
				}
			}
			r.Body, r.ContentLength = io.NopCloser(bytes.NewReader(body)), int64(len(body))
		case r.Method == http.MethodGet && r.URL.Path == "/api/jobs":
			b.count(b.polls, "poll", r.URL.Query().Get("application_id"))
		}
		next.ServeHTTP(w, r)
	})
}

func (b *testBank) count(m map[string]int, call, id string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	m[id]++
	b.order = append(b.order, call+" "+id)
}

// callOrder returns the calls that reached the bank, in order: "submit <id>" or "poll <id>".
func (b *testBank) callOrder() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]string(nil), b.order...)
}

// writeCounter counts the API writes of the controller per application, and can make the first
// status write after a submission fail (a crash between the bank's answer and the status write,
// as far as the bank and the API server can tell).
type writeCounter struct {
	mu              sync.Mutex
	status, label   map[string]int
	order           []string // "status <name>" and "label <name>", as the writes came
	failFirstSubmit bool
	failed          map[string]bool
}

func newWriteCounter() *writeCounter {
	return &writeCounter{status: map[string]int{}, label: map[string]int{}, failed: map[string]bool{}}
}

// errInjected is the status write failure the tests inject.
var errInjected = errors.New("injected: the status write was lost")

func (w *writeCounter) funcs() interceptor.Funcs {
	return interceptor.Funcs{
		Patch: func(ctx context.Context, c client.WithWatch, obj client.Object, patch client.Patch, opts ...client.PatchOption) error {
			w.add(w.label, "label", obj.GetName())
			return c.Patch(ctx, obj, patch, opts...)
		},
		SubResourcePatch: func(ctx context.Context, c client.Client, sub string, obj client.Object, patch client.Patch,
			opts ...client.SubResourcePatchOption) error {
			if w.shouldFail(obj) {
				return errInjected
			}
			w.add(w.status, "status", obj.GetName())
			return c.SubResource(sub).Patch(ctx, obj, patch, opts...)
		},
	}
}

func (w *writeCounter) shouldFail(obj client.Object) bool {
	app, ok := obj.(*loansv1alpha1.LoanApplication)
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.failFirstSubmit || !ok || app.Status.Phase != loansv1alpha1.PhasePending || w.failed[app.Name] {
		return false
	}
	w.failed[app.Name] = true
	return true
}

func (w *writeCounter) add(m map[string]int, write, name string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	m[name]++
	w.order = append(w.order, write+" "+name)
}

// writeOrder returns the writes that reached the API server, in order: "status <name>" or
// "label <name>".
func (w *writeCounter) writeOrder() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.order...)
}

// injectedFailure reports whether a status write of the named application was made to fail.
func (w *writeCounter) injectedFailure(name string) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.failed[name]
}

// writes returns the status and label writes that reached the API server for one application.
func (w *writeCounter) writes(name string) (status, label int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.status[name], w.label[name]
}

// managerSettings shape one test manager.
type managerSettings struct {
	namespace   string
	bankURL     string
	bankTimeout time.Duration
	timing      Timing
	writes      *writeCounter
	restConfig  *rest.Config // env.Config when nil
	workers     int          // MaxConcurrentReconciles; 16 when zero
}

// testManager is a controller-runtime manager running the reconciler, as cmd/controller runs
// it: informer cache, workqueue, event recorder, bank client over HTTP.
type testManager struct {
	cancel     context.CancelFunc
	done       chan struct{}
	cache      cache.Cache
	reconciler *LoanApplicationReconciler
}

// shortTiming keeps the specs quick against a simulator deciding in 200–800ms.
var shortTiming = Timing{
	FirstPollDelay: 200 * time.Millisecond,
	PollInterval:   100 * time.Millisecond,
	NotFoundGrace:  500 * time.Millisecond,
	Jitter:         0.2,
}

// startManager starts a manager watching one namespace; the spec's cleanup stops it.
func startManager(s managerSettings) *testManager {
	if s.writes == nil {
		s.writes = newWriteCounter()
	}
	if s.restConfig == nil {
		s.restConfig = env.Config
	}
	if s.workers == 0 {
		s.workers = 16
	}
	mgr, err := ctrl.NewManager(s.restConfig, ctrl.Options{
		Scheme:                 scheme.Scheme,
		Metrics:                metricsserver.Options{BindAddress: "0"},
		HealthProbeBindAddress: "0",
		Cache:                  CacheOptions(s.namespace),
		// One process starts many managers with the same controller name.
		Controller: config.Controller{SkipNameValidation: ptr.To(true)},
		NewClient: func(cfg *rest.Config, opts client.Options) (client.Client, error) {
			c, err := client.NewWithWatch(cfg, opts)
			if err != nil {
				return nil, err
			}
			return interceptor.NewClient(c, s.writes.funcs()), nil
		},
	})
	Expect(err).NotTo(HaveOccurred())
	bankClient, err := bank.New(s.bankURL, bank.Options{Timeout: s.bankTimeout})
	Expect(err).NotTo(HaveOccurred())
	r := &LoanApplicationReconciler{
		Client:   mgr.GetClient(),
		Scheme:   mgr.GetScheme(),
		Bank:     bankClient,
		Recorder: mgr.GetEventRecorder("loan-controller"),
		Timing:   s.timing,
	}
	Expect(r.SetupWithManager(mgr, Options{
		MaxConcurrentReconciles: s.workers,
		RetryBaseDelay:          20 * time.Millisecond,
		RetryMaxDelay:           300 * time.Millisecond,
	})).To(Succeed())

	ctx, cancel := context.WithCancel(context.Background())
	m := &testManager{cancel: cancel, done: make(chan struct{}), cache: mgr.GetCache(), reconciler: r}
	go func() {
		defer GinkgoRecover()
		defer close(m.done)
		Expect(mgr.Start(ctx)).To(Succeed())
	}()
	DeferCleanup(m.stop)
	return m
}

// stop stops the manager and waits until it has stopped; stopping twice is harmless.
func (m *testManager) stop() {
	m.cancel()
	Eventually(m.done).WithTimeout(30 * time.Second).Should(BeClosed())
}

// newNamespace creates a namespace for one spec.
func newNamespace(ctx context.Context) string {
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "loans-"}}
	Expect(env.Client.Create(ctx, ns)).To(Succeed())
	return ns.Name
}

// createApplications creates n applications named prefix-0..n-1; withLabel says whether they
// come with the pending label (as the gateway creates them) or without (as kubectl may).
func createApplications(ctx context.Context, namespace, prefix string, n int, withLabel bool) []*loansv1alpha1.LoanApplication {
	apps := make([]*loansv1alpha1.LoanApplication, 0, n)
	for i := range n {
		apps = append(apps, createApplication(ctx, namespace, prefix+"-"+strconv.Itoa(i), "Ada", "Lovelace", withLabel))
	}
	return apps
}

func createApplication(ctx context.Context, namespace, name, first, last string, withLabel bool) *loansv1alpha1.LoanApplication {
	app := &loansv1alpha1.LoanApplication{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: namespace},
		Spec:       loansv1alpha1.LoanApplicationSpec{FirstName: first, LastName: last},
	}
	if withLabel {
		app.Labels = map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelPending}
	}
	Expect(env.Client.Create(ctx, app)).To(Succeed())
	return app
}

// fetch reads the application from the API server (not a cache).
func fetch(g Gomega, ctx context.Context, app *loansv1alpha1.LoanApplication) *loansv1alpha1.LoanApplication {
	got := &loansv1alpha1.LoanApplication{}
	g.Expect(env.Client.Get(ctx, client.ObjectKeyFromObject(app), got)).To(Succeed())
	return got
}

// finalWithin bounds the wait for applications to end final in the manager specs.
const finalWithin = 30 * time.Second

// eventuallyAllFinal waits until every application is final with its label in line.
func eventuallyAllFinal(ctx context.Context, apps []*loansv1alpha1.LoanApplication) {
	GinkgoHelper()
	Eventually(func(g Gomega) {
		for _, app := range apps {
			got := fetch(g, ctx, app)
			g.Expect(got.Status.Phase.IsFinal()).To(BeTrue(), "%s is %q", app.Name, got.Status.Phase)
			g.Expect(got.Labels).To(HaveKeyWithValue(loansv1alpha1.LabelStatus, got.Status.Phase.LabelValue()))
		}
	}).WithTimeout(finalWithin).WithPolling(100 * time.Millisecond).Should(Succeed())
}

// occurrences counts the Events of each reason about the named object, through the API server,
// counting an Event series as its number of occurrences.
func occurrences(g Gomega, ctx context.Context, namespace, name string) map[string]int32 {
	var list eventsv1.EventList
	g.Expect(env.Client.List(ctx, &list, client.InNamespace(namespace))).To(Succeed())
	counts := map[string]int32{}
	for _, e := range list.Items {
		if e.Regarding.Name != name {
			continue
		}
		n := int32(1)
		if e.Series != nil {
			n = e.Series.Count
		}
		counts[e.Reason] += n
	}
	return counts
}
