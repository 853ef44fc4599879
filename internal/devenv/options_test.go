package devenv

import (
	"net"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestCheckLoopback(t *testing.T) {
	for _, tc := range []struct {
		addr string
		ok   bool
	}{
		{"127.0.0.1:8080", true},
		{"127.0.0.53:8000", true},
		{"localhost:8000", true},
		{"0.0.0.0:8080", false},
		{":8080", false},
		{"10.0.0.1:8080", false},
		{"192.168.1.10:8000", false},
		{"[::1]:8080", false},
		{"127.0.0.1", false},
	} {
		t.Run(tc.addr, func(t *testing.T) {
			if err := checkLoopback(tc.addr); (err == nil) != tc.ok {
				t.Fatalf("checkLoopback(%q) = %v, want ok=%v", tc.addr, err, tc.ok)
			}
		})
	}
}

func TestWithDefaultsRefusesMissingBinariesAndBadDelays(t *testing.T) {
	assets := t.TempDir()
	if _, err := (Options{AssetsDir: assets, BinDir: t.TempDir()}).withDefaults(); err == nil {
		t.Fatal("no error without etcd and kube-apiserver")
	}
	if _, err := (Options{AssetsDir: assets, BankMinDelay: 3, BankMaxDelay: 2}).withDefaults(); err == nil {
		t.Fatal("no error with min delay above max delay")
	}
	if _, err := (Options{AssetsDir: assets, GatewayAddr: "0.0.0.0:8080"}).withDefaults(); err == nil {
		t.Fatal("no error for a gateway listening beyond loopback")
	}
	for _, bad := range []string{"127.0.0.1:8000", "ftp://bank.example/", "http://", "://x",
		"ftp://user:secret@bank.example/", "http://user:secret@bank.example:port/"} {
		_, err := (Options{AssetsDir: assets, BankURL: bad}).withDefaults()
		if err == nil || !strings.Contains(err.Error(), "bank's URL") {
			t.Fatalf("BankURL %q: %v, want an error about the bank's URL", bad, err)
		}
		if strings.Contains(err.Error(), "secret") {
			t.Fatalf("BankURL %q: the error shows the password: %v", bad, err)
		}
	}
}

func TestChoosePortsReusesTheRecordedPortsWhileFree(t *testing.T) {
	state := filepath.Join(t.TempDir(), "ports.json")
	first, err := choosePorts(state, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	again, err := choosePorts(state, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if again != first {
		t.Fatalf("second run chose %+v, first %+v", again, first)
	}

	// Someone else holds the API server's port now: a new one is chosen and recorded.
	held, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(first.APIServer))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Close() }()
	moved, err := choosePorts(state, 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	if moved.APIServer == first.APIServer || moved.EtcdClient != first.EtcdClient {
		t.Fatalf("with the API server's port taken: %+v, before %+v", moved, first)
	}

	// A port asked for is kept as it is.
	fixed, err := choosePorts(state, 0, 16443)
	if err != nil {
		t.Fatal(err)
	}
	if fixed.APIServer != 16443 {
		t.Fatalf("asked 16443, got %d", fixed.APIServer)
	}
}

func TestResolveAddrPicksAPortForZeroAndRefusesATakenOne(t *testing.T) {
	addr, err := resolveAddr("127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if _, port, _ := net.SplitHostPort(addr); port == "0" {
		t.Fatalf("resolved to %s", addr)
	}
	held, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = held.Close() }()
	if _, err := resolveAddr(addr); err == nil {
		t.Fatalf("%s is held, and resolveAddr did not say so", addr)
	}
}
