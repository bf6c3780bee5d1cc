package certs

import (
	"bytes"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
)

// A second start reuses the CA and the server certificate; a new CA gets a
// new server certificate signed by it, which a client trusting only the new
// CA accepts for 127.0.0.1 and pve1.
func TestEnsureReusesCAAndReissuesServerCert(t *testing.T) {
	dir := t.TempDir()
	_, ca1, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	server1, _ := os.ReadFile(filepath.Join(dir, "server.pem"))
	_, ca2, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	server2, _ := os.ReadFile(filepath.Join(dir, "server.pem"))
	if !bytes.Equal(ca1, ca2) || !bytes.Equal(server1, server2) {
		t.Fatal("a second Ensure replaced the CA or the server certificate")
	}

	if err := os.Remove(filepath.Join(dir, "ca-key.pem")); err != nil {
		t.Fatal(err)
	}
	cfg, ca3, err := Ensure(dir)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Equal(ca1, ca3) {
		t.Fatal("the CA was not recreated without its key")
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(ca3) {
		t.Fatal("new CA PEM does not parse")
	}
	leaf, err := x509.ParseCertificate(cfg.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"127.0.0.1", "pve1"} {
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, DNSName: name}); err != nil {
			t.Errorf("server certificate for %s under the new CA: %v", name, err)
		}
	}
}
