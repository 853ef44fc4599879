package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"

	loansv1alpha1 "github.com/lendo/loan-operator/api/v1alpha1"
)

// shortServerTimeouts are the gateway's server timeouts shrunk so that a spec can outlast them:
// a wait or a stream that did not move its own deadlines would be cut off at 1 s or 1.5 s. Not
// shorter: a handler must get to moving them within the read timeout on a loaded machine.
var shortServerTimeouts = serverTimeouts{
	readHeader: time.Second,
	read:       time.Second,
	write:      1500 * time.Millisecond,
	idle:       2 * time.Second,
}

// pastServerTimeouts is how long the specs below keep a request open: past both timeouts.
const pastServerTimeouts = 2500 * time.Millisecond

// Every other spec serves the gateway from a plain httptest server, which has no timeouts. These
// serve it from the HTTP server cmd/gateway runs (NewHTTPServer's configuration), whose read and
// write timeouts would end a long wait or a stream if they did not set their own deadlines.
var _ = Describe("Waits and streams under the HTTP server's timeouts", func() {
	// gw is reached through the server with short timeouts; plain, through one without, makes
	// the applications (a create may take longer than these timeouts on a busy machine).
	var gw, plain *testGateway
	BeforeEach(func(ctx context.Context) {
		plain = startGateway(ctx, Options{MaxWait: maxWait})
		gw = plain.servedWithTimeouts(shortServerTimeouts)
	})

	It("answers a wait decided after the read and write timeouts have passed", func(ctx context.Context) {
		id := plain.postJSON(`{"first_name": "Slow", "last_name": "Bank"}`).application().ID
		Eventually(func() error { _, err := gw.store.fromCache(ctx, id); return err }).Should(Succeed())
		answered := make(chan answer, 1)
		go func() {
			defer GinkgoRecover()
			answered <- gw.get(applicationsPath + "/" + id + waitParam)
		}()
		Eventually(gw.waiters.inUse.Load).Should(BeEquivalentTo(1))
		Consistently(answered).WithTimeout(pastServerTimeouts).ShouldNot(Receive())
		decide(ctx, gw.namespace, id, loansv1alpha1.LabelRejected)
		var a answer
		Eventually(answered).WithTimeout(maxWait).Should(Receive(&a))
		Expect(a.status).To(Equal(http.StatusOK))
		Expect(a.application().Status).To(Equal(loansv1alpha1.LabelRejected))
	})

	It("keeps a stream open past the read and write timeouts and delivers what happens then", func(ctx context.Context) {
		events := gw.openStream(ctx, "")
		time.Sleep(pastServerTimeouts)
		id := plain.postJSON(`{"first_name": "Late", "last_name": "Comer"}`).application().ID
		ev := nextEvent(events)
		Expect(ev.event).To(Equal(changeCreated))
		Expect(ev.data).To(ContainSubstring(id))
	})
})

// servedWithTimeouts serves g's handler from one more server, configured as NewHTTPServer
// configures the gateway's but with the given timeouts, and returns g as reached through it.
func (g *testGateway) servedWithTimeouts(timeouts serverTimeouts) *testGateway {
	GinkgoHelper()
	srv := httptest.NewUnstartedServer(nil)
	srv.Config = newHTTPServer("", g.Handler(), timeouts)
	srv.Start()
	DeferCleanup(srv.Close)
	served := *g
	served.url = srv.URL
	return &served
}
