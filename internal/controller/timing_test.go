package controller

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// fixedRandom returns a jitter source that always draws v.
func fixedRandom(v float64) func() float64 { return func() float64 { return v } }

var testTiming = Timing{
	FirstPollDelay: 5 * time.Second,
	PollInterval:   2 * time.Second,
	NotFoundGrace:  30 * time.Second,
	Jitter:         0.2,
}

func TestFirstPollDue(t *testing.T) {
	submitted := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		now    time.Time
		random float64
		want   time.Time
	}{
		{"right after submission, no jitter drawn: the bank's minimum assessment time",
			submitted, 0, submitted.Add(5 * time.Second)},
		{"right after submission, the largest jitter stretches the wait by 20%",
			submitted, 0.999999, submitted.Add(5 * time.Second).Add(time.Duration(float64(5*time.Second) * 0.2 * 0.999999))},
		{"half a jitter: 5s + 10% of 5s",
			submitted, 0.5, submitted.Add(5500 * time.Millisecond)},
		{"two seconds in, the jitter applies to what is left of the wait (3s)",
			submitted.Add(2 * time.Second), 0.5, submitted.Add(2*time.Second + 3300*time.Millisecond)},
		{"overdue (restart long after the submission): spread over one poll interval, early end",
			submitted.Add(time.Hour), 0, submitted.Add(time.Hour)},
		{"overdue: spread over one poll interval, middle",
			submitted.Add(time.Hour), 0.5, submitted.Add(time.Hour + time.Second)},
		{"exactly due: treated as overdue and spread",
			submitted.Add(5 * time.Second), 0.25, submitted.Add(5*time.Second + 500*time.Millisecond)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := testTiming.firstPollDue(tc.now, submitted, fixedRandom(tc.random))
			if !got.Equal(tc.want) {
				t.Errorf("firstPollDue = %v, want %v", got, tc.want)
			}
			if got.Before(submitted.Add(testTiming.FirstPollDelay)) {
				t.Errorf("firstPollDue %v comes before the bank could have decided", got)
			}
		})
	}
}

func TestNextPollDue(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	for _, tc := range []struct {
		name   string
		timing Timing
		random float64
		want   time.Duration
	}{
		{"the lowest draw: interval - 10%", testTiming, 0, 1800 * time.Millisecond},
		{"the middle draw: exactly the poll interval", testTiming, 0.5, 2 * time.Second},
		{"the highest draw: interval + 10%, the latest a decision can be noticed", testTiming, 1, 2200 * time.Millisecond},
		{"jitter turned off: the draw does not matter", Timing{PollInterval: 2 * time.Second}, 0.9, 2 * time.Second},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.timing.nextPollDue(now, fixedRandom(tc.random)); !got.Equal(now.Add(tc.want)) {
				t.Errorf("nextPollDue = now+%v, want now+%v", got.Sub(now), tc.want)
			}
		})
	}
}

// TestJitterSpreadsPolls checks that the jitter does what it is for: a thousand applications
// submitted in the same second do not all come due in the same instant.
func TestJitterSpreadsPolls(t *testing.T) {
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	seen := map[time.Time]bool{}
	earliest, latest := now.Add(time.Hour), now
	for range 1000 {
		due := testTiming.nextPollDue(now, defaultRandom)
		seen[due] = true
		earliest, latest = minTime(earliest, due), maxTime(latest, due)
	}
	if len(seen) < 900 {
		t.Errorf("1000 polls fell on only %d distinct instants", len(seen))
	}
	if spread := latest.Sub(earliest); spread < 300*time.Millisecond || spread > 400*time.Millisecond {
		t.Errorf("1000 polls spread over %v, want close to 20%% of 2s (400ms)", spread)
	}
	if earliest.Before(now.Add(1800*time.Millisecond)) || latest.After(now.Add(2200*time.Millisecond)) {
		t.Errorf("polls due from now+%v to now+%v, want within 2s ± 10%%", earliest.Sub(now), latest.Sub(now))
	}
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

func TestBankForgot(t *testing.T) {
	submitted := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	withSubmission := &loansv1alpha1.LoanApplicationStatus{SubmittedAt: &metav1.Time{Time: submitted}}
	for _, tc := range []struct {
		name   string
		status *loansv1alpha1.LoanApplicationStatus
		now    time.Time
		want   bool
	}{
		{"a 404 right after the submission is lag", withSubmission, submitted.Add(time.Second), false},
		{"a 404 just inside the grace period is still lag", withSubmission, submitted.Add(30*time.Second - time.Nanosecond), false},
		{"a 404 at the end of the grace period: the bank forgot", withSubmission, submitted.Add(30 * time.Second), true},
		{"a 404 an hour later: the bank forgot", withSubmission, submitted.Add(time.Hour), true},
		{"no recorded submission: nothing to wait for", &loansv1alpha1.LoanApplicationStatus{}, submitted, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := testTiming.bankForgot(tc.now, tc.status); got != tc.want {
				t.Errorf("bankForgot = %v, want %v", got, tc.want)
			}
		})
	}
}
