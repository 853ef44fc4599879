package gateway

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// DefaultMaxWait is the longest a GET may wait for a decision; a longer wait is cut to it.
const DefaultMaxWait = 60 * time.Second

// waitWriteMargin is the time a waiting GET keeps to write its answer after the wait.
const waitWriteMargin = 10 * time.Second

// getApplication is GET /api/v1/applications/{id}[?wait=30s]: the application from the cache
// (from the API server, at a bounded rate, when the cache has not seen it yet). With a wait
// (?wait= or Prefer: wait=N), a pending application is answered when it is decided or when the
// wait ends, whichever comes first; the wait costs no API server call.
func (g *Gateway) getApplication(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	if errs := validation.IsDNS1123Subdomain(id); len(errs) > 0 {
		writeProblem(w, newProblem(http.StatusBadRequest, fmt.Sprintf("%q cannot be an application id: %s", id, strings.Join(errs, "; "))))
		return
	}
	wait, p := g.parseWait(r)
	if p != nil {
		writeProblem(w, p)
		return
	}
	app, err := g.readApplication(r, id)
	if err != nil {
		g.writeAPIError(w, r, err)
		return
	}
	var cacheSawDecision time.Time
	if wait > 0 {
		if !isDecided(app) {
			if app, cacheSawDecision, p = g.waitForDecision(w, r, app, wait); p != nil {
				if p != errClientGone { // nobody is left to answer
					writeProblem(w, p)
				}
				return
			}
		}
		// Names the wait applied: the one asked for, or the maximum when it asked for more. Only
		// on the answer that applied it, not on a refusal. RFC 7240 counts whole seconds: part of
		// a second is named as the whole second it falls within.
		w.Header().Set("Preference-Applied", "wait="+strconv.FormatInt(int64((wait+time.Second-1)/time.Second), 10))
	}
	// The answer depends on Prefer: a cache must not serve one client's wait to another.
	w.Header().Add("Vary", "Prefer")
	writeApplication(w, r, app)
	if !cacheSawDecision.IsZero() {
		g.metrics.waitAnswerDelay.Observe(time.Since(cacheSawDecision).Seconds())
	}
}

// readApplication reads id from the cache; when the cache does not hold it, from what this
// gateway has just created, or else from the API server through the bounded fallback.
func (g *Gateway) readApplication(r *http.Request, id string) (*loansv1alpha1.LoanApplication, error) {
	ctx, cancel := g.apiContext(r)
	defer cancel()
	app, err := g.store.fromCache(ctx, id)
	if !apierrors.IsNotFound(err) && !errors.Is(err, errNotSynced) {
		return app, err
	}
	if app, ok := g.store.justCreated(id); ok {
		return app, nil
	}
	return g.fallback.get(ctx, id, g.store.fromAPIServer)
}

// errClientGone is the end of a wait whose client went away: there is no one to answer.
var errClientGone = newProblem(statusClientClosedRequest, "the client went away")

// waitForDecision holds the request until app is decided, the wait ends or the client goes
// away, and answers the application as the cache then holds it, and when the cache saw the
// decision that ended the wait (zero when none did).
func (g *Gateway) waitForDecision(w http.ResponseWriter, r *http.Request, app *loansv1alpha1.LoanApplication,
	wait time.Duration) (*loansv1alpha1.LoanApplication, time.Time, *problem) {
	if !g.waiters.tryAcquire() {
		return nil, time.Time{}, tooBusy(http.StatusServiceUnavailable, "too many requests are waiting for decisions; retry later")
	}
	defer g.waiters.release()
	decision, release := g.feed.awaitDecision(app.Name)
	defer release()
	// The decision may have come between the read and the registration: read again.
	inCache := false
	if latest, err := g.store.fromCache(r.Context(), app.Name); err == nil {
		app, inCache = latest, true
	}
	var seenAt time.Time
	if !isDecided(app) {
		// The server's timeouts are for requests that do not wait: the read timeout would cancel
		// the request at its expiry, the write timeout refuse the answer.
		rc := http.NewResponseController(w)
		_ = rc.SetReadDeadline(time.Time{})
		_ = rc.SetWriteDeadline(time.Now().Add(wait + waitWriteMargin))
		timer := time.NewTimer(wait)
		defer timer.Stop()
		select {
		case <-decision.decided:
			seenAt = decision.seenAt
		case <-timer.C:
		case <-g.draining: // the gateway stops: answer now, as when the wait ends
		case <-r.Context().Done():
			return nil, time.Time{}, errClientGone
		}
	}
	latest, err := g.store.fromCache(r.Context(), app.Name)
	switch {
	case apierrors.IsNotFound(err) && inCache: // deleted while it waited
		return nil, time.Time{}, problemFromAPIError(err)
	case err != nil: // the cache has not seen it yet: it exists as it was read
		return app, seenAt, nil
	}
	return latest, seenAt, nil
}

// writeApplication answers app with its ETag (the resourceVersion), or 304 when the client's
// If-None-Match already names it.
func writeApplication(w http.ResponseWriter, r *http.Request, app *loansv1alpha1.LoanApplication) {
	etag := `"` + app.ResourceVersion + `"`
	w.Header().Set("ETag", etag)
	w.Header().Set("Cache-Control", "no-cache")
	if app.ResourceVersion != "" && etagMatches(r.Header.Values("If-None-Match"), etag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	writeJSON(w, http.StatusOK, viewOf(app))
}

// etagMatches applies If-None-Match's weak comparison (RFC 9110 13.1.2): any listed tag equal to
// etag, ignoring W/, or "*".
func etagMatches(headers []string, etag string) bool {
	for _, header := range headers {
		for tag := range strings.SplitSeq(header, ",") {
			tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
			if tag == "*" || tag == etag {
				return true
			}
		}
	}
	return false
}

// parseWait reads the wait of a GET: ?wait= (a duration such as 30s, or seconds) wins over
// Prefer: wait=N (RFC 7240, seconds). A wait above the maximum is cut to it; Preference-Applied
// then names the wait applied. A malformed Prefer is ignored, as RFC 7240 asks; a malformed
// ?wait= is a 400.
func (g *Gateway) parseWait(r *http.Request) (time.Duration, *problem) {
	var wait time.Duration
	if raw := r.URL.Query().Get("wait"); raw != "" {
		d, ok := parseWaitValue(raw)
		if !ok {
			return 0, newProblem(http.StatusBadRequest, fmt.Sprintf(
				"wait %q must be a duration such as 30s, or a number of seconds, from 0 (longer waits are cut to %s)", raw, g.opts.MaxWait))
		}
		wait = d
	} else if d, ok := preferredWait(r.Header.Values("Prefer")); ok {
		wait = d
	}
	return min(wait, g.opts.MaxWait), nil
}

// waitSyntax is the grammar of ?wait=, as openapi.yaml's pattern for it states: whole seconds,
// or one or more decimal numbers each with a unit, as Go writes durations (1m30s, 1.5s). No sign:
// a negative wait is none, and a plus adds nothing.
var waitSyntax = regexp.MustCompile(`^([0-9]+|([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+)$`)

// parseWaitValue reads a wait in waitSyntax. One too long for a Duration is the longest Duration:
// it is cut to the maximum like any other long wait.
func parseWaitValue(raw string) (time.Duration, bool) {
	if !waitSyntax.MatchString(raw) {
		return 0, false
	}
	if d, isNumber, ok := parseSeconds(raw); isNumber {
		return d, ok
	}
	d, err := time.ParseDuration(raw)
	if err != nil { // well formed, so too long
		return math.MaxInt64, true
	}
	return d, true
}

// parseSeconds reads a whole number of seconds; isNumber is false when raw is not a number, ok
// false when it is negative. A number too large for a Duration saturates at the largest one:
// multiplied as it is, it would wrap around to a negative or a short wait instead of being cut
// to the maximum.
func parseSeconds(raw string) (d time.Duration, isNumber, ok bool) {
	n, err := strconv.ParseInt(raw, 10, 64)
	switch {
	case err != nil && !errors.Is(err, strconv.ErrRange):
		return 0, false, false
	case n < 0:
		return 0, true, false
	case n > int64(math.MaxInt64/time.Second):
		return math.MaxInt64, true, true
	}
	return time.Duration(n) * time.Second, true, true
}

// preferredWait finds the wait preference among Prefer headers: "wait=30", possibly among
// other preferences separated by commas or with parameters after a semicolon.
func preferredWait(headers []string) (time.Duration, bool) {
	for _, header := range headers {
		for pref := range strings.SplitSeq(header, ",") {
			token, _, _ := strings.Cut(pref, ";")
			name, value, found := strings.Cut(strings.TrimSpace(token), "=")
			if !found || !strings.EqualFold(strings.TrimSpace(name), "wait") {
				continue
			}
			if d, _, ok := parseSeconds(strings.Trim(strings.TrimSpace(value), `"`)); ok {
				return d, true
			}
		}
	}
	return 0, false
}
