package main

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os/exec"
	"strings"
	"testing"

	"github.com/theeye/theeye/cmd/theeye/theeyetest"
)

// writeTestPKI writes a CA and one certificate (for 127.0.0.1) it signed,
// as --tls-ca, --tls-cert and --tls-key files.
func writeTestPKI(t *testing.T) (caFile, certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	caFile, certFile, keyFile, pool, err := theeyetest.WritePKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
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
	// The healthcheck verifies the node with --ca, and refuses it without.
	health := func(args ...string) error {
		cmd := exec.Command(theeyeBin, append([]string{"health", "--url", c.nodes[0].URL}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("%w: %s", err, out)
		}
		return nil
	}
	if err := health("--ca", caFile); err != nil {
		t.Fatalf("theeye health --ca: %v", err)
	}
	if err := health(); err == nil {
		t.Fatal("theeye health trusted the node without --ca")
	}
	plain := "http://" + strings.TrimPrefix(c.nodes[0].URL, "https://")
	if resp, err := oldClient.Get(plain + "/healthz"); err == nil {
		resp.Body.Close()
		if resp.StatusCode == 200 {
			t.Fatal("plain HTTP was served")
		}
	}
}
