// Package gateway is the REST API through which loan applications enter from outside
// Kubernetes. It translates REST calls into LoanApplication creates and reads: creates go to the
// API server, reads come from an informer cache of one namespace. It never talks to the bank or
// the controller; the API server's watch is the only link between them.
package gateway

import (
	"context"
	"errors"
	"net/http"
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
}

// Gateway serves the REST API. Start runs its cache; Handler serves the HTTP routes.
type Gateway struct {
	opts    Options
	store   *store
	metrics *metrics
	handler http.Handler
}

// New builds a gateway that talks to the API server at cfg. It does not contact the API server
// until Start.
func New(cfg *rest.Config, opts Options) (*Gateway, error) {
	if opts.Namespace == "" {
		return nil, errors.New("gateway: a namespace is required")
	}
	if opts.RequestTimeout <= 0 {
		opts.RequestTimeout = DefaultRequestTimeout
	}
	s, err := newStore(cfg, opts.Namespace)
	if err != nil {
		return nil, err
	}
	m, err := newMetrics(opts.MetricsRegistry)
	if err != nil {
		return nil, err
	}
	g := &Gateway{opts: opts, store: s, metrics: m}
	g.handler = g.routes()
	return g, nil
}

// Start runs the informer cache until ctx ends. The gateway is ready (Ready, /readyz) once the
// cache has synced.
func (g *Gateway) Start(ctx context.Context) error {
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
		if g.opts.AuthToken != "" {
			api.Use(requireBearerToken(g.opts.AuthToken))
		}
		api.Post("/v1/applications", g.createApplication)
		api.Get("/v1/applications", g.listApplications)
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

// Server timeouts: a slow or idle client cannot hold a connection or a goroutine for long.
const (
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 15 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 120 * time.Second
)

// NewHTTPServer is the HTTP server for handler at addr, with every timeout set.
func NewHTTPServer(addr string, handler http.Handler) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           handler,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    64 << 10,
	}
}
