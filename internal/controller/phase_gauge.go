package controller

import (
	"context"
	"sync"
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/apimachinery/pkg/types"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// phaseNew is the gauge's name for an application not submitted yet (no phase).
const phaseNew = "New"

// gaugedPhases are the gauge's series, every one reported, at zero too, so that a dashboard
// sees a series from the start.
var gaugedPhases = []string{phaseNew, string(loansv1alpha1.PhasePending), string(loansv1alpha1.PhaseApproved),
	string(loansv1alpha1.PhaseRejected), string(loansv1alpha1.PhaseFailed)}

// phaseGaugeHelp is the help text of loan_applications; README.md's metrics table says the same.
const phaseGaugeHelp = "LoanApplications the controller is working on (its cache: every application whose status " +
	"label is not final), by phase. New: not yet submitted; Pending: waiting for the bank; Approved, Rejected, Failed: " +
	"decided, label not yet written (they leave the cache with it). Final totals are loan_decisions_total."

// phaseCounts counts the cached applications by phase. The informer's event handlers keep it,
// so a scrape reads a handful of numbers instead of listing the cache; it follows the cache
// exactly, since it is told of every object that enters, changes in or leaves it, and it starts
// again with the cache at every restart.
type phaseCounts struct {
	mu sync.Mutex
	// phases is each cached application's phase as counted, so that an event counts the
	// change from what was counted, whatever the event's own copy of the old object says.
	phases map[types.NamespacedName]string
	counts map[string]int
}

func newPhaseCounts() *phaseCounts {
	return &phaseCounts{phases: map[types.NamespacedName]string{}, counts: map[string]int{}}
}

// OnAdd, OnUpdate and OnDelete make phaseCounts a toolscache.ResourceEventHandler.
func (c *phaseCounts) OnAdd(obj any, _ bool) { c.set(obj) }
func (c *phaseCounts) OnUpdate(_, obj any)   { c.set(obj) }
func (c *phaseCounts) OnDelete(obj any) {
	if tombstone, ok := obj.(toolscache.DeletedFinalStateUnknown); ok {
		obj = tombstone.Obj
	}
	app, ok := obj.(client.Object)
	if !ok {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	key := client.ObjectKeyFromObject(app)
	if phase, counted := c.phases[key]; counted {
		c.counts[phase]--
		delete(c.phases, key)
	}
}

func (c *phaseCounts) set(obj any) {
	app, ok := obj.(*loansv1alpha1.LoanApplication)
	if !ok {
		return
	}
	phase := gaugePhase(app.Status.Phase)
	c.mu.Lock()
	defer c.mu.Unlock()
	key := client.ObjectKeyFromObject(app)
	if old, counted := c.phases[key]; counted {
		c.counts[old]--
	}
	c.phases[key] = phase
	c.counts[phase]++
}

// count is how many cached applications are in phase.
func (c *phaseCounts) count(phase string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[phase]
}

// snapshot is the count of each gauged phase.
func (c *phaseCounts) snapshot() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make(map[string]int, len(gaugedPhases))
	for _, phase := range gaugedPhases {
		out[phase] = c.counts[phase]
	}
	return out
}

func gaugePhase(p loansv1alpha1.Phase) string {
	if p == "" {
		return phaseNew
	}
	return string(p)
}

// phaseCollector reports loan_applications{phase} from the counts of the latest manager set
// up: a process runs one, tests start several one after the other.
type phaseCollector struct {
	counts atomic.Pointer[phaseCounts]
	desc   *prometheus.Desc
}

var (
	phaseGauge = &phaseCollector{
		desc: prometheus.NewDesc("loan_applications", phaseGaugeHelp, []string{"phase"}, nil),
	}
	registerPhaseGaugeOnce sync.Once
)

// trackPhases makes the gauge report counts, registering it once per process.
func trackPhases(counts *phaseCounts) {
	phaseGauge.counts.Store(counts)
	registerPhaseGaugeOnce.Do(func() { metrics.Registry.MustRegister(phaseGauge) })
}

func (c *phaseCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *phaseCollector) Collect(ch chan<- prometheus.Metric) {
	counts := c.counts.Load()
	if counts == nil {
		return
	}
	for phase, n := range counts.snapshot() {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), phase)
	}
}

// countPhases keeps the gauge's counts from the cache's LoanApplication informer, the one the
// controller watches, and answers them (the pacer reads them too).
func countPhases(ctx context.Context, c cache.Cache) (*phaseCounts, error) {
	informer, err := c.GetInformer(ctx, &loansv1alpha1.LoanApplication{})
	if err != nil {
		return nil, err
	}
	counts := newPhaseCounts()
	if _, err := informer.AddEventHandler(counts); err != nil {
		return nil, err
	}
	trackPhases(counts)
	return counts, nil
}
