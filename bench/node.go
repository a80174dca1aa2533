package bench

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/theeye/theeye/cmd/theeye/theeyetest"
)

// Node is one running theeye (or no-op) process on loopback, run by
// theeyetest (starting, stopping, the listening line), with what the suite
// measures of it.
type Node struct {
	*theeyetest.Node
	ID    string
	PProf string // 127.0.0.1:port of its --pprof listener, or ""
}

// outTail is how much of a node's output the suite keeps: the end, for
// the errors of a node that failed.
const outTail = 64 << 10

// newNode names tn id, keeps the tail of its output and registers its
// processes in procs.
func newNode(procs *theeyetest.Procs, id, pprof string, tn *theeyetest.Node) *Node {
	tn.Name, tn.OutTail, tn.Procs = "node "+id, outTail, procs
	return &Node{Node: tn, ID: id, PProf: pprof}
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

// StartNode starts `theeye serve` on loopback ports the kernel picks and
// waits until /readyz answers 200 (at most timeout).
func StartNode(ctx context.Context, procs *theeyetest.Procs, spec NodeSpec, timeout time.Duration) (*Node, error) {
	extra := []string{"--node-id", spec.ID, "--log-level", "info"}
	if spec.ClusterKey != "" {
		extra = append(extra, "--cluster-key", spec.ClusterKey)
	}
	if spec.Join != "" {
		extra = append(extra, "--join", spec.Join)
	}
	pprofAddr := ""
	if spec.PProf {
		pp, err := theeyetest.ClosedPort()
		if err != nil {
			return nil, err
		}
		pprofAddr = fmt.Sprintf("127.0.0.1:%d", pp)
		extra = append(extra, "--pprof", pprofAddr)
	}
	n := newNode(procs, spec.ID, pprofAddr, &theeyetest.Node{Bin: spec.Bin, DataDir: spec.DataDir, AdminKey: spec.AdminKey,
		Extra: append(extra, spec.Extra...)})
	if err := n.StartContext(ctx, timeout); err != nil {
		return nil, err
	}
	return n, nil
}

// Pid is the process id of the running process.
func (n *Node) Pid() int { return n.Cmd.Process.Pid }

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

// SelfStatus is GET /v1/cluster/self.
type SelfStatus struct {
	ID         string `json:"id"`
	State      string `json:"state"`
	Leader     string `json:"leader"`
	AppliedSeq uint64 `json:"applied_seq"`
	IndexedSeq uint64 `json:"indexed_seq"`
	// Ready is the node's /readyz verdict; the leader counts a follower's
	// index lag only while it is ready.
	Ready    bool   `json:"ready"`
	NotReady string `json:"not_ready,omitempty"`
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
	err := theeyetest.PollContext(ctx, timeout, func() error {
		st, err := n.Self(ctx, c)
		if err != nil {
			return err
		}
		if st.IndexedSeq < seq {
			return fmt.Errorf("at %d", st.IndexedSeq)
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("node %s to index seq %d: %w", n.ID, seq, err)
	}
	return nil
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
