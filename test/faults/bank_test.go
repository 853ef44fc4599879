package faults_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	"github.com/lendo/loan-operator/internal/banksim"
	"github.com/lendo/loan-operator/test/stacktest"
)

// bankAdmin drives the bank simulator's admin endpoints: faults on demand, its counts, amnesia.
type bankAdmin struct{ url string }

// setFaults replaces the faults in force (PUT /admin/faults); the zero Faults turns all off.
func (b bankAdmin) setFaults(ctx context.Context, f banksim.Faults) {
	GinkgoHelper()
	body, err := json.Marshal(f)
	Expect(err).NotTo(HaveOccurred())
	status, data := b.do(ctx, http.MethodPut, "/admin/faults", body)
	Expect(status).To(Equal(http.StatusOK), "PUT /admin/faults %s: %s", body, data)
}

// stats is GET /admin/stats with the per-application maps: every accepted submission and every
// decision of the bank's current lifetime.
func (b bankAdmin) stats(ctx context.Context) banksim.Stats {
	GinkgoHelper()
	st, err := stacktest.BankStats(ctx, httpClient, b.url)
	Expect(err).NotTo(HaveOccurred())
	return st
}

// reset starts a new lifetime of the bank (POST /admin/reset), so that a test counts only its
// own submissions. Every application of the earlier tests is final, so none is sent again.
func (b bankAdmin) reset(ctx context.Context) {
	GinkgoHelper()
	status, data := b.do(ctx, http.MethodPost, "/admin/reset", nil)
	Expect(status).To(Equal(http.StatusNoContent), "POST /admin/reset: %s", data)
}

func (b bankAdmin) do(ctx context.Context, method, path string, body []byte) (int, []byte) {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, method, b.url+path, bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	resp, err := httpClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return resp.StatusCode, data
}

// faultCount is the number of faults the bank injected in one lifetime, of every kind.
func faultCount(st banksim.Stats) int {
	f := st.FaultsInjected
	return int(f.Failures + f.Throttled + f.Drops + f.Delayed)
}

// describeFaults says which faults struck, for the summary.
func describeFaults(st banksim.Stats) string {
	f := st.FaultsInjected
	return fmt.Sprintf("5xx %d, 429 %d, dropped %d, delayed %d", f.Failures, f.Throttled, f.Drops, f.Delayed)
}
