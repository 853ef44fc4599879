package v1alpha1

// Condition types of a LoanApplication.
const (
	// ConditionSubmitted is True once the bank has accepted the application (a 201, or its
	// "already used" answer to a retry). While False, its message carries the last error.
	ConditionSubmitted = "Submitted"

	// ConditionReady is True once the application is final: its reason says how (Approved,
	// Rejected, InvalidPayload). While False, the reason says what it waits for.
	ConditionReady = "Ready"
)

// Condition reasons, CamelCase as Kubernetes expects.
const (
	// ReasonSubmitted: the bank accepted the application.
	ReasonSubmitted = "Submitted"
	// ReasonResubmitted: the bank had forgotten the application (it restarted) and it was
	// submitted again under the same id.
	ReasonResubmitted = "Resubmitted"
	// ReasonAwaitingDecision: submitted, the bank has not decided yet.
	ReasonAwaitingDecision = "AwaitingDecision"
	// ReasonBankUnavailable: the bank could not be reached or answered with a transient error;
	// the controller retries with backoff.
	ReasonBankUnavailable = "BankUnavailable"
	// ReasonThrottled: the bank asked the controller to slow down (429); it waits and retries.
	ReasonThrottled = "Throttled"
	// ReasonInvalidPayload: the bank refused the payload for good; the application is Failed.
	ReasonInvalidPayload = "InvalidPayload"
	// ReasonApproved: the bank approved the loan.
	ReasonApproved = "Approved"
	// ReasonRejected: the bank rejected the loan.
	ReasonRejected = "Rejected"
)
