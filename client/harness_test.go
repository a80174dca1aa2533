package client_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/theeye/theeye/client"
	"github.com/theeye/theeye/cmd/theeye/theeyetest"
)

// The tests drive a real theeye binary, built once in TestMain, over HTTP on
// loopback. One node (shared) serves every test that does not kill it; each
// test works in apps and sessions of its own. The processes, the build and
// the polling are cmd/theeye/theeyetest's, shared with every other suite.

const adminKey = "eye_admin_client_test_key"

var (
	theeyeBin string
	shared    *node
)

func TestMain(m *testing.M) {
	os.Exit(theeyetest.Main(m, adminKey, func(bin string, n *node) { theeyeBin, shared = bin, n }))
}

// node is one running theeye process (cmd/theeye/theeyetest).
type node = theeyetest.Node

// startNode starts a node for one test: it is killed when the test ends.
func startNode(t *testing.T, extra ...string) *node {
	t.Helper()
	n, err := theeyetest.StartNode(theeyeBin, t.TempDir(), adminKey, extra...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Kill9)
	return n
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
