package main

import (
	"math"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// Two scrapes of the API server's histogram: between them, 100 creates (10 under 5 ms, 80 under
// 25 ms, 10 under 50 ms) and 10 status patches over a second; the label patches and the
// ConfigMaps' requests must not be counted.
const scrapeBefore = `# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="",verb="POST",le="0.005"} 5
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="",verb="POST",le="0.025"} 5
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="",verb="POST",le="0.05"} 5
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="",verb="POST",le="1"} 5
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="",verb="POST",le="+Inf"} 5
apiserver_request_duration_seconds_sum{resource="loanapplications",subresource="",verb="POST"} 0.01
apiserver_request_duration_seconds_count{resource="loanapplications",subresource="",verb="POST"} 5
apiserver_request_duration_seconds_bucket{resource="configmaps",subresource="",verb="POST",le="0.005"} 0
apiserver_request_duration_seconds_bucket{resource="configmaps",subresource="",verb="POST",le="0.025"} 0
apiserver_request_duration_seconds_bucket{resource="configmaps",subresource="",verb="POST",le="0.05"} 0
apiserver_request_duration_seconds_bucket{resource="configmaps",subresource="",verb="POST",le="1"} 0
apiserver_request_duration_seconds_bucket{resource="configmaps",subresource="",verb="POST",le="+Inf"} 0
apiserver_request_duration_seconds_sum{resource="configmaps",subresource="",verb="POST"} 0
apiserver_request_duration_seconds_count{resource="configmaps",subresource="",verb="POST"} 0
`

const scrapeAfter = `# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="",verb="POST",le="0.005"} 15
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="",verb="POST",le="0.025"} 95
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="",verb="POST",le="0.05"} 105
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="",verb="POST",le="1"} 105
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="",verb="POST",le="+Inf"} 105
apiserver_request_duration_seconds_sum{resource="loanapplications",subresource="",verb="POST"} 2
apiserver_request_duration_seconds_count{resource="loanapplications",subresource="",verb="POST"} 105
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="status",verb="PATCH",le="0.005"} 0
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="status",verb="PATCH",le="0.025"} 0
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="status",verb="PATCH",le="0.05"} 0
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="status",verb="PATCH",le="1"} 10
apiserver_request_duration_seconds_bucket{resource="loanapplications",subresource="status",verb="PATCH",le="+Inf"} 10
apiserver_request_duration_seconds_sum{resource="loanapplications",subresource="status",verb="PATCH"} 6
apiserver_request_duration_seconds_count{resource="loanapplications",subresource="status",verb="PATCH"} 10
apiserver_request_duration_seconds_bucket{resource="configmaps",subresource="",verb="POST",le="0.005"} 0
apiserver_request_duration_seconds_bucket{resource="configmaps",subresource="",verb="POST",le="0.025"} 0
apiserver_request_duration_seconds_bucket{resource="configmaps",subresource="",verb="POST",le="0.05"} 0
apiserver_request_duration_seconds_bucket{resource="configmaps",subresource="",verb="POST",le="1"} 500
apiserver_request_duration_seconds_bucket{resource="configmaps",subresource="",verb="POST",le="+Inf"} 500
apiserver_request_duration_seconds_sum{resource="configmaps",subresource="",verb="POST"} 300
apiserver_request_duration_seconds_count{resource="configmaps",subresource="",verb="POST"} 500
`

func parseScrape(t *testing.T, text string) metricFamilies {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatal(err)
	}
	return families
}

func TestAPIWriteLatencyFromHistogramDeltas(t *testing.T) {
	before, after := apiWriteLatenciesOf(parseScrape(t, scrapeBefore)), apiWriteLatenciesOf(parseScrape(t, scrapeAfter))
	creates := after["create"].since(before["create"])
	// Rank 50 of 100 lies in the (5 ms, 25 ms] bucket, 40 of its 80: 5 + 20 * 40/80 = 15 ms.
	// Rank 99 lies in (25 ms, 50 ms], 9 of its 10: 25 + 25 * 9/10 = 47.5 ms.
	for _, c := range []struct {
		q    float64
		want float64
	}{{0.5, 0.015}, {0.99, 0.0475}, {0.1, 0.005}} {
		got := creates.quantile(c.q)
		if !got.ok() || math.Abs(got.value-c.want) > 1e-9 {
			t.Errorf("creates: q%v = %+v, want %v s", c.q, got, c.want)
		}
	}
	// Status patches: all 10 in (50 ms, 1 s]: the median at half of it.
	if got := after["status PATCH"].since(before["status PATCH"]).quantile(0.5); !got.ok() || math.Abs(got.value-0.525) > 1e-9 {
		t.Errorf("status patches: median %+v, want 0.525 s", got)
	}
	if got := after["label PATCH"].since(before["label PATCH"]).quantile(0.5); got.ok() {
		t.Errorf("label patches: %v, want not measured (none observed)", got.value)
	}
}

func TestAQuantileBeyondTheLastBucketIsNotMeasured(t *testing.T) {
	b := buckets{0.005: 0, 1: 90, math.Inf(1): 100}
	if got := b.quantile(0.99); got.ok() {
		t.Errorf("p99 beyond 1 s: %v, want not measured", got.value)
	}
	if got := b.quantile(0.5); !got.ok() {
		t.Errorf("p50 within the buckets: %s", got.missing)
	}
}

func TestWithinIsTheShareAtOrBelowABound(t *testing.T) {
	b := buckets{0.05: 90, 0.1: 99, 0.25: 100, math.Inf(1): 100}
	if got := b.within(0.1); !got.ok() || got.value != 0.99 {
		t.Errorf("within 100 ms: %+v, want 0.99", got)
	}
	if got := b.within(0.2); got.ok() {
		t.Errorf("within a bound the histogram does not have: %+v, want not measured", got)
	}
	if got := (buckets{0.1: 0, math.Inf(1): 0}).within(0.1); got.ok() {
		t.Errorf("with nothing observed: %+v, want not measured", got)
	}
}
