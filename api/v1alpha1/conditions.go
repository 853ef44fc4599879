package v1alpha1

// Condition types of a LoanApplication.
const (
	// ConditionSubmitted is True once the bank has accepted the application (a 201, or its
	// "already used" answer to a retry). While False, its message carries the last error.
	ConditionSubmitted = "Submitted"

	// ConditionReady is True once the bank has decided: its reason says how (Approved or
	// Rejected). While False, the reason says what it waits for, or InvalidPayload for an
	// application the bank refused for good. `kubectl wait --for=condition=Ready` therefore
	// returns for decided applications only.
	ConditionReady = "Ready"

	// ConditionReconciling is True while the controller still has work to do (the application
	// is not final), and absent once it is final: the abnormal-true condition kstatus reads as
	// InProgress.
	ConditionReconciling = "Reconciling"

	// ConditionStalled is True when the application can make no further progress without a
	// person (the bank refused its payload for good), and absent otherwise: kstatus reads it as
	// Failed.
	ConditionStalled = "Stalled"
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
	// ReasonBankRefused: something answered the bank's address with a 4xx the bank does not
	// document (401, 403, 418...), most likely a proxy in front of it; the message carries the
	// code, and the controller retries with backoff.
	ReasonBankRefused = "BankRefused"
	// ReasonThrottled: the bank asked the controller to slow down (429); it waits and retries.
	ReasonThrottled = "Throttled"
	// ReasonInvalidPayload: the bank refused the payload for good (its documented 400); the
	// application is Failed.
	ReasonInvalidPayload = "InvalidPayload"
	// ReasonApproved: the bank approved the loan.
	ReasonApproved = "Approved"
	// ReasonRejected: the bank rejected the loan.
	ReasonRejected = "Rejected"
)
