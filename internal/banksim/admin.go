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
		writeJSON(w, http.StatusOK, life.counts.snapshot())
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
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxPayloadBytes))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&f); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid faults: " + err.Error()})
		return
	}
	if err := f.Validate(); err != nil {
		writeJSON(w, http.StatusBadRequest, errorBody{Error: "invalid faults: " + err.Error()})
		return
	}
	s.SetFaults(f)
	writeJSON(w, http.StatusOK, s.Faults())
}

// serveReset is POST /admin/reset: amnesia on demand, as when the bank restarts.
func (s *Simulator) serveReset(w http.ResponseWriter, _ *http.Request) {
	s.Reset()
	w.WriteHeader(http.StatusNoContent)
}
