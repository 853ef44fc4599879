package bank

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/time/rate"
)

// Defaults of Options.
const (
	DefaultTimeout             = 10 * time.Second
	DefaultMaxIdleConnsPerHost = 512
)

// msgAlreadyUsed is the bank's answer to a second submission of one id.
const msgAlreadyUsed = "the application ID is already used"

// maxBodyBytes bounds what the client reads of an answer; the bank's are under 200 bytes.
const maxBodyBytes = 1 << 20

// Options tune a Client. The zero value is usable.
type Options struct {
	// Timeout bounds each call, from sending the request to reading the answer; default 10s.
	// Waiting for the client-side rate limit does not count: the caller's context bounds that.
	Timeout time.Duration
	// MaxIdleConnsPerHost is how many keep-alive connections to the bank stay open; default
	// 512, enough for hundreds of concurrent reconciles without reconnecting.
	MaxIdleConnsPerHost int
	// QPS limits the requests per second sent to the bank; 0 (or less) is unlimited.
	QPS float64
	// Burst is how many requests may go at once above QPS; default max(1, int(QPS)).
	Burst int
	// HTTPClient replaces the client built from the options above (tests). Its own Timeout,
	// if any, applies on top of Timeout.
	HTTPClient *http.Client
}

// Client calls the bank partner. It is safe for concurrent use and meant to be shared: one
// Client keeps one pool of connections.
type Client struct {
	applicationsURL string
	jobsURL         string
	http            *http.Client
	timeout         time.Duration
	limiter         *rate.Limiter // nil when unlimited
}

// New returns a client of the bank at baseURL, an absolute http or https URL such as
// "http://127.0.0.1:8000" (a path prefix is kept).
func New(baseURL string, opts Options) (*Client, error) {
	base, err := parseBaseURL(baseURL)
	if err != nil {
		return nil, err
	}
	c := &Client{
		applicationsURL: base.JoinPath("api", "applications").String(),
		jobsURL:         base.JoinPath("api", "jobs").String(),
		http:            opts.HTTPClient,
		timeout:         opts.Timeout,
	}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.http == nil {
		c.http = newHTTPClient(opts.MaxIdleConnsPerHost)
	}
	if opts.QPS > 0 {
		burst := opts.Burst
		if burst <= 0 {
			burst = max(1, int(opts.QPS))
		}
		c.limiter = rate.NewLimiter(rate.Limit(opts.QPS), burst)
	}
	return c, nil
}

func parseBaseURL(raw string) (*url.URL, error) {
	base, err := url.Parse(raw)
	var urlErr *url.Error
	switch {
	case errors.As(err, &urlErr):
		return nil, fmt.Errorf("bank URL %s: %w", RedactURL(raw), urlErr.Err)
	case err != nil:
		return nil, fmt.Errorf("bank URL %s: %w", RedactURL(raw), err)
	case base.Scheme != "http" && base.Scheme != "https":
		return nil, fmt.Errorf("bank URL %s: the scheme must be http or https", base.Redacted())
	case base.Host == "":
		return nil, fmt.Errorf("bank URL %s: no host", base.Redacted())
	case base.RawQuery != "" || base.Fragment != "":
		return nil, fmt.Errorf("bank URL %s: no query or fragment allowed", base.Redacted())
	}
	return base, nil
}

// RedactURL returns the bank URL fit for a log: its password replaced by "xxxxx", or only
// "(unparsable URL)" when it cannot be read, since a credential might be anywhere in it then.
func RedactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}

// newHTTPClient keeps enough idle connections for the whole pool of reconciles: the default
// transport keeps 2 per host, so a busy controller would reconnect on nearly every call.
func newHTTPClient(maxIdlePerHost int) *http.Client {
	if maxIdlePerHost <= 0 {
		maxIdlePerHost = DefaultMaxIdleConnsPerHost
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConns = 0 // no global cap: there is one host, capped below
	transport.MaxIdleConnsPerHost = maxIdlePerHost
	return &http.Client{
		Transport: transport,
		// The bank never redirects; a redirect is a misconfiguration, reported as transient.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// submitRequest is the body of a submission: the status is the bank's to set.
type submitRequest struct {
	ID        string `json:"id"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
}

// Submit creates app at the bank and returns the bank's view of it (status "pending").
// An error of KindAlreadyUsed means the bank has it already, from an earlier call.
func (c *Client) Submit(ctx context.Context, app Application) (Application, error) {
	payload, err := json.Marshal(submitRequest{ID: app.ID, FirstName: app.FirstName, LastName: app.LastName})
	if err != nil {
		return Application{}, &Error{Kind: KindTransient, Op: opSubmit, Message: "encoding the application", Err: err}
	}
	newRequest := func(ctx context.Context) (*http.Request, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.applicationsURL, bytes.NewReader(payload))
		if err == nil {
			req.Header.Set("Content-Type", "application/json")
		}
		return req, err
	}
	var created Application
	err = c.call(ctx, opSubmit, newRequest, func(body []byte) error {
		if err := json.Unmarshal(body, &created); err != nil {
			return err
		}
		if created.ID == "" || created.Status == "" {
			return errors.New("the answer lacks id or status")
		}
		return nil
	})
	return created, err
}

// GetJob returns the bank's assessment job of the application applicationID.
// An error of KindNotFound means the bank does not know the application (any more). An
// answer about another application than the one asked is an error, never a decision.
func (c *Client) GetJob(ctx context.Context, applicationID string) (Job, error) {
	target := c.jobsURL + "?application_id=" + url.QueryEscape(applicationID)
	newRequest := func(ctx context.Context) (*http.Request, error) {
		return http.NewRequestWithContext(ctx, http.MethodGet, target, nil)
	}
	var job Job
	err := c.call(ctx, opGetJob, newRequest, func(body []byte) error {
		if err := json.Unmarshal(body, &job); err != nil {
			return err
		}
		if job.ID == "" || job.ApplicationID == "" {
			return errors.New("the answer lacks id or application_id")
		}
		if job.ApplicationID != applicationID {
			return fmt.Errorf("the answer is about application %q, not %q", job.ApplicationID, applicationID)
		}
		if job.Status != JobPending && !job.Status.IsDecided() {
			return fmt.Errorf("unknown job status %q", job.Status)
		}
		return nil
	})
	return job, err
}

// call waits for the rate limiter, sends one request within the per-call timeout, reads the
// answer, records metrics, and turns every failure into an *Error. decode reads a 2xx body.
func (c *Client) call(ctx context.Context, op string,
	newRequest func(context.Context) (*http.Request, error), decode func([]byte) error) error {
	if c.limiter != nil {
		if err := c.limiter.Wait(ctx); err != nil {
			requestsTotal.WithLabelValues(op, codeCanceled).Inc()
			return &Error{Kind: KindTransient, Op: op, Message: "waiting for the client-side rate limit", Err: err}
		}
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	req, err := newRequest(ctx)
	if err != nil {
		return &Error{Kind: KindTransient, Op: op, Message: "building the request", Err: err}
	}

	start := time.Now()
	status, header, body, err := c.exchange(req)
	requestDuration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		requestsTotal.WithLabelValues(op, transportCode(err)).Inc()
		return &Error{Kind: KindTransient, Op: op, StatusCode: status, Err: err}
	}
	if status >= 200 && status < 300 {
		if err := decode(body); err != nil {
			requestsTotal.WithLabelValues(op, codeInvalidResponse).Inc()
			return &Error{Kind: KindTransient, Op: op, StatusCode: status,
				Message: "the answer is not the documented JSON: " + err.Error(), Err: err}
		}
	}
	requestsTotal.WithLabelValues(op, strconv.Itoa(status)).Inc()
	return classifyAnswer(op, status, header, body, time.Now())
}

// exchange sends req and reads the whole answer. It always drains and closes the body, so
// that the connection goes back to the pool.
func (c *Client) exchange(req *http.Request) (int, http.Header, []byte, error) {
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer func() {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxBodyBytes))
		_ = resp.Body.Close()
	}()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes))
	if err != nil {
		return resp.StatusCode, nil, nil, fmt.Errorf("reading the answer: %w", err)
	}
	return resp.StatusCode, resp.Header, body, nil
}

// transportCode names a failure that left no answer, for the metrics.
func transportCode(err error) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return codeTimeout
	case errors.Is(err, context.Canceled):
		return codeCanceled
	default:
		return codeConnectionError
	}
}

// classifyAnswer returns nil for a 2xx, else the *Error its status and body call for. Only the
// answers the bank documents are taken at their word: its 400s (the duplicate id, and the
// invalid payload, which is final) and its 404 to a poll. Any other 4xx most likely comes from
// something in front of the bank (an auth proxy answering 401 or 403 for a while) and says
// nothing about the application, so it is refused, not invalid: worth a retry.
func classifyAnswer(op string, status int, header http.Header, body []byte, now time.Time) error {
	msg := bankMessage(status, body)
	var kind Kind
	switch {
	case status >= 200 && status < 300:
		return nil
	case status == http.StatusTooManyRequests:
		return &Error{Kind: KindThrottled, Op: op, StatusCode: status, Message: msg,
			RetryAfter: parseRetryAfter(header.Get("Retry-After"), now)}
	case status == http.StatusNotFound && op == opGetJob:
		kind = KindNotFound
	case status == http.StatusBadRequest && msg == msgAlreadyUsed:
		kind = KindAlreadyUsed
	case status == http.StatusBadRequest:
		kind = KindInvalidPayload
	case status == http.StatusRequestTimeout:
		// A proxy's "you were too slow": says nothing about the payload, so worth a retry.
		kind = KindTransient
	case status >= 400 && status < 500:
		kind = KindRefused
	default: // 5xx, and 1xx or 3xx, which the bank never sends on purpose
		kind = KindTransient
	}
	return &Error{Kind: kind, Op: op, StatusCode: status, Message: msg}
}

// bankMessage is the bank's {"error": "..."} message, else the start of the body as text,
// else the status text.
func bankMessage(status int, body []byte) string {
	var eb errorBody
	if json.Unmarshal(body, &eb) == nil && eb.Error != "" {
		return eb.Error
	}
	const maxText = 200
	text := strings.TrimSpace(string(body))
	if len(text) > maxText {
		text = text[:maxText] + "..."
	}
	if text == "" {
		return http.StatusText(status)
	}
	return text
}

// parseRetryAfter reads a Retry-After value, in seconds or as an HTTP date; 0 when absent,
// unreadable or already past. A value beyond what a time.Duration holds (a date in the year
// 9999, a number of seconds in the billions) saturates at the largest Duration rather than
// wrapping around to a negative one: the caller caps it.
func parseRetryAfter(value string, now time.Time) time.Duration {
	value = strings.TrimSpace(value)
	if value == "" {
		return 0
	}
	if seconds, err := strconv.ParseInt(value, 10, 64); err == nil || errors.Is(err, strconv.ErrRange) {
		switch {
		case seconds <= 0:
			return 0
		case seconds > int64(math.MaxInt64/time.Second):
			return time.Duration(math.MaxInt64)
		}
		return time.Duration(seconds) * time.Second
	}
	if at, err := http.ParseTime(value); err == nil {
		return max(at.Sub(now), 0)
	}
	return 0
}
