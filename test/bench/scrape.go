package main

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// metricFamilies is one scrape of a Prometheus endpoint.
type metricFamilies map[string]*dto.MetricFamily

// scrape reads a /metrics endpoint in the Prometheus text format.
func scrape(ctx context.Context, httpClient *http.Client, url string) (metricFamilies, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "text/plain")
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parsing %s: %w", url, err)
	}
	return families, nil
}

// sum adds the values of every series of a counter or gauge whose labels pass keep (nil keeps
// all). A missing family sums to 0: a counter nobody has incremented yet is not exported.
func (m metricFamilies) sum(name string, keep func(labels map[string]string) bool) float64 {
	family, ok := m[name]
	if !ok {
		return 0
	}
	total := 0.0
	for _, metric := range family.GetMetric() {
		if keep != nil && !keep(labelsOf(metric)) {
			continue
		}
		switch {
		case metric.GetCounter() != nil:
			total += metric.GetCounter().GetValue()
		case metric.GetGauge() != nil:
			total += metric.GetGauge().GetValue()
		case metric.GetUntyped() != nil:
			total += metric.GetUntyped().GetValue()
		}
	}
	return total
}

// require is the sum of every series of a family that must be there: a program that does not
// export it measures nothing, and its 0 would pass for a value.
func (m metricFamilies) require(name string) (float64, error) {
	return m.requireWhere(name, nil)
}

// requireWhere is sum of a family that must be there, over the series whose labels pass keep.
func (m metricFamilies) requireWhere(name string, keep func(labels map[string]string) bool) (float64, error) {
	if _, ok := m[name]; !ok {
		return 0, fmt.Errorf("the metric family %s is absent", name)
	}
	return m.sum(name, keep), nil
}

// histogram adds the sums and the counts of every series of a histogram whose labels pass keep
// (nil keeps all): the delta of two scrapes divided is the mean over the interval.
func (m metricFamilies) histogram(name string, keep func(labels map[string]string) bool) (sum, count float64) {
	family, ok := m[name]
	if !ok {
		return 0, 0
	}
	for _, metric := range family.GetMetric() {
		if h := metric.GetHistogram(); h != nil && (keep == nil || keep(labelsOf(metric))) {
			sum += h.GetSampleSum()
			count += float64(h.GetSampleCount())
		}
	}
	return sum, count
}

func labelsOf(metric *dto.Metric) map[string]string {
	out := make(map[string]string, len(metric.GetLabel()))
	for _, pair := range metric.GetLabel() {
		out[pair.GetName()] = pair.GetValue()
	}
	return out
}

// labelIn keeps the series whose label `name` is one of values.
func labelIn(name string, values ...string) func(map[string]string) bool {
	return func(labels map[string]string) bool {
		for _, v := range values {
			if labels[name] == v {
				return true
			}
		}
		return false
	}
}

// residentBytes is a process's resident set size from /proc/<pid>/status (VmRSS).
func residentBytes(pid int) (float64, error) {
	if pid == 0 {
		return 0, fmt.Errorf("the process is not running")
	}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	field := procField(string(data), "VmRSS")
	kib, err := strconv.ParseFloat(strings.TrimSuffix(field, " kB"), 64)
	if err != nil {
		return 0, fmt.Errorf("VmRSS of %d: %q: %w", pid, field, err)
	}
	return kib * 1024, nil
}
