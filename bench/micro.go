package bench

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// MicroConfig says how to run the Go micro-benchmarks.
type MicroConfig struct {
	ModDir    string   // module root
	Packages  []string // e.g. ./log
	Count     int
	Benchtime string
	// ProfileDir, when set, gets a CPU and an allocation profile per package.
	ProfileDir string
}

// RunMicro runs `go test -run=NONE -bench=. -benchmem` on each package
// and writes the raw output (benchstat's input) to out.
func RunMicro(ctx context.Context, cfg MicroConfig, out io.Writer) error {
	for _, pkg := range cfg.Packages {
		args := []string{"test", "-run=NONE", "-bench=.", "-benchmem", "-count=" + strconv.Itoa(cfg.Count), "-benchtime=" + cfg.Benchtime, "-timeout=15m"}
		if cfg.ProfileDir != "" {
			base := strings.Trim(strings.ReplaceAll(filepath.Clean(pkg), "/", "_"), "._")
			if base == "" {
				base = "root"
			}
			args = append(args, "-cpuprofile="+filepath.Join(cfg.ProfileDir, base+".cpu.pprof"),
				"-memprofile="+filepath.Join(cfg.ProfileDir, base+".alloc.pprof"), "-o="+filepath.Join(cfg.ProfileDir, base+".test"))
		}
		args = append(args, pkg)
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = cfg.ModDir
		cmd.Stdout, cmd.Stderr = out, os.Stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("go test -bench %s: %w", pkg, err)
		}
	}
	return nil
}

// ParseMicro reads `go test -bench` output and returns, per benchmark, the
// median of each metric over its runs, in the order they first appear.
func ParseMicro(r io.Reader) ([]Micro, error) {
	type acc struct {
		m       *Micro
		samples map[string][]float64
	}
	var order []string
	byName := map[string]*acc{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimPrefix(strings.TrimSpace(p), "github.com/theeye/theeye")
			if pkg == "" {
				pkg = "theeye"
			} else {
				pkg = strings.TrimPrefix(pkg, "/")
			}
			continue
		}
		if !strings.HasPrefix(line, "Benchmark") {
			continue
		}
		f := strings.Fields(line)
		if len(f) < 4 || (len(f)-2)%2 != 0 {
			continue
		}
		if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
			continue
		}
		name := f[0]
		if i := strings.LastIndexByte(name, '-'); i > 0 {
			if _, err := strconv.Atoi(name[i+1:]); err == nil {
				name = name[:i]
			}
		}
		key := pkg + " " + name
		a, ok := byName[key]
		if !ok {
			a = &acc{m: &Micro{Name: name, Package: pkg, Metrics: map[string]float64{}}, samples: map[string][]float64{}}
			byName[key] = a
			order = append(order, key)
		}
		a.m.Runs++
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				continue
			}
			a.samples[f[i+1]] = append(a.samples[f[i+1]], v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmarks: %w", err)
	}
	out := make([]Micro, 0, len(order))
	for _, k := range order {
		a := byName[k]
		for unit, vs := range a.samples {
			sort.Float64s(vs)
			med := vs[len(vs)/2]
			if len(vs)%2 == 0 {
				med = (vs[len(vs)/2-1] + vs[len(vs)/2]) / 2
			}
			a.m.Metrics[unit] = med
		}
		out = append(out, *a.m)
	}
	return out, nil
}
