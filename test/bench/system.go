package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"

	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/banksim"
	"github.com/lendo/loan-operator/internal/devenv"
)

// gatewayNamespace is where the gateway creates and reads (devenv starts it with default).
const gatewayNamespace = "default"

// system is the running stack and the clients the benchmark reaches it with.
type system struct {
	stack *devenv.Stack
	// api is a client of the API server without client-side rate limit (QPS -1): a limiter
	// would measure itself, not the API server.
	api client.Client
	// apiHTTP reaches the API server for raw reads (the bytes a client receives, not decoded)
	// and its /metrics.
	apiHTTP *http.Client
	// web reaches the gateway, the bank and the controller's metrics on loopback, with enough
	// idle connections kept for the benchmark's concurrency (Go's default keeps 2).
	web *http.Client
	// watch records when each application's status changed; nil once stopped.
	watch *watcher
	// asGateway and asController reach the API server with the gateway's and the controller's
	// identities (see programClient): the direct side of scenario 2 and the raw write floor.
	asGateway, asController client.Client
	gatewayConfig           *rest.Config
}

func newSystem(stack *devenv.Stack, concurrency int) (*system, error) {
	cfg := rest.CopyConfig(stack.Config)
	cfg.QPS, cfg.Burst = -1, 0
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return nil, err
	}
	if err := loansv1alpha1.AddToScheme(scheme); err != nil {
		return nil, err
	}
	api, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	apiHTTP, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, err
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = 4 * concurrency
	transport.MaxIdleConnsPerHost = 2 * concurrency
	s := &system{stack: stack, api: api, apiHTTP: apiHTTP,
		web: &http.Client{Transport: transport, Timeout: 30 * time.Second}}
	if s.asGateway, s.gatewayConfig, err = programClient(stack.GatewayKubeconfig, s); err != nil {
		return nil, fmt.Errorf("a client with the gateway's identity: %w", err)
	}
	if s.asController, _, err = programClient(stack.ControllerKubeconfig, s); err != nil {
		return nil, fmt.Errorf("a client with the controller's identity: %w", err)
	}
	return s, nil
}

func (s *system) scheme() *runtime.Scheme { return s.api.Scheme() }

// createThroughGateway is one POST /api/v1/applications; it answers the new id.
func (s *system) createThroughGateway(ctx context.Context, i int) (string, error) {
	id, _, err := s.postApplication(ctx, i, "")
	return id, err
}

// errRetryable is an answer a client should retry after a while (503, 429).
var errRetryable = errors.New("retryable")

// createAttempts bounds the attempts of createSafely; retryWait is the wait between them (the
// gateway's Retry-After).
const (
	createAttempts = 5
	retryWait      = time.Second
)

// createSafely creates as a careful client does: under an Idempotency-Key, retrying an
// overloaded answer (503, 429) or a lost connection after a second, so that a retry never makes
// a second application. It answers the id and the number of retries.
func (s *system) createSafely(ctx context.Context, i int, key string) (id string, retries int, err error) {
	for attempt := range createAttempts {
		var status int
		id, status, err = s.postApplication(ctx, i, key)
		if err == nil {
			return id, attempt, nil
		}
		if status != 0 && !errors.Is(err, errRetryable) {
			return "", attempt, err
		}
		select {
		case <-ctx.Done():
			return "", attempt, err
		case <-time.After(retryWait):
		}
	}
	return "", createAttempts - 1, err
}

// postApplication is one POST, with an Idempotency-Key when key is not empty. It answers the
// application's id, and the status code (0 when no answer came).
func (s *system) postApplication(ctx context.Context, i int, key string) (string, int, error) {
	body := `{"first_name":"Ada","last_name":"Lovelace ` + strconv.Itoa(i) + `"}`
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.stack.GatewayURL+"/api/v1/applications", bytes.NewBufferString(body))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	if key != "" {
		req.Header.Set("Idempotency-Key", key)
	}
	resp, err := s.web.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", resp.StatusCode, err
	}
	// 200 answers a retry whose first attempt did create the application.
	created := resp.StatusCode == http.StatusCreated || (key != "" && resp.StatusCode == http.StatusOK)
	switch {
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests:
		return "", resp.StatusCode, fmt.Errorf("POST: %s %s: %w", resp.Status, data, errRetryable)
	case !created:
		return "", resp.StatusCode, fmt.Errorf("POST: %s %s", resp.Status, data)
	}
	var app struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(data, &app); err != nil || app.ID == "" {
		return "", resp.StatusCode, fmt.Errorf("POST answered %s without an id: %s", resp.Status, data)
	}
	return app.ID, resp.StatusCode, nil
}

// createAsGateway is one client-go Create, with the gateway's own identity, of an application as
// the gateway would write it (labelled pending).
func (s *system) createAsGateway(ctx context.Context, namespace, name string, i int) error {
	return s.asGateway.Create(ctx, newApplication(namespace, name, i))
}

// read GETs url with httpClient and reads the whole body: the time a client waits for the
// answer, without decoding it (both sides of a read comparison do the same).
func read(ctx context.Context, httpClient *http.Client, url string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s %.200s", url, resp.Status, data)
	}
	return data, nil
}

// gatewayRead and apiRead read a path of the gateway and of the API server.
func (s *system) gatewayRead(ctx context.Context, path string) ([]byte, error) {
	return read(ctx, s.web, s.stack.GatewayURL+path)
}

func (s *system) apiRead(ctx context.Context, path string) ([]byte, error) {
	return read(ctx, s.apiHTTP, s.stack.APIServerURL+path)
}

// bankStats reads the simulator's counts; with perApplication, also every decision.
func (s *system) bankStats(ctx context.Context, perApplication bool) (banksim.Stats, error) {
	url := s.stack.BankURL + "/admin/stats"
	if !perApplication {
		url += "?summary=true"
	}
	var st banksim.Stats
	data, err := read(ctx, s.web, url)
	if err != nil {
		return st, err
	}
	return st, json.Unmarshal(data, &st)
}

// setBankAssessment replaces the simulator's assessment window (PUT /admin/assessment) for the
// applications submitted from now on.
func (s *system) setBankAssessment(ctx context.Context, window banksim.Assessment) error {
	return s.sendBankAdmin(ctx, http.MethodPut, "/admin/assessment", window)
}

// hastenBank has the simulator move every pending decision earlier, the first firstIn from now
// and the others as spaced as they were (POST /admin/hasten), once a scenario no longer needs
// them pending.
func (s *system) hastenBank(ctx context.Context, firstIn time.Duration) error {
	return s.sendBankAdmin(ctx, http.MethodPost, "/admin/hasten", banksim.Hastening{FirstIn: banksim.Duration(firstIn)})
}

// setBankFaults replaces the simulator's faults in force (PUT /admin/faults): its own rate
// limit, in the benchmark.
func (s *system) setBankFaults(ctx context.Context, faults banksim.Faults) error {
	return s.sendBankAdmin(ctx, http.MethodPut, "/admin/faults", faults)
}

// sendBankAdmin PUTs or POSTs value as JSON to one of the simulator's admin endpoints.
func (s *system) sendBankAdmin(ctx context.Context, method, path string, value any) error {
	body, err := json.Marshal(value)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, s.stack.BankURL+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := s.web.Do(req)
	if err != nil {
		return err
	}
	defer func() { _ = resp.Body.Close() }()
	if resp.StatusCode != http.StatusOK {
		answer, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("%s %s %s: %s %s", method, path, body, resp.Status, answer)
	}
	return nil
}

// bankCalls is every call that reached the bank's logic: submissions (accepted or refused as
// duplicates) and polls.
func bankCalls(st banksim.Stats) float64 {
	return float64(st.ApplicationsCreated + st.DuplicatesRefused + st.JobPolls)
}

// bankRequests is every request the bank API answered or refused: its calls and its 429s, the
// load the controller put on it.
func bankRequests(st banksim.Stats) float64 {
	return bankCalls(st) + float64(st.FaultsInjected.Throttled)
}

// controllerMetrics, gatewayMetrics and apiServerMetrics scrape each program's /metrics.
func (s *system) controllerMetrics(ctx context.Context) (metricFamilies, error) {
	return scrape(ctx, s.web, s.stack.ControllerMetricsURLs[0]+"/metrics")
}

func (s *system) gatewayMetrics(ctx context.Context) (metricFamilies, error) {
	return scrape(ctx, s.web, s.stack.GatewayURL+"/metrics")
}

func (s *system) apiServerMetrics(ctx context.Context) (metricFamilies, error) {
	return scrape(ctx, s.apiHTTP, s.stack.APIServerURL+"/metrics")
}

// ensureWatch starts the benchmark's own watch for a scenario that needs status times and runs
// alone (--only), without scenario 2's clean-up, which starts it otherwise. The function it
// answers stops the watch it started, and does nothing when the watch was already there.
func (b *bench) ensureWatch(ctx context.Context) (func(), error) {
	if b.sys.watch != nil {
		return func() {}, nil
	}
	w, err := startWatcher(ctx, b.sys.stack.Config, b.sys.scheme())
	if err != nil {
		return nil, err
	}
	b.sys.watch = w
	return b.sys.stopWatch, nil
}

// stopWatch ends the benchmark's own watch, when the scenarios left need no status times.
func (s *system) stopWatch() {
	if s.watch != nil {
		s.watch.stop()
		s.watch = nil
	}
}
