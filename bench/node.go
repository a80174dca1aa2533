package bench

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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
	"time"
)

// Procs tracks every process the suite started so that all of them are
// killed on exit, whatever happens (including Ctrl-C).
type Procs struct {
	mu    sync.Mutex
	procs map[int]*exec.Cmd
}

// NewProcs returns an empty registry.
func NewProcs() *Procs { return &Procs{procs: map[int]*exec.Cmd{}} }

func (p *Procs) add(c *exec.Cmd) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.procs[c.Process.Pid] = c
}

func (p *Procs) remove(c *exec.Cmd) {
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.procs, c.Process.Pid)
}

// KillAll sends SIGKILL to every process still registered, by pid.
func (p *Procs) KillAll() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for pid, c := range p.procs {
		_ = c.Process.Signal(syscall.SIGKILL)
		delete(p.procs, pid)
	}
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	b   []byte
	max int
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return string(t.b)
}

// FreePort returns a free TCP port on 127.0.0.1.
func FreePort() (int, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("free port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port, nil
}

// Node is one running theeye (or no-op) process on loopback.
type Node struct {
	ID       string
	DataDir  string
	URL      string // http://127.0.0.1:port
	PProf    string // 127.0.0.1:port of its --pprof listener, or ""
	args     []string
	bin      string
	procs    *Procs
	cmd      *exec.Cmd
	out      *tailBuffer
	done     chan struct{}
	AdminKey string
}

// NodeSpec says how to start a theeye node.
type NodeSpec struct {
	Bin        string
	ID         string
	DataDir    string
	AdminKey   string
	ClusterKey string
	Join       string // URL of a member, or "" to bootstrap
	PProf      bool   // serve net/http/pprof (--pprof) on a free loopback port
	Extra      []string
}

// StartNode starts `theeye serve` on fresh loopback ports and waits until
// /readyz answers 200 (at most timeout).
func StartNode(ctx context.Context, procs *Procs, spec NodeSpec, timeout time.Duration) (*Node, error) {
	hp, err := FreePort()
	if err != nil {
		return nil, err
	}
	rp, err := FreePort()
	if err != nil {
		return nil, err
	}
	args := []string{"serve", "--node-id", spec.ID, "--data-dir", spec.DataDir,
		"--http", fmt.Sprintf("127.0.0.1:%d", hp), "--raft", fmt.Sprintf("127.0.0.1:%d", rp),
		"--admin-key", spec.AdminKey, "--log-level", "info"}
	if spec.ClusterKey != "" {
		args = append(args, "--cluster-key", spec.ClusterKey)
	}
	if spec.Join != "" {
		args = append(args, "--join", spec.Join)
	}
	pprofAddr := ""
	if spec.PProf {
		pp, err := FreePort()
		if err != nil {
			return nil, err
		}
		pprofAddr = fmt.Sprintf("127.0.0.1:%d", pp)
		args = append(args, "--pprof", pprofAddr)
	}
	args = append(args, spec.Extra...)
	n := &Node{ID: spec.ID, DataDir: spec.DataDir, PProf: pprofAddr, args: args, bin: spec.Bin, procs: procs, AdminKey: spec.AdminKey}
	if _, err := n.Start(ctx, timeout); err != nil {
		return nil, err
	}
	return n, nil
}

// Start (re)starts the process with the same arguments and returns how
// long it took until /readyz answered 200.
func (n *Node) Start(ctx context.Context, timeout time.Duration) (time.Duration, error) {
	t0 := time.Now()
	n.cmd = exec.Command(n.bin, n.args...)
	n.out = &tailBuffer{max: 64 << 10}
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	n.cmd.SysProcAttr = sysProcAttr()
	if err := n.cmd.Start(); err != nil {
		return 0, fmt.Errorf("start %s: %w", n.ID, err)
	}
	n.procs.add(n.cmd)
	n.done = make(chan struct{})
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	if err := n.waitReady(ctx, timeout); err != nil {
		n.Kill()
		return 0, err
	}
	return time.Since(t0), nil
}

func (n *Node) waitReady(ctx context.Context, timeout time.Duration) error {
	listenRE := regexp.MustCompile(`msg="theeye listening" http=(\S+)`)
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		select {
		case <-n.done:
			return fmt.Errorf("node %s exited early: %s", n.ID, lastLines(n.out.String(), 20))
		case <-ctx.Done():
			return fmt.Errorf("node %s not ready: %w: %s", n.ID, ctx.Err(), lastLines(n.out.String(), 20))
		case <-tick.C:
		}
		if n.URL == "" {
			m := listenRE.FindStringSubmatch(n.out.String())
			if m == nil {
				continue
			}
			n.URL = "http://" + m[1]
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/readyz", nil)
		if err != nil {
			return fmt.Errorf("readyz request: %w", err)
		}
		resp, err := client.Do(req)
		if err != nil {
			continue
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return nil
		}
	}
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// Pid is the process id of the running process.
func (n *Node) Pid() int { return n.cmd.Process.Pid }

// Stop sends SIGTERM and waits up to timeout (then SIGKILL).
func (n *Node) Stop(timeout time.Duration) error {
	if n.cmd == nil || n.cmd.Process == nil {
		return nil
	}
	select {
	case <-n.done:
		n.procs.remove(n.cmd)
		return nil
	default:
	}
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		n.procs.remove(n.cmd)
		return nil
	case <-time.After(timeout):
		n.Kill()
		return fmt.Errorf("node %s did not stop within %s on SIGTERM", n.ID, timeout)
	}
}

// Kill sends SIGKILL and waits for the process to be gone.
func (n *Node) Kill() {
	if n.cmd == nil || n.cmd.Process == nil {
		return
	}
	select {
	case <-n.done:
	default:
		_ = n.cmd.Process.Signal(syscall.SIGKILL)
		<-n.done
	}
	n.procs.remove(n.cmd)
}

// PeakRSS is VmHWM of the process (bytes).
func (n *Node) PeakRSS() (int64, error) { return procStatusKB(n.Pid(), "VmHWM:") }

// procStatusKB reads a "kB" field of /proc/<pid>/status, in bytes.
func procStatusKB(pid int, field string) (int64, error) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, fmt.Errorf("read status of %d: %w", pid, err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), field); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("parse %s of %d: %w", field, pid, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("no %s in /proc/%d/status", field, pid)
}

// CPUTime is the user+system CPU time the process used so far.
func (n *Node) CPUTime() (time.Duration, error) { return procCPU(n.Pid()) }

func procCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("read stat of %d: %w", pid, err)
	}
	// Fields after the command name, which is in parentheses.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse stat of %d", pid)
	}
	f := strings.Fields(string(b[i+1:]))
	if len(f) < 13 {
		return 0, fmt.Errorf("parse stat of %d: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, fmt.Errorf("parse stat of %d: %w", pid, err)
	}
	const hz = 100 // USER_HZ on Linux
	return time.Duration(ut+st) * time.Second / hz, nil
}

// SelfStatus is GET /v1/cluster/self.
type SelfStatus struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	Leader     string `json:"leader"`
	AppliedSeq uint64 `json:"applied_seq"`
	IndexedSeq uint64 `json:"indexed_seq"`
}

// Self asks the node for its own status.
func (n *Node) Self(ctx context.Context, c *http.Client) (SelfStatus, error) {
	var st SelfStatus
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, n.URL+"/v1/cluster/self", nil)
	if err != nil {
		return st, fmt.Errorf("self %s: %w", n.ID, err)
	}
	req.Header.Set("Authorization", "Bearer "+n.AdminKey)
	resp, err := c.Do(req)
	if err != nil {
		return st, fmt.Errorf("self %s: %w", n.ID, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("self %s: %s", n.ID, resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&st); err != nil {
		return st, fmt.Errorf("self %s: %w", n.ID, err)
	}
	return st, nil
}

// WaitIndexed polls until the node has indexed at least seq.
func (n *Node) WaitIndexed(ctx context.Context, c *http.Client, seq uint64, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		st, err := n.Self(ctx, c)
		if err == nil && st.IndexedSeq >= seq {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("node %s to index seq %d (at %d): %w", n.ID, seq, st.IndexedSeq, ctx.Err())
		case <-tick.C:
		}
	}
}

// DiskUsage is the bytes under each part of a node's data dir.
type DiskUsage struct {
	Raft  int64 `json:"raft"`
	Log   int64 `json:"log"`
	Index int64 `json:"index"`
	Total int64 `json:"total"`
}

// Disk measures the node's data dir: raft/, log/, index/ and the total.
func (n *Node) Disk() (DiskUsage, error) {
	var u DiskUsage
	var err error
	if u.Raft, err = dirSize(filepath.Join(n.DataDir, "raft")); err != nil {
		return u, err
	}
	if u.Log, err = dirSize(filepath.Join(n.DataDir, "log")); err != nil {
		return u, err
	}
	if u.Index, err = dirSize(filepath.Join(n.DataDir, "index")); err != nil {
		return u, err
	}
	if u.Total, err = dirSize(n.DataDir); err != nil {
		return u, err
	}
	return u, nil
}

// dirSize sums the allocated bytes (st_blocks) of regular files under dir.
func dirSize(dir string) (int64, error) {
	var total int64
	err := filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil // removed while we walked (compaction)
		}
		total += allocatedBytes(info)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("size of %s: %w", dir, err)
	}
	return total, nil
}
