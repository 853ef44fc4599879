package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
)

// answer is one HTTP answer of the gateway, read whole.
type answer struct {
	status int
	header http.Header
	body   []byte
}

// call sends a request to the gateway; headers come in pairs (name, value).
func (g *testGateway) call(method, path string, body []byte, headers ...string) answer {
	GinkgoHelper()
	var reader io.Reader
	if body != nil {
		reader = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, g.url+path, reader)
	Expect(err).NotTo(HaveOccurred())
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := g.http.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = resp.Body.Close() }()
	data, err := io.ReadAll(resp.Body)
	Expect(err).NotTo(HaveOccurred())
	return answer{status: resp.StatusCode, header: resp.Header, body: data}
}

// postJSON posts body as application/json, with more headers in pairs.
func (g *testGateway) postJSON(body string, headers ...string) answer {
	GinkgoHelper()
	return g.call(http.MethodPost, applicationsPath, []byte(body), append([]string{"Content-Type", "application/json"}, headers...)...)
}

func (g *testGateway) get(path string, headers ...string) answer {
	GinkgoHelper()
	return g.call(http.MethodGet, path, nil, headers...)
}

// application decodes the answer as an application.
func (a answer) application() applicationView {
	GinkgoHelper()
	var v applicationView
	Expect(json.Unmarshal(a.body, &v)).To(Succeed(), string(a.body))
	return v
}

// list decodes the answer as a page of applications.
func (a answer) list() applicationListView {
	GinkgoHelper()
	var v applicationListView
	Expect(json.Unmarshal(a.body, &v)).To(Succeed(), string(a.body))
	return v
}

// problem decodes the answer as a problem document and checks its status matches.
func (a answer) problem() problem {
	GinkgoHelper()
	Expect(a.header.Get("Content-Type")).To(Equal(problemContentType))
	var p problem
	Expect(json.Unmarshal(a.body, &p)).To(Succeed(), string(a.body))
	Expect(p.Status).To(Equal(a.status))
	Expect(p.Title).To(Equal(http.StatusText(a.status)))
	Expect(p.Detail).NotTo(BeEmpty())
	return p
}
