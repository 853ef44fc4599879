package devenv

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"
)

func parsePEMCert(t *testing.T, data []byte) *x509.Certificate {
	t.Helper()
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatal("not PEM")
	}
	cert, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return cert
}

func TestClientCertCarriesUserAndGroupsAndChainsToTheCA(t *testing.T) {
	p, err := loadOrCreatePKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM, err := p.clientCert(GatewayUser, ServiceAccountGroups)
	if err != nil {
		t.Fatal(err)
	}
	cert := parsePEMCert(t, certPEM)
	// DER keeps a SET's members sorted, so compare the groups as a set.
	if cert.Subject.CommonName != GatewayUser || !slices.Equal(slices.Sorted(slices.Values(cert.Subject.Organization)),
		slices.Sorted(slices.Values(ServiceAccountGroups))) {
		t.Fatalf("subject = %v", cert.Subject)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(p.caPEM)
	if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err != nil {
		t.Fatalf("the client certificate does not verify against the CA: %v", err)
	}
	if block, _ := pem.Decode(keyPEM); block == nil || block.Type != ecKeyPEMType {
		t.Fatal("the key is not an EC private key in PEM")
	}
}

func TestServingCertIsForLoopbackAndKeptAcrossRuns(t *testing.T) {
	dir := t.TempDir()
	p, err := loadOrCreatePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	certFile, _, err := p.ensureServingCert()
	if err != nil {
		t.Fatal(err)
	}
	first, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	cert := parsePEMCert(t, first)
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(p.caPEM)
	for _, host := range []string{"127.0.0.1", "localhost"} {
		if _, err := cert.Verify(x509.VerifyOptions{Roots: roots, DNSName: host}); err != nil {
			t.Errorf("the serving certificate does not verify for %s: %v", host, err)
		}
	}
	if !cert.IPAddresses[0].Equal(net.IPv4(127, 0, 0, 1)) {
		t.Errorf("IP SANs = %v", cert.IPAddresses)
	}

	// A second run on the same folder keeps the CA and the serving certificate, so that a
	// kubeconfig written by the first run still trusts the API server.
	again, err := loadOrCreatePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	if string(again.caPEM) != string(p.caPEM) {
		t.Fatal("the CA changed across runs")
	}
	if _, _, err := again.ensureServingCert(); err != nil {
		t.Fatal(err)
	}
	second, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	if string(second) != string(first) {
		t.Fatal("the serving certificate changed across runs")
	}
}

func TestCAAboutToExpireIsReplacedWithItsServingCert(t *testing.T) {
	dir := t.TempDir()
	p, err := loadOrCreatePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := p.ensureServingCert(); err != nil {
		t.Fatal(err)
	}
	// Forge an old CA: same files, a certificate that expires within the renewal margin.
	tmpl, err := certTemplate(p.caCert.Subject)
	if err != nil {
		t.Fatal(err)
	}
	tmpl.NotAfter = time.Now().Add(renewalMargin / 2)
	tmpl.IsCA, tmpl.BasicConstraintsValid, tmpl.KeyUsage = true, true, x509.KeyUsageCertSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, p.caKey.Public(), p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, caCertFile), pemCert(der), 0o600); err != nil {
		t.Fatal(err)
	}
	renewed, err := loadOrCreatePKI(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !fresh(renewed.caCert) {
		t.Fatal("the expiring CA was kept")
	}
	if _, err := os.Stat(filepath.Join(dir, servingCertFile)); !os.IsNotExist(err) {
		t.Fatalf("the serving certificate of the old CA was kept: %v", err)
	}
}
