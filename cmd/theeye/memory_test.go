package main

import (
	"log/slog"
	"math"
	"os"
	"runtime/debug"
	"strings"
	"testing"
)

func TestApplyMemoryLimit(t *testing.T) {
	if v, ok := os.LookupEnv("GOMEMLIMIT"); ok {
		t.Skipf("GOMEMLIMIT=%s is set in this environment", v)
	}
	prev := debug.SetMemoryLimit(-1)
	t.Cleanup(func() { debug.SetMemoryLimit(prev) })
	log := slog.New(slog.DiscardHandler)

	// The defaults: without cgo 64 MiB cache + 2 x 32 MiB memtables + 48
	// MiB log store + 64 MiB; with cgo (Pebble off the Go heap) 64 MiB.
	pebble := int64(0)
	if pebbleOnGoHeap {
		pebble = (64 + 64 + 48) << 20
	}
	cfg := DefaultConfig()
	if err := applyMemoryLimit(cfg, log); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != pebble+64<<20 || got != autoMemoryLimit(cfg) {
		t.Errorf("default limit %d MiB, want %d", got>>20, (pebble+64<<20)>>20)
	}

	cfg.CacheSize = 512 << 20
	if pebbleOnGoHeap {
		pebble += (512 - 64) << 20
	}
	if err := applyMemoryLimit(cfg, log); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != pebble+64<<20 {
		t.Errorf("limit with a 512 MiB cache: %d MiB", got>>20)
	}

	cfg.MemoryLimit = 300 << 20
	if err := applyMemoryLimit(cfg, log); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != 300<<20 {
		t.Errorf("--memory-limit 300 MiB gave %d MiB", got>>20)
	}

	debug.SetMemoryLimit(math.MaxInt64)
	cfg.MemoryLimit = -1
	if err := applyMemoryLimit(cfg, log); err != nil {
		t.Fatal(err)
	}
	if got := debug.SetMemoryLimit(-1); got != math.MaxInt64 {
		t.Errorf("--memory-limit -1 set a limit: %d", got)
	}

	cfg.MemoryLimit = 1 << 20
	if err := applyMemoryLimit(cfg, log); err == nil || !strings.Contains(err.Error(), "--memory-limit 1048576") {
		t.Errorf("a 1 MiB limit: %v", err)
	}
}
