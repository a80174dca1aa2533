package index

import (
	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"

	"github.com/theeye/theeye"
)

// pebbleOptions returns the options of CALIBRATION.md section 3 (64 MiB
// memtables by default, L0 thresholds 4/24, one or two compactions, bloom filters: the
// indexer does a point Get per client id and the query side a prefix seek per
// pointer it follows), MinLZ with larger blocks at the bottom, an explicit quiet logger.
func pebbleOptions(cfg *Config, cache *pebble.Cache) *pebble.Options {
	opts := &pebble.Options{
		Cache:        cache,
		MemTableSize: uint64(cfg.MemTableSize),
		// Two memtables at most (the mutable one and one being flushed),
		// as the cache size and the server's memory limit count them:
		// past that the indexer waits for the flush and only index lag
		// grows. With 4, a bulk load could hold 128 MiB of memtables,
		// above the budget (W7 at 10M events: 276 MiB).
		MemTableStopWritesThreshold: 2,
		// Let L0 gather 16 sstables before compacting it into Lbase, and
		// make Lbase 512 MiB: the indexer's keys are spread over the whole
		// key space (sessions, categories, times), so every L0→Lbase
		// compaction rewrites most of Lbase; fewer, larger ones rewrite
		// less per event. Measured in DESIGN.md ("Compaction").
		L0CompactionThreshold:      16,
		L0StopWritesThreshold:      48,
		LBaseMaxBytes:              512 << 20,
		CompactionConcurrencyRange: func() (int, int) { return 1, 2 },
		FormatMajorVersion:         pebble.FormatNewest,
		// No WAL: the log is the source of truth and the cursor is in the
		// same batch as the keys it covers, so a crash loses a suffix of
		// whole batches and the indexer indexes them again. What must
		// survive a crash goes through Index.durable (DESIGN.md "No WAL").
		DisableWAL: true,
		Logger:     theeye.PrintfLogger{L: cfg.Logger},
		FS:         cfg.FS,
	}
	opts.Levels[0].FilterPolicy = bloom.FilterPolicy(10)
	// MinLZ on every level, with 16 KiB blocks on the two bottom ones,
	// where most of a long-lived store sits. Not zstd: without cgo Pebble
	// builds a zstd decoder for every block it reads and an encoder for
	// every block it writes. Measured in DESIGN.md ("Compression").
	opts.ApplyCompressionSettings(func() pebble.DBCompressionSettings { return pebble.DBCompressionFastest })
	for i := len(opts.Levels) - 2; i < len(opts.Levels); i++ {
		opts.Levels[i].BlockSize = bottomBlockSize
	}
	return opts
}

// bottomBlockSize is the data block size of the two bottom levels.
const bottomBlockSize = 16 << 10
