package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// profileNodes profiles the nodes (those started with a pprof listener)
// during a workload's measured window, which starts at at and lasts d: a
// CPU profile over d (in whole seconds, at least 1) from every node at
// once, from at; then, when the returned func is called after the window,
// an allocation profile. They go to ProfileDir as
// <workload>-<variant>-<node>.cpu.pprof and .alloc.pprof. A failed fetch
// is a note, never an error. Without ProfileDir it does nothing.
func (s *Suite) profileNodes(ctx context.Context, nodes []*Node, workload, variant string, at time.Time, d time.Duration) (finish func()) {
	var ns []*Node
	for _, n := range nodes {
		if n.PProf != "" {
			ns = append(ns, n)
		}
	}
	if s.cfg.ProfileDir == "" || len(ns) == 0 {
		return func() {}
	}
	secs := max(1, int(d/time.Second))
	file := func(n *Node, kind string) string {
		return filepath.Join(s.cfg.ProfileDir, profileName(workload, variant, n.ID)+"."+kind+".pprof")
	}
	errs := make([]error, 2*len(ns)) // CPU, then alloc, per node
	var wg sync.WaitGroup
	for i, n := range ns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTimer(time.Until(at))
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
				errs[i] = fmt.Errorf("CPU profile of %s: %w", n.ID, ctx.Err())
				return
			}
			errs[i] = fetchProfile(ctx, n, fmt.Sprintf("/debug/pprof/profile?seconds=%d", secs),
				time.Duration(secs)*time.Second+30*time.Second, file(n, "cpu"))
		}()
	}
	return func() {
		wg.Wait() // the CPU profiles end with the window
		for i, n := range ns {
			wg.Add(1)
			go func() {
				defer wg.Done()
				errs[len(ns)+i] = fetchProfile(ctx, n, "/debug/pprof/allocs", 30*time.Second, file(n, "alloc"))
			}()
		}
		wg.Wait()
		for _, err := range errs {
			if err != nil {
				s.note("%s %s: node profile: %v", workload, variant, err)
			}
		}
	}
}

// profileName is a profile's file name without its extension: lower
// case, with spaces and '=' as '-'.
func profileName(workload, variant, node string) string {
	return strings.NewReplacer(" ", "-", "=", "-").Replace(strings.ToLower(workload + "-" + variant + "-" + node))
}

// fetchProfile GETs path from n's pprof listener within timeout and
// writes the body to file. It does not use the suite's client, whose
// response header timeout is shorter than a long CPU profile.
func fetchProfile(ctx context.Context, n *Node, path string, timeout time.Duration, file string) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+n.PProf+path, nil)
	if err != nil {
		return fmt.Errorf("profile %s of %s: %w", path, n.ID, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("profile %s of %s: %w", path, n.ID, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("profile %s of %s: %w", path, n.ID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("profile %s of %s: %s: %s", path, n.ID, resp.Status, bytes.TrimSpace(b[:min(len(b), 512)]))
	}
	if err := os.WriteFile(file, b, 0o644); err != nil {
		return fmt.Errorf("profile %s of %s: %w", path, n.ID, err)
	}
	return nil
}
