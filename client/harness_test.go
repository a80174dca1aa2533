package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/theeye/theeye/client"
)

// The tests drive a real theeye binary, built once in TestMain, over HTTP on
// loopback. One node (shared) serves every test that does not kill it; each
// test works in apps and sessions of its own. The approach is the one of
// cmd/theeye/harness_test.go, with the helpers copied, not imported.

const adminKey = "eye_admin_client_test_key"

var (
	theeyeBin string
	shared    *node
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "theeye-client-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	theeyeBin = filepath.Join(dir, "theeye")
	build := exec.Command("go", "build", "-o", theeyeBin, "github.com/theeye/theeye/cmd/theeye")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build theeye:", err)
		return 1
	}
	shared, err = newNode(filepath.Join(dir, "shared"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "start the shared theeye node:", err)
		return 1
	}
	defer shared.kill9()
	return m.Run()
}

// node is one running theeye process.
type node struct {
	dataDir      string
	extra        []string // more theeye serve flags
	httpP, raftP int
	cmd          *exec.Cmd
	out          *syncBuffer
	done         chan struct{}
	URL          string
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func freePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// newNode starts theeye on fresh loopback ports with its data in dataDir
// and waits until it is ready.
func newNode(dataDir string) (*node, error) {
	n := &node{dataDir: dataDir}
	// Ports 0: the kernel picks them (picking them here races with other
	// test processes); start records them for restarts.
	if err := n.start(); err != nil {
		n.kill9()
		return nil, err
	}
	return n, nil
}

// startNode is newNode for one test: the node is killed when it ends.
func startNode(t *testing.T) *node {
	t.Helper()
	n, err := newNode(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.kill9)
	return n
}

// start runs the process (again, after kill9: same ports and data dir) and
// waits for its "theeye listening" line and a 200 from /readyz.
func (n *node) start() error {
	n.cmd = exec.Command(theeyeBin, "serve",
		"--data-dir", n.dataDir,
		"--http", fmt.Sprintf("127.0.0.1:%d", n.httpP),
		"--raft", fmt.Sprintf("127.0.0.1:%d", n.raftP),
		"--admin-key", adminKey)
	n.cmd.Args = append(n.cmd.Args, n.extra...)
	n.out = &syncBuffer{}
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		return fmt.Errorf("start theeye: %w", err)
	}
	n.done = make(chan struct{})
	go func() { n.cmd.Wait(); close(n.done) }()
	re := regexp.MustCompile(`msg="theeye listening" http=(\S+) raft=\S+ raft_listen=\S+:(\d+)`)
	err := poll(60*time.Second, func() error {
		select {
		case <-n.done:
			return errStop{fmt.Errorf("theeye exited early:\n%s", n.out.String())}
		default:
		}
		m := re.FindStringSubmatch(n.out.String())
		if m == nil {
			return errors.New("no listening line yet")
		}
		n.URL = "http://" + m[1]
		_, port, _ := net.SplitHostPort(m[1])
		n.httpP, _ = strconv.Atoi(port)
		n.raftP, _ = strconv.Atoi(m[2])
		return nil
	})
	if err != nil {
		return err
	}
	return poll(60*time.Second, func() error {
		resp, err := http.Get(n.URL + "/readyz")
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if resp.StatusCode != 200 {
			b, _ := io.ReadAll(resp.Body)
			return fmt.Errorf("readyz %d: %s", resp.StatusCode, b)
		}
		return nil
	})
}

// kill9 kills the process with SIGKILL: no shutdown code runs.
func (n *node) kill9() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.done:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// errStop makes poll give up at once.
type errStop struct{ error }

// poll calls fn until it returns nil, an errStop, or timeout passes.
func poll(timeout time.Duration, fn func() error) error {
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond) // poll interval, not synchronisation
	defer tick.Stop()
	for {
		err := fn()
		if err == nil {
			return nil
		}
		var stop errStop
		if errors.As(err, &stop) {
			return stop.error
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("timed out after %s: %w", timeout, err)
		}
		<-tick.C
	}
}

// waitFor is poll for a test.
func waitFor(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	if err := poll(timeout, fn); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// newClient returns a client for cfg (Servers default to the shared node),
// closed when the test ends.
func newClient(t *testing.T, cfg client.Config) *client.Client {
	t.Helper()
	if len(cfg.Servers) == 0 {
		cfg.Servers = []string{shared.URL}
	}
	c, err := client.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		c.Close(ctx)
	})
	return c
}

// adminClient talks to n with the admin key (which also reads).
func adminClient(t *testing.T, n *node) *client.Client {
	return newClient(t, client.Config{Servers: []string{n.URL}, Key: adminKey})
}

// nonces holds one random suffix per running test, so that names stay
// unique when the shared node serves the same test twice (-count=N).
var nonces sync.Map // *testing.T → string

func nonce(t *testing.T) string {
	var b [4]byte
	rand.Read(b[:])
	v, _ := nonces.LoadOrStore(t, hex.EncodeToString(b[:]))
	return v.(string)
}

// appName is the name of this test's app: the test's name and its nonce.
func appName(t *testing.T) string {
	r := strings.NewReplacer("/", "-", " ", "-", "#", "-")
	return strings.ToLower(r.Replace(t.Name())) + "-" + nonce(t)
}

// sess names a session of this test.
func sess(t *testing.T, name string) string { return name + "-" + nonce(t) }

// newApp creates an app for this test on n and returns its ingest key.
func newApp(t *testing.T, n *node) string {
	t.Helper()
	_, k, err := adminClient(t, n).CreateApp(testCtx(t), appName(t))
	if err != nil {
		t.Fatal(err)
	}
	return k.Secret
}

// countingRT counts requests by "METHOD /path" and lets a test hook in
// before a request goes out and after its answer comes back.
type countingRT struct {
	next   http.RoundTripper
	before func(*http.Request) error
	after  func(*http.Request, *http.Response, error) (*http.Response, error)

	mu     sync.Mutex
	counts map[string]int
	hosts  map[string]int
}

func newCountingRT() *countingRT {
	return &countingRT{next: http.DefaultTransport.(*http.Transport).Clone(), counts: map[string]int{}, hosts: map[string]int{}}
}

func (c *countingRT) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.counts[r.Method+" "+r.URL.Path]++
	c.hosts[r.URL.Host]++
	before, after := c.before, c.after
	c.mu.Unlock()
	if before != nil {
		if err := before(r); err != nil {
			return nil, err
		}
	}
	resp, err := c.next.RoundTrip(r)
	if after != nil {
		return after(r, resp, err)
	}
	return resp, err
}

func (c *countingRT) count(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.counts[key]
}

func (c *countingRT) host(h string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hosts[h]
}

func (c *countingRT) client() *http.Client { return &http.Client{Transport: c} }

// collect drains an iterator.
func collect[T any](t *testing.T, seq func(func(T, error) bool)) []T {
	t.Helper()
	var out []T
	for v, err := range seq {
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}
