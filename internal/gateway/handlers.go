package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// Paging of lists.
const (
	defaultLimit = 100
	maxLimit     = 1000
)

const applicationsPath = "/api/v1/applications"

// createApplication is POST /api/v1/applications: 201 with the new application. With an
// Idempotency-Key, a retry with the same body answers 200 with the application the first
// request created (also while that request is still in flight: the retry waits for it), and
// one with a different body 422. Above MaxInflightCreates creates in flight, 429.
func (g *Gateway) createApplication(w http.ResponseWriter, r *http.Request) {
	if p := checkContentType(r.Header.Get("Content-Type")); p != nil {
		writeProblem(w, p)
		return
	}
	key, p := idempotencyKey(r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	req, p := decodeApplicationRequest(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if p != nil {
		writeProblem(w, p)
		return
	}
	app := newApplication(req, key)
	if key == "" {
		g.create(w, r, app)
		return
	}
	flight, leads := g.flights.join(app.Name)
	if !leads {
		g.followFlight(w, r, app, flight)
		return
	}
	var created *loansv1alpha1.LoanApplication
	defer func() { g.flights.land(app.Name, flight, created) }()
	created = g.create(w, r, app)
}

// followFlight answers a create under a key whose first create is in flight here: from the
// first one's outcome once it lands, or as a create of its own when the first failed.
func (g *Gateway) followFlight(w http.ResponseWriter, r *http.Request, app *loansv1alpha1.LoanApplication, flight *keyedFlight) {
	ctx, cancel := g.apiContext(r)
	defer cancel()
	select {
	case <-flight.done:
	case <-ctx.Done():
		writeProblem(w, unavailable("a request with this Idempotency-Key is still in flight; retry in a moment"))
		return
	}
	if flight.created == nil {
		g.create(w, r, app)
		return
	}
	answerReplay(w, flight.created, app)
}

// create writes app and answers the client; it answers the application stored for this request
// (nil when none was).
func (g *Gateway) create(w http.ResponseWriter, r *http.Request, app *loansv1alpha1.LoanApplication) *loansv1alpha1.LoanApplication {
	if !g.creates.tryAcquire() {
		writeProblem(w, tooBusy(http.StatusTooManyRequests, "too many applications are being created at once; retry in a moment"))
		return nil
	}
	defer g.creates.release()
	ctx, cancel := g.apiContext(r)
	defer cancel()

	keyed := app.Annotations[RequestHashAnnotation] != ""
	err := g.store.create(ctx, app)
	switch {
	case err == nil:
		writeCreated(w, app)
		return app
	case keyed && apierrors.IsAlreadyExists(err):
		return g.replay(ctx, w, r, app)
	case isAmbiguousTimeout(err):
		if existing, ok := g.createdAnyway(r, app); ok {
			writeCreated(w, existing)
			return existing
		}
	}
	g.writeAPIError(w, r, err)
	return nil
}

func writeCreated(w http.ResponseWriter, app *loansv1alpha1.LoanApplication) {
	w.Header().Set("Location", applicationsPath+"/"+app.Name)
	writeJSON(w, http.StatusCreated, viewOf(app))
}

// maxSettleTimeout bounds the look that createdAnyway takes after a create timed out.
const maxSettleTimeout = 2 * time.Second

// isAmbiguousTimeout reports a create that may or may not have happened: the API server got the
// request but its answer did not come in time. A refused connection or a 429 is not: nothing
// was written.
func isAmbiguousTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err)
}

// createdAnyway looks, after a create that failed for want of an answer (a timeout on a loaded
// API server), whether the create went through all the same. The name is the gateway's own
// (random, or derived from the Idempotency-Key with the body's hash), so an object of that name
// with the same body hash is this request's: answering 503 for it would tell the client
// "nothing was created" about an application the controller then submits.
func (g *Gateway) createdAnyway(r *http.Request, app *loansv1alpha1.LoanApplication) (*loansv1alpha1.LoanApplication, bool) {
	// The request's own deadline has passed; the look gets a short one of its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), min(g.opts.RequestTimeout, maxSettleTimeout))
	defer cancel()
	existing, err := g.store.get(ctx, app.Name)
	if err != nil || !sameRequest(existing, app) {
		return nil, false
	}
	return existing, true
}

// newApplication is the object a create writes: labelled pending (so that the controller has
// no label to write at submission) and, under an Idempotency-Key, named after the key and
// marked with a hash of the body.
func newApplication(req names, key string) *loansv1alpha1.LoanApplication {
	app := &loansv1alpha1.LoanApplication{
		ObjectMeta: metav1.ObjectMeta{
			Name:   randomName(),
			Labels: map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelPending},
		},
		Spec: loansv1alpha1.LoanApplicationSpec{FirstName: req.first, LastName: req.last},
	}
	if key != "" {
		app.Name = nameForKey(key)
		app.Annotations = map[string]string{RequestHashAnnotation: requestHash(req)}
	}
	return app
}

// replay answers a create whose Idempotency-Key was used before: the application the first
// request created when it is what this request asks for, else 422. It answers the application
// when it was this request's.
func (g *Gateway) replay(ctx context.Context, w http.ResponseWriter, r *http.Request,
	wanted *loansv1alpha1.LoanApplication) *loansv1alpha1.LoanApplication {
	existing, err := g.store.get(ctx, wanted.Name)
	if err != nil {
		g.writeAPIError(w, r, err)
		return nil
	}
	if !answerReplay(w, existing, wanted) {
		return nil
	}
	return existing
}

// answerReplay answers 200 with existing when it is what wanted asks for, else 422; it reports
// which.
func answerReplay(w http.ResponseWriter, existing, wanted *loansv1alpha1.LoanApplication) bool {
	if !sameRequest(existing, wanted) {
		writeProblem(w, keyReused())
		return false
	}
	w.Header().Set("Location", applicationsPath+"/"+existing.Name)
	writeJSON(w, http.StatusOK, viewOf(existing))
	return true
}

// listQuery is the parsed query of GET /api/v1/applications.
type listQuery struct {
	status string
	after  string
	limit  int
}

// listApplications is GET /api/v1/applications[?status=][&limit=][&continue=].
func (g *Gateway) listApplications(w http.ResponseWriter, r *http.Request) {
	q, p := parseListQuery(r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	pg, err := g.store.list(r.Context(), q.status, q.after, q.limit)
	if err != nil {
		g.writeAPIError(w, r, err)
		return
	}
	out := applicationListView{Items: make([]applicationView, 0, len(pg.items))}
	for _, app := range pg.items {
		out.Items = append(out.Items, viewOf(app))
	}
	if pg.next != "" {
		out.Continue = encodeContinue(pg.next)
	}
	writeJSON(w, http.StatusOK, out)
}

func parseListQuery(r *http.Request) (listQuery, *problem) {
	values := r.URL.Query()
	q := listQuery{status: values.Get("status"), limit: defaultLimit}
	if q.status != "" && !loansv1alpha1.IsValidLabelValue(q.status) {
		return q, newProblem(http.StatusBadRequest, fmt.Sprintf("status %q is not one of %s",
			q.status, strings.Join(loansv1alpha1.LabelValues, ", ")))
	}
	if raw := values.Get("limit"); raw != "" {
		n, err := strconv.Atoi(raw)
		if err != nil || n < 1 || n > maxLimit {
			return q, newProblem(http.StatusBadRequest, fmt.Sprintf("limit %q must be a whole number from 1 to %d", raw, maxLimit))
		}
		q.limit = n
	}
	if token := values.Get("continue"); token != "" {
		after, ok := decodeContinue(token)
		if !ok {
			return q, newProblem(http.StatusBadRequest, "the continue token is not one this API gave out; "+
				"pass the continue value of the previous page unchanged")
		}
		q.after = after
	}
	return q, nil
}

// apiContext bounds the calls to the API server that one request makes, so that an API server
// that does not answer costs a 503 after --request-timeout, not a hung client.
func (g *Gateway) apiContext(r *http.Request) (context.Context, context.CancelFunc) {
	return context.WithTimeout(r.Context(), g.opts.RequestTimeout)
}

// writeAPIError answers an error from the store: the API server's refusals keep their meaning
// (404, 422) and an API server that cannot answer is a 503 the client may retry.
func (g *Gateway) writeAPIError(w http.ResponseWriter, r *http.Request, err error) {
	p := problemFromAPIError(err)
	if p.Status >= http.StatusInternalServerError {
		g.opts.Log.Error(err, "the API server call failed", "request", r.Method+" "+r.URL.Path, "answer", p.Status)
	}
	writeProblem(w, p)
}

// problemFromAPIError classifies an error of a call to the API server.
func problemFromAPIError(err error) *problem {
	var p *problem
	switch {
	case errors.As(err, &p):
		return p
	case apierrors.IsNotFound(err):
		return newProblem(http.StatusNotFound, "no application has this id")
	case apierrors.IsInvalid(err):
		return invalidFromAPIServer(err)
	case errors.Is(err, errNotSynced):
		return unavailable("the gateway is starting and has not read the applications yet; retry in a moment")
	case isUnavailable(err):
		return unavailable("the Kubernetes API server cannot be reached or is overloaded; retry in a moment")
	default:
		return newProblem(http.StatusInternalServerError, "the gateway failed to complete the request; it has been logged")
	}
}

// isUnavailable reports an error that retrying later may cure: no connection, no answer in
// time, or an API server that says it is busy.
func isUnavailable(err error) bool {
	if errors.Is(err, context.DeadlineExceeded) || apierrors.IsTimeout(err) || apierrors.IsServerTimeout(err) ||
		apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) {
		return true
	}
	// A network error (connection refused or reset, DNS) means the API server was not reached.
	var netErr net.Error
	return errors.As(err, &netErr)
}

func unavailable(detail string) *problem {
	p := newProblem(http.StatusServiceUnavailable, detail)
	p.retryAfter = 1
	return p
}

// restFieldNames maps the CRD's field paths to the REST API's names.
var restFieldNames = map[string]string{
	"spec.firstName": fieldFirstName,
	"spec.lastName":  fieldLastName,
}

// invalidFromAPIServer turns the API server's validation error into a 422 naming the REST
// fields with the API server's own messages.
func invalidFromAPIServer(err error) *problem {
	var status apierrors.APIStatus
	_ = errors.As(err, &status)
	details := status.Status().Details
	var errs []fieldError
	if details != nil {
		for _, cause := range details.Causes {
			field := cause.Field
			if name, ok := restFieldNames[field]; ok {
				field = name
			}
			errs = append(errs, fieldError{Field: field, Message: cause.Message})
		}
	}
	detail := "the application is not valid"
	if len(errs) > 0 {
		detail += ": " + errs[0].Field + ": " + errs[0].Message
	}
	return invalidFields(detail, errs...)
}
