package devenv

import (
	"os"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// SystemNamespace is the operator's namespace in config/dev, where its ServiceAccounts live and
// the controller's leader election Lease is kept.
const SystemNamespace = "loan-operator-system"

// The identities of the programs: the user names and groups that the API server gives tokens of
// the ServiceAccounts in config/dev, presented here as client certificates, so that each program
// has exactly the rights config/rbac grants it in a cluster.
const (
	ControllerUser = "system:serviceaccount:" + SystemNamespace + ":loan-operator-controller-manager"
	GatewayUser    = "system:serviceaccount:" + SystemNamespace + ":loan-operator-gateway"
	// AdminUser is the person at the keyboard, a cluster administrator.
	AdminUser = "loan-operator-dev-admin"
)

// ServiceAccountGroups are the groups of a ServiceAccount in SystemNamespace.
var ServiceAccountGroups = []string{
	"system:serviceaccounts", "system:serviceaccounts:" + SystemNamespace, "system:authenticated",
}

// identity is one user of the local API server and where its kubeconfig is written.
type identity struct {
	user   string
	groups []string
	path   string
}

// writeKubeconfig issues a client certificate for id and writes a kubeconfig with it, whose
// context's namespace is "default" (where kubectl apply and the gateway put applications).
// It returns the kubeconfig's bytes.
func writeKubeconfig(p *pki, server string, id identity) ([]byte, error) {
	certPEM, keyPEM, err := p.clientCert(id.user, id.groups)
	if err != nil {
		return nil, err
	}
	const name = "loan-operator-dev"
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters[name] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: p.caPEM}
	cfg.AuthInfos[name] = &clientcmdapi.AuthInfo{ClientCertificateData: certPEM, ClientKeyData: keyPEM}
	cfg.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name, Namespace: "default"}
	cfg.CurrentContext = name
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return nil, err
	}
	return data, os.WriteFile(id.path, data, 0o600)
}

// restConfig turns a kubeconfig into a client configuration without client-side rate limit:
// the stack's callers (tests, benchmarks) measure the system, not client-go's limiter.
func restConfig(kubeconfig []byte) (*rest.Config, error) {
	cfg, err := clientcmd.RESTConfigFromKubeConfig(kubeconfig)
	if err != nil {
		return nil, err
	}
	cfg.QPS, cfg.Burst = -1, -1
	return cfg, nil
}
