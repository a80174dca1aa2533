package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
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
)

// The end-to-end tests drive the real theeye binary, built once here, over
// HTTP on loopback.
var theeyeBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "theeye-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	theeyeBin = filepath.Join(dir, "theeye")
	build := exec.Command("go", "build", "-o", theeyeBin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "build theeye:", err)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

const testAdminKey = "eye_admin_test_key"

// proc is one running theeye process.
type proc struct {
	t        *testing.T
	dataDir  string
	args     []string
	httpP    int
	raftP    int
	raftHost string // default 127.0.0.1
	https    bool
	onListen func(*proc) // called once the ports are known
	cmd      *exec.Cmd
	out      *syncBuffer
	done     chan struct{}
	URL      string
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

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// startNode starts theeye on fresh loopback ports with dataDir and waits
// until it is ready.
func startNode(t *testing.T, dataDir string, extra ...string) *proc {
	t.Helper()
	p := &proc{t: t, dataDir: dataDir, args: extra}
	p.start()
	t.Cleanup(func() { p.kill9() })
	return p
}

func (p *proc) start() {
	t := p.t
	t.Helper()
	p.startNoWait()
	p.waitReady()
}

func (p *proc) startNoWait() {
	t := p.t
	t.Helper()
	host := p.raftHost
	if host == "" {
		host = "127.0.0.1"
	}
	// Port 0 on the first start: the kernel picks free ports (picking them
	// here and passing them on races with other test processes); a restart
	// reuses the ports the first start reported.
	args := append([]string{"serve",
		"--data-dir", p.dataDir,
		"--http", fmt.Sprintf("127.0.0.1:%d", p.httpP),
		"--raft", fmt.Sprintf("%s:%d", host, p.raftP),
		"--admin-key", testAdminKey,
	}, p.args...)
	p.cmd = exec.Command(theeyeBin, args...)
	p.out = &syncBuffer{}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start theeye: %v", err)
	}
	p.done = make(chan struct{})
	go func() { p.cmd.Wait(); close(p.done) }()
}

func (p *proc) waitReady() {
	t := p.t
	t.Helper()
	re := regexp.MustCompile(`msg="theeye listening" http=(\S+) raft=\S+ raft_listen=\S+:(\d+)`)
	waitFor(t, 60*time.Second, "theeye to listen", func() error {
		select {
		case <-p.done:
			t.Fatalf("theeye exited early:\n%s", p.out.String())
		default:
		}
		m := re.FindStringSubmatch(p.out.String())
		if m == nil {
			return fmt.Errorf("no listening line yet")
		}
		p.URL = "http://" + m[1]
		_, port, _ := net.SplitHostPort(m[1])
		p.httpP, _ = strconv.Atoi(port)
		p.raftP, _ = strconv.Atoi(m[2])
		if p.onListen != nil {
			p.onListen(p)
		}
		if p.https {
			p.URL = "https://" + m[1]
		}
		return nil
	})
	waitFor(t, 60*time.Second, "theeye to be ready", func() error {
		resp, err := http.Get(p.URL + "/readyz")
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
func (p *proc) kill9() {
	if p.cmd == nil || p.cmd.Process == nil {
		return
	}
	select {
	case <-p.done:
		return
	default:
	}
	p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.done
}

// stop sends SIGTERM and waits for a clean exit.
func (p *proc) stop() {
	p.t.Helper()
	p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.t.Fatalf("theeye did not stop on SIGTERM:\n%s", p.out.String())
	}
	if code := p.cmd.ProcessState.ExitCode(); code != 0 {
		p.t.Fatalf("theeye exited with %d after SIGTERM:\n%s", code, p.out.String())
	}
}

// restart starts the process again on the same ports and data dir.
func (p *proc) restart() {
	p.t.Helper()
	p.start()
}

// alive reports whether the process is running.
func (p *proc) alive() bool {
	select {
	case <-p.done:
		return false
	default:
		return true
	}
}

// waitFor polls fn until it returns nil or the deadline passes.
func waitFor(t *testing.T, timeout time.Duration, what string, fn func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	var err error
	for {
		if err = fn(); err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", timeout, what, err)
		}
		<-tick.C
	}
}

// do sends a request and returns the status and body.
func do(t *testing.T, method, url, key, contentType string, body []byte, hdr ...string) (int, []byte, http.Header) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, url, err)
	}
	return resp.StatusCode, b, resp.Header
}

func mustJSON(t *testing.T, b []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
}

// createApp creates an app and returns its ingest key.
func (p *proc) createApp(name string) string {
	p.t.Helper()
	st, b, _ := do(p.t, "POST", p.URL+"/v1/apps", testAdminKey, "application/json", []byte(`{"name":"`+name+`"}`))
	if st != 201 {
		p.t.Fatalf("create app: %d %s", st, b)
	}
	var resp struct {
		Key struct {
			Secret string `json:"secret"`
		} `json:"key"`
	}
	mustJSON(p.t, b, &resp)
	return resp.Key.Secret
}

type ack struct {
	Accepted int    `json:"accepted"`
	Seq      uint64 `json:"seq"`
}

// post sends events and requires a 202.
func (p *proc) post(key, contentType string, body []byte) ack {
	p.t.Helper()
	st, b, _ := do(p.t, "POST", p.URL+"/v1/events", key, contentType, body)
	if st != 202 {
		p.t.Fatalf("POST /v1/events: %d %s", st, b)
	}
	var a ack
	mustJSON(p.t, b, &a)
	return a
}

type event struct {
	Seq        uint64          `json:"seq"`
	ID         string          `json:"id"`
	App        string          `json:"app"`
	SessionID  string          `json:"session_id"`
	Category   string          `json:"category"`
	Name       string          `json:"name"`
	Data       json.RawMessage `json:"data"`
	Timestamp  string          `json:"timestamp"`
	ReceivedAt string          `json:"received_at"`
}

type page struct {
	Events     []event `json:"events"`
	NextCursor *string `json:"next_cursor"`
}

// get queries a list route with the admin key and requires a 200.
func (p *proc) get(path string) page {
	p.t.Helper()
	st, b, _ := do(p.t, "GET", p.URL+path, testAdminKey, "", nil)
	if st != 200 {
		p.t.Fatalf("GET %s: %d %s", path, st, b)
	}
	var pg page
	mustJSON(p.t, b, &pg)
	return pg
}

// exportAll streams every event of a query as NDJSON.
func (p *proc) exportAll(path string) []event {
	p.t.Helper()
	st, b, h := do(p.t, "GET", p.URL+path, testAdminKey, "", nil, "Accept", "application/x-ndjson")
	if st != 200 {
		p.t.Fatalf("GET %s (ndjson): %d %s", path, st, b)
	}
	if ct := h.Get("Content-Type"); !strings.HasPrefix(ct, "application/x-ndjson") {
		p.t.Fatalf("content type %q", ct)
	}
	var out []event
	sc := bufio.NewScanner(bytes.NewReader(b))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var e event
		mustJSON(p.t, sc.Bytes(), &e)
		out = append(out, e)
	}
	return out
}
