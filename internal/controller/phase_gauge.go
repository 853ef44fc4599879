package controller

import (
	"context"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// phaseCollector reports loan_applications{phase} by counting the informer cache when
// Prometheus scrapes: always exact, and free between scrapes, where a gauge kept by hand would
// drift with every missed event and every restart.
type phaseCollector struct {
	reader client.Reader
	desc   *prometheus.Desc
}

var registerPhaseGaugeOnce sync.Once

// registerPhaseGauge registers the collector once per process (tests start several managers).
func registerPhaseGauge(reader client.Reader) {
	registerPhaseGaugeOnce.Do(func() {
		metrics.Registry.MustRegister(&phaseCollector{
			reader: reader,
			desc: prometheus.NewDesc("loan_applications", "LoanApplications in the controller's cache, by phase "+
				"(New: not yet submitted).", []string{"phase"}, nil),
		})
	})
}

func (c *phaseCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *phaseCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	var list loansv1alpha1.LoanApplicationList
	// Read-only use of the cached objects, so no deep copy of every application per scrape.
	if err := c.reader.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
		ch <- prometheus.NewInvalidMetric(c.desc, err)
		return
	}
	counts := map[string]int{"New": 0}
	for _, phase := range []loansv1alpha1.Phase{loansv1alpha1.PhasePending, loansv1alpha1.PhaseApproved,
		loansv1alpha1.PhaseRejected, loansv1alpha1.PhaseFailed} {
		counts[string(phase)] = 0
	}
	for i := range list.Items {
		phase := string(list.Items[i].Status.Phase)
		if phase == "" {
			phase = "New"
		}
		counts[phase]++
	}
	for phase, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, float64(n), phase)
	}
}
