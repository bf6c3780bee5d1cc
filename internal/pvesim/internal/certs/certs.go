// Package certs creates and reuses pvesim's CA and server certificate.
package certs

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
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

// Ensure creates (or reuses) DIR/ca.pem, DIR/ca-key.pem,
// DIR/server.pem and DIR/server-key.pem and returns a server TLS config.
func Ensure(dir string) (*tls.Config, []byte, error) {
	caCert, caKey, caPEM, err := ensureCA(dir)
	if err != nil {
		return nil, nil, err
	}
	certPath := filepath.Join(dir, "server.pem")
	keyPath := filepath.Join(dir, "server-key.pem")
	cert, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err == nil {
		if leaf, perr := x509.ParseCertificate(cert.Certificate[0]); perr != nil || leaf.CheckSignatureFrom(caCert) != nil || time.Now().After(leaf.NotAfter) {
			err = errors.New("stale server certificate")
		}
	}
	if err != nil {
		if cert, err = issueServerCert(caCert, caKey, certPath, keyPath); err != nil {
			return nil, nil, err
		}
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		NextProtos:   []string{"http/1.1"},
		MinVersion:   tls.VersionTLS12,
	}, caPEM, nil
}

// ensureCA loads DIR/ca.pem and DIR/ca-key.pem, or creates a new CA (and
// removes the server certificate it did not sign).
func ensureCA(dir string) (*x509.Certificate, *ecdsa.PrivateKey, []byte, error) {
	caPath := filepath.Join(dir, "ca.pem")
	caKeyPath := filepath.Join(dir, "ca-key.pem")
	caPEM, err1 := os.ReadFile(caPath)
	caKeyPEM, err2 := os.ReadFile(caKeyPath)
	if err1 == nil && err2 == nil {
		c, k, err := parsePair(caPEM, caKeyPEM)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("pvesim: existing CA in %s: %w", dir, err)
		}
		return c, k, caPEM, nil
	}
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "pvesim Proxmox Virtual Environment CA", Organization: []string{"PVE Cluster Manager CA (simulated)"}},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().AddDate(10, 0, 0),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, nil, err
	}
	caCert, _ := x509.ParseCertificate(der)
	caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	kb, _ := x509.MarshalECPrivateKey(k)
	if err := os.WriteFile(caKeyPath, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		return nil, nil, nil, err
	}
	if err := os.WriteFile(caPath, caPEM, 0o644); err != nil {
		return nil, nil, nil, err
	}
	_ = os.Remove(filepath.Join(dir, "server.pem"))
	_ = os.Remove(filepath.Join(dir, "server-key.pem"))
	return caCert, k, caPEM, nil
}

// issueServerCert signs a new server certificate for localhost, pve1, pve2,
// 127.0.0.1 and ::1 and writes it with its key.
func issueServerCert(caCert *x509.Certificate, caKey *ecdsa.PrivateKey, certPath, keyPath string) (tls.Certificate, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      pkix.Name{CommonName: "localhost", Organization: []string{"PVE Cluster Node (simulated)"}},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().AddDate(2, 0, 0),
		KeyUsage:     x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost", "pve1", "pve2"},
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1"), net.ParseIP("::1")},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
	if err != nil {
		return tls.Certificate{}, err
	}
	kb, _ := x509.MarshalECPrivateKey(k)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})
	if err := os.WriteFile(keyPath, keyPEM, 0o600); err != nil {
		return tls.Certificate{}, err
	}
	if err := os.WriteFile(certPath, certPEM, 0o644); err != nil {
		return tls.Certificate{}, err
	}
	return tls.X509KeyPair(certPEM, keyPEM)
}

func parsePair(certPEM, keyPEM []byte) (*x509.Certificate, *ecdsa.PrivateKey, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return nil, nil, errors.New("bad PEM")
	}
	c, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	k, err := x509.ParseECPrivateKey(kb.Bytes)
	if err != nil {
		return nil, nil, err
	}
	return c, k, nil
}

func serial() *big.Int {
	n, _ := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	return n
}
