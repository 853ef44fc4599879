package banksim

import (
	"encoding/json"
	"net/http"
)

// serveStats is GET /admin/stats. With ?summary=true it leaves out the per-application maps,
// which weigh megabytes at 100,000 applications, for callers that only want the counts.
func (s *Simulator) serveStats(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("summary") == "true" {
		life := s.life.Load()
		writeJSON(w, http.StatusOK, life.counts.snapshot(s.cfg.Now()))
		return
	}
	writeJSON(w, http.StatusOK, s.Stats())
}

// serveFaults is GET /admin/faults.
func (s *Simulator) serveFaults(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Faults())
}

// replaceFaults is PUT /admin/faults: the body replaces all the knobs (a knob left out is
// turned off) and the answer is the faults now in force.
func (s *Simulator) replaceFaults(w http.ResponseWriter, r *http.Request) {
	var f Faults
	if !decodeSetting(w, r, "faults", &f) {
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, s.Faults())
}

// serveAssessment is GET /admin/assessment.
func (s *Simulator) serveAssessment(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, s.Assessment())
}

// replaceAssessment is PUT /admin/assessment: the body replaces the window for applications
// submitted from now on (a bound left out is zero) and the answer is the window now in force.
func (s *Simulator) replaceAssessment(w http.ResponseWriter, r *http.Request) {
	var a Assessment
	if !decodeSetting(w, r, "assessment", &a) {
		return
	}
	s.SetAssessment(a)
	writeJSON(w, http.StatusOK, s.Assessment())
}

// hastened is the answer of POST /admin/hasten.
type hastened struct {
	// Hastened counts the pending applications whose decision moved earlier.
	Hastened int `json:"hastened"`
}

// hasten is POST /admin/hasten: every pending decision moves earlier by one amount, so that the
// first comes first_in from now (Simulator.Hasten); the answer counts the decisions moved.
func (s *Simulator) hasten(w http.ResponseWriter, r *http.Request) {
	var h Hastening
	if !decodeSetting(w, r, "hastening", &h) {
		return
	}
	writeJSON(w, http.StatusOK, hastened{Hastened: s.Hasten(h)})
}

// setting is a body of PUT or POST under /admin/, decoded into its pointer, that checks its
// own ranges.
type setting interface {
	Validate() error
}

// decodeSetting reads the JSON body of a PUT or POST under /admin/ into into, strictly (an unknown
// field is a typo, not something to ignore), then checks it. On any error it answers 400
// naming what was invalid and reports false; nothing has changed then.
func decodeSetting(w http.ResponseWriter, r *http.Request, what string, into setting) bool {
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPayloadBytes))
	dec.DisallowUnknownFields()
	err := dec.Decode(into)
	if err == nil {
		err = into.Validate()
	}
	if err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid " + what + ": " + err.Error()})
		return false
	}
	return true
}

// serveReset is POST /admin/reset: amnesia on demand, as when the bank restarts.
func (s *Simulator) serveReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}
