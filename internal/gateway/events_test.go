package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

var _ = Describe("The event stream", func() {
	var gw *testGateway
	BeforeEach(func(ctx context.Context) {
		gw = startGateway(ctx, Options{EventWindow: 20, Heartbeat: 300 * time.Millisecond})
	})

	// applicationOf decodes an event's data, validated against the Application schema.
	applicationOf := func(ev sseEvent) applicationView {
		GinkgoHelper()
		var value any
		Expect(json.Unmarshal([]byte(ev.data), &value)).To(Succeed(), ev.data)
		Expect(conformance.doc.Components.Schemas["Application"].Value.VisitJSON(value)).To(Succeed())
		var v applicationView
		Expect(json.Unmarshal([]byte(ev.data), &v)).To(Succeed())
		return v
	}

	It("sends one event per creation, submission and decision, carrying the application", func(ctx context.Context) {
		events := gw.openStream(ctx, "")
		id := gw.postJSON(`{"first_name": "Stream", "last_name": "Er"}`).application().ID
		ev := nextEvent(events)
		Expect(ev.event).To(Equal(changeCreated))
		Expect(applicationOf(ev).ID).To(Equal(id))
		Expect(ev.id).NotTo(BeEmpty())

		submit(ctx, gw.namespace, id)
		ev = nextEvent(events)
		Expect(ev.event).To(Equal(changeSubmitted))
		Expect(applicationOf(ev).Submitted).NotTo(BeNil())

		decide(ctx, gw.namespace, id, loansv1alpha1.LabelApproved)
		ev = nextEvent(events)
		Expect(ev.event).To(Equal(changeDecided))
		Expect(applicationOf(ev).Status).To(Equal(loansv1alpha1.LabelApproved))
		Consistently(func() string { return nonComment(events).event }).WithTimeout(500*time.Millisecond).Should(BeEmpty(),
			"one event per change: the label write after the decision is none")
	})

	It("selects by status", func(ctx context.Context) {
		events := gw.openStream(ctx, "?status=rejected")
		approved := gw.postJSON(`{"first_name": "A", "last_name": "Pproved"}`).application().ID
		rejected := gw.postJSON(`{"first_name": "R", "last_name": "Ejected"}`).application().ID
		Eventually(func() error { _, err := gw.store.fromCache(ctx, rejected); return err }).Should(Succeed())
		decide(ctx, gw.namespace, approved, loansv1alpha1.LabelApproved)
		decide(ctx, gw.namespace, rejected, loansv1alpha1.LabelRejected)
		ev := nextEvent(events)
		Expect(ev.event).To(Equal(changeDecided))
		Expect(applicationOf(ev).ID).To(Equal(rejected))
	})

	It("resumes after Last-Event-ID with every change since, and only those", func(ctx context.Context) {
		streamCtx, closeStream := context.WithCancel(ctx)
		events := gw.openStream(streamCtx, "")
		first := gw.postJSON(`{"first_name": "One", "last_name": "Before"}`).application().ID
		ev := nextEvent(events)
		Expect(applicationOf(ev).ID).To(Equal(first))
		closeStream()

		missed := make([]string, 0, 3)
		for i := range 3 {
			missed = append(missed, gw.postJSON(fmt.Sprintf(`{"first_name": "Missed%d", "last_name": "While"}`, i)).application().ID)
		}
		Eventually(gw.feed.latest).Should(BeEquivalentTo(4))
		resumed := gw.openStream(ctx, "", "Last-Event-ID", ev.id)
		got := make([]string, 0, 3)
		for range 3 {
			got = append(got, applicationOf(nextEvent(resumed)).ID)
		}
		Expect(got).To(Equal(missed))
	})

	It("says reset, and ends, when Last-Event-ID is older than the window or not its own", func(ctx context.Context) {
		streamCtx, closeStream := context.WithCancel(ctx)
		events := gw.openStream(streamCtx, "")
		gw.postJSON(`{"first_name": "Too", "last_name": "Old"}`)
		old := nextEvent(events)
		closeStream()
		for i := range 25 { // the window holds 20
			gw.postJSON(fmt.Sprintf(`{"first_name": "N%d", "last_name": "Ew"}`, i))
		}
		Eventually(gw.feed.latest).Should(BeEquivalentTo(26))

		for _, last := range []string{old.id, "another-gateway.5", "garbage"} {
			// A reset ends the stream, so the conformance client reads it whole.
			a := gw.get(applicationsPath+"/events", "Last-Event-ID", last)
			Expect(a.status).To(Equal(http.StatusOK))
			Expect(string(a.body)).To(HavePrefix("event: reset\ndata: "), "Last-Event-ID %q", last)
			Expect(string(a.body)).To(ContainSubstring("older than the changes this gateway keeps"))
		}
	})

	It("sends a heartbeat comment when idle", func(ctx context.Context) {
		events := gw.openStream(ctx, "")
		Eventually(events).WithTimeout(2 * time.Second).Should(Receive(Satisfy(func(ev sseEvent) bool { return ev.comment == "heartbeat" })))
	})

	It("answers 400 to an unknown status", func() {
		a := gw.get(applicationsPath + "/events?status=done")
		Expect(a.status).To(Equal(http.StatusBadRequest))
	})

	It("disconnects a client too slow to read, and ends its stream", func(ctx context.Context) {
		gw.streamStall = 500 * time.Millisecond
		// The kernel grows a socket's send buffer to megabytes when the receiver's window is
		// small (Linux sizes it by the congestion window, and loopback segments are 64 KiB), so
		// that the gateway's writes would not block for thousands of events: the server's
		// sockets get a fixed small send buffer, as a crowded host's may have.
		srv := httptest.NewUnstartedServer(gw.Handler())
		srv.Listener = smallSendBuffers{srv.Listener}
		srv.Start()
		DeferCleanup(srv.Close)
		// A client that sends the request and never reads, with a small receive buffer.
		u, err := url.Parse(srv.URL)
		Expect(err).NotTo(HaveOccurred())
		// The receive buffer is set before connecting, so that the window it advertises is small.
		dialer := net.Dialer{Control: func(_, _ string, raw syscall.RawConn) error {
			var sockErr error
			err := raw.Control(func(fd uintptr) {
				sockErr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 1024)
			})
			return errors.Join(err, sockErr)
		}}
		conn, err := dialer.DialContext(ctx, "tcp", u.Host)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(conn.Close)
		_, err = fmt.Fprintf(conn, "GET %s/events HTTP/1.1\r\nHost: %s\r\n\r\n", applicationsPath, u.Host)
		Expect(err).NotTo(HaveOccurred())
		Eventually(gw.streams.inUse.Load).Should(BeEquivalentTo(1))

		// Changes with long names fill the socket buffers in a few hundred events.
		long := strings.Repeat("x", 100)
		for i := 0; gw.streams.inUse.Load() > 0; i++ {
			Expect(i).To(BeNumerically("<", 5000), "the stream of a client that reads nothing stays open")
			storeApplicationNamed(ctx, gw.namespace, fmt.Sprintf("slow-%04d", i), long)
		}
		Eventually(func() int { gw.feed.mu.Lock(); defer gw.feed.mu.Unlock(); return len(gw.feed.streams) }).Should(BeZero())
	})
})

var _ = Describe("The event stream's bound", func() {
	It("answers 503 with Retry-After above --max-streams, and serves again once a stream ends", func(ctx context.Context) {
		gw := startGateway(ctx, Options{MaxStreams: 2})
		first, closeFirst := context.WithCancel(ctx)
		gw.openStream(first, "")
		gw.openStream(ctx, "")
		Eventually(gw.streams.inUse.Load).Should(BeEquivalentTo(2))

		a := gw.get(applicationsPath + "/events")
		Expect(a.status).To(Equal(http.StatusServiceUnavailable))
		Expect(a.header.Get("Retry-After")).NotTo(BeEmpty())
		Expect(string(a.body)).To(ContainSubstring("too many event streams are open"))

		closeFirst()
		Eventually(gw.streams.inUse.Load).Should(BeEquivalentTo(1), "a stream whose client left is freed")
		gw.openStream(ctx, "")
	})
})

// smallSendBuffers gives each accepted connection a send buffer of 4 KiB, which the kernel
// then keeps instead of growing it.
type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	if err := conn.(*net.TCPConn).SetWriteBuffer(4096); err != nil {
		_ = conn.Close()
		return nil, err
	}
	return conn, nil
}

// nonComment answers the next event that is not a comment if one is already there, else none.
func nonComment(events <-chan sseEvent) sseEvent {
	for {
		select {
		case ev := <-events:
			if ev.comment == "" {
				return ev
			}
		default:
			return sseEvent{}
		}
	}
}

// storeApplicationNamed creates a pending application straight in the API server with the
// given first name.
func storeApplicationNamed(ctx context.Context, namespace, name, first string) {
	GinkgoHelper()
	app := &loansv1alpha1.LoanApplication{}
	app.Namespace, app.Name = namespace, name
	app.Labels = map[string]string{loansv1alpha1.LabelStatus: loansv1alpha1.LabelPending}
	app.Spec = loansv1alpha1.LoanApplicationSpec{FirstName: first, LastName: first}
	Expect(env.Client.Create(ctx, app)).To(Succeed())
}
