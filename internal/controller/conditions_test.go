package controller

import (
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

var (
	t0 = time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	t1 = t0.Add(12 * time.Second)
)

// wantCondition is what a test expects of one condition.
type wantCondition struct {
	status          metav1.ConditionStatus
	reason, message string // message: a substring
}

func checkCondition(t *testing.T, status *loansv1alpha1.LoanApplicationStatus, conditionType string, want wantCondition) {
	t.Helper()
	c := meta.FindStatusCondition(status.Conditions, conditionType)
	if c == nil {
		t.Fatalf("no %s condition in %+v", conditionType, status.Conditions)
	}
	if c.Status != want.status || c.Reason != want.reason || !strings.Contains(c.Message, want.message) {
		t.Errorf("%s = %s/%s %q, want %s/%s containing %q", conditionType, c.Status, c.Reason, c.Message,
			want.status, want.reason, want.message)
	}
}

func submittedStatus() *loansv1alpha1.LoanApplicationStatus {
	s := &loansv1alpha1.LoanApplicationStatus{}
	markSubmitted(s, "9f2c1c3e-3b0f-4a55-a2a4-6c1e4a0f3a21", t0, loansv1alpha1.ReasonSubmitted)
	return s
}

func TestMarkSubmitted(t *testing.T) {
	s := submittedStatus()
	if s.Phase != loansv1alpha1.PhasePending || s.BankApplicationID == "" || !s.SubmittedAt.Time.Equal(t0) || s.DecidedAt != nil {
		t.Errorf("after markSubmitted: %+v", s)
	}
	checkCondition(t, s, loansv1alpha1.ConditionSubmitted, wantCondition{metav1.ConditionTrue, loansv1alpha1.ReasonSubmitted, ""})
	checkCondition(t, s, loansv1alpha1.ConditionReady, wantCondition{metav1.ConditionFalse, loansv1alpha1.ReasonAwaitingDecision, ""})

	markSubmitted(s, s.BankApplicationID, t1, loansv1alpha1.ReasonResubmitted)
	checkCondition(t, s, loansv1alpha1.ConditionSubmitted, wantCondition{metav1.ConditionTrue, loansv1alpha1.ReasonResubmitted, ""})
	if !s.SubmittedAt.Time.Equal(t1) {
		t.Errorf("a resubmission keeps submittedAt %v, want the latest submission %v", s.SubmittedAt, t1)
	}
}

func TestMarkDecided(t *testing.T) {
	for _, tc := range []struct {
		phase  loansv1alpha1.Phase
		reason string
	}{
		{loansv1alpha1.PhaseApproved, loansv1alpha1.ReasonApproved},
		{loansv1alpha1.PhaseRejected, loansv1alpha1.ReasonRejected},
	} {
		t.Run(string(tc.phase), func(t *testing.T) {
			s := submittedStatus()
			markDecided(s, tc.phase, "job-1", t1)
			if s.Phase != tc.phase || s.BankJobID != "job-1" || !s.DecidedAt.Time.Equal(t1) || !s.Phase.IsFinal() {
				t.Errorf("after markDecided: %+v", s)
			}
			checkCondition(t, s, loansv1alpha1.ConditionReady, wantCondition{metav1.ConditionTrue, tc.reason, ""})
			checkCondition(t, s, loansv1alpha1.ConditionSubmitted, wantCondition{metav1.ConditionTrue, loansv1alpha1.ReasonSubmitted, ""})
		})
	}
}

func TestMarkFailed(t *testing.T) {
	s := &loansv1alpha1.LoanApplicationStatus{}
	markFailed(s, "HTTP 400: the request payload is not valid.")
	if s.Phase != loansv1alpha1.PhaseFailed || !strings.Contains(s.Message, "not valid") {
		t.Errorf("after markFailed: %+v", s)
	}
	checkCondition(t, s, loansv1alpha1.ConditionReady,
		wantCondition{metav1.ConditionTrue, loansv1alpha1.ReasonInvalidPayload, "the request payload is not valid."})
	checkCondition(t, s, loansv1alpha1.ConditionSubmitted,
		wantCondition{metav1.ConditionFalse, loansv1alpha1.ReasonInvalidPayload, "the request payload is not valid."})
}

func TestMarkBankTrouble(t *testing.T) {
	for _, tc := range []struct {
		name      string
		status    func() *loansv1alpha1.LoanApplicationStatus
		wantType  string
		untouched string // the condition type that must not change
	}{
		{"before the bank has the application, the trouble is the submission's",
			func() *loansv1alpha1.LoanApplicationStatus { return &loansv1alpha1.LoanApplicationStatus{} },
			loansv1alpha1.ConditionSubmitted, ""},
		{"once submitted, Submitted stays True and Ready carries the trouble",
			submittedStatus, loansv1alpha1.ConditionReady, loansv1alpha1.ConditionSubmitted},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := tc.status()
			var before *metav1.Condition
			if tc.untouched != "" {
				before = meta.FindStatusCondition(s.Conditions, tc.untouched).DeepCopy()
			}
			markBankTrouble(s, loansv1alpha1.ReasonBankUnavailable, "HTTP 5xx")
			checkCondition(t, s, tc.wantType, wantCondition{metav1.ConditionFalse, loansv1alpha1.ReasonBankUnavailable, "HTTP 5xx"})
			if before != nil {
				if after := meta.FindStatusCondition(s.Conditions, tc.untouched); !equality.Semantic.DeepEqual(before, after) {
					t.Errorf("%s changed from %+v to %+v", tc.untouched, before, after)
				}
			}
		})
	}
}

// TestSameTroubleTwiceChangesNothing is what keeps a bank outage from costing one status write
// per retry: recording the same trouble again leaves the status equal, so patchStatus skips it.
func TestSameTroubleTwiceChangesNothing(t *testing.T) {
	s := submittedStatus()
	markBankTrouble(s, loansv1alpha1.ReasonBankUnavailable, "HTTP 5xx")
	once := s.DeepCopy()
	markBankTrouble(s, loansv1alpha1.ReasonBankUnavailable, "HTTP 5xx")
	if !equality.Semantic.DeepEqual(once, s) {
		t.Errorf("the same trouble twice changed the status:\n%+v\n%+v", once, s)
	}
	markBankTrouble(s, loansv1alpha1.ReasonBankUnavailable, "timeout")
	if equality.Semantic.DeepEqual(once, s) {
		t.Error("a new kind of trouble left the status as it was; the condition should say what happened last")
	}
}

func TestSetConditionTruncatesLongMessages(t *testing.T) {
	s := &loansv1alpha1.LoanApplicationStatus{}
	setCondition(s, loansv1alpha1.ConditionReady, metav1.ConditionFalse, loansv1alpha1.ReasonBankUnavailable, strings.Repeat("x", 5000))
	if got := len(meta.FindStatusCondition(s.Conditions, loansv1alpha1.ConditionReady).Message); got != 1024+len("...") {
		t.Errorf("message of %d bytes, want 1027", got)
	}
}
