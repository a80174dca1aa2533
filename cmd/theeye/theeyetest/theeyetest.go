// Package theeyetest runs real theeye processes for the tests of other
// packages (client/, cmd/eyectl, cmd/theeye) and for bench/: it builds the
// binary, starts nodes on loopback ports the kernel picks, waits until they
// are ready, and kills or stops them (each, or every one a Procs holds);
// and it has the one polling loop of the tests (Poll). It owns nothing
// else, and imports only the standard library, so any package's tests may
// use it.
package theeyetest

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
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
	// Args, when set, are the arguments Bin runs with instead of `serve`
	// and the flags above (Extra is still appended): for another program
	// that logs the same "theeye listening" line.
	Args []string
	// Name is what errors call the process (default "theeye").
	Name string
	// OutTail, when > 0, makes Out keep only the last OutTail bytes (for
	// a long run) and errors quote only its last lines.
	OutTail int
	// Procs, when set, holds every process started until it exits, so
	// that the caller can kill them all.
	Procs *Procs

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

// Start starts the process and waits (at most a minute) until it listens
// and /readyz is 200; a process that does not get ready is killed.
func (n *Node) Start() error { return n.StartContext(context.Background(), 60*time.Second) }

// StartContext starts the process and waits until it listens and /readyz
// is 200, for at most timeout and no longer than ctx lasts; a process that
// does not get ready is killed.
func (n *Node) StartContext(ctx context.Context, timeout time.Duration) error {
	if err := n.StartNoWait(); err != nil {
		return err
	}
	if err := n.WaitReadyContext(ctx, timeout); err != nil {
		n.Kill9()
		return err
	}
	return nil
}

// StartNoWait starts the process and returns at once. On Linux the child
// gets SIGKILL when its parent dies, however it dies, so no node outlives
// a test or a benchmark run.
func (n *Node) StartNoWait() error {
	args := n.Args
	if args == nil {
		host := n.RaftHost
		if host == "" {
			host = "127.0.0.1"
		}
		args = []string{"serve",
			"--data-dir", n.DataDir,
			"--http", "127.0.0.1:" + strconv.Itoa(n.HTTPPort),
			"--raft", host + ":" + strconv.Itoa(n.RaftPort),
		}
		if n.AdminKey != "" {
			args = append(args, "--admin-key", n.AdminKey)
		}
	}
	cmd := exec.Command(n.Bin, append(slices.Clip(args), n.Extra...)...)
	n.Out = &SyncBuffer{Max: n.OutTail}
	cmd.Stdout, cmd.Stderr = n.Out, n.Out
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", n.name(), err)
	}
	n.Cmd, n.Done = cmd, make(chan struct{})
	procs, done := n.Procs, n.Done
	procs.add(cmd, done)
	go func() {
		cmd.Wait()
		procs.remove(cmd)
		close(done)
	}()
	return nil
}

// name is what errors call the process.
func (n *Node) name() string {
	if n.Name == "" {
		return "theeye"
	}
	return n.Name
}

// output is the process's output as errors quote it: all of it, or the
// last lines of a tail.
func (n *Node) output() string {
	out := n.Out.String()
	if n.OutTail <= 0 {
		return out
	}
	lines := strings.Split(strings.TrimRight(out, "\n"), "\n")
	return strings.Join(lines[max(0, len(lines)-20):], "\n")
}

// failed says that the process is not what or gave up waiting for it,
// with its output (which the error of an exited process quotes already).
func (n *Node) failed(what string, err error) error {
	if !n.Alive() {
		return fmt.Errorf("%s not %s: %w", n.name(), what, err)
	}
	return fmt.Errorf("%s not %s: %w\n%s", n.name(), what, err, n.output())
}

// listening matches the line theeye (and bench's no-op server, which has
// no Raft) logs once it listens: the HTTP address and the Raft port.
var listening = regexp.MustCompile(`msg="theeye listening" http=(\S+)(?: raft=\S+ raft_listen=\S+:(\d+))?`)

// WaitReady waits for the "theeye listening" line, records the ports, and
// waits for a 200 from /readyz, all within timeout.
func (n *Node) WaitReady(timeout time.Duration) error {
	return n.WaitReadyContext(context.Background(), timeout)
}

// WaitReadyContext is WaitReady that also gives up when ctx is done.
func (n *Node) WaitReadyContext(ctx context.Context, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	if err := n.waitListening(ctx, timeout); err != nil {
		return err
	}
	err := PollContext(ctx, timeout, func() error {
		if !n.Alive() {
			return Stop(fmt.Errorf("exited:\n%s", n.output()))
		}
		rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, n.URL+"/readyz", nil)
		if err != nil {
			return Stop(fmt.Errorf("readyz request: %w", err))
		}
		resp, err := http.DefaultClient.Do(req)
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
	if err != nil {
		return n.failed("ready", err)
	}
	return nil
}

// WaitListening waits for the "theeye listening" line, records the ports
// and calls OnListen.
func (n *Node) WaitListening(timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return n.waitListening(ctx, timeout)
}

func (n *Node) waitListening(ctx context.Context, timeout time.Duration) error {
	err := PollContext(ctx, timeout, func() error {
		if !n.Alive() {
			return Stop(fmt.Errorf("exited early:\n%s", n.output()))
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
		if m[2] != "" {
			n.RaftPort, _ = strconv.Atoi(m[2])
		}
		return nil
	})
	if err != nil {
		return n.failed("listening", err)
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
		return fmt.Errorf("%s is not running", n.name())
	}
	n.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.Done:
	case <-time.After(timeout):
		n.Kill9()
		return fmt.Errorf("%s did not stop within %s of SIGTERM:\n%s", n.name(), timeout, n.output())
	}
	if code := n.Cmd.ProcessState.ExitCode(); code != 0 {
		return fmt.Errorf("%s exited with %d after SIGTERM:\n%s", n.name(), code, n.output())
	}
	return nil
}

// Procs is a registry of running processes, for a caller that must kill
// every one it started whatever happens (bench on exit and on Ctrl-C). The
// zero value is empty and ready.
type Procs struct {
	mu    sync.Mutex
	procs map[*exec.Cmd]chan struct{} // → closed when it exits
}

// NewProcs returns an empty registry.
func NewProcs() *Procs { return &Procs{} }

func (p *Procs) add(cmd *exec.Cmd, done chan struct{}) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.procs == nil {
		p.procs = map[*exec.Cmd]chan struct{}{}
	}
	p.procs[cmd] = done
}

func (p *Procs) remove(cmd *exec.Cmd) {
	if p == nil {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.procs, cmd)
}

// KillAll sends SIGKILL to every process still running and waits until
// they are gone.
func (p *Procs) KillAll() {
	p.mu.Lock()
	running := maps.Clone(p.procs)
	p.mu.Unlock()
	for cmd, done := range running {
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
}

// SyncBuffer is a bytes.Buffer safe for a process to write while a test
// reads. With Max > 0 it keeps only the last Max bytes written.
type SyncBuffer struct {
	Max int

	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n, err := s.b.Write(p)
	if s.Max > 0 && s.b.Len() > s.Max {
		s.b.Next(s.b.Len() - s.Max)
	}
	return n, err
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
// passes. It is the one polling loop of the tests: the ticker is the
// polling interval, not synchronisation.
func Poll(timeout time.Duration, fn func() error) error {
	return PollContext(context.Background(), timeout, fn)
}

// PollContext is Poll that also gives up when ctx is done.
func PollContext(ctx context.Context, timeout time.Duration, fn func() error) error {
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
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", context.Cause(ctx), err)
		case <-tick.C:
		}
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
