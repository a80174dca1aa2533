package raftnode

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"time"

	"github.com/theeye/theeye"
)

// Retention by age (API.md, "Data lifecycle"). The leader decides the cut:
// the first event received since now - retention (found by binary search
// over received_at, which follows seq but for a leader's clock being off
// from the one before it) and replicates it (opRetain). Every node then
// hides what is below it from queries at once (the index reads RetainFrom)
// and frees its disk when its index has purged the events' keys: log/
// drops the segments wholly below both, and Raft truncates its own log as
// it always does after a snapshot.

// retentionInterval is how often, at most, the leader moves the cut and
// every node drops what it may: events leave queries within this of
// expiring (a sixth of the retention when that is shorter, 1 s at least).
const retentionInterval = 10 * time.Second

// retentionTick is the interval for retention ret.
func retentionTick(ret time.Duration) time.Duration {
	if ret <= 0 {
		return retentionInterval
	}
	return min(max(ret/6, time.Second), retentionInterval)
}

// RetainFrom returns the cluster's retention cut as this node applied it:
// the first seq it keeps (1 when nothing is cut).
func (n *Node) RetainFrom() uint64 { return max(n.state.get().RetainFrom, 1) }

// FirstSeq returns the first seq this node's log holds: what it keeps on
// disk after retention drops.
func (n *Node) FirstSeq() uint64 { return n.log.FirstSeq() }

// SetPurgedBelow tells the node how far its index has deleted the keys of
// expired events: log/ keeps what is above it. Until it is called nothing
// is dropped from log/.
func (n *Node) SetPurgedBelow(purged func() uint64) { n.purgedBelow.Store(&purged) }

// retentionLoop runs the retention work every retentionInterval until the
// node closes.
func (n *Node) retentionLoop() {
	defer n.wg.Done()
	t := time.NewTimer(retentionInterval)
	defer t.Stop()
	for {
		select {
		case <-n.closing:
			return
		case <-t.C:
		}
		t.Reset(retentionTick(n.state.get().config().Retention))
		if err := n.retain(context.Background()); err != nil && !errors.Is(err, ErrNotLeader) && !errors.Is(err, ErrClosed) {
			n.logger.Warn("retention", "err", err)
		}
	}
}

// retain moves the cut on the leader and drops what this node may.
func (n *Node) retain(ctx context.Context) error {
	if n.IsLeader() {
		if ret := n.state.get().config().Retention; ret > 0 {
			cut, err := n.retentionCut(time.Now().Add(-ret))
			if err != nil {
				return err
			}
			if cut > n.RetainFrom() {
				ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				defer cancel()
				if _, err := applyConfig[uint64](ctx, n, &command{Op: opRetain, FirstSeq: cut}); err != nil {
					return fmt.Errorf("replicate the retention cut at seq %d: %w", cut, err)
				}
				n.logger.Info("retention cut moved", "first_seq", cut, "retention", ret)
			}
		}
	}
	purged := n.purgedBelow.Load()
	if purged == nil {
		return nil
	}
	upTo := min(n.RetainFrom(), (*purged)())
	if upTo <= n.log.FirstSeq() {
		return nil
	}
	if _, _, err := n.log.DropBefore(upTo); err != nil {
		return fmt.Errorf("drop expired segments: %w", err)
	}
	return nil
}

// retentionCut returns the first seq, from the current cut on, of an event
// received at or after cutoff (LastSeq+1 when every event is older).
func (n *Node) retentionCut(cutoff time.Time) (uint64, error) {
	lo := max(n.RetainFrom(), n.log.FirstSeq())
	hi := n.log.LastSeq() + 1
	if lo >= hi {
		return lo, nil
	}
	var readErr error
	i := sort.Search(int(hi-lo), func(i int) bool {
		seq := lo + uint64(i)
		newer := true
		_, err := n.log.ReadFrom(seq, 1, func(_ uint64, env *theeye.Envelope) error {
			newer = !env.ReceivedTime().Before(cutoff)
			return nil
		})
		if err != nil && readErr == nil {
			readErr = err
		}
		return newer
	})
	if readErr != nil {
		return 0, fmt.Errorf("find the retention cut: %w", readErr)
	}
	return lo + uint64(i), nil
}
