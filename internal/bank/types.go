// Package bank is the client of the bank partner's API (docs/design.md describes the contract):
// submit an application, poll its job. It classifies every failure into an error class the
// controller can act on without parsing strings, and it never retries by itself: the
// controller's requeue does.
package bank

// Application is the bank's view of a loan application. The caller chooses ID (a UUID).
type Application struct {
	ID        string `json:"id"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	// Status is set by the bank in its answer ("pending" for a new application).
	Status string `json:"status,omitempty"`
}

// JobStatus is the state of the bank's assessment of one application.
type JobStatus string

// The bank's job states. A decided state (completed or rejected) never changes again.
const (
	JobPending   JobStatus = "pending"
	JobCompleted JobStatus = "completed" // the loan is approved
	JobRejected  JobStatus = "rejected"
)

// IsDecided reports whether the bank has decided and the status can no longer change.
func (s JobStatus) IsDecided() bool { return s == JobCompleted || s == JobRejected }

// Job is the bank's assessment job of an application.
type Job struct {
	ID            string    `json:"id"`
	ApplicationID string    `json:"application_id"`
	Status        JobStatus `json:"status"`
}

// errorBody is the JSON body of every error answer of the bank.
type errorBody struct {
	Error string `json:"error"`
}
