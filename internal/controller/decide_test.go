package controller

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	clocktesting "k8s.io/utils/clock/testing"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
)

// These tests drive the state machine the way Reconcile does (plan, the bank call, decide), on
// a fake clock and a fake BankClient: every row of the state table and every kind of bank
// error, without an API server or HTTP. The envtest suites keep the end-to-end cases.

// fakeBank answers every call with what the test set, and counts the calls.
type fakeBank struct {
	submitErrs     []error // one per submission, in turn; the last one for every later submission
	job            bank.Job
	jobErr         error
	submits, polls int
}

func (b *fakeBank) Submit(_ context.Context, app bank.Application) (bank.Application, error) {
	b.submits++
	if len(b.submitErrs) > 0 {
		err := b.submitErrs[0]
		if len(b.submitErrs) > 1 {
			b.submitErrs = b.submitErrs[1:]
		}
		if err != nil {
			return bank.Application{}, err
		}
	}
	return app, nil
}

func (b *fakeBank) GetJob(_ context.Context, id string) (bank.Job, error) {
	b.polls++
	return b.job, b.jobErr
}

const testUID = types.UID("5f0c6a52-4a45-4a8e-9b8e-0d7a1c2b3c4d")

// t0 is a whole second: the API server keeps timestamps to the second.
var t0 = time.Date(2026, 3, 4, 5, 6, 7, 0, time.UTC)

// firstPoll is when an application submitted at t0 (or read back as t0) is first polled with
// the jitter at 0.5: the next whole second, plus 5s, plus 10% of 5s.
var firstPoll = t0.Add(6500 * time.Millisecond)

func newApp() *loansv1alpha1.LoanApplication {
	return &loansv1alpha1.LoanApplication{ObjectMeta: metav1.ObjectMeta{
		Name: "ada", Namespace: "loans", UID: testUID, Generation: 3, CreationTimestamp: metav1.Time{Time: t0}}}
}

// pendingApp is an application submitted at t0 and awaiting its decision.
func pendingApp() *loansv1alpha1.LoanApplication {
	app := newApp()
	markSubmitted(&app.Status, string(testUID), t0, loansv1alpha1.ReasonSubmitted)
	stampGeneration(&app.Status, app.Generation)
	return app
}

func finalApp(phase loansv1alpha1.Phase) *loansv1alpha1.LoanApplication {
	app := pendingApp()
	if phase == loansv1alpha1.PhaseFailed {
		app = newApp()
		markFailed(&app.Status, t0, "HTTP 400: the request payload is not valid.")
	} else {
		markDecided(&app.Status, phase, "job-1", t0.Add(12*time.Second))
	}
	stampGeneration(&app.Status, app.Generation)
	return app
}

func bankErr(kind bank.Kind, status int, msg string) error {
	return &bank.Error{Kind: kind, Op: "submit", StatusCode: status, Message: msg}
}

func throttled(retryAfter time.Duration) error {
	return &bank.Error{Kind: bank.KindThrottled, Op: "get_job", StatusCode: 429, RetryAfter: retryAfter}
}

// runPass is one pass of the reconciler's state machine, without its reads and writes.
func runPass(b *fakeBank, app *loansv1alpha1.LoanApplication, now time.Time) decision {
	r := &LoanApplicationReconciler{Bank: b, Clock: clocktesting.NewFakePassiveClock(now), Timing: DefaultTiming,
		Spread: func(types.UID) float64 { return 0.5 }}
	return r.pass(context.Background(), app)
}

// want is what a row expects; a zero field other than calls and priority is not checked.
type want struct {
	phase             loansv1alpha1.Phase
	priority          int // of the next pass; prioritySubmit is zero
	submits, polls    int
	requeueAfter      time.Duration
	err               error
	conditions        map[string]string // type -> "Status/Reason"; "-" for absent
	messageHas        string            // in the condition of the trouble, or status.message
	events            []string          // "Type Reason"
	submission, poll  string
	unchanged         bool // the status is exactly as read: no write
	submittedResubmit bool
}

func TestStateMachine(t *testing.T) {
	job := func(status bank.JobStatus) bank.Job {
		return bank.Job{ID: "job-1", ApplicationID: string(testUID), Status: status}
	}
	awaiting := map[string]string{"Submitted": "True/Submitted", "Ready": "False/AwaitingDecision",
		"Reconciling": "True/AwaitingDecision", "Stalled": "-"}
	tests := []struct {
		name string
		app  *loansv1alpha1.LoanApplication
		bank fakeBank
		now  time.Time
		want want
	}{
		{"a new application is submitted under its UID and polled at the first slot", newApp(), fakeBank{}, t0,
			want{phase: "Pending", priority: priorityPoll, submits: 1, requeueAfter: 6500 * time.Millisecond, conditions: awaiting,
				submission: "accepted"}},
		{"the bank's 'already used' to a submission means it has it", newApp(),
			fakeBank{submitErrs: []error{bankErr(bank.KindAlreadyUsed, 400, "the application ID is already used")}}, t0.Add(300 * time.Millisecond),
			want{phase: "Pending", priority: priorityPoll, submits: 1, requeueAfter: 6200 * time.Millisecond, conditions: awaiting,
				submission: "already_submitted"}},
		{"an invalid payload fails the application for good: Stalled, not Ready", newApp(),
			fakeBank{submitErrs: []error{bankErr(bank.KindInvalidPayload, 400, "the request payload is not valid.")}}, t0,
			want{phase: "Failed", priority: priorityDecided, submits: 1, submission: "invalid",
				messageHas: "HTTP 400: the request payload is not valid.",
				conditions: map[string]string{"Submitted": "False/InvalidPayload", "Ready": "False/InvalidPayload",
					"Stalled": "True/InvalidPayload", "Reconciling": "-"},
				events: []string{"Warning InvalidPayload"}}},
		{"a 401 from a proxy is retried with backoff, the code in the message", newApp(),
			fakeBank{submitErrs: []error{bankErr(bank.KindRefused, 401, "Unauthorized")}}, t0,
			want{submits: 1, err: errBankRefused, submission: "refused", messageHas: "HTTP 401: Unauthorized",
				conditions: map[string]string{"Submitted": "False/BankRefused", "Reconciling": "True/BankRefused", "Ready": "-"}}},
		{"a 5xx is retried with backoff, named by its kind only", newApp(),
			fakeBank{submitErrs: []error{bankErr(bank.KindTransient, 503, "service unavailable")}}, t0,
			want{submits: 1, err: errBankUnavailable, submission: "error", messageHas: "(HTTP 5xx)",
				conditions: map[string]string{"Submitted": "False/BankUnavailable", "Reconciling": "True/BankUnavailable"}}},
		{"a timeout is retried with backoff", newApp(),
			fakeBank{submitErrs: []error{&bank.Error{Kind: bank.KindTransient, Op: "submit", Err: context.DeadlineExceeded}}}, t0,
			want{submits: 1, err: errBankUnavailable, submission: "error", messageHas: "(timeout)"}},
		{"a 429 waits its Retry-After stretched by the jitter, without an error", newApp(),
			fakeBank{submitErrs: []error{throttled(3 * time.Second)}}, t0,
			want{submits: 1, requeueAfter: 3300 * time.Millisecond, submission: "throttled", messageHas: "429",
				conditions: map[string]string{"Submitted": "False/Throttled", "Reconciling": "True/Throttled"}}},
		{"a 429 without Retry-After waits a second at least", newApp(), fakeBank{submitErrs: []error{throttled(0)}}, t0,
			want{submits: 1, requeueAfter: 1100 * time.Millisecond, submission: "throttled"}},
		{"a Retry-After in the year 9999 is capped at the longest retry delay", newApp(),
			fakeBank{submitErrs: []error{throttled(time.Duration(math.MaxInt64))}}, t0,
			want{submits: 1, requeueAfter: DefaultTiming.MaxWait, submission: "throttled"}},
		{"a pending application is not polled before its first slot", pendingApp(), fakeBank{}, t0.Add(3 * time.Second),
			want{phase: "Pending", priority: priorityPoll, requeueAfter: 3500 * time.Millisecond, unchanged: true}},
		{"a poll that finds it pending writes nothing and comes back at the next slot", pendingApp(),
			fakeBank{job: job(bank.JobPending)}, firstPoll,
			want{phase: "Pending", priority: priorityPoll, polls: 1, requeueAfter: 2 * time.Second, unchanged: true, poll: "pending"}},
		{"a late poll comes back at the next slot, not a whole interval later", pendingApp(),
			fakeBank{job: job(bank.JobPending)}, firstPoll.Add(3100 * time.Millisecond),
			want{phase: "Pending", priority: priorityPoll, polls: 1, requeueAfter: 900 * time.Millisecond, unchanged: true, poll: "pending"}},
		{"completed is Approved: Ready, no longer Reconciling", pendingApp(), fakeBank{job: job(bank.JobCompleted)}, firstPoll,
			want{phase: "Approved", priority: priorityDecided, polls: 1, poll: "completed",
				conditions: map[string]string{"Submitted": "True/Submitted", "Ready": "True/Approved", "Reconciling": "-", "Stalled": "-"}}},
		{"rejected is Rejected", pendingApp(), fakeBank{job: job(bank.JobRejected)}, firstPoll,
			want{phase: "Rejected", priority: priorityDecided, polls: 1, poll: "rejected",
				conditions: map[string]string{"Ready": "True/Rejected", "Reconciling": "-"}}},
		{"a job about another application is an error, not a decision", pendingApp(),
			fakeBank{job: bank.Job{ID: "job-9", ApplicationID: "another", Status: bank.JobCompleted}}, firstPoll,
			want{phase: "Pending", priority: priorityPoll, polls: 1, err: errBankUnavailable, poll: "error",
				conditions: map[string]string{"Submitted": "True/Submitted", "Ready": "False/BankUnavailable"}}},
		{"a 404 within the grace period is lag: poll again at the next slot", pendingApp(),
			fakeBank{jobErr: bankErr(bank.KindNotFound, 404, "")}, firstPoll,
			want{phase: "Pending", priority: priorityPoll, polls: 1, requeueAfter: 2 * time.Second, unchanged: true, poll: "not_found"}},
		{"a 404 after the grace period: the bank forgot, resubmit under the same id in the same pass", pendingApp(),
			fakeBank{jobErr: bankErr(bank.KindNotFound, 404, "")}, t0.Add(40 * time.Second),
			want{phase: "Pending", priority: priorityPoll, polls: 1, submits: 1, requeueAfter: 6500 * time.Millisecond,
				poll: "not_found", submission: "accepted",
				events: []string{"Warning BankForgot", "Normal Resubmitted"}, submittedResubmit: true,
				conditions: map[string]string{"Submitted": "True/Resubmitted", "Ready": "False/AwaitingDecision"}}},
		{"a resubmission the bank refuses for good fails the application", pendingApp(),
			fakeBank{jobErr: bankErr(bank.KindNotFound, 404, ""),
				submitErrs: []error{bankErr(bank.KindInvalidPayload, 400, "the request payload is not valid.")}}, t0.Add(40 * time.Second),
			want{phase: "Failed", priority: priorityDecided, polls: 1, submits: 1, submission: "invalid", poll: "not_found",
				events:     []string{"Warning BankForgot", "Warning InvalidPayload"},
				conditions: map[string]string{"Stalled": "True/InvalidPayload", "Ready": "False/InvalidPayload", "Reconciling": "-"}}},
		{"a 403 to a poll is refused: backoff, Submitted stays True", pendingApp(),
			fakeBank{jobErr: bankErr(bank.KindRefused, 403, "Forbidden")}, firstPoll,
			want{phase: "Pending", priority: priorityPoll, polls: 1, err: errBankRefused, poll: "refused", messageHas: "HTTP 403: Forbidden",
				conditions: map[string]string{"Submitted": "True/Submitted", "Ready": "False/BankRefused", "Reconciling": "True/BankRefused"}}},
		{"a 400 to a poll cannot be the payload's fault: refused, retried", pendingApp(),
			fakeBank{jobErr: bankErr(bank.KindInvalidPayload, 400, "application_id is not a valid uuid")}, firstPoll,
			want{phase: "Pending", priority: priorityPoll, polls: 1, err: errBankRefused, poll: "refused"}},
		{"a 429 to a poll waits", pendingApp(), fakeBank{jobErr: throttled(10 * time.Second)}, firstPoll,
			want{phase: "Pending", priority: priorityPoll, polls: 1, requeueAfter: 11 * time.Second, poll: "throttled",
				conditions: map[string]string{"Ready": "False/Throttled"}}},
		{"a 5xx to a poll backs off", pendingApp(), fakeBank{jobErr: bankErr(bank.KindTransient, 500, "boom")}, firstPoll,
			want{phase: "Pending", priority: priorityPoll, polls: 1, err: errBankUnavailable, poll: "error",
				conditions: map[string]string{"Ready": "False/BankUnavailable"}}},
		{"an Approved application never calls the bank again", finalApp("Approved"), fakeBank{}, t0.Add(time.Hour),
			want{phase: "Approved", priority: priorityDecided, unchanged: true}},
		{"a Rejected application never calls the bank again", finalApp("Rejected"), fakeBank{}, t0.Add(time.Hour),
			want{phase: "Rejected", priority: priorityDecided, unchanged: true}},
		{"a Failed application never calls the bank again", finalApp("Failed"), fakeBank{}, t0.Add(time.Hour),
			want{phase: "Failed", priority: priorityDecided, unchanged: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			read := tt.app.DeepCopy()
			d := runPass(&tt.bank, tt.app, tt.now)
			if !equality.Semantic.DeepEqual(read, tt.app) {
				t.Fatal("the pass changed the application it read")
			}
			checkDecision(t, tt.app, d, &tt.bank, tt.want)
			again := tt.app.DeepCopy()
			again.Status = d.status
			if tt.want.err != nil && !equality.Semantic.DeepEqual(runPass(&tt.bank, again, tt.now).status, d.status) {
				t.Error("the same trouble again changed the status: one API write per retry")
			}
		})
	}
}

func checkDecision(t *testing.T, app *loansv1alpha1.LoanApplication, d decision, b *fakeBank, w want) {
	t.Helper()
	if d.status.Phase != w.phase || b.submits != w.submits || b.polls != w.polls {
		t.Errorf("phase %q after %d submits and %d polls, want %q after %d and %d",
			d.status.Phase, b.submits, b.polls, w.phase, w.submits, w.polls)
	}
	if d.priority != w.priority {
		t.Errorf("next pass at priority %d, want %d", d.priority, w.priority)
	}
	if d.requeueAfter != w.requeueAfter || !errors.Is(d.err, w.err) || (w.err == nil) != (d.err == nil) {
		t.Errorf("requeue after %v, error %v; want %v, %v", d.requeueAfter, d.err, w.requeueAfter, w.err)
	}
	if w.unchanged != equality.Semantic.DeepEqual(app.Status, d.status) {
		t.Errorf("status unchanged: %v, want %v", !w.unchanged, w.unchanged)
	}
	if d.counts.submission != w.submission || d.counts.poll != w.poll {
		t.Errorf("counted submission %q poll %q, want %q %q", d.counts.submission, d.counts.poll, w.submission, w.poll)
	}
	if w.messageHas != "" && !anyMessageHas(d.status, w.messageHas) {
		t.Errorf("no message says %q: %+v", w.messageHas, d.status)
	}
	if w.submittedResubmit && !d.status.SubmittedAt.Equal(&metav1.Time{Time: t0.Add(40 * time.Second)}) {
		t.Errorf("submittedAt %v after the resubmission", d.status.SubmittedAt)
	}
	checkConditions(t, app, d, w)
	checkEvents(t, d, w)
}

func checkEvents(t *testing.T, d decision, w want) {
	t.Helper()
	events := make([]string, 0, len(d.events))
	for _, e := range d.events {
		events = append(events, e.eventType+" "+e.reason)
	}
	if strings.Join(events, ",") != strings.Join(w.events, ",") {
		t.Errorf("events %v, want %v", events, w.events)
	}
}

// checkConditions checks the conditions a row names, and the generation on every one.
func checkConditions(t *testing.T, app *loansv1alpha1.LoanApplication, d decision, w want) {
	t.Helper()
	for conditionType, expected := range w.conditions {
		c := meta.FindStatusCondition(d.status.Conditions, conditionType)
		got := "-"
		if c != nil {
			got = string(c.Status) + "/" + c.Reason
		}
		if got != expected {
			t.Errorf("condition %s is %s, want %s", conditionType, got, expected)
		}
	}
	for _, c := range d.status.Conditions {
		if c.ObservedGeneration != app.Generation {
			t.Errorf("condition %s observed generation %d, want %d", c.Type, c.ObservedGeneration, app.Generation)
		}
	}
	if d.status.ObservedGeneration != app.Generation {
		t.Errorf("status observed generation %d, want %d", d.status.ObservedGeneration, app.Generation)
	}
}

func anyMessageHas(status loansv1alpha1.LoanApplicationStatus, s string) bool {
	if strings.Contains(status.Message, s) {
		return true
	}
	for _, c := range status.Conditions {
		if strings.Contains(c.Message, s) {
			return true
		}
	}
	return false
}

// After a restart submittedAt reads back cut to the second, up to a second before the bank
// really accepted the application: the first poll must still not come before the bank's
// minimum assessment time after the true submission, whatever the jitter.
func TestNoPollBeforeTheFirstPollDelayAfterARestart(t *testing.T) {
	for _, trueOffset := range []time.Duration{0, 300 * time.Millisecond, 999 * time.Millisecond} {
		submitted := t0.Add(trueOffset)
		app := pendingApp() // read back: submittedAt is t0, the true time cut to the second
		for now := submitted; now.Before(submitted.Add(DefaultTiming.FirstPollDelay)); now = now.Add(50 * time.Millisecond) {
			b := &fakeBank{}
			r := &LoanApplicationReconciler{Bank: b, Clock: clocktesting.NewFakePassiveClock(now), Timing: DefaultTiming,
				Spread: func(types.UID) float64 { return 0 }}
			if d := r.pass(context.Background(), app); b.polls != 0 || d.requeueAfter <= 0 {
				t.Fatalf("submitted at +%v, polled at +%v: %d polls, requeue %v", trueOffset, now.Sub(t0), b.polls, d.requeueAfter)
			}
		}
	}
}

// The bank's error text can be a megabyte: status.message, every condition message and every
// Event note stay within 1 KiB, cut on a character boundary and marked as cut.
func TestTheBanksWordsAreCapped(t *testing.T) {
	huge := strings.Repeat("é", 600_000) // two bytes each: a cut in the middle would break one
	for _, err := range []error{bankErr(bank.KindInvalidPayload, 400, huge), bankErr(bank.KindRefused, 403, huge)} {
		d := runPass(&fakeBank{submitErrs: []error{err}}, newApp(), t0)
		texts := make([]string, 0, 1+len(d.status.Conditions)+len(d.events))
		texts = append(texts, d.status.Message)
		for _, c := range d.status.Conditions {
			texts = append(texts, c.Message)
		}
		for _, e := range d.events {
			texts = append(texts, e.note)
		}
		for _, text := range texts {
			if text == "" {
				continue
			}
			if len(text) > maxTextBytes || !strings.HasSuffix(text, cutMarker) || !utf8Valid(text) {
				t.Errorf("a text of %d bytes, ending %q", len(text), text[max(0, len(text)-20):])
			}
		}
	}
}

func utf8Valid(s string) bool { return strings.ToValidUTF8(s, "\uFFFD") == s }

func TestSpreadIsStableAndSpread(t *testing.T) {
	if spreadOf(testUID) != spreadOf(testUID) {
		t.Fatal("the spread of one UID changed")
	}
	seen := map[int]bool{}
	for i := range 1000 {
		s := spreadOf(types.UID(strings.Repeat("x", i%7) + string(rune('a'+i%26)) + time.Duration(i).String()))
		if s < 0 || s >= 1 {
			t.Fatalf("spread %v out of [0, 1)", s)
		}
		seen[int(s*10)] = true
	}
	if len(seen) != 10 {
		t.Errorf("1000 UIDs fall in %d of 10 deciles", len(seen))
	}
}
