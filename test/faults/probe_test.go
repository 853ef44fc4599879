package faults_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// get is GET url: the status code and the body (bounded), or code 0 and the error.
func get(ctx context.Context, url string) (int, string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0, err.Error()
	}
	return send(req)
}

func send(req *http.Request) (int, string) {
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, err.Error()
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	return resp.StatusCode, string(data)
}

// probeAnswer is one answer of the gateway while the API server was away.
type probeAnswer struct {
	code        int
	body        string
	contentType string
	took        time.Duration
}

// outageProbe is what the gateway answered while the API server was away.
type outageProbe struct {
	creates, lists, healthz []probeAnswer
}

// probeGatewayDuringOutage sends a create, a list and a /healthz every half second for d.
func probeGatewayDuringOutage(ctx context.Context, gatewayURL string, d time.Duration) *outageProbe {
	p := &outageProbe{}
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		p.creates = append(p.creates, timed(ctx, http.MethodPost, gatewayURL+"/api/v1/applications",
			`{"first_name":"During","last_name":"Outage"}`))
		p.lists = append(p.lists, timed(ctx, http.MethodGet, gatewayURL+"/api/v1/applications?limit=5", ""))
		p.healthz = append(p.healthz, timed(ctx, http.MethodGet, gatewayURL+"/healthz", ""))
		time.Sleep(500 * time.Millisecond)
	}
	return p
}

func timed(ctx context.Context, method, url, body string) probeAnswer {
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader([]byte(body)))
	if err != nil {
		return probeAnswer{body: err.Error()}
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	start := time.Now()
	resp, err := httpClient.Do(req)
	if err != nil {
		return probeAnswer{body: err.Error(), took: time.Since(start)}
	}
	defer func() { _ = resp.Body.Close() }()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return probeAnswer{code: resp.StatusCode, body: string(data), contentType: resp.Header.Get("Content-Type"), took: time.Since(start)}
}

// quickAnswer is the longest a create may take to be refused while the API server is away: the
// gateway's --request-timeout (5s) plus room for a loaded machine. A hang would reach the
// client's 15s timeout.
const quickAnswer = 7 * time.Second

// expectQuick asserts that every create was refused with a 503 problem document in time, and
// that the gateway stayed alive (/healthz 200) throughout.
func (p *outageProbe) expectQuick() {
	GinkgoHelper()
	Expect(p.creates).NotTo(BeEmpty())
	for _, a := range p.creates {
		Expect(a.code).To(Equal(http.StatusServiceUnavailable), "a create while the API server is away: %s", a.body)
		Expect(a.contentType).To(Equal("application/problem+json"))
		Expect(a.body).To(ContainSubstring("retry"))
		Expect(a.took).To(BeNumerically("<", quickAnswer), "a create waited %s for an API server that is away", a.took)
	}
	for _, a := range p.healthz {
		Expect(a.code).To(Equal(http.StatusOK), "/healthz while the API server is away: %s", a.body)
	}
	for _, a := range p.lists {
		// A list is served from the informer cache: the last known state (200), or a 503.
		Expect(a.code).To(BeElementOf(http.StatusOK, http.StatusServiceUnavailable), "a list while the API server is away: %s", a.body)
	}
}

// figures sums the probe up for the report.
func (p *outageProbe) figures() map[string]string {
	return map[string]string{
		"creates during the outage": codesOf(p.creates) + ", slowest " + slowest(p.creates).String(),
		"lists during the outage":   codesOf(p.lists) + ", slowest " + slowest(p.lists).String(),
		"healthz during the outage": codesOf(p.healthz),
	}
}

func codesOf(answers []probeAnswer) string {
	counts := map[int]int{}
	for _, a := range answers {
		counts[a.code]++
	}
	parts := make([]string, 0, len(counts))
	for code, n := range counts {
		parts = append(parts, fmt.Sprintf("%dx %s", n, strconv.Itoa(code)))
	}
	sort.Strings(parts)
	return strings.Join(parts, " ")
}

func slowest(answers []probeAnswer) time.Duration {
	var most time.Duration
	for _, a := range answers {
		most = max(most, a.took)
	}
	return most.Round(time.Millisecond)
}
