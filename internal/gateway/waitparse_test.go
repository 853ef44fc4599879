package gateway

import (
	"math"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
)

func TestParseWaitCutsEveryLongWaitToTheMaximum(t *testing.T) {
	g := &Gateway{opts: Options{MaxWait: time.Minute}}
	cases := []struct {
		name, query, prefer string
		want                time.Duration
	}{
		{name: "seconds", query: "30", want: 30 * time.Second},
		{name: "duration", query: "2s", want: 2 * time.Second},
		{name: "above the maximum", query: "3600", want: time.Minute},
		// 9,300,000,000 s does not fit a Duration: multiplied as it is, it wraps to a negative wait.
		{name: "seconds past a Duration", query: "9300000000", want: time.Minute},
		// 18,446,744,074 s wraps to 0.29 s.
		{name: "seconds that wrap to a short wait", query: "18446744074", want: time.Minute},
		{name: "seconds past an int64", query: "99999999999999999999", want: time.Minute},
		{name: "Prefer", prefer: "wait=5", want: 5 * time.Second},
		{name: "Prefer past a Duration", prefer: "wait=9300000000", want: time.Minute},
		{name: "Prefer that wraps to a short wait", prefer: "wait=18446744074", want: time.Minute},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/api/v1/applications/app-x", nil)
			if c.query != "" {
				r.URL.RawQuery = "wait=" + c.query
			}
			if c.prefer != "" {
				r.Header.Set("Prefer", c.prefer)
			}
			got, p := g.parseWait(r)
			if p != nil {
				t.Fatalf("refused: %s", p.Detail)
			}
			if got != c.want {
				t.Errorf("wait %s, want %s", got, c.want)
			}
		})
	}
}

func TestParseWaitRefusesANegativeWait(t *testing.T) {
	g := &Gateway{opts: Options{MaxWait: time.Minute}}
	for _, raw := range []string{"-1", "-1s", "-99999999999999999999"} {
		r := httptest.NewRequest(http.MethodGet, "/api/v1/applications/app-x?wait="+raw, nil)
		if _, p := g.parseWait(r); p == nil || p.Status != http.StatusBadRequest {
			t.Errorf("wait=%s: want 400, got %+v", raw, p)
		}
	}
}

// The document states the grammar of ?wait= as a pattern; the gateway must read exactly that.
func TestWaitGrammarIsTheDocumentsPattern(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(openAPIYAML)
	if err != nil {
		t.Fatal(err)
	}
	op := doc.Paths.Find("/api/v1/applications/{id}").Get
	param := op.Parameters.GetByInAndName("query", "wait")
	if param == nil {
		t.Fatal("no ?wait= parameter in the document")
	}
	if got := param.Schema.Value.Pattern; got != waitSyntax.String() {
		t.Errorf("the document's pattern %q, the gateway's %q", got, waitSyntax.String())
	}
}

func TestParseWaitValue(t *testing.T) {
	for _, c := range []struct {
		raw  string
		want time.Duration
		ok   bool
	}{
		{"30", 30 * time.Second, true},
		{"0", 0, true},
		{"0s", 0, true},
		{"1m30s", 90 * time.Second, true},
		{"1.5s", 1500 * time.Millisecond, true},
		{"250ms", 250 * time.Millisecond, true},
		{"2h", 2 * time.Hour, true},
		// Well formed but too long for a Duration: the longest, which the maximum then cuts.
		{"9999999999h", math.MaxInt64, true},
		{"1.5", 0, false}, // a fraction needs a unit
		{"+5", 0, false},
		{"-1s", 0, false},
		{".5s", 0, false},
		{"5.s", 0, false},
		{"1d", 0, false},
		{"30 s", 0, false},
		{"", 0, false},
	} {
		got, ok := parseWaitValue(c.raw)
		if ok != c.ok || got != c.want {
			t.Errorf("%q: %v, %v; want %v, %v", c.raw, got, ok, c.want, c.ok)
		}
	}
}
