// Package gateway is the REST API through which loan applications enter from outside
// Kubernetes. It translates REST calls into LoanApplication creates and reads: creates go to the
// API server, reads come from an informer cache of one namespace. It never talks to the bank or
// the controller; the API server's watch is the only link between them.
package gateway

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/go-logr/logr"
	"k8s.io/client-go/rest"
	ctrlmetrics "sigs.k8s.io/controller-runtime/pkg/metrics"
)

// The gateway's rights: create, get, list and watch LoanApplications, nothing else (no update,
// no delete, no status). `make manifests` turns this marker into config/rbac/gateway/role.yaml.
// +kubebuilder:rbac:groups=loans.lendo.se,namespace=system,resources=loanapplications,verbs=create;get;list;watch

// DefaultRequestTimeout bounds the calls to the API server made for one REST request.
const DefaultRequestTimeout = 5 * time.Second

// Options are the gateway's settings.
type Options struct {
	// Namespace is where the gateway creates applications and the only one it reads.
	Namespace string
	// AuthToken, when not empty, is the bearer token every /api/ request must carry.
	AuthToken string
	// AuthTokenFile, when not empty, holds that token instead; it is read again when it changes
	// (every TokenReloadInterval, DefaultTokenReloadInterval if 0), so a rotation needs no restart.
	AuthTokenFile       string
	TokenReloadInterval time.Duration
	// RequestTimeout bounds the API server calls of one request (DefaultRequestTimeout if 0).
	RequestTimeout time.Duration
	// Log receives errors the client sees only as 5xx.
	Log logr.Logger
	// MetricsRegistry receives the gateway's metrics; nil: a registry of the gateway's own. A
	// registry holds the metrics of one gateway only.
	MetricsRegistry ctrlmetrics.RegistererGatherer
	// MetricsServedElsewhere leaves /metrics out of Handler (it answers 404 there), because
	// another server serves MetricsRegistry: in a cluster, controller-runtime's metrics server
	// behind authentication and authorization (see NewMetricsServer), since Handler is open to
	// everyone who may call the API.
	MetricsServedElsewhere bool

	// MaxInflightCreates bounds the creates in flight to the API server; above it a create is
	// answered 429 (DefaultMaxInflightCreates if 0).
	MaxInflightCreates int
	// FallbackGetsPerSecond bounds the GETs of ids the cache does not hold that go on to the API
	// server; above it they are answered 503 (DefaultFallbackGetsPerSecond if 0).
	FallbackGetsPerSecond int
	// MaxWaiters bounds the GETs waiting for a decision at once; above it they are answered 503
	// (DefaultMaxWaiters if 0). MaxWait is the longest wait (DefaultMaxWait if 0).
	MaxWaiters int
	MaxWait    time.Duration
	// MaxStreams bounds the open event streams (DefaultMaxStreams if 0); EventWindow is how many
	// changes a stream can resume from (DefaultEventWindow if 0); Heartbeat is how often an idle
	// stream sends a comment (DefaultHeartbeat if 0).
	MaxStreams  int
	EventWindow int
	Heartbeat   time.Duration
}

// withDefaults fills the settings left at zero.
func (o Options) withDefaults() Options {
	setDefault(&o.RequestTimeout, DefaultRequestTimeout)
	setDefault(&o.TokenReloadInterval, DefaultTokenReloadInterval)
	setDefault(&o.MaxInflightCreates, DefaultMaxInflightCreates)
	setDefault(&o.FallbackGetsPerSecond, DefaultFallbackGetsPerSecond)
	setDefault(&o.MaxWaiters, DefaultMaxWaiters)
	setDefault(&o.MaxWait, DefaultMaxWait)
	setDefault(&o.MaxStreams, DefaultMaxStreams)
	setDefault(&o.EventWindow, DefaultEventWindow)
	setDefault(&o.Heartbeat, DefaultHeartbeat)
	return o
}

func setDefault[T int | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}

// Gateway serves the REST API. Start runs its cache; Handler serves the HTTP routes.
type Gateway struct {
	opts    Options
	store   *store
	metrics *metrics
	handler http.Handler
	// tokens is nil when the API is open.
	tokens *bearerTokens
	feed   *feed
	// creates, waiters and streams bound what is in flight; fallback bounds the reads past the
	// cache; flights joins concurrent creates under one Idempotency-Key.
	creates  *slots
	waiters  *slots
	streams  *slots
	fallback *fallbackReads
	flights  *keyedFlights
	// streamStall is the longest one write to an event stream may block (streamWriteStall).
	streamStall time.Duration
	// draining is closed by Drain.
	draining  chan struct{}
	drainOnce sync.Once
}

// New builds a gateway that talks to the API server at cfg. It does not contact the API server
// until Start.
func New(cfg *rest.Config, opts Options) (*Gateway, error) {
	if opts.Namespace == "" {
		return nil, errors.New("gateway: a namespace is required")
	}
	opts = opts.withDefaults()
	tokens, err := newBearerTokens(opts.AuthToken, opts.AuthTokenFile)
	if err != nil {
		return nil, err
	}
	f := newFeed(opts.EventWindow)
	s, err := newStore(cfg, opts.Namespace, f)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.MetricsRegistry)
	if err != nil {
		return nil, err
	}
	g := &Gateway{opts: opts, store: s, metrics: m, tokens: tokens, feed: f,
		creates: newSlots(opts.MaxInflightCreates), waiters: newSlots(opts.MaxWaiters), streams: newSlots(opts.MaxStreams),
		fallback: newFallbackReads(opts.FallbackGetsPerSecond), flights: newKeyedFlights(), streamStall: streamWriteStall,
		draining: make(chan struct{})}
	if err := m.registerLoad(g.creates, g.waiters, g.streams); err != nil {
		return nil, err
	}
	if err := m.registerFeed(f); err != nil {
		return nil, err
	}
	g.handler = g.routes()
	return g, nil
}

// Drain ends the event streams and answers the waiting GETs at once, with the application as it
// is. http.Server.Shutdown waits for every request to finish but does not cancel any: without
// this, one open stream or a long wait holds the shutdown until its timeout. Register it with
// http.Server.RegisterOnShutdown.
func (g *Gateway) Drain() { g.drainOnce.Do(func() { close(g.draining) }) }

// Start runs the informer cache until ctx ends. The gateway is ready (Ready, /readyz) once the
// cache has synced.
func (g *Gateway) Start(ctx context.Context) error {
	go g.tokens.watch(ctx, g.opts.TokenReloadInterval, g.opts.Log)
	return g.store.start(ctx)
}

// Ready reports whether the cache has synced, so that reads see every application.
func (g *Gateway) Ready() bool {
	return g.store.synced.Load()
}

// Handler serves every route: the REST API, health, metrics (unless served elsewhere) and
// documentation.
func (g *Gateway) Handler() http.Handler {
	return g.handler
}

// routes wires the router. Every answer, including an unknown route or method, passes through
// the metrics middleware and has the problem shape when it is an error.
func (g *Gateway) routes() http.Handler {
	r := chi.NewRouter()
	r.Use(g.metrics.middleware)
	r.NotFound(func(w http.ResponseWriter, req *http.Request) {
		writeProblem(w, newProblem(http.StatusNotFound, "there is no such route; see /docs for the API"))
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, req *http.Request) {
		p := newProblem(http.StatusMethodNotAllowed, req.Method+" is not allowed on "+req.URL.Path)
		p.allow = allowedMethods(r, req.URL.Path)
		writeProblem(w, p)
	})

	r.Get("/healthz", serveHealthz)
	r.Get("/readyz", g.serveReadyz)
	if !g.opts.MetricsServedElsewhere {
		r.Method(http.MethodGet, "/metrics", g.metrics.handler())
	}
	r.Get("/openapi.json", serveOpenAPIJSON)
	r.Get("/openapi.yaml", serveOpenAPIYAML)
	r.Get("/docs", redirectToDocs)
	r.Handle("/docs/*", docsHandler())

	// Everything under /api/ needs the token when one is set, even a route that does not exist:
	// an unauthenticated client learns nothing about the API.
	r.Route("/api", func(api chi.Router) {
		if g.tokens != nil {
			api.Use(requireBearerToken(g.tokens))
		}
		api.Post("/v1/applications", g.createApplication)
		api.Get("/v1/applications", g.listApplications)
		api.Get("/v1/applications/events", g.streamEvents)
		api.Get("/v1/applications/{id}", g.getApplication)
	})
	return r
}

// allowedMethods lists the methods the router serves on path, for the Allow header of a 405.
func allowedMethods(r chi.Routes, path string) []string {
	var allowed []string
	for _, m := range []string{http.MethodGet, http.MethodPost} {
		if r.Match(chi.NewRouteContext(), m, path) {
			allowed = append(allowed, m)
		}
	}
	return allowed
}

func serveHealthz(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (g *Gateway) serveReadyz(w http.ResponseWriter, _ *http.Request) {
	if !g.Ready() {
		writeProblem(w, unavailable("the informer cache has not synced yet"))
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
}

// serverTimeouts bound how long a slow or idle client can hold a connection or a goroutine.
// Waits and streams outlive the read and write timeouts by moving their own deadlines.
type serverTimeouts struct {
	readHeader, read, write, idle time.Duration
}

// defaultServerTimeouts are the gateway's.
var defaultServerTimeouts = serverTimeouts{
	readHeader: 5 * time.Second,
	read:       15 * time.Second,
	write:      30 * time.Second,
	idle:       120 * time.Second,
}

// NewHTTPServer is the HTTP server for handler at addr, with every timeout set.
func NewHTTPServer(addr string, handler http.Handler) *http.Server {
	return newHTTPServer(addr, handler, defaultServerTimeouts)
}

func newHTTPServer(addr string, handler http.Handler, timeouts serverTimeouts) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: timeouts.readHeader,
		ReadTimeout:       timeouts.read,
		WriteTimeout:      timeouts.write,
		IdleTimeout:       timeouts.idle,
		MaxHeaderBytes:    64 << 10,
	}
}
