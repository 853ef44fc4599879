package faults_test

import (
	"bufio"
	"encoding/base64"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// anyClientError stands for "any 4xx" in the table: the answer comes from Go's HTTP server or
// the router, whose exact code is theirs to choose, as long as it blames the client.
const anyClientError = -1

// closedByTimeout is the expectation of a client too slow to finish its request: the server
// closes the connection (ReadHeaderTimeout 5s, ReadTimeout 15s) without serving it.
const closedByTimeout = 0

// hostileRequest is one raw HTTP/1.1 request, written to a TCP connection as it is. HOST in it is
// replaced by the gateway's address and BODY by body, with its Content-Length when the request
// has "Content-Length: LEN".
type hostileRequest struct {
	raw  string
	body string
	// byteDelay, when set, sends the request one byte at a time with this pause (slowloris);
	// with slowBodyOnly, the headers go at once and only the body trickles.
	byteDelay    time.Duration
	slowBodyOnly bool
}

// post is a POST of body to the create route, declared as JSON.
func post(body string) hostileRequest {
	return hostileRequest{
		raw:  "POST /api/v1/applications HTTP/1.1\r\nHost: HOST\r\nContent-Type: application/json\r\nContent-Length: LEN\r\n\r\nBODY",
		body: body,
	}
}

// getPath is a GET of a path (already escaped as it must appear on the request line).
func getPath(path string) hostileRequest {
	return hostileRequest{raw: "GET " + path + " HTTP/1.1\r\nHost: HOST\r\n\r\n"}
}

func (h hostileRequest) bytes(host string) []byte {
	raw := strings.ReplaceAll(h.raw, "HOST", host)
	raw = strings.Replace(raw, "LEN", fmt.Sprint(len(h.body)), 1)
	return []byte(strings.Replace(raw, "BODY", h.body, 1))
}

// rawAnswer is what came back on the connection: a status code, or nothing before it closed.
type rawAnswer struct {
	status int
	body   string
	closed error
	took   time.Duration
}

// sendRaw writes the request on a new connection (while reading, so that a server that answers
// before the request is complete is heard) and reads one answer, within limit.
func sendRaw(addr string, h hostileRequest, limit time.Duration) rawAnswer {
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = conn.Close() }()
	start := time.Now()
	Expect(conn.SetDeadline(start.Add(limit))).To(Succeed())
	data := h.bytes(addr)
	go func() {
		// The server may hang up before the request is complete: a write error is expected then.
		if h.byteDelay == 0 {
			_, _ = conn.Write(data)
			return
		}
		slowFrom := 0
		if h.slowBodyOnly {
			slowFrom = strings.Index(string(data), "\r\n\r\n") + 4
		}
		if _, err := conn.Write(data[:slowFrom]); err != nil {
			return
		}
		for _, b := range data[slowFrom:] {
			if _, err := conn.Write([]byte{b}); err != nil {
				return
			}
			time.Sleep(h.byteDelay)
		}
	}()
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		return rawAnswer{closed: err, took: time.Since(start)}
	}
	defer func() { _ = resp.Body.Close() }()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
	return rawAnswer{status: resp.StatusCode, body: string(body), took: time.Since(start)}
}

// slowBody sends its headers at once and then its body one byte per 100 ms: the server's read
// timeout (15s) must end it.
func slowBody() hostileRequest {
	h := post(strings.Repeat(" ", 300))
	h.slowBodyOnly = true
	h.byteDelay = 100 * time.Millisecond
	return h
}

// deeplyNested is n opening brackets and as many closing: a JSON document n levels deep.
func deeplyNested(n int) string {
	return strings.Repeat("[", n) + strings.Repeat("]", n)
}

// entry is a table entry with the timeout of every hostile request's spec (a table cannot take
// one for all its entries), located at its caller.
func entry(description string, args ...any) TableEntry {
	return Entry(description, append(args, SpecTimeout(shortSpecTimeout), Offset(1))...)
}

func hostileSpecs(sys *system) {
	DescribeTable("a hostile request gets a clear 4xx or is closed by a timeout; nothing is created; the gateway stays healthy",
		func(ctx SpecContext, h hostileRequest, want int) {
			gateway, err := url.Parse(sys.stack.GatewayURL)
			Expect(err).NotTo(HaveOccurred())
			answer := sendRaw(gateway.Host, h, 25*time.Second)
			switch want {
			case closedByTimeout:
				Expect(answer.closed).To(HaveOccurred(), "the slow client was served: %d %s", answer.status, answer.body)
				Expect(answer.took).To(BeNumerically("<", 20*time.Second), "the connection stayed open %s", answer.took)
			case anyClientError:
				Expect(answer.closed).NotTo(HaveOccurred(), "no answer after %s", answer.took)
				Expect(answer.status).To(BeNumerically(">=", 400), answer.body)
				Expect(answer.status).To(BeNumerically("<", 500), answer.body)
			default:
				Expect(answer.closed).NotTo(HaveOccurred(), "no answer after %s", answer.took)
				Expect(answer.status).To(Equal(want), answer.body)
			}
			AddReportEntry("answer", fmt.Sprintf("%d in %s: %.200s", answer.status, answer.took.Round(time.Millisecond), answer.body))
			Expect(namesIn(ctx, sys.stack)).To(ConsistOf(sys.before), "a hostile request created an application")
			code, body := get(ctx, sys.stack.GatewayURL+"/healthz")
			Expect(code).To(Equal(http.StatusOK), body)
		},
		// The HTTP layer: Go's server refuses what is not HTTP/1.1 as it should be.
		entry("not HTTP at all", hostileRequest{raw: "HELLO\r\n\r\n"}, http.StatusBadRequest),
		entry("a malformed protocol version", hostileRequest{raw: "GET /healthz HTTP/1.1x\r\nHost: HOST\r\n\r\n"}, http.StatusBadRequest),
		entry("no Host header", hostileRequest{raw: "GET /api/v1/applications HTTP/1.1\r\n\r\n"}, http.StatusBadRequest),
		entry("a header name with a space", hostileRequest{raw: "GET /healthz HTTP/1.1\r\nHost: HOST\r\nBad Header: x\r\n\r\n"},
			http.StatusBadRequest),
		entry("a NUL byte in a header value", hostileRequest{raw: "GET /healthz HTTP/1.1\r\nHost: HOST\r\nX-Name: a\x00b\r\n\r\n"},
			http.StatusBadRequest),
		entry("a 1 MiB header", hostileRequest{raw: "GET /healthz HTTP/1.1\r\nHost: HOST\r\nX-Big: " + strings.Repeat("a", 1<<20) + "\r\n\r\n"},
			http.StatusRequestHeaderFieldsTooLarge),
		entry("5,000 headers", hostileRequest{raw: "GET /healthz HTTP/1.1\r\nHost: HOST\r\n" +
			strings.Repeat("X-Many: aaaaaaaaaaaaaaaa\r\n", 5000) + "\r\n"}, http.StatusRequestHeaderFieldsTooLarge),
		entry("two different Content-Lengths", hostileRequest{raw: "POST /api/v1/applications HTTP/1.1\r\nHost: HOST\r\n" +
			"Content-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 50\r\n\r\n{\"a\":"}, http.StatusBadRequest),
		entry("a negative Content-Length", hostileRequest{raw: "POST /api/v1/applications HTTP/1.1\r\nHost: HOST\r\n" +
			"Content-Type: application/json\r\nContent-Length: -1\r\n\r\n"}, http.StatusBadRequest),
		// RFC 9112: Transfer-Encoding wins over Content-Length; the chunked body here is empty.
		entry("Content-Length and chunked together (a smuggling attempt)", hostileRequest{raw: "POST /api/v1/applications HTTP/1.1\r\n" +
			"Host: HOST\r\nContent-Type: application/json\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"},
			http.StatusBadRequest),
		entry("a malformed chunk size", hostileRequest{raw: "POST /api/v1/applications HTTP/1.1\r\nHost: HOST\r\n" +
			"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n"}, http.StatusBadRequest),
		entry("slowloris: headers one byte per 100 ms", hostileRequest{raw: "GET /api/v1/applications HTTP/1.1\r\nHost: HOST\r\n" +
			"User-Agent: " + strings.Repeat("s", 200) + "\r\n\r\n", byteDelay: 100 * time.Millisecond}, closedByTimeout),
		entry("an unknown method", hostileRequest{raw: "BREW /api/v1/applications HTTP/1.1\r\nHost: HOST\r\n\r\n"},
			http.StatusMethodNotAllowed),
		entry("an absolute URI towards another host", getPath("http://169.254.169.254/latest/meta-data"), http.StatusNotFound),

		// The body of a create.
		entry("malformed JSON", post(`{"first_name": "Ada", `), http.StatusBadRequest),
		entry("JSON nested 32,000 deep (within the size limit)", post(deeplyNested(32000)), http.StatusBadRequest),
		entry("JSON nested 100,000 deep", post(deeplyNested(100000)), http.StatusRequestEntityTooLarge),
		entry("a duplicate key", post(`{"first_name":"a","first_name":"b","last_name":"c"}`), http.StatusBadRequest),
		entry("a number beyond float64: 1e999", post(`{"first_name":1e999,"last_name":"Lovelace"}`), http.StatusBadRequest),
		entry("a 30-digit integer", post(`{"first_name":123456789012345678901234567890,"last_name":"Lovelace"}`), http.StatusBadRequest),
		entry("NaN, which JSON does not have", post(`{"first_name":NaN,"last_name":"Lovelace"}`), http.StatusBadRequest),
		entry("an object for a name", post(`{"first_name":{"first_name":"Ada"},"last_name":"Lovelace"}`), http.StatusBadRequest),
		entry("an escaped NUL in a name", post(`{"first_name":"Ada\u0000","last_name":"Lovelace"}`), http.StatusUnprocessableEntity),
		entry("a raw control byte in a string", post("{\"first_name\":\"Ada\x01\",\"last_name\":\"Lovelace\"}"), http.StatusBadRequest),
		entry("an escape character (ESC) in a name", post(`{"first_name":"Ada\u001b[31m","last_name":"Lovelace"}`),
			http.StatusUnprocessableEntity),
		entry("a right-to-left override in a name", post(`{"first_name":"Ada","last_name":"\u202eecalevoL"}`),
			http.StatusUnprocessableEntity),
		entry("a C1 control character in a name", post(`{"first_name":"Ada\u0085","last_name":"Lovelace"}`), http.StatusUnprocessableEntity),
		entry("overlong UTF-8 (0xC0 0xAF for '/')", post("{\"first_name\":\"Ada\xc0\xaf\",\"last_name\":\"Lovelace\"}"), anyClientError),
		entry("a byte that is never UTF-8 (0xFF)", post("{\"first_name\":\"Ada\xff\",\"last_name\":\"Lovelace\"}"), anyClientError),
		entry("a lone UTF-16 surrogate", post(`{"first_name":"Ada\ud800","last_name":"Lovelace"}`), anyClientError),
		entry("a byte-order mark before the JSON", post("\xef\xbb\xbf{\"first_name\":\"Ada\",\"last_name\":\"Lovelace\"}"),
			http.StatusBadRequest),
		entry("UTF-16 instead of UTF-8", post("{\x00\"\x00f\x00\"\x00:\x00\"\x00A\x00\"\x00}\x00"), http.StatusBadRequest),
		entry("101 characters made of combining accents", post(`{"first_name":"`+strings.Repeat("e\u0301", 51)+`","last_name":"L"}`),
			http.StatusUnprocessableEntity),
		entry("a 2 MiB body", post(`{"first_name":"`+strings.Repeat("a", 2<<20)+`","last_name":"L"}`), http.StatusRequestEntityTooLarge),
		entry("JSON sent as text/plain", hostileRequest{raw: "POST /api/v1/applications HTTP/1.1\r\nHost: HOST\r\n" +
			"Content-Type: text/plain\r\nContent-Length: LEN\r\n\r\nBODY", body: `{"first_name":"Ada","last_name":"Lovelace"}`},
			http.StatusUnsupportedMediaType),
		entry("a body slower than the read timeout", slowBody(), anyClientError),

		// Ids and query values.
		entry("path traversal in an id, escaped", getPath("/api/v1/applications/..%2F..%2Fsecrets"), anyClientError),
		entry("path traversal in an id, raw", getPath("/api/v1/applications/../../../etc/passwd"), http.StatusNotFound),
		entry("a NUL in an id", getPath("/api/v1/applications/app%00"), http.StatusBadRequest),
		entry("an id of 300 characters", getPath("/api/v1/applications/"+strings.Repeat("a", 300)), http.StatusBadRequest),
		entry("an id in capitals", getPath("/api/v1/applications/ADA"), http.StatusBadRequest),
		entry("a negative limit", getPath("/api/v1/applications?limit=-1"), http.StatusBadRequest),
		entry("a limit beyond int64", getPath("/api/v1/applications?limit=99999999999999999999999"), http.StatusBadRequest),
		entry("a limit that is no number", getPath("/api/v1/applications?limit=ten"), http.StatusBadRequest),
		entry("an injection in the status filter", getPath("/api/v1/applications?status=approved%27%20OR%201%3D1"), http.StatusBadRequest),
		entry("a continue token that is no token", getPath("/api/v1/applications?continue=%FF%FE"), http.StatusBadRequest),
		entry("a continue token that decodes to a path", getPath("/api/v1/applications?continue="+
			base64.RawURLEncoding.EncodeToString([]byte("../../etc/passwd"))), http.StatusBadRequest),
	)
}
