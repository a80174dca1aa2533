package index

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/theeye/theeye"
	"github.com/theeye/theeye/verdict"
)

// ErrClosed is returned by every method called after Close.
var ErrClosed = errors.New("index is closed")

// Source is the event log the indexer tails (log.Log satisfies it). Its
// methods must be safe for concurrent use: the theeye_indexer_lag gauge
// calls LastSeq when scraped.
type Source interface {
	// LastSeq returns the seq of the last event in the log (0 when empty).
	LastSeq() uint64
	// Changed returns a channel closed at the next append.
	Changed() <-chan struct{}
	// FirstSeq returns the first seq the log may hold (retention drops
	// what is below it).
	FirstSeq() uint64
	// ReadFrom calls fn for each event with seq in [from, from+max) that
	// exists, in order; env is only valid during fn. It returns how many
	// events it passed to fn.
	ReadFrom(from uint64, max int, fn func(seq uint64, env *theeye.Envelope) error) (int, error)
}

// Rules is the replicated state the indexer works by (raftnode.Node
// satisfies it): the schemas and cluster config versions that verdicts
// depend on, the revalidation requests to run at their positions in the
// log, and a wake-up when any of them changes. The index never sees Raft.
type Rules interface {
	verdict.Rules
	// Revalidations returns the revalidation requests with ID > after, in
	// ID order. The index does not modify the slice.
	Revalidations(after uint64) []theeye.Revalidation
	// ConfigChanged returns a channel closed at the next change of the
	// replicated state.
	ConfigChanged() <-chan struct{}
	// RetainFrom returns the cluster's retention cut: the first seq that
	// queries may return (0 or 1 when nothing is cut).
	RetainFrom() uint64
}

// Config configures an Index.
type Config struct {
	Dir    string
	Source Source // may be nil for an index that is only queried
	// Rules judge the events (verdict.Judge) and give the revalidation
	// requests; nil: the default cluster config, no schemas, no requests.
	Rules     Rules
	BatchSize int   // events per Pebble batch; default 2048
	CacheSize int64 // block cache bytes; default 64 MiB
	// MemTableSize is the size of one Pebble memtable; default 32 MiB.
	// Pebble charges memtables to the block cache, so the cache is created
	// with CacheSize + 2*MemTableSize (the mutable memtable and one being
	// flushed) to leave CacheSize to blocks.
	MemTableSize int64
	Logger       *slog.Logger          // nil: discard; Pebble logs through it too (its chatter at Debug)
	Registerer   prometheus.Registerer // nil: metrics are counted but not registered
	FS           vfs.FS                // nil: the OS file system (tests use vfs.NewCrashableMem)
}

// Defaults of Config.
const (
	DefaultBatchSize    = 2048
	DefaultCacheSize    = 64 << 20
	DefaultMemTableSize = 32 << 20
)

// Index is the Pebble index of one node: the indexer that fills it from the
// log and the queries that read it. Its methods are safe for concurrent use.
type Index struct {
	cfg   Config
	db    *pebble.DB
	log   *slog.Logger
	m     *metrics
	judge *verdict.Judge

	// writeMu is held by the indexer for one batch; it guards the fields
	// below it.
	writeMu sync.Mutex
	cursor  uint64 // last indexed seq, as committed
	// revalidated is the ID of the last revalidation request run, as
	// committed.
	revalidated uint64
	// turn is whose round comes next when several kinds of work wait
	// (indexBatch takes turns: new events, a revalidation chunk, a purge).
	turn   int
	purged uint64 // the first seq whose keys may still be in the index (retention); as committed
	totals Stats  // as committed
	state  batchState

	// mu is held for reading by each indexer batch and each query chunk,
	// and for writing by Close.
	mu     sync.RWMutex
	closed bool
	done   chan struct{} // closed by Close

	ioErr      atomic.Pointer[error] // why the last batch failed (Run), nil after a success
	indexed    atomic.Uint64
	revalDone  atomic.Uint64 // published revalidated
	purgedPub  atomic.Uint64 // published purged
	events     atomic.Uint64
	errors     atomic.Uint64
	duplicates atomic.Uint64

	notifyMu sync.Mutex
	notify   chan struct{} // closed and replaced each time indexed advances

	statsScratch sync.Pool // of *statsScratch (rollup.go)
}

// Stats are the persisted totals of the index.
type Stats struct {
	IndexedSeq uint64 // last indexed seq
	Events     uint64 // valid events indexed
	Errors     uint64 // events that failed validation (each once, whatever its reasons)
	Duplicates uint64 // events skipped because their (app, id) was already indexed
}

// Open opens (or creates) the index in cfg.Dir and reads its cursor. It
// does not start indexing: call Run.
func Open(cfg Config) (*Index, error) {
	if cfg.Dir == "" {
		return nil, errors.New("open index: Config.Dir is empty")
	}
	if cfg.BatchSize <= 0 {
		cfg.BatchSize = DefaultBatchSize
	}
	if cfg.CacheSize <= 0 {
		cfg.CacheSize = DefaultCacheSize
	}
	if cfg.MemTableSize <= 0 {
		cfg.MemTableSize = DefaultMemTableSize
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	cfg.Logger = cfg.Logger.With("component", "index")

	cache := pebble.NewCache(cfg.CacheSize + 2*cfg.MemTableSize)
	defer cache.Unref() // the DB holds its own reference
	db, err := pebble.Open(cfg.Dir, pebbleOptions(&cfg, cache))
	if err != nil {
		return nil, fmt.Errorf("open index %s: %w", cfg.Dir, err)
	}
	// A store written by a build with a WAL may have replayed it into
	// the memtable: flush it, so that all Open reads below is on disk.
	if err := db.Flush(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open index %s: flush the replayed WAL: %w", cfg.Dir, err)
	}
	var rules verdict.Rules
	if cfg.Rules != nil {
		rules = cfg.Rules
	}
	ix := &Index{
		cfg:    cfg,
		db:     db,
		judge:  verdict.New(rules),
		log:    cfg.Logger,
		done:   make(chan struct{}),
		notify: make(chan struct{}),
	}
	ix.state.dedupe = make(map[string][]byte)
	if err := ix.loadMeta(); err != nil {
		_ = db.Close()
		return nil, fmt.Errorf("open index %s: %w", cfg.Dir, err)
	}
	ix.m = newMetrics(ix.lag)
	if cfg.Registerer != nil {
		if err := ix.m.register(cfg.Registerer); err != nil {
			_ = db.Close()
			return nil, err
		}
	}
	ix.publish()
	ix.purgedPub.Store(ix.purged) // read from disk, so durable
	ix.log.Info("index opened", "dir", cfg.Dir, "indexed_seq", ix.cursor,
		"events", ix.totals.Events, "errors", ix.totals.Errors, "duplicates", ix.totals.Duplicates)
	return ix, nil
}

// loadMeta reads the layout version, the cursor and the counters, and
// stamps the layout version on a new database.
func (ix *Index) loadMeta() error {
	version, found, err := ix.getMeta(metaVersion)
	if err != nil {
		return err
	}
	if !found {
		cursor, hasCursor, err := ix.getMeta(metaCursor)
		if err != nil {
			return err
		}
		if hasCursor {
			return fmt.Errorf("database has a cursor (%d) but no layout version", cursor)
		}
		k := appendMetaKey(nil, metaVersion)
		if err := ix.durable(func(b *pebble.Batch) error {
			return b.Set(k, binary.BigEndian.AppendUint64(nil, layoutVersion), nil)
		}); err != nil {
			return fmt.Errorf("write layout version: %w", err)
		}
		version = layoutVersion
	}
	if version > layoutVersion {
		return fmt.Errorf("index layout version %d is newer than this build's (%d): run a newer build, or delete the index directory to rebuild it from the log", version, layoutVersion)
	}
	if version < layoutVersion {
		// Everything in the index derives from the log and the replicated
		// state (revalidations included), so an old layout is dropped and
		// indexed again from seq 1.
		ix.log.Warn("index has an older layout; rebuilding it from the log", "layout", version, "want", layoutVersion)
		k := appendMetaKey(nil, metaVersion)
		if err := ix.durable(func(b *pebble.Batch) error {
			if err := b.DeleteRange([]byte{0}, []byte{0xff}, nil); err != nil {
				return err
			}
			return b.Set(k, binary.BigEndian.AppendUint64(nil, layoutVersion), nil)
		}); err != nil {
			return fmt.Errorf("drop index of layout %d: %w", version, err)
		}
	}
	for _, f := range []struct {
		name string
		dst  *uint64
	}{
		{metaCursor, &ix.cursor},
		{metaEvents, &ix.totals.Events},
		{metaErrors, &ix.totals.Errors},
		{metaDuplicates, &ix.totals.Duplicates},
		{metaRevalidated, &ix.revalidated},
		{metaPurged, &ix.purged},
	} {
		if *f.dst, _, err = ix.getMeta(f.name); err != nil {
			return err
		}
	}
	ix.totals.IndexedSeq = ix.cursor
	ix.purged = max(ix.purged, 1) // nothing below seq 1 to purge
	return nil
}

func (ix *Index) getMeta(name string) (v uint64, found bool, err error) {
	return readMeta(ix.db, name)
}

// readMeta reads meta key m/<name> from r (the database or a snapshot).
func readMeta(r pebble.Reader, name string) (v uint64, found bool, err error) {
	val, closer, err := r.Get(appendMetaKey(nil, name))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("read meta %s: %w", name, err)
	}
	defer closer.Close()
	if len(val) != 8 {
		return 0, false, fmt.Errorf("read meta %s: %d bytes, want 8", name, len(val))
	}
	return binary.BigEndian.Uint64(val), true, nil
}

// lockWriter takes what a write to the index holds (an indexer round, an
// erasure step): writeMu, then mu for reading, in that order. It returns
// ErrClosed, holding nothing, when the index is closed.
func (ix *Index) lockWriter() error {
	ix.writeMu.Lock()
	ix.mu.RLock()
	if ix.closed {
		ix.unlockWriter()
		return ErrClosed
	}
	return nil
}

// unlockWriter releases what lockWriter took.
func (ix *Index) unlockWriter() {
	ix.mu.RUnlock()
	ix.writeMu.Unlock()
}

// Close waits for the batch in hand and the query chunks being read, then
// closes Pebble. Run returns ErrClosed if it is still running, and so does
// every later call.
func (ix *Index) Close() error {
	ix.writeMu.Lock()
	defer ix.writeMu.Unlock()
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.closed {
		return nil
	}
	ix.closed = true
	close(ix.done)
	if ix.cfg.Registerer != nil {
		ix.m.unregister(ix.cfg.Registerer)
	}
	if ix.state.batch != nil {
		_ = ix.state.batch.Close() // empty: reset after each commit
		ix.state.batch = nil
	}
	// Without a WAL the memtables are all that holds the last batches:
	// flush them, or the next Open indexes them again from the log.
	flushErr := ix.db.Flush()
	if err := ix.db.Close(); err != nil {
		return fmt.Errorf("close index %s: %w", ix.cfg.Dir, err)
	}
	if flushErr != nil {
		return fmt.Errorf("close index %s: flush: %w", ix.cfg.Dir, flushErr)
	}
	ix.log.Info("index closed", "indexed_seq", ix.cursor)
	return nil
}

// IndexedSeq returns the last seq whose indexing is committed.
func (ix *Index) IndexedSeq() uint64 { return ix.indexed.Load() }

// Stats returns the persisted totals, as of the last committed batch.
func (ix *Index) Stats() Stats {
	return Stats{
		IndexedSeq: ix.indexed.Load(),
		Events:     ix.events.Load(),
		Errors:     ix.errors.Load(),
		Duplicates: ix.duplicates.Load(),
	}
}

// WaitIndexed blocks until IndexedSeq() >= seq, ctx is done (the error
// wraps ctx.Err()) or the index is closed (ErrClosed).
func (ix *Index) WaitIndexed(ctx context.Context, seq uint64) error {
	for {
		ix.notifyMu.Lock()
		ch := ix.notify
		ix.notifyMu.Unlock()
		if ix.indexed.Load() >= seq {
			return nil
		}
		select {
		case <-ch:
		case <-ix.done:
			return ErrClosed
		case <-ctx.Done():
			return fmt.Errorf("wait for seq %d to be indexed (indexed %d): %w", seq, ix.indexed.Load(), ctx.Err())
		}
	}
}

// durable commits what write adds to a batch and flushes the memtable,
// so that it is on disk when durable returns. The index has no WAL
// (pebbleOptions): a plain commit is lost in a crash until the next
// flush, which is right for indexing (the log has it all) and wrong for
// what other parts act on: the layout version, a dropped index, an
// erasure's stage, purged keys that let log/ delete segments.
func (ix *Index) durable(write func(*pebble.Batch) error) error {
	b := ix.db.NewBatch()
	defer b.Close()
	if err := write(b); err != nil {
		return fmt.Errorf("batch: %w", err)
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("commit: %w", err)
	}
	if err := ix.db.Flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	return nil
}

// publish makes the committed state visible: IndexedSeq, Stats, the gauge,
// and wakes WaitIndexed. The caller holds writeMu (or is Open).
func (ix *Index) publish() {
	ix.indexed.Store(ix.cursor)
	ix.revalDone.Store(ix.revalidated)
	ix.events.Store(ix.totals.Events)
	ix.errors.Store(ix.totals.Errors)
	ix.duplicates.Store(ix.totals.Duplicates)
	ix.m.indexedSeq.Set(float64(ix.cursor))
	ix.notifyMu.Lock()
	close(ix.notify)
	ix.notify = make(chan struct{})
	ix.notifyMu.Unlock()
}

// lag is the theeye_indexer_lag gauge.
func (ix *Index) lag() float64 {
	if ix.cfg.Source == nil {
		return 0
	}
	last, indexed := ix.cfg.Source.LastSeq(), ix.indexed.Load()
	if last <= indexed {
		return 0
	}
	return float64(last - indexed)
}
