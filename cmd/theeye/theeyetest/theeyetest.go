// Package theeyetest runs real theeye processes for the tests of other
// packages (client/, cmd/eyectl, cmd/theeye) and for bench/: it builds the
// binary, starts nodes on loopback ports the kernel picks, waits until they
// are ready, and kills or stops them. It owns nothing else.
package theeyetest

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Build compiles github.com/theeye/theeye/cmd/theeye into dir as the
// release build does (ReleaseBuild) and returns the binary's path.
func Build(dir string, extraArgs ...string) (string, error) {
	bin := filepath.Join(dir, "theeye")
	env, args := ReleaseBuild()
	args = append(append(args, "-o", bin), extraArgs...)
	cmd := exec.Command("go", append(args, "github.com/theeye/theeye/cmd/theeye")...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("build theeye: %w", err)
	}
	return bin, nil
}

// ReleaseBuild returns the environment and the `go` arguments (up to the
// package) of the release build, the one `make build` makes: a static
// binary for a FROM scratch image, with cgo when a C compiler and a static
// libc are there, so that Pebble's block cache and memtables live outside
// the Go heap (bench W4 on 2M events: session p50 0.77 -> 0.32 ms, the
// collector's share of a node's CPU from a third to nothing), else pure Go.
func ReleaseBuild() (env, args []string) {
	if staticCgo() {
		return []string{"CGO_ENABLED=1"}, []string{"build", "-trimpath", "-tags", "netgo,osusergo",
			"-ldflags", "-s -w -linkmode external -extldflags -static"}
	}
	return []string{"CGO_ENABLED=0"}, []string{"build", "-trimpath", "-ldflags", "-s -w"}
}

// staticCgo reports whether the C compiler (CC, else cc) is there and
// has a static libc to link against.
func staticCgo() bool {
	cc := os.Getenv("CC")
	if cc == "" {
		cc = "cc"
	}
	out, err := exec.Command(cc, "-print-file-name=libc.a").Output()
	if err != nil {
		return false
	}
	f := string(bytes.TrimSpace(out))
	if !filepath.IsAbs(f) {
		return false
	}
	_, err = os.Stat(f)
	return err == nil
}

// Node is one theeye process. Set Bin, DataDir, AdminKey (and Extra flags)
// before Start. On the first start HTTPPort and RaftPort are 0, so the
// kernel picks them (choosing them in the test and handing them over races
// with other processes); Start records them and a restart reuses them.
type Node struct {
	Bin      string
	DataDir  string
	AdminKey string
	Extra    []string // more `theeye serve` flags
	RaftHost string   // default 127.0.0.1
	HTTPS    bool     // URL scheme https (with --tls-* in Extra)
	// OnListen, when set, is called once the ports are known.
	OnListen func(*Node)

	HTTPPort, RaftPort int
	URL                string
	Out                *SyncBuffer // stdout and stderr of the current process
	Cmd                *exec.Cmd
	Done               chan struct{} // closed when the current process exits
}

// StartNode starts a node of bin with its data in dataDir and waits until
// it is ready; a node that fails to get ready is killed.
func StartNode(bin, dataDir, adminKey string, extra ...string) (*Node, error) {
	n := &Node{Bin: bin, DataDir: dataDir, AdminKey: adminKey, Extra: extra}
	if err := n.Start(); err != nil {
		n.Kill9()
		return nil, err
	}
	return n, nil
}

// Main is the TestMain of a package whose tests share one node: it builds
// theeye into a temporary dir, starts the shared node (its data there
// too), hands both to setup, runs the tests and cleans up. It returns the
// exit code for os.Exit.
func Main(m *testing.M, adminKey string, setup func(bin string, shared *Node)) int {
	dir, err := os.MkdirTemp("", "theeye-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	bin, err := Build(dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	shared, err := StartNode(bin, filepath.Join(dir, "shared"), adminKey)
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the shared theeye node:", err)
		return 1
	}
	defer shared.Kill9()
	setup(bin, shared)
	return m.Run()
}

// Start starts the process and waits until it listens and /readyz is 200.
func (n *Node) Start() error {
	if err := n.StartNoWait(); err != nil {
		return err
	}
	return n.WaitReady(60 * time.Second)
}

// StartNoWait starts the process and returns at once.
func (n *Node) StartNoWait() error {
	host := n.RaftHost
	if host == "" {
		host = "127.0.0.1"
	}
	args := []string{"serve",
		"--data-dir", n.DataDir,
		"--http", "127.0.0.1:" + strconv.Itoa(n.HTTPPort),
		"--raft", host + ":" + strconv.Itoa(n.RaftPort),
	}
	if n.AdminKey != "" {
		args = append(args, "--admin-key", n.AdminKey)
	}
	n.Cmd = exec.Command(n.Bin, append(args, n.Extra...)...)
	n.Out = &SyncBuffer{}
	n.Cmd.Stdout, n.Cmd.Stderr = n.Out, n.Out
	if err := n.Cmd.Start(); err != nil {
		return fmt.Errorf("start theeye: %w", err)
	}
	n.Done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(n.Cmd, n.Done)
	return nil
}

var listening = regexp.MustCompile(`msg="theeye listening" http=(\S+) raft=\S+ raft_listen=\S+:(\d+)`)

// WaitReady waits for the "theeye listening" line, records the ports, and
// waits for a 200 from /readyz.
func (n *Node) WaitReady(timeout time.Duration) error {
	if err := n.WaitListening(timeout); err != nil {
		return err
	}
	return Poll(timeout, func() error {
		if !n.Alive() {
			return Stop(fmt.Errorf("theeye exited:\n%s", n.Out.String()))
		}
		resp, err := http.DefaultClient.Get(n.URL + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("readyz %d: %s", resp.StatusCode, b)
		}
		return nil
	})
}

// WaitListening waits for the "theeye listening" line, records the ports
// and calls OnListen.
func (n *Node) WaitListening(timeout time.Duration) error {
	err := Poll(timeout, func() error {
		if !n.Alive() {
			return Stop(fmt.Errorf("theeye exited early:\n%s", n.Out.String()))
		}
		m := listening.FindStringSubmatch(n.Out.String())
		if m == nil {
			return errors.New("no listening line yet")
		}
		scheme := "http://"
		if n.HTTPS {
			scheme = "https://"
		}
		n.URL = scheme + m[1]
		_, port, _ := net.SplitHostPort(m[1])
		n.HTTPPort, _ = strconv.Atoi(port)
		n.RaftPort, _ = strconv.Atoi(m[2])
		return nil
	})
	if err != nil {
		return err
	}
	if n.OnListen != nil {
		n.OnListen(n)
	}
	return nil
}

// Alive reports whether the current process is running.
func (n *Node) Alive() bool {
	if n.Done == nil {
		return false
	}
	select {
	case <-n.Done:
		return false
	default:
		return true
	}
}

// Kill9 kills the process with SIGKILL (no shutdown code runs) and waits.
func (n *Node) Kill9() {
	if !n.Alive() {
		return
	}
	n.Cmd.Process.Signal(syscall.SIGKILL)
	<-n.Done
}

// Stop sends SIGTERM and waits up to timeout for a clean exit (status 0).
func (n *Node) Stop(timeout time.Duration) error {
	if !n.Alive() {
		return errors.New("theeye is not running")
	}
	n.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.Done:
	case <-time.After(timeout):
		n.Kill9()
		return fmt.Errorf("theeye did not stop within %s of SIGTERM:\n%s", timeout, n.Out.String())
	}
	if code := n.Cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("theeye exited with %d after SIGTERM:\n%s", code, n.Out.String())
	}
	return nil
}

// SyncBuffer is a bytes.Buffer safe for a process to write while a test
// reads.
type SyncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// stopErr makes Poll give up at once.
type stopErr struct{ error }

func (e stopErr) Unwrap() error { return e.error }

// Stop wraps err so that Poll returns it at once instead of retrying.
func Stop(err error) error { return stopErr{err} }

// Poll calls fn until it returns nil, an error wrapped by Stop, or timeout
// passes. The ticker is the polling interval, not synchronisation.
func Poll(timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		var stop stopErr
		if errors.As(err, &stop) {
			return stop.error
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		<-tick.C
	}
}

// ClosedPort returns a loopback port nothing listens on right now (for
// tests of connection failures).
func ClosedPort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find a closed port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// WritePKI writes into dir a CA and one certificate it signed (for
// 127.0.0.1, server and client use), as the files --tls-ca, --tls-cert and
// --tls-key take, and returns them with a pool that trusts the CA.
func WritePKI(dir string) (caFile, certFile, keyFile string, pool *x509.CertPool, err error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", nil, fmt.Errorf("CA key: %w", err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "theeye test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return "", "", "", nil, fmt.Errorf("CA certificate: %w", err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return "", "", "", nil, fmt.Errorf("CA certificate: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return "", "", "", nil, fmt.Errorf("node key: %w", err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "theeye node"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return "", "", "", nil, fmt.Errorf("node certificate: %w", err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return "", "", "", nil, fmt.Errorf("node key: %w", err)
	}
	caFile, certFile, keyFile = filepath.Join(dir, "ca.pem"), filepath.Join(dir, "node.pem"), filepath.Join(dir, "node.key")
	for f, b := range map[string]*pem.Block{
		caFile: {Type: "CERTIFICATE", Bytes: caDER}, certFile: {Type: "CERTIFICATE", Bytes: der}, keyFile: {Type: "EC PRIVATE KEY", Bytes: keyDER},
	} {
		if err := os.WriteFile(f, pem.EncodeToMemory(b), 0o600); err != nil {
			return "", "", "", nil, fmt.Errorf("write %s: %w", f, err)
		}
	}
	pool = x509.NewCertPool()
	pool.AddCert(ca)
	return caFile, certFile, keyFile, pool, nil
}
