package main

import (
	"math"
	"slices"
	"strconv"
)

// buckets is a histogram's cumulative counts by upper bound (+Inf included), summed over the
// series kept: what one scrape says.
type buckets map[float64]float64

// histogramBuckets sums the cumulative bucket counts of every series of a histogram whose
// labels pass keep; nil when the family is absent.
func (m metricFamilies) histogramBuckets(name string, keep func(labels map[string]string) bool) buckets {
	family, ok := m[name]
	if !ok {
		return nil
	}
	out := buckets{}
	for _, metric := range family.GetMetric() {
		h := metric.GetHistogram()
		if h == nil || (keep != nil && !keep(labelsOf(metric))) {
			continue
		}
		hasInf := false
		for _, b := range h.GetBucket() {
			out[b.GetUpperBound()] += float64(b.GetCumulativeCount())
			hasInf = hasInf || math.IsInf(b.GetUpperBound(), 1)
		}
		// The text format lists the +Inf bucket; the protobuf one leaves it to the count.
		if !hasInf {
			out[math.Inf(1)] += float64(h.GetSampleCount())
		}
	}
	return out
}

// since is the histogram of the observations made between an earlier scrape and this one.
func (b buckets) since(earlier buckets) buckets {
	out := buckets{}
	for bound, n := range b {
		out[bound] = n - earlier[bound]
	}
	return out
}

// quantile is the q-th quantile (0 < q < 1) of the observations, in the histogram's unit, by
// linear interpolation inside the bucket that holds it, as Prometheus's histogram_quantile
// does. No observation, or a quantile beyond the largest finite bound, measures nothing: the
// histogram cannot say how far beyond.
func (b buckets) quantile(q float64) reading {
	bounds := make([]float64, 0, len(b))
	for bound := range b {
		bounds = append(bounds, bound)
	}
	slices.Sort(bounds)
	if len(bounds) == 0 || b[bounds[len(bounds)-1]] <= 0 {
		return notMeasured("no request observed")
	}
	total := b[bounds[len(bounds)-1]]
	rank := q * total
	lower, below := 0.0, 0.0
	for _, bound := range bounds {
		count := b[bound]
		if count >= rank && count > below {
			if math.IsInf(bound, 1) {
				return notMeasured("p%v is above the largest bucket (%v s)", 100*q, lower)
			}
			return measured(lower + (bound-lower)*(rank-below)/(count-below))
		}
		lower, below = bound, count
	}
	return notMeasured("the buckets do not add up")
}

// within is the share of the observations at or below bound, which must be one of the
// histogram's bounds: a histogram tells nothing finer.
func (b buckets) within(bound float64) reading {
	total := b[math.Inf(1)]
	at, ok := b[bound]
	switch {
	case total <= 0:
		return notMeasured("nothing observed")
	case !ok:
		return notMeasured("%v is not a bound of the buckets", bound)
	}
	return measured(at / total)
}

// requestDurations is the API server's latency histogram, labelled by verb, resource and
// subresource: its own measure of each request, from the start of its handling to its answer.
const requestDurations = "apiserver_request_duration_seconds"

// loanApplications is the resource's name in the API server's metrics and RBAC rules.
const loanApplications = "loanapplications"

// createKind names the create among apiWriteKinds; patchVerb is the verb of both PATCHes.
const (
	createKind = "create"
	patchVerb  = "PATCH"
)

// apiWriteKinds are the writes of an application, as apiserver_request_duration_seconds labels
// them: the gateway's create, the controller's status and label PATCHes.
var apiWriteKinds = []struct {
	name              string
	verb, subresource string
}{
	{createKind, "POST", ""},
	{"status PATCH", patchVerb, "status"},
	{"label PATCH", patchVerb, ""},
}

// writesOf keeps the series of LoanApplication requests of one verb and subresource.
func writesOf(verb, subresource string) func(map[string]string) bool {
	return func(l map[string]string) bool {
		return l["resource"] == loanApplications && l["verb"] == verb && l["subresource"] == subresource
	}
}

// apiWriteLatencies is, for each kind of write, the histogram of one scrape.
type apiWriteLatencies map[string]buckets

func apiWriteLatenciesOf(m metricFamilies) apiWriteLatencies {
	out := apiWriteLatencies{}
	for _, kind := range apiWriteKinds {
		out[kind.name] = m.histogramBuckets(requestDurations, writesOf(kind.verb, kind.subresource))
	}
	return out
}

// reportAPIWriteLatency adds the API server's p50 and p99 of each kind of write between two
// scrapes, in ms.
func (r *Report) reportAPIWriteLatency(sc string, before, after apiWriteLatencies) {
	for _, kind := range apiWriteKinds {
		d := after[kind.name].since(before[kind.name])
		note := ""
		if kind.name == createKind {
			note = requestDurations + "{resource=loanapplications}, delta of the buckets between a scrape before and one after " +
				"the scenario, interpolated within a bucket (bounds 5, 25, 50, 100, 200, 400 ms, ...)"
		}
		for _, p := range []float64{50, 99} {
			v := d.quantile(p / 100).then(func(s float64) float64 { return 1000 * s })
			r.addReading(sc, "API server latency p"+strconv.Itoa(int(p))+" of a "+kind.name, v, "ms", note)
			note = ""
		}
	}
}
