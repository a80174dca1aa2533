package logstore

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/hashicorp/raft"

	"github.com/theeye/theeye"
)

// ErrKeyNotFound is returned by Store.Get and Store.GetUint64 for a
// missing key. hashicorp/raft compares err.Error() with "not found" (see
// raft.NewRaft, raft.HasExistingState and requestVote), so the text must stay
// exactly "not found" and the error is returned unwrapped.
var ErrKeyNotFound = errors.New("not found")

// ErrClosed is returned by Store methods called after Close.
var ErrClosed = errors.New("logstore: closed")

const (
	defaultCacheSize = 16 << 20

	// DefaultMemory is what a Store opened with the default cache
	// (Config.CacheSize 0) holds in memory at most: its block cache and two
	// memtables (the mutable one and one being flushed). The server adds it
	// to its memory budget.
	DefaultMemory = defaultCacheSize + 2*memTableSize

	// memTableSize: the log is written sequentially and truncated
	// from the front once a snapshot has been taken. Entries truncated while
	// still in the memtable are dropped by the flush and never reach an
	// sstable, so a memtable that holds a few snapshot intervals' worth of
	// small entries saves flush and compaction work. The price is disk: a WAL
	// file is kept until its memtable is flushed and Pebble recycles up to
	// MemTableStopWritesThreshold+1 WAL files, so the WAL occupies up to
	// ~4 x 16 MiB whatever the log size. 16 MiB (was 32, measured 100-131 MB
	// of WAL) keeps the store inside the node's memory budget (DefaultMemory).
	memTableSize = 16 << 20

	// batchRetainBytes: batch buffers up to this size go back to
	// Pebble's batch pool for reuse (Pebble's default is 1 MiB, so a
	// 64 x 30 KB StoreLogs allocated a fresh 2 MB buffer every call).
	batchRetainBytes = 8 << 20
)

// Config configures Open.
type Config struct {
	// Dir is the directory of the Pebble instance. It must not be shared
	// with any other Pebble instance (in particular not with the index DB).
	Dir string
	// Logger receives the store's and Pebble's messages. nil discards them.
	Logger *slog.Logger
	// CacheSize is the Pebble block cache size in bytes; 0 means 16 MiB.
	CacheSize int64
	// FS is the file system Pebble works on; nil is the OS's (the server
	// passes log.NoReuseFS, so that no WAL file is written over in place).
	FS vfs.FS
}

// Store is a raft.LogStore and raft.StableStore on its own Pebble instance.
//
// Every StoreLogs, DeleteRange, Set and SetUint64 is one Pebble batch
// committed with pebble.Sync: when the call returns, the write is on disk.
// FirstIndex and LastIndex are served from memory. StoreLogs and DeleteRange
// are serialized with each other (raft calls StoreLogs from a single
// goroutine, and DeleteRange from the snapshot goroutine); reads run
// concurrently with everything.
//
// Close must be called after raft has shut down; calls made after Close
// return ErrClosed.
type Store struct {
	db     *pebble.DB
	logger *slog.Logger

	// bounds mirrors the smallest and largest log index present in Pebble
	// ({0, 0} when there is none). It is replaced (never modified) with mu
	// held, after the batch that changes the keys has been committed, so a
	// reader always sees a pair that existed.
	bounds atomic.Pointer[logBounds]

	// mu serializes the mutations of log keys (StoreLogs, DeleteRange) and
	// Close, so bounds always describes the committed keys.
	mu     sync.Mutex
	closed atomic.Bool

	// Background compaction of deleted spans (see DeleteRange). The pending
	// span [pendingLo, pendingHi] is the union of the spans deleted since the
	// last compaction (empty when pendingHi < pendingLo) and pendingBytes
	// Pebble's estimate of the sstable bytes they covered; all three are
	// guarded by compactMu. compactKick wakes the compactor.
	compactMu      sync.Mutex
	pendingLo      uint64
	pendingHi      uint64
	pendingBytes   uint64
	compactMin     uint64 // bytes; 0 disables background compaction
	compactKick    chan struct{}
	compactCancel  context.CancelFunc
	compactDone    chan struct{}
	compactionsRun atomic.Uint64 // compactions done, for tests and measurements
	compactNanos   atomic.Uint64 // time spent in them
}

// logBounds is an immutable (first, last) pair.
type logBounds struct{ first, last uint64 }

var (
	_ raft.LogStore    = (*Store)(nil)
	_ raft.StableStore = (*Store)(nil)
)

// Open opens (creating it if needed) the Pebble instance in cfg.Dir.
func Open(cfg Config) (*Store, error) {
	if cfg.Dir == "" {
		return nil, errors.New("logstore: open: empty Dir")
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	logger = logger.With("component", "raft-logstore")
	cacheSize := cfg.CacheSize
	if cacheSize <= 0 {
		cacheSize = defaultCacheSize
	}

	cache := pebble.NewCache(cacheSize)
	defer cache.Unref() // the DB holds its own reference
	opts := &pebble.Options{
		Cache:                       cache,
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      pebbleLogger(logger),
		MemTableSize:                memTableSize,
		MemTableStopWritesThreshold: 2,
		L0CompactionThreshold:       4,
		L0StopWritesThreshold:       24,
		DisableWAL:                  false,
		DisableAutomaticCompactions: false,
		FS:                          cfg.FS,
		EventListener: &pebble.EventListener{
			// A stall here stalls every Raft append, so make it visible.
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				logger.Warn("pebble write stall", "reason", info.Reason)
			},
			WriteStallEnd: func() { logger.Info("pebble write stall ended") },
			BackgroundError: func(err error) {
				logger.Error("pebble background error", "err", err)
			},
		},
	}
	db, err := pebble.Open(cfg.Dir, opts)
	if err != nil {
		return nil, fmt.Errorf("logstore: open %q: %w", cfg.Dir, err)
	}
	s := &Store{
		db:          db,
		logger:      logger,
		compactMin:  compactMinBytes,
		compactKick: make(chan struct{}, 1),
		compactDone: make(chan struct{}),
		pendingLo:   1,
		pendingHi:   0,
	}
	first, last, err := s.scanBounds()
	if err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("logstore: open %q: %w", cfg.Dir, err)
	}
	s.bounds.Store(&logBounds{first, last})

	ctx, cancel := context.WithCancel(context.Background())
	s.compactCancel = cancel
	go s.compactLoop(ctx)

	logger.Debug("log store opened", "dir", cfg.Dir, "first_index", first, "last_index", last)
	return s, nil
}

// Close stops the background compactor and closes Pebble. It is safe to call
// more than once.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Swap(true) {
		return nil
	}
	s.compactCancel()
	<-s.compactDone
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("logstore: close: %w", err)
	}
	return nil
}

// FirstIndex returns the first index written, 0 for no entries.
func (s *Store) FirstIndex() (uint64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	return s.bounds.Load().first, nil
}

// LastIndex returns the last index written, 0 for no entries.
func (s *Store) LastIndex() (uint64, error) {
	if s.closed.Load() {
		return 0, ErrClosed
	}
	return s.bounds.Load().last, nil
}

// GetLog reads the entry at index into log. A missing entry returns
// raft.ErrLogNotFound unwrapped: raft compares it with ==.
func (s *Store) GetLog(index uint64, log *raft.Log) error {
	if s.closed.Load() {
		return ErrClosed
	}
	var kb [logKeyLen]byte
	val, closer, err := s.db.Get(putLogKey(kb[:], index))
	if errors.Is(err, pebble.ErrNotFound) {
		return raft.ErrLogNotFound
	}
	if err != nil {
		return fmt.Errorf("logstore: get log %d: %w", index, err)
	}
	err = decodeLog(val, log)
	if cerr := closer.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("logstore: get log %d: %w", index, err)
	}
	if log.Index != index {
		return fmt.Errorf("logstore: get log %d: entry holds index %d: %w", index, log.Index, errCorruptLog)
	}
	return nil
}

// StoreLog stores one entry.
func (s *Store) StoreLog(log *raft.Log) error {
	return s.StoreLogs([]*raft.Log{log})
}

// StoreLogs stores entries in one batch committed with pebble.Sync: this
// fsync is the durability point of the system. Gaps with previously stored
// entries are allowed (raft relies on that after installing a snapshot).
func (s *Store) StoreLogs(logs []*raft.Log) error {
	if len(logs) == 0 {
		return nil
	}
	size := 0
	minIdx, maxIdx := uint64(math.MaxUint64), uint64(0)
	for i, l := range logs {
		if l == nil {
			return fmt.Errorf("logstore: store logs: entry %d is nil", i)
		}
		if l.Index == 0 {
			// raft never stores index 0, and 0 means "no entries" for
			// FirstIndex/LastIndex.
			return fmt.Errorf("logstore: store logs: entry %d has index 0", i)
		}
		size += logKeyLen + encodedLogLen(l) + 16 // + batch record overhead
		minIdx = min(minIdx, l.Index)
		maxIdx = max(maxIdx, l.Index)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	b := s.db.NewBatchWithSize(size, pebble.WithMaxRetainedSizeBytes(batchRetainBytes))
	defer b.Close()
	for _, l := range logs {
		op := b.SetDeferred(logKeyLen, encodedLogLen(l))
		putLogKey(op.Key, l.Index)
		encodeLog(op.Value, l)
		if err := op.Finish(); err != nil {
			return fmt.Errorf("logstore: store logs %d-%d: %w", minIdx, maxIdx, err)
		}
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("logstore: store logs %d-%d: commit: %w", minIdx, maxIdx, err)
	}
	bo := s.bounds.Load()
	bn := logBounds{first: bo.first, last: max(bo.last, maxIdx)}
	if bn.first == 0 || minIdx < bn.first {
		bn.first = minIdx
	}
	if bn != *bo {
		s.bounds.Store(&bn)
	}
	return nil
}

// DeleteRange deletes the entries with min <= index <= max, as one range
// tombstone committed with pebble.Sync. raft uses it for prefix truncation
// after a snapshot and for suffix deletion on a conflict; any range works.
//
// Space. The tombstone alone does not give the disk space back promptly:
// entries still in the memtable are dropped when it is flushed, but sstables
// under the tombstone wait for Pebble's compactions to reach them, which on
// an append-only log they do late and on an idle log never. Measured (30 KB
// entries in batches of 64, a prefix truncation every 2048 entries keeping
// 1024, 600 MB written, live log ~79 MB): without manual compaction the
// sstables held 224 MB (~280 MB of range-deleted garbage) and stayed there
// when idle; compacting the deleted span after each truncation brought them
// to 60 MB, with the same write throughput (~100 MB/s) and total compaction
// bytes (416 vs 409 MB), each compaction taking ~0.85 s in the background on
// a loaded 2-core box. With 300-byte entries the truncated entries never
// left the memtable, so there was nothing to compact.
//
// So DeleteRange adds the estimated sstable bytes under the deleted span to a
// pending total; when that reaches compactMinBytes (16 MiB) a
// background goroutine runs DB.Compact over the union of the pending spans.
// The caller never waits for it; Close waits for a running one to finish.
func (s *Store) DeleteRange(minIdx, maxIdx uint64) error {
	if minIdx > maxIdx {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return ErrClosed
	}
	var lo, hi [logKeyLen]byte
	start := putLogKey(lo[:], minIdx)
	end := logRangeEnd(hi[:], maxIdx)
	b := s.db.NewBatch()
	defer b.Close()
	if err := b.DeleteRange(start, end, nil); err != nil {
		return fmt.Errorf("logstore: delete logs %d-%d: %w", minIdx, maxIdx, err)
	}
	if err := b.Commit(pebble.Sync); err != nil {
		return fmt.Errorf("logstore: delete logs %d-%d: commit: %w", minIdx, maxIdx, err)
	}

	bo := s.bounds.Load()
	if bo.first == 0 || maxIdx < bo.first || minIdx > bo.last {
		return nil // nothing was stored in the range
	}
	bn := *bo
	switch {
	case minIdx <= bo.first && maxIdx >= bo.last: // everything
		bn = logBounds{}
	case minIdx <= bo.first: // prefix: the new first is the next key after the range
		nf, err := s.firstLogFrom(end)
		if err != nil {
			return fmt.Errorf("logstore: delete logs %d-%d: %w", minIdx, maxIdx, err)
		}
		bn.first = nf // exists: last > maxIdx is stored
	case maxIdx >= bo.last: // suffix: the new last is the key before the range
		nl, err := s.lastLogBelow(start)
		if err != nil {
			return fmt.Errorf("logstore: delete logs %d-%d: %w", minIdx, maxIdx, err)
		}
		bn.last = nl // exists: first < minIdx is stored
	}
	s.bounds.Store(&bn)
	s.noteDeleted(start, end, minIdx, maxIdx)
	return nil
}

// Purge makes the entries DeleteRange deleted leave every file of the
// store: it compacts the whole log keyspace down to the bottom level (the
// deleted entries and their tombstones are dropped) and turns the WAL over
// until no WAL file that held them is left. With Config.FS a NoReuseFS, a
// retired WAL file is removed rather than written over. An erasure of a
// session calls it once Raft's log is truncated past the session's events.
func (s *Store) Purge(ctx context.Context) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.db.Compact(ctx, []byte{0}, []byte{0xff, 0xff}, false); err != nil {
		return fmt.Errorf("logstore: purge: compact: %w", err)
	}
	for i := range walTurnovers {
		if err := s.SetUint64([]byte(purgeKey), uint64(i)); err != nil {
			return fmt.Errorf("logstore: purge: %w", err)
		}
		if err := s.db.Flush(); err != nil {
			return fmt.Errorf("logstore: purge: flush: %w", err)
		}
	}
	return nil
}

// walTurnovers is one more than the retired WAL files Pebble keeps
// (MemTableStopWritesThreshold+1), plus the current one.
const walTurnovers = 5

// purgeKey is the stable-store key Purge writes to have something to
// flush.
const purgeKey = "TheEyePurge"

// Set stores a stable-store key, synced.
func (s *Store) Set(key []byte, val []byte) error {
	if s.closed.Load() {
		return ErrClosed
	}
	if err := s.db.Set(stableKey(key), val, pebble.Sync); err != nil {
		return fmt.Errorf("logstore: stable set %q: %w", key, err)
	}
	return nil
}

// Get returns a copy of the value of a stable-store key, or ErrKeyNotFound
// (text "not found", unwrapped) if the key is missing.
func (s *Store) Get(key []byte) ([]byte, error) {
	if s.closed.Load() {
		return nil, ErrClosed
	}
	val, closer, err := s.db.Get(stableKey(key))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, ErrKeyNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("logstore: stable get %q: %w", key, err)
	}
	out := make([]byte, len(val))
	copy(out, val)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("logstore: stable get %q: %w", key, err)
	}
	return out, nil
}

// SetUint64 stores val as 8 big-endian bytes under key, synced.
func (s *Store) SetUint64(key []byte, val uint64) error {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], val)
	return s.Set(key, b[:])
}

// GetUint64 returns the value stored by SetUint64, or (0, ErrKeyNotFound)
// if the key is missing (raft-boltdb behaves the same; raft accepts it).
func (s *Store) GetUint64(key []byte) (uint64, error) {
	val, err := s.Get(key)
	if err != nil {
		return 0, err
	}
	if len(val) != 8 {
		return 0, fmt.Errorf("logstore: stable get uint64 %q: value has %d bytes, want 8: %w", key, len(val), errCorruptLog)
	}
	return binary.BigEndian.Uint64(val), nil
}

// scanBounds reads the first and last log index from Pebble.
func (s *Store) scanBounds() (first, last uint64, err error) {
	var lo, hi [logKeyLen]byte
	first, err = s.firstLogFrom(putLogKey(lo[:], 0))
	if err != nil || first == 0 {
		return 0, 0, err
	}
	last, err = s.lastLogBelow(logRangeEnd(hi[:], math.MaxUint64))
	if err != nil {
		return 0, 0, err
	}
	return first, last, nil
}

// firstLogFrom returns the smallest stored index whose key is >= start, 0 if
// there is none.
func (s *Store) firstLogFrom(start []byte) (uint64, error) {
	var hi [logKeyLen]byte
	return s.boundLog(&pebble.IterOptions{LowerBound: start, UpperBound: logRangeEnd(hi[:], math.MaxUint64)}, true)
}

// lastLogBelow returns the largest stored index whose key is < end, 0 if
// there is none.
func (s *Store) lastLogBelow(end []byte) (uint64, error) {
	var lo [logKeyLen]byte
	return s.boundLog(&pebble.IterOptions{LowerBound: putLogKey(lo[:], 0), UpperBound: end}, false)
}

func (s *Store) boundLog(o *pebble.IterOptions, first bool) (uint64, error) {
	it, err := s.db.NewIter(o)
	if err != nil {
		return 0, fmt.Errorf("log bounds: %w", err)
	}
	var ok bool
	if first {
		ok = it.First()
	} else {
		ok = it.Last()
	}
	var idx uint64
	if ok {
		idx, err = parseLogKey(it.Key())
	}
	if cerr := it.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return 0, fmt.Errorf("log bounds: %w", err)
	}
	return idx, nil
}

// pebbleLogger is the Pebble logger of a store: the shared slog adapter,
// with Pebble's messages marked source=pebble beside the store's own.
// Infof logs at debug level (Pebble is chatty on Open: "Found 0 WALs",
// ...); Fatalf logs at error and panics, since Pebble calls it on
// unrecoverable conditions (e.g. data corruption) and does not expect it
// to return.
func pebbleLogger(l *slog.Logger) theeye.PrintfLogger {
	return theeye.PrintfLogger{L: l.With("source", "pebble")}
}
