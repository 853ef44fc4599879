package gateway

import (
	"bufio"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// http.Server.Shutdown does not cancel the requests it waits for: an event stream must end when
// the gateway drains, or it holds the shutdown until its timeout.
func TestDrainEndsAnEventStream(t *testing.T) {
	g := &Gateway{feed: newFeed(10), opts: Options{Heartbeat: time.Hour}, streamStall: time.Second, draining: make(chan struct{})}
	rec := httptest.NewRecorder()
	r := httptest.NewRequest(http.MethodGet, applicationsPath+"/events", nil)
	s := &eventStream{rc: http.NewResponseController(rec), out: bufio.NewWriter(rec), g: g}
	wake, unsubscribe := g.feed.subscribe()
	defer unsubscribe()
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		s.run(r, wake, g.feed.latest())
	}()
	g.Drain()
	g.Drain() // a second call (Shutdown twice) does not panic
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Fatal("the stream is still open after Drain")
	}
}
