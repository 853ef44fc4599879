package controller

import (
	"time"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// The functions in this file turn what a step learned into status. They are pure (the time is
// passed in) so that table tests can cover every transition without an API server.
//
// The conditions follow the kstatus conventions, so that kubectl wait, Flux, Argo CD and
// cli-utils read an application right: Reconciling is True while it is not final, Ready is True
// once the bank decided, and Stalled is True (with Ready False) when it was refused for good.

// maxTextBytes bounds every text the controller stores from outside (status.message, condition
// messages, Event notes): the bank's error text can be a megabyte, and the CRD refuses longer.
const maxTextBytes = 1024

// cutMarker ends a text that was cut, so that a reader knows there was more.
const cutMarker = " …[cut]"

// capText returns s within maxTextBytes, cut on a rune boundary and marked when it was longer.
func capText(s string) string {
	if len(s) <= maxTextBytes {
		return s
	}
	cut := maxTextBytes - len(cutMarker)
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + cutMarker
}

// markSubmitted records that the bank has the application: reason is ReasonSubmitted for the
// first submission and ReasonResubmitted after the bank forgot it.
func markSubmitted(status *loansv1alpha1.LoanApplicationStatus, bankID string, now time.Time, reason string) {
	status.Phase = loansv1alpha1.PhasePending
	status.BankApplicationID = bankID
	status.SubmittedAt = &metav1.Time{Time: now}
	status.Message = "submitted to the bank, awaiting its decision"
	setCondition(status, now, loansv1alpha1.ConditionSubmitted, metav1.ConditionTrue, reason, "the bank accepted the application")
	markAwaiting(status, now)
}

// markAwaiting records that the bank is assessing; a poll that succeeds clears an earlier
// trouble this way.
func markAwaiting(status *loansv1alpha1.LoanApplicationStatus, now time.Time) {
	const message = "waiting for the bank's decision"
	setCondition(status, now, loansv1alpha1.ConditionReady, metav1.ConditionFalse, loansv1alpha1.ReasonAwaitingDecision, message)
	setCondition(status, now, loansv1alpha1.ConditionReconciling, metav1.ConditionTrue, loansv1alpha1.ReasonAwaitingDecision, message)
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
	setCondition(status, now, loansv1alpha1.ConditionReady, metav1.ConditionTrue, reason, message)
	meta.RemoveStatusCondition(&status.Conditions, loansv1alpha1.ConditionReconciling)
	meta.RemoveStatusCondition(&status.Conditions, loansv1alpha1.ConditionStalled)
}

// markFailed records that the bank refused the payload for good. The application is final
// (the spec is immutable, so the same payload would be refused again) but not Ready: it is
// Stalled, which kstatus reads as Failed, and kubectl wait --for=condition=Ready never takes it
// for a decision.
func markFailed(status *loansv1alpha1.LoanApplicationStatus, now time.Time, bankWords string) {
	status.Phase = loansv1alpha1.PhaseFailed
	status.Message = capText("the bank refused the application: " + bankWords)
	reason := loansv1alpha1.ReasonInvalidPayload
	setCondition(status, now, loansv1alpha1.ConditionSubmitted, metav1.ConditionFalse, reason, bankWords)
	setCondition(status, now, loansv1alpha1.ConditionReady, metav1.ConditionFalse, reason, bankWords)
	setCondition(status, now, loansv1alpha1.ConditionStalled, metav1.ConditionTrue, reason, bankWords)
	meta.RemoveStatusCondition(&status.Conditions, loansv1alpha1.ConditionReconciling)
}

// markBankTrouble records the last error talking to the bank in the condition of the step that
// met it: Submitted until the bank has the application, Ready after that (Submitted stays True:
// the trouble is with the poll). Reconciling carries it too. Only a new reason or message
// changes the status, so a bank that stays down does not cost one API write per retry.
func markBankTrouble(status *loansv1alpha1.LoanApplicationStatus, now time.Time, reason, message string) {
	conditionType := loansv1alpha1.ConditionSubmitted
	if meta.IsStatusConditionTrue(status.Conditions, loansv1alpha1.ConditionSubmitted) {
		conditionType = loansv1alpha1.ConditionReady
	}
	setCondition(status, now, conditionType, metav1.ConditionFalse, reason, message)
	setCondition(status, now, loansv1alpha1.ConditionReconciling, metav1.ConditionTrue, reason, message)
}

// setCondition sets a condition; meta.SetStatusCondition keeps LastTransitionTime unless the
// status flips, so an unchanged condition leaves the status byte for byte as it was.
func setCondition(status *loansv1alpha1.LoanApplicationStatus, now time.Time, conditionType string, value metav1.ConditionStatus,
	reason, message string) {
	meta.SetStatusCondition(&status.Conditions, metav1.Condition{
		Type:               conditionType,
		Status:             value,
		Reason:             reason,
		Message:            capText(message),
		LastTransitionTime: metav1.Time{Time: now},
	})
}

// stampGeneration records on the status and on each condition the generation they were
// computed from.
func stampGeneration(status *loansv1alpha1.LoanApplicationStatus, generation int64) {
	status.ObservedGeneration = generation
	for i := range status.Conditions {
		status.Conditions[i].ObservedGeneration = generation
	}
}
