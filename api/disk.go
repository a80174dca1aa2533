package api

import (
	"io/fs"
	"path/filepath"
	"sync"
	"time"

	"github.com/dustin/go-humanize"
	"golang.org/x/sys/unix"

	"github.com/theeye/theeye"
)

// diskWatch reads the free space of the file system that holds the data
// dir (statfs, once per flow interval: cheap, never per request) and, less
// often, the bytes each store uses. Below the watermark the node refuses
// writes with 507 and says so in /readyz; it resumes by itself once space
// is back. It is safe for concurrent use.
type diskWatch struct {
	dir     string            // the data dir; "" turns the watch off
	stores  map[string]string // store name (log, index, raft) -> its dir
	minFree int64             // the configured watermark; 0: min(1 GiB, 5 % of the file system)
	m       *metrics

	mu        sync.Mutex
	free      int64     // bytes available to us; guarded by mu
	total     int64     // bytes of the file system; guarded by mu
	low       bool      // guarded by mu
	err       error     // the last statfs error; guarded by mu
	usedAt    time.Time // when store usage was last measured; guarded by mu
	watermark int64     // in force; guarded by mu
	// charged is what the writes admitted since the last reading will take
	// (charge), so that a burst between two readings cannot run past the
	// watermark; guarded by mu.
	charged int64
}

// writeAmplification is how many bytes of disk an ingested byte takes, at
// most, before compression: the Raft log, log/, and the index (two bodies,
// the pointer keys, its WAL).
const writeAmplification = 6

// usedEvery is how often the bytes of each store are measured (a walk of
// its directory).
const usedEvery = 10 * time.Second

// DefaultMinFreeDisk returns API.md's default watermark for a file system
// of total bytes: 1 GiB or 5 % of it, the smaller.
func DefaultMinFreeDisk(total int64) int64 { return min(1<<30, total/20) }

func newDiskWatch(dir string, stores map[string]string, minFree int64, m *metrics) *diskWatch {
	return &diskWatch{dir: dir, stores: stores, minFree: minFree, m: m}
}

// refresh reads the file system now, and the stores when due.
func (d *diskWatch) refresh(now time.Time) {
	if d.dir == "" {
		return
	}
	var st unix.Statfs_t
	err := unix.Statfs(d.dir, &st)
	d.mu.Lock()
	defer d.mu.Unlock()
	if err != nil {
		d.err = err
		return
	}
	d.err = nil
	d.charged = 0
	d.free = int64(st.Bavail) * int64(st.Bsize)
	d.total = int64(st.Blocks) * int64(st.Bsize)
	d.watermark = d.minFree
	if d.watermark <= 0 {
		d.watermark = DefaultMinFreeDisk(d.total)
	}
	d.low = d.free < d.watermark
	d.m.diskFree.Set(float64(d.free))
	d.m.diskTotal.Set(float64(d.total))
	d.m.diskWatermark.Set(float64(d.watermark))
	if now.Sub(d.usedAt) >= usedEvery {
		d.usedAt = now
		for name, dir := range d.stores {
			d.m.diskUsed.WithLabelValues(name).Set(float64(dirBytes(dir)))
		}
	}
}

// isLow reports whether free space was below the watermark at the last
// reading.
func (d *diskWatch) isLow() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.low
}

// charge accounts for a write of n bytes about to be admitted, and refuses
// it (507) when what the writes admitted since the last reading will take
// would bring free space below the watermark.
func (d *diskWatch) charge(n int64) error {
	if d.dir == "" {
		return nil
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.watermark == 0 {
		return nil // no reading yet
	}
	if d.low || d.free-d.charged-n*writeAmplification < d.watermark {
		d.low = true
		return theeye.Errorf(theeye.EInsufficientStorage,
			"the node is short of disk: %s free, the --min-free-disk watermark is %s; writes resume by themselves once space is freed",
			humanize.IBytes(uint64(max(d.free-d.charged, 0))), humanize.IBytes(uint64(d.watermark))).WithDetail(retryAfterDetail, 10)
	}
	d.charged += n * writeAmplification
	return nil
}

// status returns the last reading, as /readyz and peer status report it.
func (d *diskWatch) status() (free, watermark int64, low bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.free, d.watermark, d.low
}

// notReady returns why the node is not ready on account of its disk, or
// nil.
func (d *diskWatch) notReady() error {
	free, mark, low := d.status()
	if !low {
		return nil
	}
	return theeye.Errorf(theeye.EUnavailable, "not ready: %s free on the data dir's file system, below the --min-free-disk watermark of %s; writes are refused until space is freed",
		humanize.IBytes(uint64(max(free, 0))), humanize.IBytes(uint64(mark))).WithDetail("disk_free_bytes", free).WithDetail("min_free_disk_bytes", mark)
}

// dirBytes is the bytes the regular files under dir take (0 when it
// cannot be read).
func dirBytes(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, e fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if e.Type().IsRegular() {
			if info, err := e.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}
