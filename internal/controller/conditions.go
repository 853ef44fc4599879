package controller

import (
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// The functions in this file turn what a step learned into status. They are pure (the time is
// passed in) so that table tests can cover every transition without an API server.

// markSubmitted records that the bank has the application: reason is ReasonSubmitted for the
// first submission and ReasonResubmitted after the bank forgot it.
func markSubmitted(status *loansv1alpha1.LoanApplicationStatus, bankID string, now time.Time, reason string) {
	status.Phase = loansv1alpha1.PhasePending
	status.BankApplicationID = bankID
	status.SubmittedAt = &metav1.Time{Time: now}
	status.Message = "submitted to the bank, awaiting its decision"
	setCondition(status, loansv1alpha1.ConditionSubmitted, metav1.ConditionTrue, reason, "the bank accepted the application")
	setCondition(status, loansv1alpha1.ConditionReady, metav1.ConditionFalse, loansv1alpha1.ReasonAwaitingDecision,
		"waiting for the bank's decision")
}

// markDecided records the bank's final decision.
func markDecided(status *loansv1alpha1.LoanApplicationStatus, phase loansv1alpha1.Phase, jobID string, now time.Time) {
	status.Phase = phase
	status.BankJobID = jobID
	status.DecidedAt = &metav1.Time{Time: now}
	reason, message := loansv1alpha1.ReasonApproved, "the bank approved the loan"
	if phase == loansv1alpha1.PhaseRejected {
		reason, message = loansv1alpha1.ReasonRejected, "the bank rejected the loan"
	}
	status.Message = message
	setCondition(status, loansv1alpha1.ConditionReady, metav1.ConditionTrue, reason, message)
}

// markFailed records that the bank refused the payload for good. The application is final
// (the spec is immutable, so the same payload would be refused again), so Ready is True, as
// for every final application, and its reason InvalidPayload says how it ended.
func markFailed(status *loansv1alpha1.LoanApplicationStatus, bankMessage string) {
	status.Phase = loansv1alpha1.PhaseFailed
	status.Message = "the bank refused the application: " + bankMessage
	setCondition(status, loansv1alpha1.ConditionSubmitted, metav1.ConditionFalse, loansv1alpha1.ReasonInvalidPayload, bankMessage)
	setCondition(status, loansv1alpha1.ConditionReady, metav1.ConditionTrue, loansv1alpha1.ReasonInvalidPayload, bankMessage)
}

// markBankTrouble records the last error talking to the bank in the condition of the step that
// met it: Submitted until the bank has the application, Ready after that (Submitted stays True:
// the trouble is with the poll). Only a new reason or message changes the status, so a bank
// that stays down does not cost one API write per retry.
func markBankTrouble(status *loansv1alpha1.LoanApplicationStatus, reason, message string) {
	conditionType := loansv1alpha1.ConditionSubmitted
	if meta.IsStatusConditionTrue(status.Conditions, loansv1alpha1.ConditionSubmitted) {
		conditionType = loansv1alpha1.ConditionReady
	}
	setCondition(status, conditionType, metav1.ConditionFalse, reason, message)
}

// setCondition sets a condition; meta.SetStatusCondition keeps LastTransitionTime unless the
// status flips, so an unchanged condition leaves the status byte for byte as it was.
func setCondition(status *loansv1alpha1.LoanApplicationStatus, conditionType string, value metav1.ConditionStatus,
	reason, message string) {
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type:    conditionType,
		Status:  value,
		Reason:  reason,
		Message: truncate(message, 1024),
	})
}

// truncate keeps condition messages readable and within the API's limit (32768 bytes).
func truncate(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	return s[:limit] + "..."
}
