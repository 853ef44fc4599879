package controller

import (
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/cli-utils/pkg/kstatus/status"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/bank"
)

// kstatus is how kubectl wait, Flux, Argo CD and cli-utils tell whether an object is done. It
// must read a pending application as InProgress, a decided one as Current, and one the bank
// refused for good as Failed.
func TestKstatusOfEveryPhase(t *testing.T) {
	job := func(s bank.JobStatus) bank.Job {
		return bank.Job{ID: "job-1", ApplicationID: string(testUID), Status: s}
	}
	tests := []struct {
		name string
		app  *loansv1alpha1.LoanApplication
		bank fakeBank
		now  time.Time
		want status.Status
	}{
		{"Pending", newApp(), fakeBank{}, t0, status.InProgressStatus},
		{"Pending, the bank unreachable", pendingApp(), fakeBank{jobErr: bankErr(bank.KindTransient, 503, "")}, firstPoll,
			status.InProgressStatus},
		{"not submitted yet, a proxy refusing", newApp(), fakeBank{submitErrs: []error{bankErr(bank.KindRefused, 403, "")}}, t0,
			status.InProgressStatus},
		{"Approved", pendingApp(), fakeBank{job: job(bank.JobCompleted)}, firstPoll, status.CurrentStatus},
		{"Rejected", pendingApp(), fakeBank{job: job(bank.JobRejected)}, firstPoll, status.CurrentStatus},
		{"Failed", newApp(), fakeBank{submitErrs: []error{bankErr(bank.KindInvalidPayload, 400, "the request payload is not valid.")}}, t0,
			status.FailedStatus},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			app := tt.app.DeepCopy()
			app.Status = runPass(&tt.bank, tt.app, tt.now).status
			app.APIVersion, app.Kind = loansv1alpha1.GroupVersion.String(), "LoanApplication"
			obj, err := runtime.DefaultUnstructuredConverter.ToUnstructured(app)
			if err != nil {
				t.Fatal(err)
			}
			result, err := status.Compute(&unstructured.Unstructured{Object: obj})
			if err != nil {
				t.Fatal(err)
			}
			if result.Status != tt.want {
				t.Errorf("kstatus %s (%s), want %s; conditions %+v", result.Status, result.Message, tt.want, app.Status.Conditions)
			}
		})
	}
}
