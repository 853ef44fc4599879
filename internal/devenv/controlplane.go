package devenv

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// crdName is the LoanApplication CRD that config/dev installs.
const crdName = "loanapplications.loans.lendo.se"

// etcdArgs runs a single-member etcd on loopback with its data in dataDir. fsync stays on
// unless unsafeNoFsync: the local run's applications must survive a crash.
func etcdArgs(dataDir string, p ports, unsafeNoFsync bool) []string {
	clientURL := "http://127.0.0.1:" + strconv.Itoa(p.EtcdClient)
	peer := "http://127.0.0.1:" + strconv.Itoa(p.EtcdPeer)
	args := []string{
		"--name=loan-operator-dev",
		"--data-dir=" + dataDir,
		"--listen-client-urls=" + clientURL,
		"--advertise-client-urls=" + clientURL,
		"--listen-peer-urls=" + peer,
		"--initial-advertise-peer-urls=" + peer,
		"--initial-cluster=loan-operator-dev=" + peer,
		"--log-level=warn",
	}
	if unsafeNoFsync {
		args = append(args, "--unsafe-no-fsync=true")
	}
	return args
}

// apiServerFiles are the files kube-apiserver is started with.
type apiServerFiles struct {
	certDir, servingCert, servingKey, clientCA, saKey, saPub string
}

// apiServerArgs runs kube-apiserver on 127.0.0.1 with client-certificate authentication and RBAC,
// as a cluster would authorize the programs. The ServiceAccount admission plugin is off: no
// controller-manager runs to create the default ServiceAccounts it would wait for.
func apiServerArgs(f apiServerFiles, p ports) []string {
	return []string{
		"--etcd-servers=http://127.0.0.1:" + strconv.Itoa(p.EtcdClient),
		"--bind-address=127.0.0.1",
		"--secure-port=" + strconv.Itoa(p.APIServer),
		"--cert-dir=" + f.certDir,
		"--tls-cert-file=" + f.servingCert,
		"--tls-private-key-file=" + f.servingKey,
		"--client-ca-file=" + f.clientCA,
		"--authorization-mode=RBAC",
		"--service-cluster-ip-range=10.0.0.0/24",
		"--service-account-issuer=https://127.0.0.1:" + strconv.Itoa(p.APIServer) + "/",
		"--service-account-key-file=" + f.saPub,
		"--service-account-signing-key-file=" + f.saKey,
		"--disable-admission-plugins=ServiceAccount",
		// Without it, a SIGTERM leaves the watches of the controller and the gateway open until
		// the one-minute request timeout: end them at once, so that a stop takes a second.
		"--shutdown-watch-termination-grace-period=2s",
	}
}

// httpReady answers nil when GET url answers 200.
func httpReady(httpClient *http.Client, url string) readyFunc {
	return func(ctx context.Context) error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return err
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			return err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET %s: %s %s", url, resp.Status, bytes.TrimSpace(body))
		}
		return nil
	}
}

// applyDevConfig renders config/dev with kubectl's kustomize and applies it server-side as the
// administrator: idempotent, so a CRD or role changed since the last run is updated at every
// start. Then it waits for the CRD to be Established.
func applyDevConfig(ctx context.Context, o Options, kubeconfig string, c client.Client) error {
	ctx, cancel := context.WithTimeout(ctx, o.StartTimeout)
	defer cancel()
	rendered, err := runKubectl(ctx, o.Kubectl, nil, "kustomize", filepath.Join(o.RepoDir, "config", "dev"))
	if err != nil {
		return fmt.Errorf("rendering config/dev: %w", err)
	}
	if _, err := runKubectl(ctx, o.Kubectl, rendered, "--kubeconfig", kubeconfig, "apply", "--server-side",
		"--force-conflicts", "--field-manager=loan-operator-devenv", "-f", "-"); err != nil {
		return fmt.Errorf("applying config/dev: %w", err)
	}
	return waitEstablished(ctx, c)
}

func waitEstablished(ctx context.Context, c client.Client) error {
	var lastErr error
	err := wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
		var crd apiextensionsv1.CustomResourceDefinition
		if lastErr = c.Get(ctx, client.ObjectKey{Name: crdName}, &crd); lastErr != nil {
			return false, nil
		}
		for _, cond := range crd.Status.Conditions {
			if cond.Type == apiextensionsv1.Established && cond.Status == apiextensionsv1.ConditionTrue {
				return true, nil
			}
		}
		lastErr = fmt.Errorf("CRD %s is not Established yet", crdName)
		return false, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for the CRD: %w (last: %v)", err, lastErr)
	}
	return nil
}

func runKubectl(ctx context.Context, kubectl string, stdin []byte, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, kubectl, args...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("kubectl %v: %w: %s", args, err, bytes.TrimSpace(errOut.Bytes()))
	}
	return out.Bytes(), nil
}
