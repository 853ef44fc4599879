package devenv

import (
	"bytes"
	"context"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// probeClient reaches the programs' own endpoints; a probe that hangs is bounded by its context.
var probeClient = &http.Client{Timeout: 5 * time.Second}

// preparePrograms defines the bank simulator, the controller replicas and the gateway, each with
// its loopback address resolved once, so that a restart serves at the same address.
func (s *Stack) preparePrograms() error {
	o := s.opts
	if o.BankURL != "" {
		s.BankURL = strings.TrimSuffix(o.BankURL, "/")
	} else if err := s.prepareBankSim(); err != nil {
		return err
	}

	if !o.SkipController {
		for i := range o.ControllerReplicas {
			if err := s.prepareController(i); err != nil {
				return err
			}
		}
	}
	if !o.SkipGateway {
		return s.prepareGateway()
	}
	return nil
}

func (s *Stack) prepareBankSim() error {
	o := s.opts
	bankAddr, err := resolveAddr(o.BankAddr)
	if err != nil {
		return err
	}
	s.BankURL = "http://" + bankAddr
	bankArgs := append([]string{
		"--addr=" + bankAddr,
		"--min-delay=" + o.BankMinDelay.String(),
		"--max-delay=" + o.BankMaxDelay.String(),
	}, o.BankArgs...)
	// /admin/stats answers as soon as the bank's handler serves.
	s.Bank = s.newProcess("bank-sim", filepath.Join(o.BinDir, bankSimBinary), bankArgs,
		httpReady(probeClient, s.BankURL+"/admin/stats?summary=true"))
	return nil
}

func (s *Stack) prepareController(replica int) error {
	o := s.opts
	probeAddr, err := resolveAddr("127.0.0.1:0")
	if err != nil {
		return err
	}
	metricsAddr, err := resolveAddr("127.0.0.1:0")
	if err != nil {
		return err
	}
	probeURL, metricsURL := "http://"+probeAddr, "http://"+metricsAddr
	args := []string{
		"--kubeconfig=" + s.ControllerKubeconfig,
		"--bank-url=" + s.BankURL,
		"--health-probe-bind-address=" + probeAddr,
		// Plain HTTP on loopback: the authenticated HTTPS of a cluster has no scraper here.
		"--metrics-bind-address=" + metricsAddr,
		"--metrics-secure=false",
		// Outside a cluster there is no pod namespace to keep the Lease in.
		"--leader-election-namespace=" + SystemNamespace,
	}
	if o.LeaderElect || o.ControllerReplicas > 1 {
		args = append(args, "--leader-elect")
	}
	args = append(args, o.ControllerArgs...)
	name := "controller-" + strconv.Itoa(replica)
	s.Controllers = append(s.Controllers, s.newProcess(name, filepath.Join(o.BinDir, controllerBinary), args,
		httpReady(probeClient, probeURL+"/readyz")))
	s.ControllerProbeURLs = append(s.ControllerProbeURLs, probeURL)
	s.ControllerMetricsURLs = append(s.ControllerMetricsURLs, metricsURL)
	return nil
}

func (s *Stack) prepareGateway() error {
	o := s.opts
	addr, err := resolveAddr(o.GatewayAddr)
	if err != nil {
		return err
	}
	s.GatewayURL = "http://" + addr
	args := append([]string{
		"--addr=" + addr,
		"--kubeconfig=" + s.GatewayKubeconfig,
		"--namespace=default",
	}, o.GatewayArgs...)
	// The gateway's /readyz is 200 once its cache has synced; it is started last, so once it
	// answers, every part of the stack is ready.
	s.Gateway = s.newProcess("gateway", filepath.Join(o.BinDir, gatewayBinary), args,
		httpReady(probeClient, s.GatewayURL+"/readyz"))
	return nil
}

// kubectl runs kubectl with a kubeconfig and input on its standard input.
func kubectl(ctx context.Context, path, kubeconfig, input string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, path, append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdin = strings.NewReader(input)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}
