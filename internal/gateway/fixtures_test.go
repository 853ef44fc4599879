package gateway

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/getkin/kin-openapi/openapi3filter"
	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// An event stream that ends (a reset) is read whole by the conformance transport: its body is
// text, validated as the document's string schema.
func init() {
	openapi3filter.RegisterBodyDecoder("text/event-stream", openapi3filter.FileBodyDecoder)
}

// apiServerCalls counts the gateway's calls to the API server, and can hold back the answers
// of some of them: a real API server whose answers come late.
type apiServerCalls struct {
	gets  atomic.Int64 // GETs of one application (not lists nor watches)
	posts atomic.Int64
	all   atomic.Int64 // every request: gets, posts, lists, watches and the rest
	// postDelay holds each create's answer; getDelay each GET's. failPostAfter, when set, drops
	// the answer of each create after it was made, as a timeout on a loaded API server does.
	postDelay time.Duration
	getDelay  time.Duration
	// postGate, when set, holds every create until it is closed.
	postGate      chan struct{}
	failPostAfter atomic.Bool
	// holdWatches, while set, holds back what the watches deliver: a cache that lags.
	holdWatches atomic.Bool
}

// heldBody is a watch's body that keeps what it has read while hold is set.
type heldBody struct {
	io.ReadCloser
	hold *atomic.Bool
}

func (b heldBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	for b.hold.Load() {
		time.Sleep(10 * time.Millisecond)
	}
	return n, err
}

// wrap returns a copy of cfg whose transport counts (and delays) the calls.
func (c *apiServerCalls) wrap(cfg *rest.Config) *rest.Config {
	out := rest.CopyConfig(cfg)
	out.WrapTransport = func(next http.RoundTripper) http.RoundTripper {
		return roundTripFunc(func(req *http.Request) (*http.Response, error) {
			c.all.Add(1)
			switch {
			case req.Method == http.MethodPost:
				c.posts.Add(1)
				if c.postGate != nil {
					<-c.postGate
				}
				resp, err := next.RoundTrip(req)
				time.Sleep(c.postDelay)
				if c.failPostAfter.Load() && err == nil {
					_ = resp.Body.Close()
					return nil, context.DeadlineExceeded
				}
				return resp, err
			case req.Method == http.MethodGet && req.URL.Query().Get("watch") != "":
				resp, err := next.RoundTrip(req)
				if err == nil {
					resp.Body = heldBody{ReadCloser: resp.Body, hold: &c.holdWatches}
				}
				return resp, err
			case req.Method == http.MethodGet && isObjectPath(req.URL.Path):
				c.gets.Add(1)
				time.Sleep(c.getDelay)
			}
			return next.RoundTrip(req)
		})
	}
	return out
}

// isObjectPath tells a path of one LoanApplication from the collection's.
func isObjectPath(path string) bool {
	_, name, found := strings.Cut(path, "/loanapplications/")
	return found && name != ""
}

// startGatewayWithCalls starts a gateway like startGateway, its API server calls going through
// calls.
func startGatewayWithCalls(ctx context.Context, opts Options, calls *apiServerCalls) *testGateway {
	GinkgoHelper()
	gw := startGateway(ctx, Options{})
	// The first gateway only made the namespace; this one serves it.
	opts.Namespace = gw.namespace
	other := startGatewayAt(calls.wrap(env.Config), opts)
	Eventually(other.Ready).WithTimeout(30 * time.Second).Should(BeTrue())
	return other
}

// decide records a decision on the application as the controller would: its status and label.
func decide(ctx context.Context, namespace, name, label string) {
	GinkgoHelper()
	app := &loansv1alpha1.LoanApplication{}
	Expect(env.Client.Get(ctx, keyOf(namespace, name), app)).To(Succeed())
	now := metav1.Now()
	app.Status.Phase = loansv1alpha1.PhaseApproved
	if label == loansv1alpha1.LabelRejected {
		app.Status.Phase = loansv1alpha1.PhaseRejected
	}
	app.Status.SubmittedAt = &now
	app.Status.DecidedAt = &now
	Expect(env.Client.Status().Update(ctx, app)).To(Succeed())
	app.Labels[loansv1alpha1.LabelStatus] = label
	Expect(env.Client.Update(ctx, app)).To(Succeed())
}

// submit records the bank's acceptance of the application, as the controller would.
func submit(ctx context.Context, namespace, name string) {
	GinkgoHelper()
	app := &loansv1alpha1.LoanApplication{}
	Expect(env.Client.Get(ctx, keyOf(namespace, name), app)).To(Succeed())
	now := metav1.Now()
	app.Status.Phase = loansv1alpha1.PhasePending
	app.Status.SubmittedAt = &now
	Expect(env.Client.Status().Update(ctx, app)).To(Succeed())
}

// sseEvent is one event of a stream, or a comment (comment set, the rest empty).
type sseEvent struct {
	id, event, data, comment string
}

// openStream opens an event stream with a plain client (the conformance transport reads a body
// whole, which a stream never ends) and checks its answer's status and media type as the
// document states them. Its events arrive on the channel, which closes when the stream ends.
func (g *testGateway) openStream(ctx context.Context, query string, headers ...string) <-chan sseEvent {
	GinkgoHelper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.url+applicationsPath+"/events"+query, nil)
	Expect(err).NotTo(HaveOccurred())
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	Expect(resp.StatusCode).To(Equal(http.StatusOK))
	Expect(resp.Header.Get("Content-Type")).To(Equal("text/event-stream"))
	events := make(chan sseEvent, 1000)
	go readEvents(resp, events)
	return events
}

// readEvents parses the stream into events until it ends.
func readEvents(resp *http.Response, events chan<- sseEvent) {
	defer GinkgoRecover()
	defer close(events)
	defer func() { _ = resp.Body.Close() }()
	scanner := bufio.NewScanner(resp.Body)
	var ev sseEvent
	for scanner.Scan() {
		line := scanner.Text()
		field, value, _ := strings.Cut(line, ": ")
		switch {
		case line == "":
			if ev != (sseEvent{}) {
				events <- ev
			}
			ev = sseEvent{}
		case strings.HasPrefix(line, ":"):
			ev.comment = strings.TrimPrefix(line, ": ")
		case field == "id":
			ev.id = value
		case field == "event":
			ev.event = value
		case field == "data":
			ev.data = value
		}
	}
}

// nextEvent answers the next event of the stream that is not a comment.
func nextEvent(events <-chan sseEvent) sseEvent {
	GinkgoHelper()
	for {
		var ev sseEvent
		Eventually(events).WithTimeout(10 * time.Second).Should(Receive(&ev))
		if ev.comment == "" {
			return ev
		}
	}
}

// concurrently runs f n times at once and waits for all.
func concurrently(n int, f func(i int)) {
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer GinkgoRecover()
			defer wg.Done()
			<-start
			f(i)
		}()
	}
	close(start)
	wg.Wait()
}

func keyOf(namespace, name string) client.ObjectKey {
	return client.ObjectKey{Namespace: namespace, Name: name}
}
