package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
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

	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

type keyPair struct {
	cert    *x509.Certificate
	key     *ecdsa.PrivateKey
	certPEM []byte
	keyPEM  []byte
}

func newSerial() (*big.Int, error) {
	return rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
}

func encodeKey(key *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), nil
}

// newCA makes a self-signed CA.
func newCA(cn string) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cn},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, err
	}
	return finishPair(der, key)
}

func finishPair(der []byte, key *ecdsa.PrivateKey) (*keyPair, error) {
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	keyPEM, err := encodeKey(key)
	if err != nil {
		return nil, err
	}
	return &keyPair{
		cert:    cert,
		key:     key,
		certPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		keyPEM:  keyPEM,
	}, nil
}

// sign issues a leaf certificate from ca.
func (ca *keyPair) sign(cn string, orgs []string, dns []string, ips []net.IP, server bool) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := newSerial()
	if err != nil {
		return nil, err
	}
	now := time.Now()
	usage := []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
	if server {
		usage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn, Organization: orgs},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  usage,
		DNSNames:     dns,
		IPAddresses:  ips,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, err
	}
	return finishPair(der, key)
}

func writeFile(path string, data []byte, mode os.FileMode) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return os.WriteFile(path, data, mode)
}

func (kp *keyPair) write(dir, name string) error {
	if err := writeFile(filepath.Join(dir, name+".crt"), kp.certPEM, 0o644); err != nil {
		return err
	}
	return writeFile(filepath.Join(dir, name+".key"), kp.keyPEM, 0o600)
}

// pki holds every file the control plane needs, under dir/pki.
type pki struct {
	dir string
}

func (p pki) path(name string) string { return filepath.Join(p.dir, name) }

// generatePKI writes: ca.crt/key (serving + client CA), apiserver.crt/key (IP SAN 127.0.0.1),
// admin.crt/key (CN=vpa-e2e-admin, O=system:masters), front-proxy-ca + front-proxy-client
// (aggregation), and sa.key/sa.pub (RSA, service account token signing).
func generatePKI(dir string) (pki, *keyPair, *keyPair, error) {
	p := pki{dir: dir}
	ca, err := newCA("vpa-e2e-ca")
	if err != nil {
		return p, nil, nil, err
	}
	if err := ca.write(dir, "ca"); err != nil {
		return p, nil, nil, err
	}
	serving, err := ca.sign("kube-apiserver", nil,
		[]string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
		[]net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("10.96.0.1")}, true)
	if err != nil {
		return p, nil, nil, err
	}
	if err := serving.write(dir, "apiserver"); err != nil {
		return p, nil, nil, err
	}
	admin, err := ca.sign("vpa-e2e-admin", []string{"system:masters"}, nil, nil, false)
	if err != nil {
		return p, nil, nil, err
	}
	if err := admin.write(dir, "admin"); err != nil {
		return p, nil, nil, err
	}
	fpCA, err := newCA("vpa-e2e-front-proxy-ca")
	if err != nil {
		return p, nil, nil, err
	}
	if err := fpCA.write(dir, "front-proxy-ca"); err != nil {
		return p, nil, nil, err
	}
	fpClient, err := fpCA.sign("front-proxy-client", nil, nil, nil, false)
	if err != nil {
		return p, nil, nil, err
	}
	if err := fpClient.write(dir, "front-proxy-client"); err != nil {
		return p, nil, nil, err
	}
	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return p, nil, nil, err
	}
	pub, err := x509.MarshalPKIXPublicKey(&saKey.PublicKey)
	if err != nil {
		return p, nil, nil, err
	}
	if err := writeFile(p.path("sa.key"), pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(saKey)}), 0o600); err != nil {
		return p, nil, nil, err
	}
	if err := writeFile(p.path("sa.pub"), pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}), 0o644); err != nil {
		return p, nil, nil, err
	}
	return p, ca, admin, nil
}

// pkiFiles are the files generatePKI writes, sa.pub last.
var pkiFiles = []string{
	"ca.crt", "ca.key", "apiserver.crt", "apiserver.key", "admin.crt", "admin.key",
	"front-proxy-ca.crt", "front-proxy-ca.key", "front-proxy-client.crt", "front-proxy-client.key",
	"sa.key", "sa.pub",
}

// loadPKI loads the CA and admin pairs a previous generatePKI wrote into dir. reused is false
// (and the error nil) when any file is missing: a fresh dir, or a run killed while generating;
// generatePKI then writes them all anew.
func loadPKI(dir string) (p pki, ca, admin *keyPair, reused bool, err error) {
	p = pki{dir: dir}
	for _, f := range pkiFiles {
		if _, err := os.Stat(p.path(f)); err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return p, nil, nil, false, nil
			}
			return p, nil, nil, false, err
		}
	}
	if ca, err = readPair(dir, "ca"); err != nil {
		return p, nil, nil, false, err
	}
	if admin, err = readPair(dir, "admin"); err != nil {
		return p, nil, nil, false, err
	}
	return p, ca, admin, true, nil
}

// readPair reads name.crt and name.key (as keyPair.write writes them).
func readPair(dir, name string) (*keyPair, error) {
	certPEM, err := os.ReadFile(filepath.Join(dir, name+".crt"))
	if err != nil {
		return nil, err
	}
	keyPEM, err := os.ReadFile(filepath.Join(dir, name+".key"))
	if err != nil {
		return nil, err
	}
	cb, _ := pem.Decode(certPEM)
	if cb == nil || cb.Type != "CERTIFICATE" {
		return nil, fmt.Errorf("%s.crt: no CERTIFICATE block", name)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s.crt: %w", name, err)
	}
	kb, _ := pem.Decode(keyPEM)
	if kb == nil || kb.Type != "EC PRIVATE KEY" {
		return nil, fmt.Errorf("%s.key: no EC PRIVATE KEY block", name)
	}
	key, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s.key: %w", name, err)
	}
	return &keyPair{cert: cert, key: key, certPEM: certPEM, keyPEM: keyPEM}, nil
}

// writeKubeconfig writes a kubeconfig with embedded CA and client certificate.
func writeKubeconfig(path, server string, ca, client *keyPair, user string) error {
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["vpa-e2e"] = &clientcmdapi.Cluster{Server: server, CertificateAuthorityData: ca.certPEM}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: client.certPEM, ClientKeyData: client.keyPEM}
	cfg.Contexts["vpa-e2e"] = &clientcmdapi.Context{Cluster: "vpa-e2e", AuthInfo: user, Namespace: "default"}
	cfg.CurrentContext = "vpa-e2e"
	data, err := clientcmd.Write(*cfg)
	if err != nil {
		return fmt.Errorf("encoding kubeconfig: %w", err)
	}
	tmp := path + ".tmp"
	if err := writeFile(tmp, data, 0o600); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
