package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// writeTestPKI writes a CA and one certificate (for 127.0.0.1) it signed,
// as --tls-ca, --tls-cert and --tls-key files.
func writeTestPKI(t *testing.T) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "theeye test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, _ := x509.ParseCertificate(caDER)
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "theeye node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(key)
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "node.pem"), filepath.Join(dir, "node.key")
	for f, b := range map[string]*pem.Block{
		caFile: {Type: "CERTIFICATE", Bytes: caDER}, certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return caFile, certFile, keyFile, pool
}

// TestTLSCluster: three nodes with TLS on HTTP and mutual TLS on Raft; a
// write through a follower is forwarded over TLS and replicated, and a
// plain-HTTP client is not served.
func TestTLSCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	caFile, certFile, keyFile, pool := writeTestPKI(t)
	oldClient := http.DefaultClient
	http.DefaultClient = &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
	t.Cleanup(func() { http.DefaultClient = oldClient })

	c := &testCluster{t: t}
	for i := 1; i <= 3; i++ {
		p := newProc(t, t.TempDir())
		p.HTTPS = true
		p.Extra = []string{"--node-id", fmt.Sprintf("n%d", i), "--cluster-key", testClusterKey,
			"--tls-cert", certFile, "--tls-key", keyFile, "--tls-ca", caFile}
		if i > 1 {
			p.Extra = append(p.Extra, "--join", c.nodes[0].URL)
		}
		c.nodes = append(c.nodes, p)
		t.Cleanup(p.kill9)
		p.start()
	}
	c.waitMembers(3)
	if !strings.HasPrefix(c.nodes[0].URL, "https://") {
		t.Fatalf("node URL %s", c.nodes[0].URL)
	}
	key := c.nodes[2].createApp("web")
	a := c.nodes[1].post(key, "application/json", []byte(exPageview))
	for _, p := range c.nodes {
		if pg := p.get(fmt.Sprintf("/v1/sessions/%s/events?min_seq=%d", exSession, a.Seq)); len(pg.Events) != 1 {
			t.Fatalf("%s: %d events", p.URL, len(pg.Events))
		}
	}
	plain := "http://" + strings.TrimPrefix(c.nodes[0].URL, "https://")
	if resp, err := oldClient.Get(plain + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP was served")
		}
	}
}
