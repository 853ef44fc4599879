package banksim

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"
)

// Defaults of the real bank, used when a Config leaves the field at its zero value.
const (
	DefaultMinDelay     = 5 * time.Second
	DefaultMaxDelay     = 20 * time.Second
	DefaultApproveRatio = 0.5
)

// RejectAll is the ApproveRatio that approves nothing. The zero value already means "the
// default ratio", so "never approve" needs its own value; any negative ratio means the same.
const RejectAll = -1.0

// Config shapes one simulator. The zero value behaves like the real bank.
type Config struct {
	// MinDelay and MaxDelay bound the assessment delay, drawn uniformly for each application.
	// When both are zero they default to DefaultMinDelay and DefaultMaxDelay; a MaxDelay below
	// MinDelay is raised to MinDelay. They are the Assessment in force from the start;
	// SetAssessment and PUT /admin/assessment change it.
	MinDelay, MaxDelay time.Duration
	// ApproveRatio is the share of applications approved ("completed"), in [0, 1]. Zero means
	// DefaultApproveRatio; RejectAll (or any negative value) approves none.
	ApproveRatio float64
	// Seed makes decisions and job ids reproducible: the same seed and application id always
	// draw the same delay (within the same assessment window), outcome and job id, whatever the
	// order of arrival. 0 draws a random
	// seed at start and again at every reset, like a restarted bank.
	Seed int64
	// Faults are the faults injected from the start; SetFaults and PUT /admin/faults change them.
	Faults Faults
	// LogRequests logs one line per request.
	LogRequests bool
	// Logger receives the request log and is slog.Default() when nil.
	Logger *slog.Logger
	// Now is the clock; time.Now when nil. Tests use it to decide applications without sleeping.
	Now func() time.Time
}

// withDefaults returns cfg with every zero field replaced by its default.
func (cfg Config) withDefaults() Config {
	if cfg.MinDelay == 0 && cfg.MaxDelay == 0 {
		cfg.MinDelay, cfg.MaxDelay = DefaultMinDelay, DefaultMaxDelay
	}
	cfg.MaxDelay = max(cfg.MaxDelay, cfg.MinDelay)
	switch {
	case cfg.ApproveRatio == 0:
		cfg.ApproveRatio = DefaultApproveRatio
	case cfg.ApproveRatio < 0:
		cfg.ApproveRatio = 0
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return cfg
}

// Faults are the misbehaviours the simulator injects into the bank API (not into /docs or
// /admin/). Its JSON form is what GET and PUT /admin/faults exchange, for example
// {"fail_rate":0.1,"latency":"200ms","rate_limit":50,"drop_rate":0.01}.
type Faults struct {
	// FailRate is the share of requests answered 500 or 503 (half each) before any processing.
	FailRate float64 `json:"fail_rate"`
	// Latency is an extra delay added before each answer.
	Latency Duration `json:"latency"`
	// RateLimit is the rate in requests per second above which requests are answered 429 with a
	// Retry-After header, before any processing. 0 turns it off.
	RateLimit float64 `json:"rate_limit"`
	// DropRate is the share of requests whose connection is closed without an answer. The
	// request is processed first: a dropped submission is created all the same, the way a
	// real answer lost on the network leaves the caller unsure whether the bank acted.
	DropRate float64 `json:"drop_rate"`
	// Answer replaces a share of the answers with a chosen one, before any processing: what a
	// proxy in front of the bank, or a bank in trouble, answers. Zero turns it off.
	Answer ForcedAnswer `json:"answer,omitzero"`
}

// The operations ForcedAnswer.Operation names.
const (
	OperationSubmit = "submit" // POST /api/applications
	OperationPoll   = "poll"   // GET /api/jobs
)

// ForcedAnswer is a chosen answer given to a share of the calls, for example 401 or 403 from
// an auth proxy, 418, 429 with a Retry-After in the year 9999, or the bank's own
// invalid-payload 400: {"rate":1,"operation":"submit","status":401,"body":"Unauthorized"}.
type ForcedAnswer struct {
	// Rate is the share of the calls answered so, in [0, 1]; 0 turns it off.
	Rate float64 `json:"rate"`
	// Operation is "submit" or "poll" to answer only those calls; empty answers both.
	Operation string `json:"operation,omitempty"`
	// Status is the HTTP status, 200 to 599.
	Status int `json:"status,omitempty"`
	// Body is sent as it is; empty sends the bank's {"error": "<status text>"}.
	Body string `json:"body,omitempty"`
	// RetryAfter is the Retry-After header sent with it (seconds or an HTTP date), if any.
	RetryAfter string `json:"retry_after,omitempty"`
}

// Validate reports a forced answer that could not be sent.
func (a ForcedAnswer) Validate() error {
	switch {
	case a.Rate < 0 || a.Rate > 1:
		return fmt.Errorf("answer rate %v is not within [0, 1]", a.Rate)
	case a.Rate == 0:
		return nil
	case a.Status < 200 || a.Status > 599:
		return fmt.Errorf("answer status %d is not within [200, 599]", a.Status)
	case a.Operation != "" && a.Operation != OperationSubmit && a.Operation != OperationPoll:
		return fmt.Errorf("answer operation %q is neither %q nor %q", a.Operation, OperationSubmit, OperationPoll)
	case strings.ContainsAny(a.RetryAfter, "\r\n"):
		return errors.New("answer retry_after must be one line")
	}
	return nil
}

// Validate reports the first knob out of its range.
func (f Faults) Validate() error {
	switch {
	case f.FailRate < 0 || f.FailRate > 1:
		return fmt.Errorf("fail_rate %v is not within [0, 1]", f.FailRate)
	case f.DropRate < 0 || f.DropRate > 1:
		return fmt.Errorf("drop_rate %v is not within [0, 1]", f.DropRate)
	case f.RateLimit < 0:
		return fmt.Errorf("rate_limit %v is negative", f.RateLimit)
	case f.Latency < 0:
		return fmt.Errorf("latency %v is negative", f.Latency)
	}
	return f.Answer.Validate()
}

// MaxAssessmentDelay bounds the assessment window: longer than any test or benchmark waits,
// and far enough from the largest time.Duration that the uniform draw cannot overflow.
const MaxAssessmentDelay = 24 * time.Hour

// Assessment is the window in which the bank decides: each application's delay is drawn
// uniformly in [MinDelay, MaxDelay] when it is submitted, so a change applies to applications
// submitted afterwards and never moves a decision already drawn. Its JSON form is what GET and
// PUT /admin/assessment exchange, for example {"min_delay":"90s","max_delay":"120s"}. A benchmark
// lengthens it to keep applications pending at the bank while it restarts the controller.
type Assessment struct {
	// MinDelay is the shortest assessment.
	MinDelay Duration `json:"min_delay"`
	// MaxDelay is the longest assessment; equal to MinDelay, every application takes exactly
	// that long, and both at zero decide at once.
	MaxDelay Duration `json:"max_delay"`
}

// Validate reports a window that is negative, upside down or longer than MaxAssessmentDelay.
func (a Assessment) Validate() error {
	switch {
	case a.MinDelay < 0:
		return fmt.Errorf("min_delay %v is negative", time.Duration(a.MinDelay))
	case a.MaxDelay < a.MinDelay:
		return fmt.Errorf("max_delay %v is below min_delay %v", time.Duration(a.MaxDelay), time.Duration(a.MinDelay))
	case a.MaxDelay > Duration(MaxAssessmentDelay):
		return fmt.Errorf("max_delay %v is above %v", time.Duration(a.MaxDelay), MaxAssessmentDelay)
	}
	return nil
}

// Hastening is the body of POST /admin/hasten, for example {"first_in":"1s"}.
type Hastening struct {
	// FirstIn is how soon from now the first pending decision comes; the others follow it at
	// the spacing they had.
	FirstIn Duration `json:"first_in"`
}

// Validate reports a FirstIn that is negative or longer than MaxAssessmentDelay.
func (h Hastening) Validate() error {
	if h.FirstIn < 0 || h.FirstIn > Duration(MaxAssessmentDelay) {
		return fmt.Errorf("first_in %v is not within [0, %v]", time.Duration(h.FirstIn), MaxAssessmentDelay)
	}
	return nil
}

// clamped returns a with every bound brought into range, the way Config treats its delays.
func (a Assessment) clamped() Assessment {
	a.MinDelay = min(max(a.MinDelay, 0), Duration(MaxAssessmentDelay))
	a.MaxDelay = min(max(a.MaxDelay, a.MinDelay), Duration(MaxAssessmentDelay))
	return a
}

// Duration is a time.Duration written in JSON as a Go duration string such as "200ms".
type Duration time.Duration

// MarshalJSON writes d as a Go duration string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a Go duration string such as "1.5s".
func (d *Duration) UnmarshalJSON(data []byte) error {
	var text string
	if err := json.Unmarshal(data, &text); err != nil {
		return fmt.Errorf("a duration must be a string such as \"200ms\": %w", err)
	}
	parsed, err := time.ParseDuration(text)
	if err != nil {
		return err
	}
	*d = Duration(parsed)
	return nil
}
