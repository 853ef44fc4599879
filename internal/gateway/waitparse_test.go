package gateway

import (
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
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
