package banksim

import (
	"encoding/json"
	"io"
	"net/http"

	"github.com/google/uuid"
)

// The bank's error messages, byte for byte.
const (
	msgInvalidPayload = "the request payload is not valid."
	msgIDAlreadyUsed  = "the application ID is already used"
	msgMissingAppID   = "application_id is missing"
	msgInvalidAppID   = "application_id is not a valid uuid"
	msgUnknownAppID   = "failed to get job, the application_id doesn't exist."
)

// maxPayloadBytes bounds a submission body; an application is a few dozen bytes.
const maxPayloadBytes = 64 << 10

// applicationBody is the JSON of an application, in the bank's field order.
type applicationBody struct {
	ID        string `json:"id"`
	FirstName string `json:"first_name"`
	LastName  string `json:"last_name"`
	Status    string `json:"status,omitempty"`
}

// jobBody is the JSON of a job, in the bank's field order.
type jobBody struct {
	ID            string `json:"id"`
	ApplicationID string `json:"application_id"`
	Status        string `json:"status"`
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

// answer is what a handler of the bank API decided to answer, before faults decide whether
// and when it is written.
type answer struct {
	status     int
	body       any
	retryAfter string // Retry-After header value, for 429
	raw        []byte // written as it is instead of body, when set (a forced answer)
}

func errorAnswer(status int, msg string) answer {
	return answer{status: status, body: errorBody{Error: msg}}
}

// createApplication is POST /api/applications.
func (s *Simulator) createApplication(r *http.Request, life *lifetime) answer {
	var req applicationBody
	payload, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxPayloadBytes))
	if err != nil || json.Unmarshal(payload, &req) != nil {
		return errorAnswer(http.StatusBadRequest, msgInvalidPayload)
	}
	key, err := uuid.Parse(req.ID)
	if err != nil {
		return errorAnswer(http.StatusBadRequest, msgInvalidPayload)
	}
	app := s.newApplication(key, req, life.policy)
	if !life.apps.insert(key, app) {
		life.counts.duplicates.Add(1)
		return errorAnswer(http.StatusBadRequest, msgIDAlreadyUsed)
	}
	life.counts.created.Add(1)
	req.Status = statusPending
	return answer{status: http.StatusCreated, body: req}
}

// newApplication records req as created now, with its decision drawn by policy within the
// assessment window in force now.
func (s *Simulator) newApplication(key uuid.UUID, req applicationBody, policy decisionPolicy) *application {
	delay, outcome, jobID := policy.draw(key, s.Assessment())
	now := s.cfg.Now()
	app := &application{
		id:        req.ID,
		firstName: req.FirstName,
		lastName:  req.LastName,
		jobID:     jobID,
		createdAt: now,
		outcome:   outcome,
	}
	app.decidedAt.Store(now.Add(delay).UnixNano())
	return app
}

// getJob is GET /api/jobs?application_id=<uuid>, the hot path of every load test.
func (s *Simulator) getJob(r *http.Request, life *lifetime) answer {
	life.counts.polls.Add(1)
	id := r.URL.Query().Get("application_id")
	if id == "" {
		return errorAnswer(http.StatusBadRequest, msgMissingAppID)
	}
	key, err := uuid.Parse(id)
	if err != nil {
		return errorAnswer(http.StatusBadRequest, msgInvalidAppID)
	}
	app := life.apps.get(key)
	if app == nil {
		return errorAnswer(http.StatusNotFound, msgUnknownAppID)
	}
	now := s.cfg.Now()
	status := app.statusAt(now)
	if status != statusPending {
		app.decisionSeenAt.CompareAndSwap(0, now.UnixNano())
	}
	return answer{status: http.StatusOK, body: jobBody{ID: app.jobID, ApplicationID: app.id, Status: status}}
}

// writeJSON writes body as compact JSON without a trailing newline, like the real bank.
func writeJSON(w http.ResponseWriter, status int, body any) {
	data, err := json.Marshal(body)
	if err != nil { // only our own fixed types are written: a bug, not a runtime condition
		panic(err)
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(data)
}
