package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// LoanApplicationSpec is what the customer asked for. It is immutable: the bank was (or will be)
// sent exactly these names, so a later change could never reach it.
type LoanApplicationSpec struct {
	// firstName is the applicant's first name, as sent to the bank. Required, 1 to 100
	// characters, not only whitespace, no control or bidirectional-override characters
	// (which could disguise a name on a screen), and immutable once created.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:XValidation:rule="self.trim().size() > 0",message="firstName must not be empty or only whitespace"
	// +kubebuilder:validation:XValidation:rule="!self.matches('[[:cntrl:]\\u0080-\\u009F\\u202A-\\u202E\\u2066-\\u2069]')",message="firstName must not contain control or bidirectional-override characters"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="firstName is immutable once the application is created"
	FirstName string `json:"firstName"`

	// lastName is the applicant's last name, as sent to the bank. Required, 1 to 100
	// characters, not only whitespace, no control or bidirectional-override characters
	// (which could disguise a name on a screen), and immutable once created.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=100
	// +kubebuilder:validation:XValidation:rule="self.trim().size() > 0",message="lastName must not be empty or only whitespace"
	// +kubebuilder:validation:XValidation:rule="!self.matches('[[:cntrl:]\\u0080-\\u009F\\u202A-\\u202E\\u2066-\\u2069]')",message="lastName must not contain control or bidirectional-override characters"
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="lastName is immutable once the application is created"
	LastName string `json:"lastName"`
}

// Phase is where an application stands with the bank.
// +kubebuilder:validation:Enum=Pending;Approved;Rejected;Failed
type Phase string

const (
	// PhasePending: submitted to the bank (or about to be), no decision yet.
	PhasePending Phase = "Pending"
	// PhaseApproved: the bank approved the loan (its job status "completed"). Final.
	PhaseApproved Phase = "Approved"
	// PhaseRejected: the bank rejected the loan. Final.
	PhaseRejected Phase = "Rejected"
	// PhaseFailed: the bank refused the payload for good (its documented 400, other than a
	// duplicate id). Final: retrying the same payload cannot succeed, and the spec cannot change.
	PhaseFailed Phase = "Failed"
)

// IsFinal reports whether the phase can never change again. A final application is never sent
// to the bank again.
func (p Phase) IsFinal() bool {
	return p == PhaseApproved || p == PhaseRejected || p == PhaseFailed
}

// LoanApplicationStatus is what the bank said, as observed by the controller.
type LoanApplicationStatus struct {
	// phase is where the application stands: Pending, Approved, Rejected or Failed. Empty until
	// the controller has submitted the application to the bank.
	// +optional
	Phase Phase `json:"phase,omitempty"`

	// bankApplicationID is the id under which the bank knows this application: the object's
	// metadata.uid, chosen before the first call so that a retry after a crash can never create
	// a second application at the bank.
	// +optional
	// +kubebuilder:validation:Format=uuid
	BankApplicationID string `json:"bankApplicationID,omitempty"`

	// bankJobID is the id of the bank's assessment job for this application, once polled.
	// +optional
	BankJobID string `json:"bankJobID,omitempty"`

	// submittedAt is when the bank accepted the application (the latest time, if the bank lost
	// it and it was submitted again).
	// +optional
	SubmittedAt *metav1.Time `json:"submittedAt,omitempty"`

	// decidedAt is when the controller saw the bank's final decision.
	// +optional
	DecidedAt *metav1.Time `json:"decidedAt,omitempty"`

	// observedGeneration is the metadata.generation this status was computed from.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`

	// message is a human-readable summary of the current state, such as the bank's reason for a
	// refusal. At most 1024 bytes: a longer text is cut and marked so.
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	Message string `json:"message,omitempty"`

	// conditions are the standard Kubernetes conditions: Submitted (the bank has the
	// application), Ready (the bank decided; its reason says how), Reconciling (not final yet)
	// and Stalled (refused for good), each with the generation it was computed from.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=loan,categories=lendo
// +kubebuilder:printcolumn:name="First Name",type=string,JSONPath=`.spec.firstName`
// +kubebuilder:printcolumn:name="Last Name",type=string,JSONPath=`.spec.lastName`
// +kubebuilder:printcolumn:name="Status",type=string,JSONPath=`.status.phase`
// +kubebuilder:printcolumn:name="Decided",type=date,JSONPath=`.status.decidedAt`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// The gateway serves its stream of changes at /api/v1/applications/events, where an application
// named "events" would be unreachable by id.
// +kubebuilder:validation:XValidation:rule="self.metadata.name != 'events'",message="the name 'events' is reserved: the gateway serves its stream of changes at /api/v1/applications/events"

// LoanApplication is one customer's loan application: submitted to the bank partner by the
// controller and followed until the bank decides. Select by outcome with the `status` label,
// for example `kubectl get loanapplications -l status=approved`.
type LoanApplication struct {
	metav1.TypeMeta `json:",inline"`

	// metadata is the standard object metadata.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is what the customer asked for.
	// +required
	Spec LoanApplicationSpec `json:"spec"`

	// status is what the bank said, written by the controller.
	// +optional
	Status LoanApplicationStatus `json:"status,omitempty"`
}

// +kubebuilder:object:root=true

// LoanApplicationList is a list of LoanApplications.
type LoanApplicationList struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is the standard list metadata.
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`
	// items are the LoanApplications.
	Items []LoanApplication `json:"items"`
}
