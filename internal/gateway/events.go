package gateway

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// Stream defaults.
const (
	// DefaultHeartbeat is how often an idle stream sends a comment, so that proxies and clients
	// see the connection alive.
	DefaultHeartbeat = 15 * time.Second
	// streamWriteStall is the longest one write to a stream may block: a client that reads
	// nothing for that long is cut off rather than held.
	streamWriteStall = 10 * time.Second
	// streamBatch is the most changes a stream reads from the feed at once.
	streamBatch = 256
	// resetEvent tells the client that changes it has not seen are gone: it lists again.
	resetEvent = "reset"
)

// streamEvents is GET /api/v1/applications/events[?status=]: Server-Sent Events, one per change
// of an application. Every stream reads the one shared ring of changes at its own cursor, so a
// stream costs a goroutine and a write buffer, whatever its lag; a client that falls more than
// the ring behind (it reads too slowly) is sent a reset event and disconnected; one whose write
// blocks for streamWriteStall is disconnected without one, since nothing more can be written
// to it.
func (g *Gateway) streamEvents(w http.ResponseWriter, r *http.Request) {
	status := r.URL.Query().Get("status")
	if status != "" && !loansv1alpha1.IsValidLabelValue(status) {
		writeProblem(w, newProblem(http.StatusBadRequest, fmt.Sprintf("status %q is not one of %s",
			status, strings.Join(loansv1alpha1.LabelValues, ", "))))
		return
	}
	if !g.Ready() {
		writeProblem(w, unavailable("the gateway is starting and has not read the applications yet; retry in a moment"))
		return
	}
	if !g.streams.tryAcquire() {
		writeProblem(w, tooBusy(http.StatusServiceUnavailable, "too many event streams are open; retry later"))
		return
	}
	defer g.streams.release()

	wake, unsubscribe := g.feed.subscribe()
	defer unsubscribe()
	cursor, resumable := g.feed.latest(), true
	if last := r.Header.Get("Last-Event-ID"); last != "" {
		cursor, resumable = g.feed.resumePoint(last)
	}

	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Accel-Buffering", "no") // no proxy buffering: an event is news only when it comes at once
	rc := http.NewResponseController(w)
	// The server's read timeout would end a stream at its expiry: a stream reads nothing more.
	_ = rc.SetReadDeadline(time.Time{})
	w.WriteHeader(http.StatusOK)
	s := &eventStream{rc: rc, out: bufio.NewWriter(w), status: status, g: g}
	if !resumable {
		s.reset("the Last-Event-ID is older than the changes this gateway keeps, or not one of its own: list the applications again")
		return
	}
	s.run(r, wake, cursor)
}

// eventStream writes one client's events.
type eventStream struct {
	g      *Gateway
	rc     *http.ResponseController
	out    *bufio.Writer
	status string
	batch  []change
}

// run sends every change after cursor, then each new one as the feed wakes it, with a
// heartbeat comment when idle, until the client goes away or falls behind.
func (s *eventStream) run(r *http.Request, wake <-chan struct{}, cursor uint64) {
	heartbeat := time.NewTicker(s.g.opts.Heartbeat)
	defer heartbeat.Stop()
	// A first comment flushes the headers, so that the client knows the stream is open.
	if !s.send(": stream open\n\n") {
		return
	}
	for {
		var ok bool
		if cursor, ok = s.catchUp(cursor); !ok {
			return
		}
		select {
		case <-r.Context().Done():
			return
		case <-s.g.draining:
			return
		case <-wake:
		case <-heartbeat.C:
			if !s.send(": heartbeat\n\n") {
				return
			}
		}
	}
}

// catchUp sends the changes after cursor and answers the new cursor, or false when the stream
// must end.
func (s *eventStream) catchUp(cursor uint64) (uint64, bool) {
	for {
		var ok bool
		s.batch, ok = s.g.feed.since(s.batch[:0], cursor, streamBatch)
		if !ok {
			s.reset("this client read too slowly and missed changes the gateway no longer keeps: list the applications again")
			return cursor, false
		}
		if len(s.batch) == 0 {
			return cursor, true
		}
		s.armDeadline()
		for _, c := range s.batch {
			if s.status == "" || c.status == s.status {
				s.writeEvent(c)
			}
			cursor = c.seq
		}
		if !s.flush() {
			return cursor, false
		}
	}
}

func (s *eventStream) writeEvent(c change) {
	_, _ = fmt.Fprintf(s.out, "id: %s\nevent: %s\ndata: ", s.g.feed.eventID(c.seq), c.kind)
	_, _ = s.out.Write(c.data)
	_, _ = s.out.WriteString("\n\n")
}

// reset tells the client to list again, and ends the stream.
func (s *eventStream) reset(detail string) {
	data, _ := json.Marshal(map[string]string{"detail": detail}) // one line: JSON escapes newlines
	s.send("event: " + resetEvent + "\ndata: " + string(data) + "\n\n")
}

// send writes text and flushes it; false when the client is gone or stalled.
func (s *eventStream) send(text string) bool {
	s.armDeadline()
	_, _ = s.out.WriteString(text)
	return s.flush()
}

// armDeadline gives the writes that follow the gateway's streamStall to complete: the buffer
// may flush on its own as it fills, so the deadline is set before writing, not before flushing.
func (s *eventStream) armDeadline() {
	_ = s.rc.SetWriteDeadline(time.Now().Add(s.g.streamStall))
}

// flush pushes the buffered events to the client.
func (s *eventStream) flush() bool {
	if err := s.out.Flush(); err != nil {
		return false
	}
	return s.rc.Flush() == nil
}
