package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"

	"github.com/theeye/theeye/index"
	"github.com/theeye/theeye/raftnode/logstore"
)

// goHeapBudget is what the node needs on the Go heap besides Pebble's
// caches and memtables: the Raft log cache, requests in flight,
// group-commit and indexer buffers, the runtime.
const goHeapBudget = 64 << 20

// autoMemoryLimit is the default Go memory limit. A cgo build (the
// release build where a C compiler is at hand) keeps Pebble's memory off
// the Go heap: the limit is then goHeapBudget. A build without cgo
// allocates Pebble's caches and memtables on the Go heap, where the default
// GOGC=100 lets the heap grow to twice what is live before collecting: the
// limit then adds the index's block cache and two memtables and the Raft
// log store's, so that the collector runs before the process passes its
// budget.
func autoMemoryLimit(cfg Config) int64 {
	if !pebbleOnGoHeap {
		return goHeapBudget
	}
	return cfg.CacheSize + 2*index.DefaultMemTableSize + logstore.DefaultMemory + goHeapBudget
}

// applyMemoryLimit sets the Go soft memory limit: --memory-limit when
// given (negative: none), else GOMEMLIMIT when the environment sets it,
// else autoMemoryLimit.
func applyMemoryLimit(cfg Config, log *slog.Logger) error {
	limit := cfg.MemoryLimit
	switch {
	case limit < 0:
		log.Info("no Go memory limit (--memory-limit < 0)")
		return nil
	case limit == 0 && os.Getenv("GOMEMLIMIT") != "":
		log.Info("Go memory limit from GOMEMLIMIT", "bytes", debug.SetMemoryLimit(-1))
		return nil
	case limit == 0:
		limit = autoMemoryLimit(cfg)
	case limit < 64<<20:
		return fmt.Errorf("--memory-limit %d: below the 64 MiB a node needs", limit)
	}
	debug.SetMemoryLimit(limit)
	log.Info("Go memory limit", "bytes", limit, "mib", limit>>20)
	return nil
}
