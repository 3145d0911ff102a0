package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeCert writes a self-signed ECDSA certificate for 127.0.0.1 named cn
// and its key to dir/name.pem and dir/name-key.pem (each replaced
// atomically, as cert-manager and certbot do), and returns the pair.
func writeCert(t *testing.T, dir, name, cn string, usage x509.ExtKeyUsage) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{usage}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	for file, data := range map[string][]byte{name + "-key.pem": keyPEM, name + ".pem": certPEM} {
		tmp := filepath.Join(dir, "."+file+".tmp")
		if err := os.WriteFile(tmp, data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(dir, file)); err != nil {
			t.Fatal(err)
		}
	}
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return pair
}

func poolOf(certs ...tls.Certificate) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, c := range certs {
		leaf, _ := x509.ParseCertificate(c.Certificate[0])
		pool.AddCert(leaf)
	}
	return pool
}

// TestHTTPSWithCertificateRotation serves HTTPS with a certificate made in
// the test, refuses plain HTTP and TLS 1.1 on the port, and picks up a
// new certificate written over the files while serving.
func TestHTTPSWithCertificateRotation(t *testing.T) {
	dir := t.TempDir()
	first := writeCert(t, dir, "server", "scimd-test-first", x509.ExtKeyUsageServerAuth)
	d := startDaemon(t, t.TempDir(), "--tls-cert", filepath.Join(dir, "server.pem"), "--tls-key", filepath.Join(dir, "server-key.pem"))
	if !strings.HasPrefix(d.base, "https://") {
		t.Fatalf("base URL %s is not https", d.base)
	}
	// The client trusts both certificates; each request opens a new
	// connection, so each handshake shows the certificate in service.
	var second tls.Certificate
	roots := poolOf(first)
	served := func() (string, uint16) {
		t.Helper()
		client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true,
			TLSClientConfig: &tls.Config{RootCAs: roots}}}
		resp, err := client.Get(d.base + "/healthz")
		if err != nil {
			t.Fatalf("HTTPS request: %v", err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("/healthz over HTTPS = %d", resp.StatusCode)
		}
		return resp.TLS.PeerCertificates[0].Subject.CommonName, resp.TLS.Version
	}
	if cn, version := served(); cn != "scimd-test-first" || version < tls.VersionTLS12 {
		t.Fatalf("served %q over TLS version %x", cn, version)
	}

	// Plain HTTP on the TLS port is refused.
	resp, err := http.Get("http://" + strings.TrimPrefix(d.base, "https://") + "/healthz")
	if err == nil {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest {
			t.Fatalf("plain HTTP on the TLS port: %d %s", resp.StatusCode, body)
		}
	}
	// So is TLS 1.1.
	c, err := tls.Dial("tcp", strings.TrimPrefix(d.base, "https://"), &tls.Config{RootCAs: roots, MaxVersion: tls.VersionTLS11})
	if err == nil {
		c.Close()
		t.Fatal("a TLS 1.1 handshake succeeded")
	}

	second = writeCert(t, dir, "server", "scimd-test-second", x509.ExtKeyUsageServerAuth)
	roots = poolOf(first, second)
	deadline := time.Now().Add(15 * time.Second)
	for {
		cn, _ := served()
		if cn == "scimd-test-second" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("still serving %q 15 s after the certificate files changed", cn)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// TestMutualTLS requires a client certificate signed by --tls-client-ca.
func TestMutualTLS(t *testing.T) {
	dir := t.TempDir()
	server := writeCert(t, dir, "server", "scimd-test", x509.ExtKeyUsageServerAuth)
	client := writeCert(t, dir, "client", "okta-client", x509.ExtKeyUsageClientAuth)
	d := startDaemon(t, t.TempDir(), "--tls-cert", filepath.Join(dir, "server.pem"), "--tls-key", filepath.Join(dir, "server-key.pem"),
		"--tls-client-ca", filepath.Join(dir, "client.pem"))
	get := func(certs []tls.Certificate) error {
		c := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: poolOf(server), Certificates: certs}}}
		resp, err := c.Get(d.base + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	}
	if err := get(nil); err == nil {
		t.Fatal("a client without a certificate was served")
	}
	if err := get([]tls.Certificate{client}); err != nil {
		t.Fatalf("a client with a certificate from the client CA: %v", err)
	}
}
