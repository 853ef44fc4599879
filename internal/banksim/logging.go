package banksim

import (
	"log/slog"
	"net/http"
	"time"
)

// logRequests logs one line per request once it is answered (or dropped, status 0).
func logRequests(next http.Handler, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		logger.Info("request", "method", r.Method, "uri", r.RequestURI, "status", rec.status,
			"duration", time.Since(start), "remote", r.RemoteAddr)
	})
}

// statusRecorder remembers the status written through it. Unwrap lets
// http.ResponseController reach the connection beneath, to drop it.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	r.status = code
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 { // an answer written without WriteHeader is a 200
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
