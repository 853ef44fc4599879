package gateway

import (
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// applicationView is the REST API's JSON shape of a LoanApplication (snake_case, like the
// bank's API). The id is the resource's name.
type applicationView struct {
	ID        string `json:"id"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	// Status is the value of the status label: pending, approved, rejected or failed.
	Status    string     `json:"status"`
	CreatedAt time.Time  `json:"created_at"`
	Submitted *time.Time `json:"submitted_at,omitempty"`
	Decided   *time.Time `json:"decided_at,omitempty"`
	// BankApplicationID and BankJobID are the bank's ids, once the controller knows them.
	BankApplicationID string `json:"bank_application_id,omitempty"`
	BankJobID         string `json:"bank_job_id,omitempty"`
}

// applicationListView is one page of applications. Continue, when present, fetches the next.
type applicationListView struct {
	Items    []applicationView `json:"items"`
	Continue string            `json:"continue,omitempty"`
}

// viewOf is the REST view of app. Its status is the status label, the same value that
// `?status=` selects on; an object created without the label (by kubectl) shows the value its
// phase implies until the controller sets the label.
func viewOf(app *loansv1alpha1.LoanApplication) applicationView {
	status := app.Labels[loansv1alpha1.LabelStatus]
	if !loansv1alpha1.IsValidLabelValue(status) {
		status = app.Status.Phase.LabelValue()
	}
	return applicationView{
		ID:                app.Name,
		FirstName:         app.Spec.FirstName,
		LastName:          app.Spec.LastName,
		Status:            status,
		CreatedAt:         app.CreationTimestamp.UTC(),
		Submitted:         timeOf(app.Status.SubmittedAt),
		Decided:           timeOf(app.Status.DecidedAt),
		BankApplicationID: app.Status.BankApplicationID,
		BankJobID:         app.Status.BankJobID,
	}
}

func timeOf(t *metav1.Time) *time.Time {
	if t == nil {
		return nil
	}
	utc := t.UTC()
	return &utc
}
