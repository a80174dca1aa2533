// Command eyebench is The Eye's benchmark suite: it builds theeye, starts
// real nodes (one, and a local cluster of three) on loopback in temporary
// directories, runs the workloads W1–W9 with their baselines measured in
// the same run (the no-op HTTP ceiling, the fsync ceiling, NATS JetStream
// R3 for W2 when bench/.tools/nats-server is there, the Go
// micro-benchmarks), kills every node, and writes
// bench/results/<date>-<commit>.{json,md,bench.txt} and PNG charts.
//
//	go run ./bench/cmd/eyebench -quick
//	go run ./bench/cmd/eyebench -workloads W1,W4 -events 2000000
//
// `eyebench noop --http ADDR --admin-key K` is the no-op server the suite
// starts as its HTTP ceiling.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/schollz/progressbar/v3"

	"github.com/theeye/theeye/bench"
	"github.com/theeye/theeye/cmd/theeye/theeyetest"
)

func main() {
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var err error
	if len(os.Args) > 1 && os.Args[1] == "noop" {
		err = runNoop(ctx, os.Args[2:], logger)
	} else {
		err = run(ctx, os.Args[1:], logger)
	}
	if err != nil {
		logger.Error("eyebench", "err", err)
		stop()
		os.Exit(1)
	}
}

func runNoop(ctx context.Context, args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("noop", flag.ContinueOnError)
	addr := fs.String("http", "127.0.0.1:0", "listen address")
	key := fs.String("admin-key", "", "admin key")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("noop: %w", err)
	}
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return fmt.Errorf("noop: %w", err)
	}
	return bench.ServeNoop(ctx, ln, *key, logger.Info)
}

func run(ctx context.Context, args []string, logger *slog.Logger) error {
	fs := flag.NewFlagSet("eyebench", flag.ContinueOnError)
	quick := fs.Bool("quick", false, "a short version of every workload (a sanity check, ~3 minutes)")
	workloads := fs.String("workloads", "", "comma-separated workloads to run (W1,…,W9; W8 is stats on the W4 store and stream latency on 3 nodes); empty: all")
	events := fs.Int64("events", 0, "W4 store size in events (default 10,000,000; 100,000 with -quick)")
	out := fs.String("out", "bench/results", "where results go")
	profile := fs.Bool("profile", false, "CPU and allocation profiles of the nodes per workload, of the load generator and of the micro-benchmarks")
	micro := fs.Bool("micro", true, "run the Go micro-benchmarks")
	timeout := fs.Duration("timeout", 0, "stop after this long (default 8m with -quick, 30m otherwise)")
	natsBin := fs.String("nats-server", "", "nats-server for W2's NATS JetStream baseline (default bench/.tools/nats-server, as make bench installs it; missing: skipped)")
	if err := fs.Parse(args); err != nil {
		return fmt.Errorf("flags: %w", err)
	}
	cfg := bench.DefaultConfig(*quick)
	if *events > 0 {
		cfg.Events = *events
	}
	cfg.Profile = *profile
	if *workloads != "" {
		cfg.Workloads = map[string]bool{}
		for _, w := range strings.Split(*workloads, ",") {
			cfg.Workloads[strings.ToUpper(strings.TrimSpace(w))] = true
		}
	}
	if *timeout == 0 {
		*timeout = 30 * time.Minute
		if *quick {
			*timeout = 8 * time.Minute
		}
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	began := time.Now()

	modDir, err := goEnv(ctx, "GOMOD")
	if err != nil {
		return err
	}
	modDir = filepath.Dir(modDir)
	commit := gitCommit(ctx, modDir)
	if err := os.MkdirAll(*out, 0o755); err != nil {
		return fmt.Errorf("results dir: %w", err)
	}
	prefix := filepath.Join(*out, began.UTC().Format("2006-01-02")+"-"+commit)
	if *quick {
		prefix += "-quick"
	}
	profDir := ""
	if cfg.Profile {
		profDir = prefix + "-profiles"
		if err := os.MkdirAll(profDir, 0o755); err != nil {
			return fmt.Errorf("profiles dir: %w", err)
		}
		f, err := os.Create(filepath.Join(profDir, "eyebench.cpu.pprof"))
		if err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("profile: %w", err)
		}
		defer func() {
			pprof.StopCPUProfile()
			f.Close()
			if af, err := os.Create(filepath.Join(profDir, "eyebench.alloc.pprof")); err == nil {
				_ = pprof.Lookup("allocs").WriteTo(af, 0)
				af.Close()
			}
		}()
	}

	tmp, err := os.MkdirTemp("", "eyebench-")
	if err != nil {
		return fmt.Errorf("temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	procs := theeyetest.NewProcs()
	defer procs.KillAll()

	res := &bench.Result{Machine: bench.DescribeMachine(), Commit: commit, Date: began.UTC(), Quick: cfg.Quick,
		Parameters: map[string]any{"events": cfg.Events, "clients": cfg.Clients, "w2_clients": cfg.W2Clients, "batch": cfg.BatchSize,
			"warmup_s": cfg.Warmup.Seconds(), "duration_s": cfg.Duration.Seconds(), "w3_rate": cfg.W3Rate, "w3_duration_s": cfg.W3Duration.Seconds(),
			"w4_duration_s": cfg.W4Duration.Seconds(), "w9_duration_s": cfg.W9Duration.Seconds(), "load_budget_s": cfg.LoadBudget.Seconds(), "workloads": *workloads, "timeout_s": timeout.Seconds()}}

	bar := progressbar.NewOptions(10, progressbar.OptionSetWriter(os.Stderr), progressbar.OptionSetWidth(20),
		progressbar.OptionShowElapsedTimeOnFinish(), progressbar.OptionSetPredictTime(false), progressbar.OptionFullWidth(),
		progressbar.OptionSetRenderBlankState(true), progressbar.OptionShowCount())
	step := 0
	progress := func(what string) {
		step++
		if step > bar.GetMax() {
			bar.ChangeMax(step)
		}
		bar.Describe(fmt.Sprintf("%-28s %5.0fs", what, time.Since(began).Seconds()))
		_ = bar.Set(step - 1)
	}

	progress("build theeye")
	cfg.Bin = filepath.Join(tmp, "theeye")
	benv, bargs := theeyetest.ReleaseBuild() // what make build makes
	build := exec.CommandContext(ctx, "go", append(bargs, "-o", cfg.Bin, "./cmd/theeye")...)
	build.Dir, build.Env = modDir, append(os.Environ(), benv...)
	if b, err := build.CombinedOutput(); err != nil {
		return fmt.Errorf("build theeye: %w: %s", err, b)
	}
	if cfg.NoopBin, err = os.Executable(); err != nil {
		return fmt.Errorf("own executable: %w", err)
	}
	cfg.TmpDir, cfg.Logger, cfg.Progress, cfg.ProfileDir = tmp, logger, progress, profDir
	if *natsBin == "" {
		*natsBin = filepath.Join(modDir, "bench", ".tools", "nats-server")
	}
	if _, err := os.Stat(*natsBin); err == nil {
		cfg.NatsBin = *natsBin
		if v, err := exec.CommandContext(ctx, *natsBin, "--version").Output(); err == nil {
			res.Parameters["nats_server"] = strings.TrimSpace(string(v))
		}
	}
	suite := bench.NewSuite(cfg, procs, res)
	runErr := suite.Run(ctx)
	procs.KillAll()

	if *micro && ctx.Err() == nil {
		progress("Go micro-benchmarks")
		mc := bench.MicroConfig{ModDir: modDir, Packages: []string{"./log", "./index", "./raftnode/logstore", "."}, Count: 6, Benchtime: "50ms", ProfileDir: profDir}
		if cfg.Quick {
			mc.Count, mc.Benchtime = 1, "20ms"
		}
		if profDir != "" {
			if mc.ProfileDir, err = filepath.Abs(profDir); err != nil {
				return fmt.Errorf("profiles dir: %w", err)
			}
		}
		var buf bytes.Buffer
		if err := bench.RunMicro(ctx, mc, &buf); err != nil {
			res.Notes = append(res.Notes, fmt.Sprintf("micro-benchmarks: %v", err))
		}
		if err := os.WriteFile(prefix+".bench.txt", buf.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write benchmarks: %w", err)
		}
		if res.Micro, err = bench.ParseMicro(&buf); err != nil {
			return err
		}
		res.Parameters["micro_count"], res.Parameters["micro_benchtime"] = mc.Count, mc.Benchtime
	}
	if cfg.Profile {
		res.Notes = append(res.Notes, "profiles: each node's CPU and allocations per measured workload (<workload>-<variant>-<node>.{cpu,alloc}.pprof), "+
			"the load generator's, and each micro-benchmark package's are in "+profDir+"; read one with go tool pprof -top <file>")
	}
	if runErr != nil && errors.Is(runErr, context.DeadlineExceeded) {
		res.Notes = append(res.Notes, fmt.Sprintf("the run hit its %s timeout", *timeout))
	}
	res.Machine.CPUPressureEnd = bench.CPUPressure()
	res.DurationS = time.Since(began).Seconds()
	res.Goals = bench.Goals(res)

	progress("charts and results")
	charts, err := bench.WriteCharts(res, prefix)
	if err != nil {
		res.Notes = append(res.Notes, fmt.Sprintf("charts: %v", err))
	}
	if err := res.WriteJSON(prefix + ".json"); err != nil {
		return err
	}
	md := res.Markdown()
	if len(charts) > 0 {
		md += "\nCharts: " + strings.Join(charts, ", ") + "\n"
	}
	if err := os.WriteFile(prefix+".md", []byte(md), 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	_ = bar.Finish()
	fmt.Fprintln(os.Stderr)
	fmt.Println(md)
	fmt.Printf("results: %s.json, %s.md\n", prefix, prefix)
	if runErr != nil {
		return fmt.Errorf("some workloads failed (see the notes): %w", runErr)
	}
	return nil
}

func goEnv(ctx context.Context, name string) (string, error) {
	b, err := exec.CommandContext(ctx, "go", "env", name).Output()
	if err != nil {
		return "", fmt.Errorf("go env %s: %w", name, err)
	}
	v := strings.TrimSpace(string(b))
	if v == "" || v == os.DevNull {
		return "", fmt.Errorf("go env %s: not in a module", name)
	}
	return v, nil
}

// gitCommit is the short commit, with -dirty when the tree has changes.
func gitCommit(ctx context.Context, dir string) string {
	cmd := exec.CommandContext(ctx, "git", "rev-parse", "--short", "HEAD")
	cmd.Dir = dir
	b, err := cmd.Output()
	if err != nil {
		return "unknown"
	}
	c := strings.TrimSpace(string(b))
	st := exec.CommandContext(ctx, "git", "status", "--porcelain", "--untracked-files=no")
	st.Dir = dir
	if b, err := st.Output(); err == nil && len(bytes.TrimSpace(b)) > 0 {
		c += "-dirty"
	}
	return c
}
