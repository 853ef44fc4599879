package controller

import (
	"github.com/prometheus/client_golang/prometheus"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// The controller's own metrics, registered with controller-runtime's registry next to its
// workqueue and reconcile metrics and the bank client's loan_bank_*. Every label is bounded.
var (
	submissionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loan_submissions_total",
		Help: "Submissions of applications to the bank, by result: accepted, already_submitted, invalid, refused, throttled, error.",
	}, []string{"result"})

	resubmissionsTotal = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "loan_resubmissions_total",
		Help: "Applications submitted again because the bank had forgotten them (it restarted).",
	})

	decisionsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loan_decisions_total",
		Help: "Final outcomes recorded, by phase: Approved, Rejected, Failed.",
	}, []string{"phase"})

	decisionSeconds = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "loan_decision_seconds",
		Help:    "Time from the bank accepting an application to the controller recording its decision.",
		Buckets: []float64{1, 2.5, 5, 7.5, 10, 12.5, 15, 17.5, 20, 25, 30, 45, 60, 120, 300},
	})

	bankPollsTotal = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "loan_bank_polls_total",
		Help: "Polls of the bank's job, by what they found: pending, completed, rejected, not_found, refused, throttled, error.",
	}, []string{"result"})

	pollIntervalSeconds = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "loan_poll_interval_seconds",
		Help: "The wait between two polls of a pending application now: --poll-interval, stretched when the pending " +
			"applications would poll faster than --poll-budget of --bank-qps (up to --max-poll-interval).",
	})
)

func init() {
	metrics.Registry.MustRegister(submissionsTotal, resubmissionsTotal, decisionsTotal, decisionSeconds, bankPollsTotal,
		pollIntervalSeconds)
}

// recordCounts adds the outcomes of one pass's bank calls to the metrics: the calls were made,
// whether or not the writes that follow succeed.
func recordCounts(c counts) {
	if c.submission != "" {
		submissionsTotal.WithLabelValues(c.submission).Inc()
	}
	if c.poll != "" {
		bankPollsTotal.WithLabelValues(c.poll).Inc()
	}
	if c.resubmitted {
		resubmissionsTotal.Inc()
	}
}

// recordDecision counts a final outcome once its status is written.
func recordDecision(c counts) {
	if c.decided == "" {
		return
	}
	decisionsTotal.WithLabelValues(string(c.decided)).Inc()
	if c.decided != loansv1alpha1.PhaseFailed {
		decisionSeconds.Observe(c.decidedIn.Seconds())
	}
}
