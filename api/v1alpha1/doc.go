// Package v1alpha1 holds the LoanApplication API of group loans.lendo.se.
//
// A LoanApplication is one customer's request for a loan. Its spec is what the customer asked
// (first and last name) and never changes after creation; its status is what the bank partner
// said, written only by the controller.
//
// # The status label
//
// Every LoanApplication carries the label `status` (LabelStatus) with one of the values
// `pending`, `approved`, `rejected` or `failed`: the lower-case form of status.phase, where an
// application not yet submitted counts as pending. The label exists so that clients can select
// applications by outcome without reading their status:
//
//	kubectl get loanapplications -l status=approved
//
// The contract:
//   - The controller owns the label. It writes status first and derives the label from it, so the
//     label may lag the status for one reconcile (for example after a crash between the two
//     writes) but never leads it.
//   - A label edited by hand is put back by the controller.
//   - Creators (the gateway) set `status=pending` when they create an application, to save the
//     controller a write; an application created without the label gets it on its first
//     reconcile.
//   - Only the controller's identity may set a final value (`approved`, `rejected`, `failed`); an
//     admission policy shipped in config/ enforces it in a cluster.
//
// +kubebuilder:object:generate=true
// +groupName=loans.lendo.se
package v1alpha1
