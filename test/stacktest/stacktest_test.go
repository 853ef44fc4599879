package stacktest

import (
	"context"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lendo/loan-operator/internal/banksim"
)

func TestFreeAddrsAreDistinctFreeLoopbackAddresses(t *testing.T) {
	addrs, err := FreeAddrs(8)
	if err != nil {
		t.Fatal(err)
	}
	if len(addrs) != 8 {
		t.Fatalf("got %d addresses, want 8", len(addrs))
	}
	seen := map[string]bool{}
	for _, addr := range addrs {
		if seen[addr] {
			t.Errorf("%s given twice in %v", addr, addrs)
		}
		seen[addr] = true
		host, _, err := net.SplitHostPort(addr)
		if err != nil || !net.ParseIP(host).IsLoopback() {
			t.Errorf("%s is not a loopback host:port (%v)", addr, err)
		}
		// Free: the listeners that chose it are closed, so a program can bind it now.
		l, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s is not free after FreeAddrs returned: %v", addr, err)
			continue
		}
		_ = l.Close()
	}
}

func TestPrepareRefusesToRunWithoutTheControlPlane(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", "")
	if _, err := Prepare(t.TempDir(), t.TempDir(), io.Discard); err == nil || !strings.Contains(err.Error(), "KUBEBUILDER_ASSETS") {
		t.Fatalf("Prepare without KUBEBUILDER_ASSETS: %v, want an error naming it", err)
	}
}

func TestPrepareTakesTheGivenBinariesWhenAllAreBuilt(t *testing.T) {
	t.Setenv("KUBEBUILDER_ASSETS", t.TempDir())
	binDir := t.TempDir()
	for name := range stackPrograms {
		writeFile(t, filepath.Join(binDir, name), 0o755)
	}
	// Were anything built, it would land in scratch: a file there blocks that, so the test
	// fails on an attempt to build rather than passing after a slow one.
	scratch := filepath.Join(t.TempDir(), "not-a-folder")
	writeFile(t, scratch, 0o644)
	p, err := Prepare(binDir, scratch, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if p.BinDir != binDir {
		t.Errorf("BinDir %s, want the complete %s", p.BinDir, binDir)
	}
	if _, err := os.Stat(filepath.Join(p.RepoDir, "cmd", "controller")); err != nil {
		t.Errorf("RepoDir %s is not the repository: %v", p.RepoDir, err)
	}
}

func TestAllBuiltWantsEveryProgramExecutable(t *testing.T) {
	for missing := range stackPrograms {
		for _, mode := range []os.FileMode{0, 0o644} {
			dir := t.TempDir()
			for name := range stackPrograms {
				if name != missing {
					writeFile(t, filepath.Join(dir, name), 0o755)
				} else if mode != 0 {
					writeFile(t, filepath.Join(dir, name), mode)
				}
			}
			if allBuilt(dir) {
				t.Errorf("allBuilt with %s absent or mode %v: true", missing, mode)
			}
		}
	}
}

func writeFile(t *testing.T, path string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
		t.Fatal(err)
	}
}

func TestPostApplicationSendsTheNamesAndReadsTheAnswer(t *testing.T) {
	for _, tc := range []struct {
		name             string
		code             int
		answer           string
		wantCode         int
		wantID, wantBody string
		wantErr          bool
	}{
		{name: "created", code: http.StatusCreated, answer: `{"id":"ada-x1","first_name":"Ada","last_name":"Lovelace","status":"pending"}`,
			wantCode: http.StatusCreated, wantID: "ada-x1"},
		{name: "refused: the code and the body", code: http.StatusServiceUnavailable, answer: `{"title":"retry later"}`,
			wantCode: http.StatusServiceUnavailable, wantBody: `{"title":"retry later"}`},
		{name: "created without an id", code: http.StatusCreated, answer: `{"status":"pending"}`,
			wantBody: `{"status":"pending"}`, wantErr: true},
		{name: "created with no JSON", code: http.StatusCreated, answer: `<html>`, wantBody: `<html>`, wantErr: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gateway := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				var sent map[string]string
				if r.Method != http.MethodPost || r.URL.Path != "/api/v1/applications" ||
					r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&sent) != nil ||
					sent["first_name"] != "Ada" || sent["last_name"] != "Lovelace" {
					http.Error(w, "unexpected request", http.StatusTeapot)
					return
				}
				w.WriteHeader(tc.code)
				_, _ = io.WriteString(w, tc.answer)
			}))
			defer gateway.Close()
			code, app, body, err := PostApplication(t.Context(), gateway.Client(), gateway.URL, "Ada", "Lovelace")
			if (err != nil) != tc.wantErr || code != tc.wantCode || app.ID != tc.wantID || body != tc.wantBody {
				t.Errorf("got %d %+v %q %v; want %d id %q body %q error %v", code, app, body, err,
					tc.wantCode, tc.wantID, tc.wantBody, tc.wantErr)
			}
		})
	}
}

func TestPostApplicationWithoutAnAnswerIsAnError(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, _, _, err := PostApplication(ctx, http.DefaultClient, "http://127.0.0.1:1", "Ada", "Lovelace"); err == nil {
		t.Fatal("no error for a request that was never answered")
	}
}

// The counts are read from the real simulator, so that a change of its JSON breaks this test
// rather than the suites' comparisons.
func TestBankStatsReadsTheSimulatorsSubmissionsAndDecisions(t *testing.T) {
	var now atomic.Int64
	now.Store(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano())
	sim := banksim.New(banksim.Config{MinDelay: time.Second, MaxDelay: time.Second, Seed: 1,
		Now: func() time.Time { return time.Unix(0, now.Load()) }})
	bank := httptest.NewServer(sim.Handler())
	defer bank.Close()

	const id = "9f2c1c3e-3b0f-4a55-a2a4-6c1e4a0f3a21"
	resp, err := bank.Client().Post(bank.URL+"/api/applications", "application/json",
		strings.NewReader(`{"id":"`+id+`","first_name":"Ada","last_name":"Lovelace"}`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("submission: %d", resp.StatusCode)
	}
	now.Add(int64(2 * time.Second))
	st, err := BankStats(t.Context(), bank.Client(), bank.URL)
	if err != nil {
		t.Fatal(err)
	}
	if st.ApplicationsCreated != 1 || st.Submissions[id] != 1 {
		t.Errorf("created %d, submissions %v; want 1 and %s once", st.ApplicationsCreated, st.Submissions, id)
	}
	if status := st.Decisions[id].Status; status != "completed" && status != "rejected" {
		t.Errorf("decision %q after the assessment, want completed or rejected (all: %v)", status, st.Decisions)
	}
}

func TestBankStatsRefusesAnAnswerThatIsNotTheStats(t *testing.T) {
	notBank := httptest.NewServer(http.NotFoundHandler())
	defer notBank.Close()
	if _, err := BankStats(t.Context(), notBank.Client(), notBank.URL); err == nil || !strings.Contains(err.Error(), "404") {
		t.Fatalf("BankStats against a 404: %v, want an error with the code", err)
	}
}
