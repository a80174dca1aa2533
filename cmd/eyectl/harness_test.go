package main

import (
	"errors"
	"fmt"
	"github.com/theeye/theeye/cmd/theeye/theeyetest"
	"os"
	"path/filepath"
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
	if theeyeBin, err = theeyetest.Build(dir); err != nil {
		fmt.Fprintln(os.Stderr, err)
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

// node is one running theeye process (cmd/theeye/theeyetest).
type node struct {
	*theeyetest.Node
	extra []string
}

// syncBuffer collects a process's or a command's output.
type syncBuffer = theeyetest.SyncBuffer

// newNode starts theeye with its data in dataDir on ports the kernel picks
// and waits until it is ready.
func newNode(dataDir string) (*node, error) {
	n := &node{}
	if err := n.startIn(dataDir); err != nil {
		n.kill9()
		return nil, err
	}
	return n, nil
}

func (n *node) startIn(dataDir string) error {
	n.Node = &theeyetest.Node{Bin: theeyeBin, DataDir: dataDir, AdminKey: adminKey, Extra: n.extra}
	return n.Node.Start()
}

// start runs the process (again, after kill9: same ports and data dir) and
// waits until it is ready.
func (n *node) start() error {
	if n.Node == nil {
		return errors.New("node was never started: use newNode or startIn")
	}
	return n.Node.Start()
}

func (n *node) kill9() {
	if n.Node != nil {
		n.Node.Kill9()
	}
}

// freePort returns a loopback port nothing listens on.
func freePort() (int, error) { return theeyetest.ClosedPort() }

// poll calls fn until it returns nil or timeout passes.
func poll(timeout time.Duration, fn func() error) error { return theeyetest.Poll(timeout, fn) }

// waitFor is poll for a test.
func waitFor(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	if err := poll(timeout, fn); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
