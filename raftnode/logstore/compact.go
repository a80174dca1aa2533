package logstore

import (
	"context"
	"time"
)

// Background compaction of the spans DeleteRange removes: see DeleteRange
// for why and for the measurements.

// compactMinBytes: once the sstables under the spans deleted since the last
// compaction add up to this much (Pebble's estimate, after compression),
// DeleteRange wakes a background goroutine that compacts their union.
const compactMinBytes = 16 << 20

// noteDeleted adds the sstable bytes under a span just deleted to the
// pending total, and wakes the compactor once the total reaches compactMin.
// Called with mu held.
func (s *Store) noteDeleted(start, end []byte, minIdx, maxIdx uint64) {
	if s.compactMin == 0 {
		return
	}
	est, err := s.db.EstimateDiskUsage(start, end)
	if err != nil {
		s.logger.Debug("estimate deleted log size", "err", err)
		return
	}
	if est == 0 {
		return // only in memtables: the flush drops it
	}
	s.compactMu.Lock()
	if s.pendingHi < s.pendingLo {
		s.pendingLo, s.pendingHi = minIdx, maxIdx
	} else {
		s.pendingLo, s.pendingHi = min(s.pendingLo, minIdx), max(s.pendingHi, maxIdx)
	}
	s.pendingBytes += est
	kick := s.pendingBytes >= s.compactMin
	s.compactMu.Unlock()
	if kick {
		select {
		case s.compactKick <- struct{}{}:
		default:
		}
	}
}

// compactLoop compacts the pending deleted span, one compaction at a time,
// until ctx is cancelled (by Close).
func (s *Store) compactLoop(ctx context.Context) {
	defer close(s.compactDone)
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.compactKick:
		}
		s.compactMu.Lock()
		minIdx, maxIdx, bytes := s.pendingLo, s.pendingHi, s.pendingBytes
		s.pendingLo, s.pendingHi, s.pendingBytes = 1, 0, 0
		s.compactMu.Unlock()
		if maxIdx < minIdx {
			continue
		}
		var lo, hi [logKeyLen]byte
		start, end := putLogKey(lo[:], minIdx), logRangeEnd(hi[:], maxIdx)
		t0 := time.Now()
		err := s.db.Compact(ctx, start, end, false)
		took := time.Since(t0)
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			s.logger.Warn("compact deleted logs", "from", minIdx, "to", maxIdx, "err", err)
			continue
		}
		s.compactionsRun.Add(1)
		s.compactNanos.Add(uint64(took))
		s.logger.Debug("compacted deleted logs", "from", minIdx, "to", maxIdx, "estimated_bytes", bytes, "took", took)
	}
}
