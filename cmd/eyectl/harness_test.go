package main

import (
	"os"
	"testing"
	"time"

	"github.com/theeye/theeye/cmd/theeye/theeyetest"
)

// The tests run eyectl in-process (run with args and buffers) against a real
// theeye node, built once in TestMain and started once for the package. The
// processes, the build and the polling are cmd/theeye/theeyetest's.

const adminKey = "eye_admin_eyectl_test_key"

var (
	theeyeBin string
	shared    *node
)

func TestMain(m *testing.M) {
	os.Exit(theeyetest.Main(m, adminKey, func(bin string, n *node) { theeyeBin, shared = bin, n }))
}

// node is one running theeye process (cmd/theeye/theeyetest).
type node = theeyetest.Node

// syncBuffer collects a process's or a command's output.
type syncBuffer = theeyetest.SyncBuffer

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
