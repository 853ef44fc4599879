package devenv

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// certValidity is how long the local certificates last. The CA and the serving certificate are
// kept across runs (so that a kubeconfig copied elsewhere keeps working) and renewed when they
// are this close to expiry; client certificates are issued anew at every start.
const (
	certValidity  = 365 * 24 * time.Hour
	renewalMargin = 30 * 24 * time.Hour
)

// pki is the local run's certificate authority under DevDir/pki: it signs the API server's
// serving certificate and the client certificates through which the administrator, the
// controller and the gateway authenticate (their user name is the certificate's common name,
// their groups its organizations, as the API server's x509 authenticator reads them).
type pki struct {
	dir    string
	caCert *x509.Certificate
	caKey  crypto.Signer
	// caPEM is the CA certificate, for kubeconfigs and for clients of the API server.
	caPEM []byte
}

// ecKeyPEMType is the PEM block type of an ECDSA private key in SEC 1 form.
const ecKeyPEMType = "EC PRIVATE KEY"

// File names under DevDir/pki.
const (
	caCertFile      = "ca.crt"
	caKeyFile       = "ca.key"
	servingCertFile = "apiserver.crt"
	servingKeyFile  = "apiserver.key"
	saKeyFile       = "sa.key"
	saPubFile       = "sa.pub"
)

// loadOrCreatePKI reads the CA from dir, or creates one when it is missing or about to expire.
func loadOrCreatePKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{dir: dir}
	if cert, key, err := readPair(p.path(caCertFile), p.path(caKeyFile)); err == nil && fresh(cert) {
		p.caCert, p.caKey = cert, key
	} else if err := p.createCA(); err != nil {
		return nil, fmt.Errorf("creating the local certificate authority: %w", err)
	}
	p.caPEM = pemCert(p.caCert.Raw)
	return p, nil
}

func (p *pki) path(name string) string { return filepath.Join(p.dir, name) }

func (p *pki) createCA() error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	tmpl, err := certTemplate(pkix.Name{CommonName: "loan-operator-dev-ca"})
	if err != nil {
		return err
	}
	tmpl.IsCA, tmpl.BasicConstraintsValid = true, true
	tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		return err
	}
	if p.caCert, err = x509.ParseCertificate(der); err != nil {
		return err
	}
	p.caKey = key
	// A new CA invalidates the serving certificate signed by the old one.
	_ = os.Remove(p.path(servingCertFile))
	return writePair(p.path(caCertFile), p.path(caKeyFile), der, key)
}

// ensureServingCert writes the API server's serving certificate for 127.0.0.1 and localhost,
// unless a fresh one signed by the current CA is there already, and returns its files.
func (p *pki) ensureServingCert() (certFile, keyFile string, err error) {
	certFile, keyFile = p.path(servingCertFile), p.path(servingKeyFile)
	if cert, _, err := readPair(certFile, keyFile); err == nil && fresh(cert) && cert.CheckSignatureFrom(p.caCert) == nil {
		return certFile, keyFile, nil
	}
	tmpl, err := certTemplate(pkix.Name{CommonName: "kube-apiserver"})
	if err != nil {
		return "", "", err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
	tmpl.DNSNames = []string{"localhost"}
	tmpl.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)}
	der, key, err := p.sign(tmpl)
	if err != nil {
		return "", "", err
	}
	return certFile, keyFile, writePair(certFile, keyFile, der, key)
}

// clientCert issues a client certificate for user in groups, PEM-encoded.
func (p *pki) clientCert(user string, groups []string) (certPEM, keyPEM []byte, err error) {
	tmpl, err := certTemplate(pkix.Name{CommonName: user, Organization: groups})
	if err != nil {
		return nil, nil, err
	}
	tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	der, key, err := p.sign(tmpl)
	if err != nil {
		return nil, nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, nil, err
	}
	return pemCert(der), pem.EncodeToMemory(&pem.Block{Type: ecKeyPEMType, Bytes: keyDER}), nil
}

// ensureServiceAccountKey writes the key pair with which the API server signs and checks
// ServiceAccount tokens (a flag it requires, although the local run authenticates by
// certificates), unless it exists.
func (p *pki) ensureServiceAccountKey() (keyFile, pubFile string, err error) {
	keyFile, pubFile = p.path(saKeyFile), p.path(saPubFile)
	if _, err := os.Stat(keyFile); err == nil {
		if _, err := os.Stat(pubFile); err == nil {
			return keyFile, pubFile, nil
		}
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return "", "", err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: ecKeyPEMType, Bytes: keyDER}), 0o600); err != nil {
		return "", "", err
	}
	return keyFile, pubFile, os.WriteFile(pubFile, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}), 0o600)
}

// sign creates a key and a certificate for it from tmpl, signed by the CA.
func (p *pki) sign(tmpl *x509.Certificate) ([]byte, *ecdsa.PrivateKey, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.caCert, key.Public(), p.caKey)
	return der, key, err
}

func certTemplate(subject pkix.Name) (*x509.Certificate, error) {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	return &x509.Certificate{
		SerialNumber: serial,
		Subject:      subject,
		// An hour back, so that a clock that steps a little does not make it "not yet valid".
		NotBefore: now.Add(-time.Hour),
		NotAfter:  now.Add(certValidity),
	}, nil
}

func fresh(cert *x509.Certificate) bool {
	return time.Now().Add(renewalMargin).Before(cert.NotAfter)
}

func pemCert(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func writePair(certFile, keyFile string, der []byte, key *ecdsa.PrivateKey) error {
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return err
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: ecKeyPEMType, Bytes: keyDER}), 0o600); err != nil {
		return err
	}
	return os.WriteFile(certFile, pemCert(der), 0o600)
}

func readPair(certFile, keyFile string) (*x509.Certificate, crypto.Signer, error) {
	certPEM, err := os.ReadFile(certFile)
	if err != nil {
		return nil, nil, err
	}
	keyPEM, err := os.ReadFile(keyFile)
	if err != nil {
		return nil, nil, err
	}
	certBlock, _ := pem.Decode(certPEM)
	keyBlock, _ := pem.Decode(keyPEM)
	if certBlock == nil || keyBlock == nil {
		return nil, nil, errors.New("not PEM")
	}
	cert, err := x509.ParseCertificate(certBlock.Bytes)
	if err != nil {
		return nil, nil, err
	}
	key, err := x509.ParseECPrivateKey(keyBlock.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return cert, key, nil
}
