package stacktest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
	"github.com/lendo/loan-operator/internal/banksim"
)

// Application is the gateway's JSON view of an application, as far as the suites read it.
type Application struct {
	ID        string `json:"id"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Status    string `json:"status"`
}

// PostApplication creates an application through the gateway (POST /api/v1/applications)
// with httpc. It returns the status code and, on 201, the application the gateway answered;
// on any other code, the body of the answer, for the failure message. The error is for no
// answer at all, or a 201 without an id.
func PostApplication(ctx context.Context, httpc *http.Client, gatewayURL, first, last string) (
	code int, app Application, body string, err error) {
	payload, err := json.Marshal(map[string]string{"first_name": first, "last_name": last})
	if err != nil {
		return 0, app, "", err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, gatewayURL+"/api/v1/applications", bytes.NewReader(payload))
	if err != nil {
		return 0, app, "", err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpc.Do(req)
	if err != nil {
		return 0, app, "", err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, app, "", err
	}
	if resp.StatusCode != http.StatusCreated {
		return resp.StatusCode, app, string(data), nil
	}
	if decodeErr := json.Unmarshal(data, &app); decodeErr != nil || app.ID == "" {
		return 0, app, string(data), fmt.Errorf("POST /api/v1/applications answered no id (%v): %s", decodeErr, data)
	}
	return resp.StatusCode, app, "", nil
}

// BankStats reads the bank simulator's counts of its current lifetime (GET /admin/stats) with
// httpc, with every accepted submission and every decision: what the suites compare the
// applications' statuses with.
func BankStats(ctx context.Context, httpc *http.Client, bankURL string) (banksim.Stats, error) {
	var st banksim.Stats
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, bankURL+"/admin/stats", nil)
	if err != nil {
		return st, err
	}
	resp, err := httpc.Do(req)
	if err != nil {
		return st, err
	}
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return st, err
	}
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET /admin/stats: %d %s", resp.StatusCode, data)
	}
	if decodeErr := json.Unmarshal(data, &st); decodeErr != nil {
		return st, fmt.Errorf("GET /admin/stats: %w: %s", decodeErr, data)
	}
	return st, nil
}

// PhaseOfBankStatus is the phase an application must show for a decision of the bank, as
// bank-api.md maps them ("completed" is approved), and "" for a status that is no decision. The
// suites compare with this mapping, stated apart from the controller's own.
func PhaseOfBankStatus(status string) loansv1alpha1.Phase {
	switch status {
	case "completed":
		return loansv1alpha1.PhaseApproved
	case "rejected":
		return loansv1alpha1.PhaseRejected
	default:
		return ""
	}
}
