package main

import (
	"bytes"
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
	"sync"
	"syscall"
	"testing"
	"time"
)

// The tests run eyectl in-process (run with args and buffers) against a real
// theeye node, built once in TestMain and started once for the package. The
// helpers are copied from client/harness_test.go (which follows
// cmd/theeye/harness_test.go), not imported.

const adminKey = "eye_admin_eyectl_test_key"

var (
	theeyeBin string
	shared    *node
)

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "theeye-eyectl-test-")
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

// start runs the process (again, after kill9: same ports and data dir) and
// waits for its "theeye listening" line and a 200 from /readyz.
func (n *node) start() error {
	n.cmd = exec.Command(theeyeBin, "serve",
		"--data-dir", n.dataDir,
		"--http", fmt.Sprintf("127.0.0.1:%d", n.httpP),
		"--raft", fmt.Sprintf("127.0.0.1:%d", n.raftP),
		"--admin-key", adminKey)
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
