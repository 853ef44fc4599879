package devenv

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
)

// ports are the control plane's loopback ports, recorded in DevDir/ports.json so that the next
// run on the same DevDir serves the API at the same address (a kubeconfig copied elsewhere keeps
// working) and etcd finds the peer address its data remembers.
type ports struct {
	EtcdClient int `json:"etcd_client"`
	EtcdPeer   int `json:"etcd_peer"`
	APIServer  int `json:"apiserver"`
}

// choosePorts keeps each wanted port (non-zero), else the recorded one when it is free, else
// picks a free one; and records the result.
func choosePorts(stateFile string, wantEtcd, wantAPIServer int) (ports, error) {
	var recorded ports
	if data, err := os.ReadFile(stateFile); err == nil {
		// A damaged file only costs new ports.
		_ = json.Unmarshal(data, &recorded)
	}
	var chosen ports
	var err error
	if chosen.EtcdClient, err = choosePort(wantEtcd, recorded.EtcdClient); err != nil {
		return chosen, err
	}
	if chosen.EtcdPeer, err = choosePort(0, recorded.EtcdPeer); err != nil {
		return chosen, err
	}
	if chosen.APIServer, err = choosePort(wantAPIServer, recorded.APIServer); err != nil {
		return chosen, err
	}
	if chosen.EtcdClient == chosen.EtcdPeer || chosen.EtcdClient == chosen.APIServer || chosen.EtcdPeer == chosen.APIServer {
		return chosen, fmt.Errorf("the control plane's ports collide: %+v", chosen)
	}
	data, err := json.Marshal(chosen)
	if err != nil {
		return chosen, err
	}
	return chosen, os.WriteFile(stateFile, data, 0o600)
}

func choosePort(wanted, recorded int) (int, error) {
	if wanted != 0 {
		return wanted, nil
	}
	if recorded != 0 && portFree(recorded) {
		return recorded, nil
	}
	return freePort()
}

// freePort asks the kernel for a free loopback port. Another program may take it before the
// child binds it; the child then fails and says so in its log.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = l.Close() }()
	addr, ok := l.Addr().(*net.TCPAddr)
	if !ok {
		return 0, errors.New("not a TCP address")
	}
	return addr.Port, nil
}

func portFree(port int) bool {
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	_ = l.Close()
	return true
}

// resolveAddr replaces port 0 in a host:port with a free port, and fails early with a clear
// message when a fixed port is taken (for example by another make dev).
func resolveAddr(addr string) (string, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", err
	}
	if port == "0" {
		l, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
		if err != nil {
			return "", err
		}
		defer func() { _ = l.Close() }()
		return l.Addr().String(), nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return "", fmt.Errorf("%s is taken (is another make dev running?): %w", addr, err)
	}
	_ = l.Close()
	return addr, nil
}
